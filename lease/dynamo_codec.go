package lease

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/gokcl/kcl/checkpoint"
)

// The lease table's attributes, named and typed as the Java KCL's
// DynamoDBLeaseSerializer writes them (2.x and 3.x).
const (
	attrKey             = "leaseKey"                           // S, the table's hash key
	attrOwner           = "leaseOwner"                         // S, absent when unowned
	attrCounter         = "leaseCounter"                       // N
	attrCheckpoint      = "checkpoint"                         // S
	attrCheckpointSub   = "checkpointSubSequenceNumber"        // N
	attrOwnerSwitches   = "ownerSwitchesSinceCheckpoint"       // N
	attrParents         = "parentShardId"                      // SS
	attrChildren        = "childShardIds"                      // SS
	attrStartingHashKey = "startingHashKey"                    // S, decimal
	attrEndingHashKey   = "endingHashKey"                      // S, decimal
	attrPending         = "pendingCheckpoint"                  // S
	attrPendingSub      = "pendingCheckpointSubSequenceNumber" // N
	attrPendingState    = "pendingCheckpointState"             // B
	attrCheckpointOwner = "checkpointOwner"                    // S, KCL 3.x graceful hand-off
	attrEntityType      = "entityType"                         // S, KCL 3.x: what the item is
	attrStream          = "streamName"                         // S, multi-stream: the stream identifier
	attrShardID         = "shardId"                            // S, multi-stream: the shard id

	// entityLease is the entityType of a lease; items without entityType
	// are leases too (every KCL before the single-table layout).
	entityLease = "LEASE"
	// entityWorker is the entityType of gokcl's worker rows (see Worker),
	// a type no KCL knows.
	entityWorker = "GOKCL_WORKER"
	// workerKeyPrefix starts the leaseKey of a worker row, so that it can
	// collide neither with a shard id nor with the KCL 3.x's own worker
	// rows (keyed by the bare worker id).
	workerKeyPrefix = "gokcl-worker:"
)

// isLeaseItem reports whether item is a lease row: it has a string leaseKey
// and no entityType other than LEASE. KCL 3.x keeps worker metrics and
// coordinator state in the lease table under other entity types.
func isLeaseItem(item map[string]types.AttributeValue) bool {
	if _, ok := item[attrKey].(*types.AttributeValueMemberS); !ok {
		return false
	}
	switch e := item[attrEntityType].(type) {
	case nil:
		return true
	case *types.AttributeValueMemberS:
		return e.Value == entityLease
	}
	return false
}

// itemKeyOf returns the leaseKey of a lease row (isLeaseItem checked that
// it is a string).
func itemKeyOf(item map[string]types.AttributeValue) string {
	k, _ := item[attrKey].(*types.AttributeValueMemberS)
	if k == nil {
		return ""
	}
	return k.Value
}

// decodeItem reads a lease row; ok is false when item is not a lease (see
// isLeaseItem). A lease row that cannot be read returns an error wrapping
// ErrMalformedLease that names the lease key and the attribute.
//
// Absent optional attributes take the KCL's defaults: no owner, sub-sequence
// numbers and owner switches 0, no parents, children, hash keys or pending
// checkpoint. An empty leaseOwner reads as unowned, an empty
// pendingCheckpoint as none (as in the KCL), and a pendingCheckpointState
// that is not binary is ignored and left in place (the KCL's create path
// once wrote it as a number).
func decodeItem(item map[string]types.AttributeValue) (l Lease, ok bool, err error) {
	if !isLeaseItem(item) {
		return Lease{}, false, nil
	}
	r := itemReader{item: item}
	r.key = r.str(attrKey, true)
	l = Lease{
		Key:                          r.key,
		Owner:                        r.str(attrOwner, false),
		CheckpointOwner:              r.str(attrCheckpointOwner, false),
		Counter:                      r.int(attrCounter, true),
		Checkpoint:                   r.position(attrCheckpoint, attrCheckpointSub, true),
		OwnerSwitchesSinceCheckpoint: r.int(attrOwnerSwitches, false),
		ParentShardIDs:               r.set(attrParents),
		ChildShardIDs:                r.set(attrChildren),
		StartingHashKey:              r.str(attrStartingHashKey, false),
		EndingHashKey:                r.str(attrEndingHashKey, false),
		PendingCheckpointState:       r.binary(attrPendingState),
		StreamID:                     r.streamID(attrStream),
		ShardID:                      r.str(attrShardID, false),
	}
	if r.str(attrPending, false) != "" {
		p := r.position(attrPending, attrPendingSub, true)
		l.PendingCheckpoint = &p
	}
	if r.err != nil {
		return Lease{}, true, r.err
	}
	if err := l.Validate(); err != nil {
		return Lease{}, true, fmt.Errorf("%w: lease %s: %v", ErrMalformedLease, l.Key, err)
	}
	return l, true, nil
}

