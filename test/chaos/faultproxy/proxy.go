// Package faultproxy is an HTTP proxy for AWS JSON-protocol services
// (Kinesis, DynamoDB) that injects faults per operation: throttling errors,
// internal errors, latency, connection resets, and answers lost after the
// server applied the request. The chaos suite puts one in front of each test
// server per worker process, so that it knows which worker sent what.
//
// The operation is read from the X-Amz-Target header
// ("Kinesis_20131202.GetRecords", "DynamoDB_20120810.UpdateItem"). Each
// operation draws its faults from its own random stream, seeded from
// Options.Seed and the operation's name, so that the n-th request of an
// operation meets the same fault in every run with the same seed (which
// request is the n-th still depends on timing).
package faultproxy

import (
	"bytes"
	"context"
	"fmt"
	"hash/crc32"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DefaultMaxLatency is Options.MaxLatency's default.
const DefaultMaxLatency = time.Second

// Options configures a Proxy.
type Options struct {
	// Seed seeds the fault draws.
	Seed uint64
	// Plan gives the fault mix per operation; nil injects nothing (SetPlan
	// changes it later).
	Plan Plan
	// MaxLatency bounds the delay of a Latency fault. Default
	// DefaultMaxLatency.
	MaxLatency time.Duration
	// ConditionItems makes a DynamoDB ConditionalCheckFailedException answer
	// to an UpdateItem or DeleteItem that asked for
	// ReturnValuesOnConditionCheckFailure ALL_OLD carry the item, as
	// DynamoDB does and dynalite does not: the proxy reads the item
	// (GetItem, consistent) right after the refusal and adds it. The item
	// can be a moment newer than the one that failed the condition.
	ConditionItems bool
	// Observe, if set, is called with every exchange the server answered,
	// whatever the client then received, before the client receives it.
	// Calls may be concurrent.
	Observe func(Exchange)
}

// Exchange is a request the server answered.
type Exchange struct {
	Op       string // the X-Amz-Target header
	Request  []byte // the request's body
	Status   int    // the server's HTTP status
	Response []byte // the server's answer body (with the item added by ConditionItems)
	// Fault is what the request met: None, Latency (the client got the
	// answer late, or gave up), or LostReset and Lost500 (the client never
	// got this answer).
	Fault Kind
	// Sent is when the proxy sent the request to the server, Answered when
	// it had read the whole answer.
	Sent, Answered time.Time
}

// Proxy forwards requests to one server and injects faults. Its methods are
// safe for concurrent use.
type Proxy struct {
	upstream *url.URL
	opts     Options
	client   *http.Client
	srv      *http.Server
	url      string
	served   chan struct{} // closed when the server's Serve returned

	// ctx bounds everything the proxy does on a request's behalf; it is
	// cancelled by Close. Forwarded requests do not use the client's
	// context: a request the client gave up on still reaches the server.
	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	plan     Plan
	rands    map[string]*rand.Rand
	healed   chan struct{} // nil, or closed when the current partition ends
	closed   bool
	stats    map[string]*[numKinds]int
	inflight sync.WaitGroup // handlers running
}

// New starts a proxy for the server at upstream (such as
// "http://127.0.0.1:4567") on a free loopback port.
func New(upstream string, opts Options) (*Proxy, error) {
	u, err := url.Parse(upstream)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("faultproxy: upstream %q is not an absolute URL", upstream)
	}
	if err := opts.Plan.validate(); err != nil {
		return nil, err
	}
	if opts.MaxLatency == 0 {
		opts.MaxLatency = DefaultMaxLatency
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("faultproxy: listen: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Proxy{
		upstream: u,
		opts:     opts,
		client:   &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second}},
		url:      "http://" + ln.Addr().String(),
		served:   make(chan struct{}),
		ctx:      ctx,
		cancel:   cancel,
		plan:     opts.Plan,
		rands:    map[string]*rand.Rand{},
		stats:    map[string]*[numKinds]int{},
	}
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(p.served)
		_ = p.srv.Serve(ln) // returns http.ErrServerClosed after Close
	}()
	return p, nil
}

// URL returns the proxy's address, to use as the client's endpoint.
func (p *Proxy) URL() string { return p.url }

