package chaos

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/gokcl/kcl/checkpoint"
	"github.com/gokcl/kcl/test/chaos/faultproxy"
)

// leaseLog collects the lease table writes the DynamoDB proxies see. Writes
// of rows that are not leases (gokcl's worker rows) are left out, and so are
// deletes of keys seen as such rows.
type leaseLog struct {
	table string

	mu       sync.Mutex
	writes   []LeaseWrite
	errs     []error
	notLease map[string]bool // keys of rows that are not leases
}

func newLeaseLog(table string) *leaseLog { return &leaseLog{table: table, notLease: map[string]bool{}} }

// observer returns the Observe function of the proxy carrying worker's
// DynamoDB requests.
func (l *leaseLog) observer(worker string) func(faultproxy.Exchange) {
	return func(e faultproxy.Exchange) {
		w, ok, err := DecodeLeaseWrite(e, l.table)
		l.mu.Lock()
		defer l.mu.Unlock()
		var other *notLeaseError
		switch {
		case errors.As(err, &other):
			l.notLease[other.key] = true
		case err != nil:
			l.errs = append(l.errs, fmt.Errorf("via %s: %w", worker, err))
		case ok && !(w.Op == OpDelete && l.notLease[w.Key]):
			w.Via = worker
			l.writes = append(l.writes, w)
		}
	}
}

// notLeaseError reports a write of a row that is not a lease.
type notLeaseError struct{ key, entity string }

func (e *notLeaseError) Error() string {
	return fmt.Sprintf("row %s is not a lease (entityType %s)", e.key, e.entity)
}

func (l *leaseLog) snapshot() ([]LeaseWrite, []error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]LeaseWrite(nil), l.writes...), append([]error(nil), l.errs...)
}

// entityLease is the entityType of a lease row; rows without one are leases
// too.
const entityLease = "LEASE"

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
// lease store does, so that its answer holds the lease after the write. A
// write of a row whose entityType is not LEASE returns a *notLeaseError.
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
		TableName                string
		Item, Key                item
		ReturnValues             string
		UpdateExpression         string
		ExpressionAttributeNames map[string]string
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
		w.KeepsCounter = !assigns(req.UpdateExpression, req.ExpressionAttributeNames, "leaseCounter")
	}
	if entity := lease.str("entityType"); entity != "" && entity != entityLease {
		return LeaseWrite{}, false, &notLeaseError{key: lease.str("leaseKey"), entity: entity}
	}
	if err := w.readLease(lease); err != nil {
		return LeaseWrite{}, false, fmt.Errorf("%s of %s: %w", op, lease.str("leaseKey"), err)
	}
	return w, true, nil
}

// assigns reports whether an update expression sets or adds to attribute
// attr, named directly or through a #placeholder of names.
func assigns(expr string, names map[string]string, attr string) bool {
	// Split into clauses at the keywords, then into actions at commas:
	// "SET #a = :a, #b = :b REMOVE #c ADD #d :d".
	var clause string
	for _, tok := range strings.FieldsFunc(expr, func(r rune) bool { return r == ' ' || r == ',' }) {
		switch strings.ToUpper(tok) {
		case "SET", "REMOVE", "ADD", "DELETE":
			clause = strings.ToUpper(tok)
			continue
		}
		if clause != "SET" && clause != "ADD" {
			continue
		}
		if n, ok := names[tok]; ok {
			tok = n
		}
		if tok == attr {
			return true
		}
	}
	return false
}

// readLease fills the lease's fields from its item.
func (w *LeaseWrite) readLease(it item) error {
	w.Key, w.Owner, w.CheckpointOwner = it.str("leaseKey"), it.str("leaseOwner"), it.str("checkpointOwner")
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
