package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gokcl/kcl/consumer"
	"github.com/gokcl/kcl/internal/testenv"
	"github.com/gokcl/kcl/kcltest"
	"github.com/gokcl/kcl/lease"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// /healthz answers 503 until the consumer runs, 200 while it does, and
// carries its Status; /metrics carries the consumer's metrics.
func TestMetricsAndHealth(t *testing.T) {
	ms, err := newMetricsServer("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	stream := kcltest.NewStream(1, kcltest.WithName("orders"))
	c, err := consumer.New(consumer.Config{StreamName: "orders", AppName: "app", WorkerID: "w1", Kinesis: stream,
		LeaseStore: lease.NewMemoryStore(), Hooks: ms.hooks(),
		NewProcessor: func(string) consumer.RecordProcessor {
			return consumer.RecordProcessorFunc(func(context.Context, *consumer.Batch) error { return nil })
		}})
	if err != nil {
		t.Fatal(err)
	}
	ms.serve(c)
	url := "http://" + ms.ln.Addr().String()
	code, body := get(t, url+"/healthz")
	var st consumer.Status
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatal(err)
	}
	if code != http.StatusServiceUnavailable || st.Running || st.WorkerID != "w1" {
		t.Fatalf("before Run: %d %s", code, body)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	testenv.WaitFor(t, 30*time.Second, "the lease held", func() bool { return len(c.Status().Shards) == 1 })
	if code, body := get(t, url+"/healthz"); code != http.StatusOK || !strings.Contains(body, `"state":"processing"`) {
		t.Fatalf("running: %d %s", code, body)
	}
	code, body = get(t, url+"/metrics")
	for _, want := range []string{`gokcl_millis_behind_latest{shard="shardId-000000000000",stream="orders",worker="w1"}`, "go_goroutines"} {
		if code != http.StatusOK || !strings.Contains(body, want) {
			t.Fatalf("/metrics has no %s: %d %s", want, code, body)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := ms.shutdown(); err != nil {
		t.Fatal(err)
	}
}