// SetPlan replaces the fault plan; nil stops injecting faults.
func (p *Proxy) SetPlan(plan Plan) error {
	if err := plan.validate(); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.plan = plan
	return nil
}

// Partition cuts the proxy off (on) or heals it. While it is cut off,
// requests are held, unanswered and not forwarded, until it heals (they are
// then handled as usual) or their client gives up.
func (p *Proxy) Partition(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case on && p.healed == nil && !p.closed:
		p.healed = make(chan struct{})
	case !on && p.healed != nil:
		close(p.healed)
		p.healed = nil
	}
}

// Close stops the proxy: it closes the listener and the connections, cancels
// the requests in flight to the server, and returns after every request
// handler has returned.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.Partition(false)
	p.cancel()
	err := p.srv.Close()
	<-p.served
	p.inflight.Wait()
	p.client.CloseIdleConnections()
	return err
}

// Stats counts requests per operation and fault (None: forwarded and
// answered as the server did). A partitioned request counts under
// Partitioned and again under the fault it then met.
type Stats map[string]map[Kind]int

// Totals sums the counts over the operations.
func (s Stats) Totals() map[Kind]int {
	out := map[Kind]int{}
	for _, byKind := range s {
		for k, n := range byKind {
			out[k] += n
		}
	}
	return out
}

// Stats returns a copy of the counts so far.
func (p *Proxy) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := Stats{}
	for op, counts := range p.stats {
		m := map[Kind]int{}
		for k, n := range counts {
			if n > 0 {
				m[Kind(k)] = n
			}
		}
		out[op] = m
	}
	return out
}

// enter registers a request handler, unless the proxy is closed.
func (p *Proxy) enter() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.inflight.Add(1)
	return true
}

// decision is what happens to one request.
type decision struct {
	kind  Kind
	delay time.Duration
	code  string // throttling error code
}

// decide draws the fault of the next request of op and counts it. It draws
// the same values whatever the outcome, so that one operation's sequence of
// faults does not depend on another's.
func (p *Proxy) decide(op string) decision {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.rands[op]
	if r == nil {
		h := fnv.New64a()
		_, _ = h.Write([]byte(op))
		r = rand.New(rand.NewPCG(p.opts.Seed, h.Sum64()))
		p.rands[op] = r
	}
	d := decision{kind: p.plan.For(op).draw(r.Float64()), delay: latency(r, p.opts.MaxLatency), code: throttleCode(op, r)}
	p.countLocked(op, d.kind)
	return d
}

func (p *Proxy) countLocked(op string, k Kind) {
	c := p.stats[op]
	if c == nil {
		c = new([numKinds]int)
		p.stats[op] = c
	}
	c[k]++
}

// ServeHTTP handles one request.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !p.enter() {
		http.Error(w, "proxy closed", http.StatusServiceUnavailable)
		return
	}
	defer p.inflight.Done()
	// A handler that returns without writing would answer an empty 200,
	// which a client takes for success: every path that gives up on a
	// request resets the connection instead.
	body, err := io.ReadAll(r.Body)
	if err != nil {
		reset(w) // the client went away
		return
	}
	op := r.Header.Get("X-Amz-Target")
	if !p.waitPartition(r.Context(), op) {
		reset(w)
		return
	}
	d := p.decide(op)
	switch d.kind {
	case Throttle:
		writeError(w, http.StatusBadRequest, d.code, "Rate exceeded (injected)")
		return
	case Internal:
		writeError(w, http.StatusInternalServerError, internalCode(op), "Internal failure (injected)")
		return
	case Expired:
		writeError(w, http.StatusBadRequest, "ExpiredIteratorException", "Iterator expired (injected)")
		return
	case Reset:
		reset(w)
		return
	case Latency:
		if !p.sleep(d.delay) {
			reset(w)
			return
		}
	}
	p.forwardAndAnswer(w, r, op, body, d.kind)
}

