package efotest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
)

// Transport is an http.RoundTripper that serves each request by calling
// Handler in memory, with no socket: the response body is a pipe the handler
// writes into, so a handler's Write returns only once the client has read
// it (a slow reader slows the handler down, as flow control would), and a
// client that closes the body makes the handler's writes fail and cancels
// its request context. Every goroutine involved blocks on channels only, so
// the transport works inside testing/synctest bubbles.
//
// The SDK needs nothing more for SubscribeToShard: the response is HTTP/1.1
// and its body is read as a stream (HTTP/2 is required only by operations
// with an input event stream).
//
// A handler that panics with http.ErrAbortHandler breaks the connection:
// the body's next read fails with ErrConnectionReset.
type Transport struct {
	Handler http.Handler
}

// ErrConnectionReset is the error a body read returns after the handler
// broke the connection.
var ErrConnectionReset = errors.New("efotest: connection reset by the server")

// errBodyClosed is what a handler's Write returns once the client closed the
// body.
var errBodyClosed = errors.New("efotest: the client closed the response body")

// RoundTrip calls the handler in a new goroutine and returns once it has
// sent its response header. That goroutine ends when the handler returns;
// a handler that honours its request context and write errors returns once
// the body is closed or the request's context is done.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		var err error
		body, err = io.ReadAll(req.Body)
		_ = req.Body.Close()
		if err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithCancel(req.Context())
	hreq := req.Clone(ctx)
	hreq.Body = io.NopCloser(bytes.NewReader(body))
	hreq.ContentLength = int64(len(body))
	hreq.RequestURI = req.URL.RequestURI()
	hreq.RemoteAddr = "efotest:0"

	pr, pw := io.Pipe()
	rw := &responseWriter{header: http.Header{}, pw: pw, ready: make(chan struct{})}
	go serve(t.Handler, rw, hreq, cancel)
	select {
	case <-rw.ready:
	case <-req.Context().Done():
		cancel()
		_ = pr.CloseWithError(req.Context().Err())
		return nil, req.Context().Err()
	}
	if rw.err != nil {
		_ = pr.CloseWithError(rw.err)
		return nil, rw.err
	}
	// Like net/http: cancelling the request's context after the response
	// came fails the body's reads.
	stop := context.AfterFunc(req.Context(), func() { _ = pr.CloseWithError(req.Context().Err()) })
	return &http.Response{
		Status:        fmt.Sprintf("%d %s", rw.status, http.StatusText(rw.status)),
		StatusCode:    rw.status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        rw.sent,
		ContentLength: -1,
		Body:          &pipeBody{r: bufio.NewReader(pr), pr: pr, stop: stop, cancel: cancel},
		Request:       req,
	}, nil
}

// serve runs the handler and ends the response when it returns.
func serve(h http.Handler, rw *responseWriter, req *http.Request, cancel context.CancelFunc) {
	defer cancel()
	defer func() {
		if v := recover(); v != nil {
			err := ErrConnectionReset
			if v != http.ErrAbortHandler {
				err = fmt.Errorf("%w: the handler panicked: %v", ErrConnectionReset, v)
			}
			rw.abort(err)
			return
		}
		rw.WriteHeader(http.StatusOK) // a handler that wrote nothing
		_ = rw.pw.Close()
	}()
	h.ServeHTTP(rw, req)
}

// responseWriter is the handler's side of the response.
type responseWriter struct {
	header http.Header
	pw     *io.PipeWriter

	once   sync.Once
	ready  chan struct{} // closed when the header is sent (or err set)
	status int
	sent   http.Header
	err    error // the handler failed before sending a header
}

func (w *responseWriter) Header() http.Header { return w.header }

func (w *responseWriter) WriteHeader(code int) {
	w.once.Do(func() {
		w.status, w.sent = code, w.header.Clone()
		close(w.ready)
	})
}

func (w *responseWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return w.pw.Write(p)
}

// Flush does nothing: every Write reaches the client as it reads.
func (w *responseWriter) Flush() {}

func (w *responseWriter) abort(err error) {
	sent := true
	w.once.Do(func() {
		sent = false
		w.err = err
		close(w.ready)
	})
	if sent {
		_ = w.pw.CloseWithError(err)
	}
}

// pipeBody is the client's side of the response.
type pipeBody struct {
	r      *bufio.Reader
	pr     *io.PipeReader
	stop   func() bool
	cancel context.CancelFunc
}

func (b *pipeBody) Read(p []byte) (int, error) { return b.r.Read(p) }

// Close fails the handler's writes and cancels its context.
func (b *pipeBody) Close() error {
	b.stop()
	_ = b.pr.CloseWithError(errBodyClosed)
	b.cancel()
	return nil
}

// NewClient returns a real Kinesis client whose calls are served by h in
// memory (through Transport), with test credentials in us-east-1. optFns
// apply last, for example to set RetryMaxAttempts.
func NewClient(h http.Handler, optFns ...func(*kinesis.Options)) *kinesis.Client {
	return kinesis.New(kinesis.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String("http://efotest.invalid"),
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
		HTTPClient:   &http.Client{Transport: &Transport{Handler: h}},
	}, optFns...)
}
