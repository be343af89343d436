package kclcw

import (
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
)

// datumKey identifies one CloudWatch metric: its name, unit and dimensions.
// The KCL's dimensions are Operation, with ShardId or WorkerIdentifier.
type datumKey struct {
	name      string
	unit      types.StandardUnit
	operation string
	shard     string // ShardId, or empty
	worker    string // WorkerIdentifier, or empty
}

// stats is a statistic set: what CloudWatch is sent for one metric after a
// buffer period, however many values were added.
type stats struct {
	count, sum, min, max float64
	at                   time.Time // of the first value
}

func (s stats) add(v float64) stats {
	if s.count == 0 {
		return stats{count: 1, sum: v, min: v, max: v, at: time.Now()}
	}
	s.count++
	s.sum += v
	s.min, s.max = min(s.min, v), max(s.max, v)
	return s
}

func (k datumKey) datum(s stats) types.MetricDatum {
	dims := []types.Dimension{{Name: aws.String("Operation"), Value: aws.String(k.operation)}}
	if k.shard != "" {
		dims = append(dims, types.Dimension{Name: aws.String("ShardId"), Value: aws.String(k.shard)})
	}
	if k.worker != "" {
		dims = append(dims, types.Dimension{Name: aws.String("WorkerIdentifier"), Value: aws.String(k.worker)})
	}
	return types.MetricDatum{
		MetricName: aws.String(k.name),
		Dimensions: dims,
		Unit:       k.unit,
		Timestamp:  aws.Time(s.at),
		StatisticValues: &types.StatisticSet{
			SampleCount: aws.Float64(s.count),
			Sum:         aws.Float64(s.sum),
			Minimum:     aws.Float64(s.min),
			Maximum:     aws.Float64(s.max),
		},
	}
}

// add accumulates v into the metric k.
func (p *Publisher) add(k datumKey, v float64) {
	p.mu.Lock()
	s, ok := p.pending[k]
	if !ok && len(p.pending) >= p.o.MaxQueueSize {
		p.mu.Unlock()
		p.dropped.Add(1)
		return
	}
	p.pending[k] = s.add(v)
	n := len(p.pending)
	p.mu.Unlock()
	if !ok && n == p.o.FlushSize {
		select {
		case p.flushCh <- struct{}{}:
		default:
		}
	}
}

// detailed reports whether the DETAILED metrics are published.
func (p *Publisher) detailed() bool { return p.o.Level == LevelDetailed }

func millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func success(ok bool) float64 {
	if ok {
		return 1
	}
	return 0
}