// itemReader reads typed attributes from an item, keeping the first error.
type itemReader struct {
	item map[string]types.AttributeValue
	key  string
	err  error
}

func (r *itemReader) fail(attr, format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: lease %s: attribute %s: %s", ErrMalformedLease, r.key, attr, fmt.Sprintf(format, args...))
	}
}

// dynamoTypeName names an attribute value's DynamoDB type, for error messages.
func dynamoTypeName(v types.AttributeValue) string {
	switch v.(type) {
	case *types.AttributeValueMemberS:
		return "S"
	case *types.AttributeValueMemberN:
		return "N"
	case *types.AttributeValueMemberB:
		return "B"
	case *types.AttributeValueMemberSS:
		return "SS"
	case *types.AttributeValueMemberNS:
		return "NS"
	case *types.AttributeValueMemberBS:
		return "BS"
	case *types.AttributeValueMemberM:
		return "M"
	case *types.AttributeValueMemberL:
		return "L"
	case *types.AttributeValueMemberBOOL:
		return "BOOL"
	case *types.AttributeValueMemberNULL:
		return "NULL"
	}
	return fmt.Sprintf("%T", v)
}

func (r *itemReader) str(attr string, required bool) string {
	switch v := r.item[attr].(type) {
	case nil:
		if required {
			r.fail(attr, "missing")
		}
		return ""
	case *types.AttributeValueMemberS:
		return v.Value
	default:
		r.fail(attr, "want a string (S), found %s", dynamoTypeName(v))
		return ""
	}
}

// number returns the text of a number attribute, and false if it is absent.
func (r *itemReader) number(attr string, required bool) (string, bool) {
	switch v := r.item[attr].(type) {
	case nil:
		if required {
			r.fail(attr, "missing")
		}
	case *types.AttributeValueMemberN:
		return v.Value, true
	default:
		r.fail(attr, "want a number (N), found %s", dynamoTypeName(v))
	}
	return "", false
}

func (r *itemReader) int(attr string, required bool) int64 {
	s, ok := r.number(attr, required)
	if !ok {
		return 0
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		r.fail(attr, "%q is not a non-negative 64-bit integer", s)
		return 0
	}
	return n
}

func (r *itemReader) uint(attr string) uint64 {
	s, ok := r.number(attr, false)
	if !ok {
		return 0
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		r.fail(attr, "%q is not a non-negative 64-bit integer", s)
		return 0
	}
	return n
}

// position reads a sequence number attribute and its sub-sequence number.
func (r *itemReader) position(seqAttr, subAttr string, required bool) checkpoint.Position {
	p := checkpoint.Position{SequenceNumber: r.str(seqAttr, required), SubSequenceNumber: r.uint(subAttr)}
	if r.err != nil {
		return checkpoint.Position{}
	}
	if err := p.Validate(); err != nil {
		r.fail(seqAttr, "%v", err)
		return checkpoint.Position{}
	}
	return p
}

