package chaos

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"

	"github.com/gokcl/kcl/checkpoint"
	"github.com/gokcl/kcl/test/chaos/faultproxy"
)

// leaseLog collects the lease table writes the DynamoDB proxies see.
type leaseLog struct {
	table string

	mu     sync.Mutex
	writes []LeaseWrite
	errs   []error
}

func newLeaseLog(table string) *leaseLog { return &leaseLog{table: table} }

// observer returns the Observe function of the proxy carrying worker's
// DynamoDB requests.
func (l *leaseLog) observer(worker string) func(faultproxy.Exchange) {
	return func(e faultproxy.Exchange) {
		w, ok, err := DecodeLeaseWrite(e, l.table)
		l.mu.Lock()
		defer l.mu.Unlock()
		if err != nil {
			l.errs = append(l.errs, fmt.Errorf("via %s: %w", worker, err))
		}
		if ok {
			w.Via = worker
			l.writes = append(l.writes, w)
		}
	}
}

func (l *leaseLog) snapshot() ([]LeaseWrite, []error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]LeaseWrite(nil), l.writes...), append([]error(nil), l.errs...)
}

// attr is a DynamoDB attribute value in the JSON protocol; the lease table's
// attributes are strings, numbers and string sets.
type attr struct {
	S  *string
	N  *string
	SS []string
}

type item map[string]attr

func (it item) str(name string) string {
	if a, ok := it[name]; ok && a.S != nil {
		return *a.S
	}
	return ""
}

func (it item) num(name string) (int64, error) {
	a, ok := it[name]
	if !ok || a.N == nil {
		return 0, fmt.Errorf("attribute %s missing or not a number", name)
	}
	return strconv.ParseInt(*a.N, 10, 64)
}

// DecodeLeaseWrite reads a successful PutItem, UpdateItem or DeleteItem of
// table from an exchange; ok is false for anything else (reads, refused
// writes, other tables). An UpdateItem must have asked for ALL_NEW, as the
// lease store does, so that its answer holds the lease after the write.
func DecodeLeaseWrite(e faultproxy.Exchange, table string) (w LeaseWrite, ok bool, err error) {
	var op LeaseOp
	switch e.Op {
	case "DynamoDB_20120810.PutItem":
		op = OpCreate
	case "DynamoDB_20120810.UpdateItem":
		op = OpUpdate
	case "DynamoDB_20120810.DeleteItem":
		op = OpDelete
	default:
		return LeaseWrite{}, false, nil
	}
	if e.Status != http.StatusOK {
		return LeaseWrite{}, false, nil
	}
	var req struct {
		TableName    string
		Item, Key    item
		ReturnValues string
	}
	if err := json.Unmarshal(e.Request, &req); err != nil {
		return LeaseWrite{}, false, fmt.Errorf("%s request: %w", e.Op, err)
	}
	if req.TableName != table {
		return LeaseWrite{}, false, nil
	}
	w = LeaseWrite{Op: op, Sent: e.Sent, At: e.Answered,
		Lost: e.Fault == faultproxy.LostReset || e.Fault == faultproxy.Lost500}
	var lease item
	switch op {
	case OpCreate:
		lease = req.Item
	case OpDelete:
		w.Key = req.Key.str("leaseKey")
		return w, true, nil
	case OpUpdate:
		if req.ReturnValues != "ALL_NEW" {
			return LeaseWrite{}, false, fmt.Errorf("UpdateItem of %s without ReturnValues ALL_NEW", req.Key.str("leaseKey"))
		}
		var resp struct{ Attributes item }
		if err := json.Unmarshal(e.Response, &resp); err != nil {
			return LeaseWrite{}, false, fmt.Errorf("UpdateItem answer: %w", err)
		}
		lease = resp.Attributes
	}
	if err := w.readLease(lease); err != nil {
		return LeaseWrite{}, false, fmt.Errorf("%s of %s: %w", op, lease.str("leaseKey"), err)
	}
	return w, true, nil
}

// readLease fills the lease's fields from its item.
func (w *LeaseWrite) readLease(it item) error {
	w.Key, w.Owner = it.str("leaseKey"), it.str("leaseOwner")
	var err error
	if w.Counter, err = it.num("leaseCounter"); err != nil {
		return err
	}
	w.Checkpoint = checkpoint.Position{SequenceNumber: it.str("checkpoint")}
	if _, ok := it["checkpointSubSequenceNumber"]; ok {
		sub, err := it.num("checkpointSubSequenceNumber")
		if err != nil || sub < 0 {
			return fmt.Errorf("checkpointSubSequenceNumber: %v", err)
		}
		w.Checkpoint.SubSequenceNumber = uint64(sub)
	}
	if w.Key == "" {
		return fmt.Errorf("no leaseKey")
	}
	return w.Checkpoint.Validate()
}