// waitPartition holds a request while the proxy is partitioned; false means
// the client or the proxy gave up first.
func (p *Proxy) waitPartition(ctx context.Context, op string) bool {
	p.mu.Lock()
	healed := p.healed
	if healed != nil {
		p.countLocked(op, Partitioned)
	}
	p.mu.Unlock()
	if healed == nil {
		return true
	}
	select {
	case <-healed:
		return true
	case <-ctx.Done():
	case <-p.ctx.Done():
	}
	return false
}

// sleep waits d unless the proxy closes first.
func (p *Proxy) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-p.ctx.Done():
		return false
	}
}

// forwardAndAnswer sends the request to the server and answers the client
// as fault says: with the server's answer, or by losing it.
func (p *Proxy) forwardAndAnswer(w http.ResponseWriter, r *http.Request, op string, body []byte, fault Kind) {
	sent := time.Now()
	resp, err := p.forward(r.Header, r.URL, body)
	if err != nil {
		if p.ctx.Err() != nil {
			reset(w) // closing
		} else {
			writeError(w, http.StatusBadGateway, internalCode(op), "faultproxy: "+err.Error())
		}
		return
	}
	if p.opts.ConditionItems {
		p.addConditionItem(r.Header, r.URL, op, body, resp)
	}
	if p.opts.Observe != nil {
		p.opts.Observe(Exchange{Op: op, Request: body, Status: resp.status, Response: resp.body,
			Fault: fault, Sent: sent, Answered: resp.at})
	}
	switch fault {
	case LostReset:
		reset(w)
	case Lost500:
		writeError(w, http.StatusInternalServerError, internalCode(op), "Internal failure (injected after the request was applied)")
	default:
		resp.write(w)
	}
}

// answer is the server's answer, read in full.
type answer struct {
	status int
	header http.Header
	body   []byte
	at     time.Time
}

// forward sends one request to the server, with the client's headers (its
// signature included) and body, under the proxy's context.
func (p *Proxy) forward(h http.Header, u *url.URL, body []byte) (*answer, error) {
	target := *p.upstream
	target.Path, target.RawQuery = u.Path, u.RawQuery
	req, err := http.NewRequestWithContext(p.ctx, http.MethodPost, target.String(), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	for k, vs := range h {
		if !hopByHop(k) {
			req.Header[k] = vs
		}
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	return &answer{status: resp.StatusCode, header: resp.Header, body: b, at: time.Now()}, nil
}

func hopByHop(k string) bool {
	switch http.CanonicalHeaderKey(k) {
	case "Connection", "Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Transfer-Encoding", "Upgrade", "Content-Length":
		return true
	}
	return false
}

// write copies the answer to the client. DynamoDB's X-Amz-Crc32 header is
// recomputed, since ConditionItems may have changed the body.
func (a *answer) write(w http.ResponseWriter) {
	for k, vs := range a.header {
		if !hopByHop(k) {
			w.Header()[k] = vs
		}
	}
	if w.Header().Get("X-Amz-Crc32") != "" {
		w.Header().Set("X-Amz-Crc32", strconv.FormatUint(uint64(crc32.ChecksumIEEE(a.body)), 10))
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(a.body)))
	w.WriteHeader(a.status)
	_, _ = w.Write(a.body)
}

func isDynamoDB(op string) bool { return strings.HasPrefix(op, "DynamoDB_") }

// writeError answers an error as the service would. DynamoDB's answers carry
// the body's CRC32, which its SDK checks.
func writeError(w http.ResponseWriter, status int, code, message string) {
	body := errorBody(code, message)
	if strings.HasPrefix(code, "com.amazonaws.dynamodb.") {
		w.Header().Set("X-Amz-Crc32", strconv.FormatUint(uint64(crc32.ChecksumIEEE(body)), 10))
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// internalCode is the service's internal error code.
func internalCode(op string) string {
	if isDynamoDB(op) {
		return "com.amazonaws.dynamodb.v20120810#InternalServerError"
	}
	return "InternalFailure"
}

// reset closes the client's connection with a TCP RST, without an answer.
func reset(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		// Not hijackable (never with HTTP/1.1): abort the response instead,
		// which closes the connection.
		panic(http.ErrAbortHandler)
	}
	if tcp, ok := conn.(*net.TCPConn); ok {
		_ = tcp.SetLinger(0) // close sends RST instead of FIN
	}
	_ = conn.Close()
}
