package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
)

func fanoutCommand() *command {
	return &command{
		name:     "fanout",
		synopsis: "fanout list -stream NAME [-o table|json]\nfanout deregister -stream NAME -name CONSUMER",
		summary:  "list or deregister the stream's enhanced fan-out consumers",
		about: `list: the stream's enhanced fan-out consumers, with their status and ARN.
deregister: deregisters the consumer named by -name; an application reading
through it stops receiving records (an active subscription ends within
seconds).`,
		examples: `  gokcl fanout list -stream orders
  gokcl fanout deregister -stream orders -name billing
`,
		flags: func(fs *flag.FlagSet, o *options) {
			streamFlags(fs, o)
			fs.StringVar(&o.name, "name", "", "the consumer `name` (deregister)")
			awsFlags(fs, o, true, false)
			outputFlag(fs, o)
		},
		run: runFanout,
	}
}

// fanoutConsumer is one registered consumer.
type fanoutConsumer struct {
	Name    string    `json:"name"`
	Status  string    `json:"status"`
	Created time.Time `json:"created"`
	ARN     string    `json:"arn"`
}

// fanoutReport is what fanout list prints.
type fanoutReport struct {
	Stream    string           `json:"stream"`
	Consumers []fanoutConsumer `json:"consumers"`
}

func runFanout(ctx context.Context, e *env, o *options) error {
	switch o.action {
	case "list":
		if o.name != "" {
			return usagef("-name is for deregister")
		}
	case "deregister":
		if o.name == "" {
			return usagef("name the consumer to deregister with -name")
		}
	default:
		return usagef("fanout %q: the actions are list and deregister", o.action)
	}
	c, err := connect(ctx, e, o)
	if err != nil {
		return err
	}
	arn, err := streamARN(ctx, c.kinesis, o)
	if err != nil {
		return explain(err, c.streamLabel(o))
	}
	if o.action == "deregister" {
		_, err := c.kinesis.DeregisterStreamConsumer(ctx, &kinesis.DeregisterStreamConsumerInput{StreamARN: aws.String(arn), ConsumerName: aws.String(o.name)})
		if err != nil {
			return explain(err, fmt.Sprintf("consumer %q of %s", o.name, c.streamLabel(o)))
		}
		if o.output == "json" {
			return writeJSON(e.stdout, map[string]string{"stream": arn, "deregistered": o.name})
		}
		_, err = fmt.Fprintf(e.stdout, "Deregistered consumer %s of %s.\n", o.name, arn)
		return err
	}
	r := fanoutReport{Stream: arn, Consumers: []fanoutConsumer{}}
	in := &kinesis.ListStreamConsumersInput{StreamARN: aws.String(arn)}
	for {
		page, err := c.kinesis.ListStreamConsumers(ctx, in)
		if err != nil {
			return explain(err, "the consumers of "+c.streamLabel(o))
		}
		for _, fc := range page.Consumers {
			r.Consumers = append(r.Consumers, fanoutConsumer{Name: aws.ToString(fc.ConsumerName), Status: string(fc.ConsumerStatus),
				Created: aws.ToTime(fc.ConsumerCreationTimestamp).UTC(), ARN: aws.ToString(fc.ConsumerARN)})
		}
		if page.NextToken == nil {
			break
		}
		in = &kinesis.ListStreamConsumersInput{StreamARN: aws.String(arn), NextToken: page.NextToken}
	}
	return r.write(e.stdout, o.output)
}

// streamARN returns the stream's ARN: -stream-arn, or looked up by name.
func streamARN(ctx context.Context, k *kinesis.Client, o *options) (string, error) {
	if o.streamARN != "" {
		return o.streamARN, nil
	}
	out, err := k.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(o.stream)})
	if err != nil {
		return "", err
	}
	return aws.ToString(out.StreamDescriptionSummary.StreamARN), nil
}

func (r fanoutReport) write(w io.Writer, format string) error {
	if format == "json" {
		return writeJSON(w, r)
	}
	if len(r.Consumers) == 0 {
		_, err := fmt.Fprintf(w, "No enhanced fan-out consumer is registered on %s.\n", r.Stream)
		return err
	}
	var rows [][]string
	for _, c := range r.Consumers {
		rows = append(rows, []string{c.Name, c.Status, c.Created.Format(time.RFC3339), c.ARN})
	}
	return writeTable(w, []string{"NAME", "STATUS", "CREATED", "ARN"}, rows)
}