// set reads a string set, sorted: DynamoDB sets have no order.
func (r *itemReader) set(attr string) []string {
	switch v := r.item[attr].(type) {
	case nil:
		return nil
	case *types.AttributeValueMemberSS:
		if len(v.Value) == 0 {
			return nil
		}
		ids := slices.Clone(v.Value)
		slices.Sort(ids)
		return ids
	default:
		r.fail(attr, "want a string set (SS), found %s", dynamoTypeName(v))
		return nil
	}
}

// streamID reads a serialized stream identifier; absent or empty is the
// zero StreamID (a single-stream lease).
func (r *itemReader) streamID(attr string) StreamID {
	s := r.str(attr, false)
	if s == "" {
		return StreamID{}
	}
	id, err := ParseStreamID(s)
	if err != nil {
		r.fail(attr, "%v", err)
		return StreamID{}
	}
	return id
}

func (r *itemReader) binary(attr string) []byte {
	if v, ok := r.item[attr].(*types.AttributeValueMemberB); ok && len(v.Value) > 0 {
		return slices.Clone(v.Value)
	}
	return nil
}

func attrS(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }

func attrN(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

func attrU(n uint64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatUint(n, 10)}
}

func attrSS(ids []string) types.AttributeValue {
	return &types.AttributeValueMemberSS{Value: slices.Clone(ids)}
}

// encodeNew returns the item the KCL writes for a new lease: key, counter,
// checkpoint, sub-sequence number and owner switches always; owner, parents,
// children, pending checkpoint and hash keys only when set; the stream and
// the shard of a multi-stream lease, as the KCL's
// DynamoDBMultiStreamLeaseSerializer adds them. l must be valid.
//
// One deliberate difference: a pending checkpoint state is written as
// binary, as the KCL's update path writes it (its create path writes a
// number by mistake).
func encodeNew(l Lease) map[string]types.AttributeValue {
	item := map[string]types.AttributeValue{
		attrKey:           attrS(l.Key),
		attrCounter:       attrN(l.Counter),
		attrCheckpoint:    attrS(l.Checkpoint.SequenceNumber),
		attrCheckpointSub: attrU(l.Checkpoint.SubSequenceNumber),
		attrOwnerSwitches: attrN(l.OwnerSwitchesSinceCheckpoint),
	}
	putIf := func(attr string, set bool, v func() types.AttributeValue) {
		if set {
			item[attr] = v()
		}
	}
	putIf(attrOwner, l.Owner != "", func() types.AttributeValue { return attrS(l.Owner) })
	putIf(attrCheckpointOwner, l.CheckpointOwner != "", func() types.AttributeValue { return attrS(l.CheckpointOwner) })
	putIf(attrParents, len(l.ParentShardIDs) > 0, func() types.AttributeValue { return attrSS(l.ParentShardIDs) })
	putIf(attrChildren, len(l.ChildShardIDs) > 0, func() types.AttributeValue { return attrSS(l.ChildShardIDs) })
	putIf(attrStartingHashKey, l.StartingHashKey != "", func() types.AttributeValue { return attrS(l.StartingHashKey) })
	putIf(attrEndingHashKey, l.EndingHashKey != "", func() types.AttributeValue { return attrS(l.EndingHashKey) })
	putIf(attrStream, l.MultiStream(), func() types.AttributeValue { return attrS(l.StreamID.String()) })
	putIf(attrShardID, l.ShardID != "", func() types.AttributeValue { return attrS(l.ShardID) })
	if p := l.PendingCheckpoint; p != nil {
		item[attrPending] = attrS(p.SequenceNumber)
		item[attrPendingSub] = attrU(p.SubSequenceNumber)
	}
	putIf(attrPendingState, len(l.PendingCheckpointState) > 0, func() types.AttributeValue {
		return &types.AttributeValueMemberB{Value: slices.Clone(l.PendingCheckpointState)}
	})
	return item
}

// updateExpr builds a conditional UpdateItem. Every attribute name goes
// through a placeholder, so that none can collide with a reserved word.
type updateExpr struct {
	names                  map[string]string
	values                 map[string]types.AttributeValue
	set, remove, add, cond []string
}

