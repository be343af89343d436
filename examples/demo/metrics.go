package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	kclprom "github.com/gokcl/kcl/metrics/prometheus"
)

// metricsServer serves the three workers' metrics on /metrics, for
// Prometheus (one kclprom.Metrics in every worker's Hooks), and their
// Status as JSON on /status.
type metricsServer struct {
	metrics *kclprom.Metrics
	url     string
	srv     *http.Server
	done    chan error
}

func newMetricsServer(addr string, e *env) (*metricsServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	m := &metricsServer{metrics: kclprom.New(kclprom.Options{}), url: "http://" + ln.Addr().String(), done: make(chan error, 1)}
	reg := prometheus.NewRegistry()
	reg.MustRegister(m.metrics)
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/status", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(e.statuses())
	})
	m.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { m.done <- m.srv.Serve(ln) }()
	return m, nil
}

func (m *metricsServer) shutdown() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := m.srv.Shutdown(ctx)
	if serr := <-m.done; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}
