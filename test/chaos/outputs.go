package chaos

import (
	"bytes"
	"fmt"
	"io"
	"os"
)

// tail reads one worker process's output file as it grows: only complete
// lines, so that a line being written (or cut short by a kill) is left for
// later.
type tail struct {
	path        string
	worker      string
	incarnation int
	off         int64
	lines       int
}

// read returns the deliveries of the lines completed since the last read.
func (t *tail) read() ([]Delivery, error) {
	f, err := os.Open(t.path)
	if os.IsNotExist(err) {
		return nil, nil // the process has not written anything yet
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.NewSectionReader(f, t.off, 1<<62))
	if err != nil {
		return nil, err
	}
	end := bytes.LastIndexByte(b, '\n') + 1
	var out []Delivery
	for _, line := range bytes.Split(b[:end], []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		d, err := parseDelivery(string(line))
		if err != nil {
			return out, fmt.Errorf("%s line %d: %w", t.path, t.lines+1, err)
		}
		d.Worker, d.Incarnation, d.Line = t.worker, t.incarnation, t.lines
		t.lines++
		out = append(out, d)
	}
	t.off += int64(end)
	return out, nil
}
