package kclcw

import (
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/smithy-go/encoding/cbor"
)

// cwServer is an HTTP server answering CloudWatch's PutMetricData as
// CloudWatch does (Smithy RPC v2 CBOR, gzip-compressed bodies accepted), and
// recording every request it received, decoded.
type cwServer struct {
	*httptest.Server
	t *testing.T

	mu       sync.Mutex
	requests []putRequest
	fail     bool          // answer with a server error
	hold     chan struct{} // when set, requests wait until it is closed
}

// putRequest is one PutMetricData request as received.
type putRequest struct {
	Operation string
	Gzipped   bool
	Namespace string
	Data      []datum
}

type datum struct {
	Name                 string
	Unit                 string
	Dimensions           map[string]string
	Timestamp            time.Time
	Count, Sum, Min, Max float64
}

// dims formats the dimensions in a fixed order, for comparisons.
func (d datum) dims() string {
	var parts []string
	for k, v := range d.Dimensions {
		parts = append(parts, k+"="+v)
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

func newServer(t *testing.T) *cwServer {
	s := &cwServer{t: t}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *cwServer) serve(w http.ResponseWriter, r *http.Request) {
	req, err := decodeRequest(r)
	if err != nil {
		s.t.Errorf("bad request: %v", err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	hold, fail := s.hold, s.fail
	s.requests = append(s.requests, req)
	s.mu.Unlock()
	if hold != nil {
		<-hold
	}
	w.Header().Set("Smithy-Protocol", "rpc-v2-cbor")
	w.Header().Set("Content-Type", "application/cbor")
	if fail {
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write(cbor.Encode(cbor.Map{"__type": cbor.String("InternalServiceFault"), "Message": cbor.String("try later")}))
		return
	}
	w.WriteHeader(http.StatusOK)
}

func decodeRequest(r *http.Request) (putRequest, error) {
	req := putRequest{Operation: r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]}
	if r.Header.Get("Smithy-Protocol") != "rpc-v2-cbor" {
		return req, fmt.Errorf("protocol %q", r.Header.Get("Smithy-Protocol"))
	}
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			return req, err
		}
		body, req.Gzipped = zr, true
	}
	raw, err := io.ReadAll(body)
	if err != nil {
		return req, err
	}
	v, err := cbor.Decode(raw)
	if err != nil {
		return req, err
	}
	m, ok := v.(cbor.Map)
	if !ok {
		return req, fmt.Errorf("body is a %T", v)
	}
	req.Namespace = str(m["Namespace"])
	list, _ := m["MetricData"].(cbor.List)
	for _, item := range list {
		d, err := decodeDatum(item)
		if err != nil {
			return req, err
		}
		req.Data = append(req.Data, d)
	}
	return req, nil
}

func decodeDatum(v cbor.Value) (datum, error) {
	m, ok := v.(cbor.Map)
	if !ok {
		return datum{}, fmt.Errorf("datum is a %T", v)
	}
	d := datum{Name: str(m["MetricName"]), Unit: str(m["Unit"]), Dimensions: map[string]string{}}
	dims, _ := m["Dimensions"].(cbor.List)
	for _, x := range dims {
		dm, _ := x.(cbor.Map)
		d.Dimensions[str(dm["Name"])] = str(dm["Value"])
	}
	if ts, ok := m["Timestamp"]; ok {
		t, err := cbor.AsTime(ts)
		if err != nil {
			return d, fmt.Errorf("timestamp: %w", err)
		}
		d.Timestamp = t
	}
	stats, ok := m["StatisticValues"].(cbor.Map)
	if !ok {
		return d, fmt.Errorf("%s: no statistic values", d.Name)
	}
	for name, dst := range map[string]*float64{"SampleCount": &d.Count, "Sum": &d.Sum, "Minimum": &d.Min, "Maximum": &d.Max} {
		f, err := cbor.AsFloat64(stats[name])
		if err != nil {
			return d, fmt.Errorf("%s %s: %w", d.Name, name, err)
		}
		*dst = f
	}
	return d, nil
}

func str(v cbor.Value) string {
	s, _ := v.(cbor.String)
	return string(s)
}

// client is a real CloudWatch client of the SDK sending to the server.
func (s *cwServer) client() *cloudwatch.Client {
	return cloudwatch.New(cloudwatch.Options{
		Region:           "us-east-1",
		Credentials:      aws.AnonymousCredentials{},
		BaseEndpoint:     aws.String(s.URL),
		RetryMaxAttempts: 1,
	})
}

func (s *cwServer) received() []putRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]putRequest(nil), s.requests...)
}

// data returns every metric received, keyed by "name dims": the statistic
// sets of one metric sent in several requests are added up (the timestamp
// is the first's).
func (s *cwServer) data() map[string]datum {
	out := map[string]datum{}
	for _, r := range s.received() {
		for _, d := range r.Data {
			k := d.Name + " " + d.dims()
			if prev, ok := out[k]; ok {
				prev.Count += d.Count
				prev.Sum += d.Sum
				prev.Min, prev.Max = min(prev.Min, d.Min), max(prev.Max, d.Max)
				d = prev
			}
			out[k] = d
		}
	}
	return out
}

func (s *cwServer) set(f func(s *cwServer)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}
