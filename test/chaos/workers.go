package chaos

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gokcl/kcl/test/chaos/faultproxy"
)

// workerState is what the schedule did to a worker process last.
type workerState uint8

const (
	stateDead workerState = iota // never started, killed, or exited
	stateRunning
	statePaused
	stateStopping // sent SIGTERM
)

// workerProc is one worker of the application: examples/worker processes
// started one after the other (incarnations) under the same worker id,
// talking to the servers through the worker's own two proxies, so that the
// proxies know which worker sent each request.
type workerProc struct {
	id      string
	args    []string // the command line, without -out
	dir     string
	kinesis *faultproxy.Proxy
	dynamo  *faultproxy.Proxy

	mu       sync.Mutex
	cut      bool // partitioned
	state    workerState
	inc      int // incarnations started
	cmd      *exec.Cmd
	done     chan struct{} // closed when the current process has exited and been waited for
	expected bool          // the current process was told to exit (killed or terminated)
	problems []string      // unexpected exits
	outputs  []string      // each incarnation's output file
}

func (w *workerProc) outputPath(inc int) string {
	return filepath.Join(w.dir, fmt.Sprintf("%s-%d.out", w.id, inc))
}

func (w *workerProc) logPath(inc int) string {
	return filepath.Join(w.dir, fmt.Sprintf("%s-%d.log", w.id, inc))
}

// start starts a new incarnation; the worker must be dead.
func (w *workerProc) start() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.state != stateDead {
		return fmt.Errorf("worker %s: start while %v", w.id, w.state)
	}
	inc := w.inc
	logFile, err := os.Create(w.logPath(inc))
	if err != nil {
		return err
	}
	cmd := exec.Command(w.args[0], append(w.args[1:], "-out", w.outputPath(inc))...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = dieWithParent()
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("worker %s: %w", w.id, err)
	}
	w.inc++
	w.outputs = append(w.outputs, w.outputPath(inc))
	w.cmd, w.state, w.expected = cmd, stateRunning, false
	done := make(chan struct{})
	w.done = done
	go func() {
		defer close(done)
		err := cmd.Wait()
		logFile.Close()
		w.exited(cmd, inc, err)
	}()
	return nil
}

// exited records the end of incarnation inc.
func (w *workerProc) exited(cmd *exec.Cmd, inc int, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.cmd != cmd {
		return
	}
	var what string
	switch {
	case !w.expected:
		what = "exited on its own"
	case w.state == stateStopping && err != nil:
		what = "failed its graceful stop"
	}
	if what != "" {
		w.problems = append(w.problems, fmt.Sprintf("worker %s#%d %s (%v); last lines of %s:\n%s",
			w.id, inc, what, err, w.logPath(inc), lastLines(w.logPath(inc), 20)))
	}
	w.state = stateDead
}

// signal sends sig to the current process if the worker is in one of the
// states from; it returns the process's done channel, or nil if it sent
// nothing.
func (w *workerProc) signal(sig syscall.Signal, to workerState, from ...workerState) <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	ok := false
	for _, s := range from {
		ok = ok || w.state == s
	}
	if !ok {
		return nil
	}
	if sig == syscall.SIGKILL || sig == syscall.SIGTERM {
		w.expected = true
	}
	if err := w.cmd.Process.Signal(sig); err != nil {
		return nil // it has just exited: exited() updates the state
	}
	w.state = to
	return w.done
}

// kill kills the worker (running or paused) and waits until it is gone.
func (w *workerProc) kill() bool {
	done := w.signal(syscall.SIGKILL, stateDead, stateRunning, statePaused, stateStopping)
	if done != nil {
		<-done
	}
	return done != nil
}

// terminate asks a running worker to stop gracefully; the returned channel is
// closed when it has exited (nil if it was not running).
func (w *workerProc) terminate() <-chan struct{} {
	return w.signal(syscall.SIGTERM, stateStopping, stateRunning)
}

func (w *workerProc) pause() bool { return w.signal(syscall.SIGSTOP, statePaused, stateRunning) != nil }

func (w *workerProc) resume() bool {
	return w.signal(syscall.SIGCONT, stateRunning, statePaused) != nil
}

func (w *workerProc) is(s workerState) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.state == s
}

// incarnation returns the number of the current (or last) process.
func (w *workerProc) incarnation() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.inc - 1
}

// setPartitioned cuts the worker off from both servers, or heals it.
func (w *workerProc) setPartitioned(on bool) {
	w.mu.Lock()
	w.cut = on
	w.mu.Unlock()
	w.kinesis.Partition(on)
	w.dynamo.Partition(on)
}

func (w *workerProc) partitioned() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.cut
}

func (w *workerProc) setPlan(p faultproxy.Plan) error {
	return errors.Join(w.kinesis.SetPlan(p), w.dynamo.SetPlan(p))
}

// close kills the process if any, waits until its waiting goroutine is
// done, and stops the proxies.
func (w *workerProc) close() error {
	w.kill()
	w.mu.Lock()
	done := w.done
	w.mu.Unlock()
	if done != nil {
		<-done
	}
	return errors.Join(w.kinesis.Close(), w.dynamo.Close())
}

func (w *workerProc) unexpectedExits() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.problems...)
}

func (s workerState) String() string {
	return [...]string{"dead", "running", "paused", "stopping"}[s]
}

// lastLines returns the last n lines of a file, for error messages.
func lastLines(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	lines = lines[max(0, len(lines)-n):]
	return "    " + strings.ReplaceAll(string(bytes.Join(lines, []byte("\n"))), "\n", "\n    ")
}

// waitClosed waits for ch up to d; false if it timed out.
func waitClosed(ch <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ch:
		return true
	case <-t.C:
		return false
	}
}
