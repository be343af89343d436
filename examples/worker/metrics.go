package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/gokcl/kcl/consumer"
	kclprom "github.com/gokcl/kcl/metrics/prometheus"
)

// metricsServer serves /metrics (the consumer's metrics, the Go runtime's
// and the process's, for Prometheus) and /healthz (the consumer's Status as
// JSON: 200 while it runs and renews its leases, 503 otherwise).
type metricsServer struct {
	metrics *kclprom.Metrics
	reg     *prometheus.Registry
	srv     *http.Server
	ln      net.Listener
	done    chan error
}

// newMetricsServer listens on addr (a port of 0 picks one) and returns the
// server, whose metrics go in the consumer's Hooks.
func newMetricsServer(addr string) (*metricsServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	m := &metricsServer{metrics: kclprom.New(kclprom.Options{}), reg: prometheus.NewRegistry(), ln: ln, done: make(chan error, 1)}
	m.reg.MustRegister(m.metrics, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m, nil
}

// hooks returns the consumer's hooks: none without a server.
func (m *metricsServer) hooks() []consumer.Hook {
	if m == nil {
		return nil
	}
	return []consumer.Hook{m.metrics}
}

// serve serves c's metrics and health until shutdown; it prints where on
// standard error.
func (m *metricsServer) serve(c *consumer.Consumer) {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		st := c.Status()
		w.Header().Set("Content-Type", "application/json")
		if !st.Healthy() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_ = json.NewEncoder(w).Encode(st)
	})
	m.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(os.Stderr, "worker: metrics on http://%s/metrics, health on http://%s/healthz\n", m.ln.Addr(), m.ln.Addr())
	go func() { m.done <- m.srv.Serve(m.ln) }()
}

// shutdown stops the server, letting scrapes in flight finish.
func (m *metricsServer) shutdown() error {
	if m.srv == nil {
		return m.ln.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := m.srv.Shutdown(ctx)
	if serr := <-m.done; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}