func newUpdateExpr() *updateExpr {
	return &updateExpr{names: map[string]string{}, values: map[string]types.AttributeValue{}}
}

func (e *updateExpr) name(attr string) string {
	e.names["#"+attr] = attr
	return "#" + attr
}

func (e *updateExpr) value(placeholder string, v types.AttributeValue) string {
	e.values[":"+placeholder] = v
	return ":" + placeholder
}

func (e *updateExpr) setAttr(attr string, v types.AttributeValue) {
	e.set = append(e.set, e.name(attr)+" = "+e.value(attr, v))
}

func (e *updateExpr) removeAttr(attrs ...string) {
	for _, a := range attrs {
		e.remove = append(e.remove, e.name(a))
	}
}

func (e *updateExpr) addAttr(attr string, v types.AttributeValue) {
	e.add = append(e.add, e.name(attr)+" "+e.value(attr, v))
}

// expectHeld makes the update conditional on the lease's owner, checkpoint
// owner and counter being l's, and increments the counter.
func (e *updateExpr) expectHeld(l Lease) {
	e.cond = append(e.cond, e.name(attrCounter)+" = "+e.value("expectedCounter", attrN(l.Counter)))
	e.expectString(attrOwner, "expectedOwner", l.Owner)
	e.expectString(attrCheckpointOwner, "expectedCheckpointOwner", l.CheckpointOwner)
	e.setAttr(attrCounter, attrN(l.Counter+1))
}

// expectString makes the update conditional on attr being want, or absent
// when want is empty.
//
// An empty string counts as absent, as decodeItem reads it. The test is
// NOT (size > 0) rather than size = 0 or = "": dynalite evaluates size("")
// as no number, and an empty string as an expression value needs a
// DynamoDB that accepts empty strings.
func (e *updateExpr) expectString(attr, placeholder, want string) {
	a := e.name(attr)
	if want == "" {
		e.cond = append(e.cond, "(attribute_not_exists("+a+") OR NOT (size("+a+") > "+e.value("zero", attrN(0))+"))")
		return
	}
	e.cond = append(e.cond, a+" = "+e.value(placeholder, attrS(want)))
}

func (e *updateExpr) updateExpression() string {
	var b strings.Builder
	for _, clause := range []struct {
		verb  string
		parts []string
	}{{"SET", e.set}, {"REMOVE", e.remove}, {"ADD", e.add}} {
		if len(clause.parts) > 0 {
			if b.Len() > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(clause.verb + " " + strings.Join(clause.parts, ", "))
		}
	}
	return b.String()
}

func (e *updateExpr) conditionExpression() string { return strings.Join(e.cond, " AND ") }

// renewExpr increments the counter.
func renewExpr(l Lease) *updateExpr {
	e := newUpdateExpr()
	e.expectHeld(l)
	return e
}

// takeExpr makes owner the owner. Like the KCL it removes checkpointOwner (a
// hand-off in progress ends with a take) and counts an owner switch when the
// lease had another holder.
func takeExpr(l Lease, owner string) *updateExpr {
	e := newUpdateExpr()
	e.expectHeld(l)
	if owner != "" {
		e.setAttr(attrOwner, attrS(owner))
	} else {
		e.removeAttr(attrOwner)
	}
	e.removeAttr(attrCheckpointOwner)
	if h := l.Holder(); h != "" && h != owner {
		e.addAttr(attrOwnerSwitches, attrN(1))
	}
	return e
}

// releaseExpr gives the lease up. During a hand-off it removes
// checkpointOwner only, so that the new owner, already in leaseOwner, holds
// it alone (the KCL 3.x's evictLease does the same), and counts the switch
// of holder; otherwise it removes leaseOwner.
func releaseExpr(l Lease) *updateExpr {
	e := newUpdateExpr()
	e.expectHeld(l)
	if l.CheckpointOwner != "" {
		e.removeAttr(attrCheckpointOwner)
		e.addAttr(attrOwnerSwitches, attrN(1))
		return e
	}
	e.removeAttr(attrOwner, attrCheckpointOwner)
	return e
}

