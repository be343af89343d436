package kclotel

import (
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// attrKey identifies an attribute set: which attributes (kind) and their
// values.
type attrKey struct {
	kind       attrKind
	a, b, c, d string
}

type attrKind uint8

const (
	kStream       attrKind = iota // stream
	kStreamResult                 // stream, result
	kShard                        // stream, worker, shard
	kDropped                      // stream, reason
	kCheckpoint                   // stream, kind, result
	kLeaseEvent                   // stream, worker, event, reason
	kWorker                       // stream, worker
)

var attrNames = [...][]string{
	kStream:       {"stream"},
	kStreamResult: {"stream", "result"},
	kShard:        {"stream", "worker", "shard"},
	kDropped:      {"stream", "reason"},
	kCheckpoint:   {"stream", "kind", "result"},
	kLeaseEvent:   {"stream", "worker", "event", "reason"},
	kWorker:       {"stream", "worker"},
}

// attrs is one attribute set, as the option slices the instruments take.
// They are kept as slices, passed on with ..., so that a call does not
// build (and allocate) a variadic slice of its own.
type attrs struct {
	add []metric.AddOption
	rec []metric.RecordOption
}

// attrCache keeps the options of each attribute set in use, so that
// recording a measurement builds no attribute set and allocates nothing: a
// batch costs a map lookup. A shard's sets are forgotten when its worker
// stops.
type attrCache struct {
	mu   sync.RWMutex
	opts map[attrKey]attrs
}

func (c *attrCache) get(k attrKey) attrs {
	c.mu.RLock()
	o, ok := c.opts[k]
	c.mu.RUnlock()
	if ok {
		return o
	}
	values := [...]string{k.a, k.b, k.c, k.d}
	names := attrNames[k.kind]
	kvs := make([]attribute.KeyValue, len(names))
	for i, n := range names {
		kvs[i] = attribute.String(n, values[i])
	}
	set := metric.WithAttributeSet(attribute.NewSet(kvs...))
	o = attrs{add: []metric.AddOption{set}, rec: []metric.RecordOption{set}}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.opts == nil {
		c.opts = make(map[attrKey]attrs)
	}
	c.opts[k] = o
	return o
}

func (c *attrCache) forget(k attrKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.opts, k)
}