// handOffExpr starts a hand-off of l to the worker to: leaseOwner becomes
// to and checkpointOwner the current owner, conditional on the owner being
// l.Owner, no hand-off pending and the shard not finished. Like the KCL
// 3.x's initiateGracefulLeaseHandoff it neither checks nor changes the
// counter (see HandOffStore.HandOff).
func handOffExpr(l Lease, to string) *updateExpr {
	e := newUpdateExpr()
	e.cond = append(e.cond, "attribute_exists("+e.name(attrKey)+")")
	e.expectString(attrOwner, "expectedOwner", l.Owner)
	e.expectString(attrCheckpointOwner, "expectedCheckpointOwner", "")
	e.cond = append(e.cond, e.name(attrCheckpoint)+" <> "+e.value("shardEnd", attrS(checkpoint.SentinelShardEnd)))
	e.setAttr(attrOwner, attrS(to))
	e.set = append(e.set, e.name(attrCheckpointOwner)+" = "+e.value("from", attrS(l.Owner)))
	return e
}

// workerKey returns the leaseKey of worker id's row.
func workerKey(id string) string { return workerKeyPrefix + id }

// decodeWorker reads a worker row; ok is false when item is not one.
func decodeWorker(item map[string]types.AttributeValue) (Worker, bool) {
	if e, _ := item[attrEntityType].(*types.AttributeValueMemberS); e == nil || e.Value != entityWorker {
		return Worker{}, false
	}
	id, found := strings.CutPrefix(itemKeyOf(item), workerKeyPrefix)
	r := itemReader{item: item}
	counter := r.int(attrCounter, true)
	if !found || id == "" || r.err != nil {
		return Worker{}, false
	}
	return Worker{ID: id, Counter: counter}, true
}

// heartbeatExpr creates or updates worker id's row: it increments the
// counter (ADD creates it at 1) and sets what a KCL that predates entity
// types (2.x, 3.0 to 3.4) needs to read the row as a finished lease held by
// that worker, which it leaves alone while the counter moves. The condition
// keeps it from overwriting anything but a worker row.
func heartbeatExpr(id string) *updateExpr {
	e := newUpdateExpr()
	e.cond = append(e.cond, "(attribute_not_exists("+e.name(attrKey)+") OR "+e.name(attrEntityType)+" = "+e.value("entityType", attrS(entityWorker))+")")
	e.set = append(e.set, e.name(attrEntityType)+" = "+e.value("entityType", attrS(entityWorker)))
	e.setAttr(attrOwner, attrS(id))
	e.setAttr(attrCheckpoint, attrS(checkpoint.SentinelShardEnd))
	e.setAttr(attrCheckpointSub, attrN(0))
	e.addAttr(attrCounter, attrN(1))
	return e
}

// checkpointExpr writes the checkpoint, the pending checkpoint (removing it
// and its state when nil) and the children (when known), and resets the
// owner switches, as the KCL's checkpoint update does.
func checkpointExpr(l Lease) *updateExpr {
	e := newUpdateExpr()
	e.expectHeld(l)
	e.setAttr(attrCheckpoint, attrS(l.Checkpoint.SequenceNumber))
	e.setAttr(attrCheckpointSub, attrU(l.Checkpoint.SubSequenceNumber))
	e.setAttr(attrOwnerSwitches, attrN(0))
	if p := l.PendingCheckpoint; p != nil {
		e.setAttr(attrPending, attrS(p.SequenceNumber))
		e.setAttr(attrPendingSub, attrU(p.SubSequenceNumber))
	} else {
		e.removeAttr(attrPending, attrPendingSub, attrPendingState)
	}
	if len(l.ChildShardIDs) > 0 {
		e.setAttr(attrChildren, attrSS(l.ChildShardIDs))
	}
	return e
}
