package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"golang.org/x/sync/errgroup"

	"github.com/gokcl/kcl/checkpoint"
	"github.com/gokcl/kcl/lease"
)

func importCommand() *command {
	return &command{
		name:     "import",
		synopsis: "import -app NAME -stream NAME -from vmware -source-table TABLE [-dry-run] [-force] [-o table|json]",
		summary:  "copy a vmware-go-kcl-v2 application's checkpoints into a gokcl lease table",
		about: `Creates a gokcl lease for every shard a vmware-go-kcl-v2 application
checkpointed, so that gokcl resumes where it stopped: after the record each
checkpoint names, as vmware-go-kcl would have (after all of a KPL aggregate's
user records), and SHARD_END stays SHARD_END. Parents and hash ranges come
from the stream, so a merge's two parents are both known.

Each sequence number is checked against the stream: a record that is not in
its shard (another stream's table?) refuses the import. A row without a
checkpoint is not imported: gokcl creates that lease itself, as for a shard
vmware-go-kcl never started. Rows it cannot map are reported, never guessed,
and then nothing is written. It refuses while the vmware-go-kcl application
still holds leases (an owner whose lease timeout has not passed), unless
-force, and never overwrites a gokcl lease. The gokcl table is created if
missing. -dry-run prints the mapping.`,
		examples: `  gokcl import -app billing -stream orders -from vmware -source-table billing-vmware -dry-run
  gokcl import -app billing -stream orders -from vmware -source-table billing-vmware
`,
		flags: func(fs *flag.FlagSet, o *options) {
			tableFlags(fs, o)
			streamFlags(fs, o)
			fs.StringVar(&o.from, "from", "", "the library whose table to import: vmware (vmware-go-kcl-v2)")
			fs.StringVar(&o.source, "source-table", "", "the `table` to import from")
			fs.BoolVar(&o.dryRun, "dry-run", false, "print the mapping and write nothing")
			fs.BoolVar(&o.force, "force", false, "import although the source application still holds leases")
			awsFlags(fs, o, true, true)
			outputFlag(fs, o)
		},
		run: runImport,
	}
}

// importItem is one shard's import.
type importItem struct {
	Shard            string   `json:"shard"`
	SourceCheckpoint string   `json:"source_checkpoint,omitempty"`
	SourceOwner      string   `json:"source_owner,omitempty"`
	Checkpoint       string   `json:"checkpoint,omitempty"`
	Parents          []string `json:"parents"`
	Children         []string `json:"children,omitempty"`
	Result           string   `json:"result"`
	Reason           string   `json:"reason,omitempty"`

	lease lease.Lease
}

// importReport is what import prints.
type importReport struct {
	Source      string       `json:"source_table"`
	Table       string       `json:"table"`
	Stream      string       `json:"stream"`
	DryRun      bool         `json:"dry_run"`
	CreateTable bool         `json:"create_table"`
	Items       []importItem `json:"shards"`
}

func runImport(ctx context.Context, e *env, o *options) error {
	switch {
	case o.from != "vmware":
		return usagef("-from %q: the only source is vmware (vmware-go-kcl-v2)", o.from)
	case o.source == "":
		return usagef("name the vmware-go-kcl table with -source-table")
	case o.source == o.table:
		return usagef("the gokcl lease table is the source table %q: choose another -app or -table", o.source)
	}
	c, err := connect(ctx, e, o)
	if err != nil {
		return err
	}
	r, err := planImportFrom(ctx, c, o)
	if err != nil {
		return err
	}
	if n := countResult(r.Items, resultRefused); n > 0 {
		for i := range r.Items {
			if r.Items[i].Result == "" {
				r.Items[i].Result = resultUnwritten
			}
		}
		if err := r.write(e.stdout, o.output); err != nil {
			return err
		}
		return fmt.Errorf("refused %s; nothing written", plural(n, "row", "rows"))
	}
	if !o.dryRun {
		store, err := c.leaseStore(o)
		if err != nil {
			return err
		}
		if err := applyImport(ctx, r, store); err != nil {
			return explain(err, c.tableLabel(o))
		}
	}
	if err := r.write(e.stdout, o.output); err != nil {
		return err
	}
	if n := countResult(r.Items, resultFailed); n > 0 {
		return fmt.Errorf("%s not imported", plural(n, "shard", "shards"))
	}
	return nil
}

// planImportFrom reads the source table, the stream and the gokcl table,
// and plans the import.
func planImportFrom(ctx context.Context, c *clients, o *options) (*importReport, error) {
	rows, err := readVmwareTable(ctx, c.dynamo, o.source)
	if errors.Is(err, errNotVmwareTable) {
		return nil, err
	}
	if err != nil {
		return nil, explain(err, fmt.Sprintf("source table %q (region %s)", o.source, c.region))
	}
	if held := heldRows(rows, time.Now()); len(held) > 0 && !o.force {
		return nil, fmt.Errorf("the vmware-go-kcl application still holds %s: stop it first (or wait until its leases expire), or -force",
			strings.Join(held, ", "))
	}
	shards, err := listShards(ctx, c.kinesis, o.streamRef())
	if err != nil {
		return nil, explain(err, c.streamLabel(o))
	}
	store, err := c.leaseStore(o)
	if err != nil {
		return nil, err
	}
	r := &importReport{Source: o.source, Table: o.table, Stream: o.streamLabel(), DryRun: o.dryRun}
	existing, err := store.List(ctx)
	switch {
	case isNotFound(err):
		r.CreateTable = true
	case err != nil:
		return nil, explain(err, c.tableLabel(o))
	}
	if err := checkSingleStream(existing, c.tableLabel(o)); err != nil {
		return nil, err
	}
	r.Items, err = planImport(ctx, c.kinesis, o.streamRef(), rows, shards, existing)
	if err != nil {
		return nil, explain(err, c.streamLabel(o))
	}
	return r, nil
}

// heldRows lists the rows a vmware-go-kcl worker may still hold.
func heldRows(rows []vmwareRow, now time.Time) []string {
	var held []string
	for _, r := range rows {
		if r.held(now) {
			held = append(held, fmt.Sprintf("%s (%s until %s)", r.shardID, r.assignedTo, r.leaseTimeout))
		}
	}
	return held
}

// planImport maps every row, checks the checkpoints against the stream
// (eight shards at a time), and marks what the gokcl table already has.
// Only failures to talk to Kinesis are returned; a row that cannot be
// mapped is refused in its item.
func planImport(ctx context.Context, k shardReader, s streamRef, rows []vmwareRow, shards []shardInfo, existing []lease.Lease) ([]importItem, error) {
	items := make([]importItem, len(rows))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(lagParallelism)
	for i, row := range rows {
		g.Go(func() error {
			var err error
			items[i], err = mapRow(gctx, k, s, row, shards) // each goroutine writes its own item only
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	have := byKey(existing)
	source := map[string]bool{}
	for i := range items {
		it := &items[i]
		source[it.Shard] = true
		if l, ok := have[it.Shard]; ok && it.Result == "" {
			if l.Malformed == nil && l.Checkpoint == it.lease.Checkpoint {
				it.Result, it.Reason = resultSkipped, "already imported: the gokcl lease has this checkpoint"
			} else {
				it.Result, it.Reason = resultRefused, fmt.Sprintf("the gokcl table already has a lease for this shard, at %s (owner %q): not overwritten",
					checkpointText(l), l.Owner)
			}
		}
	}
	for _, sh := range shards {
		if !source[sh.id] {
			items = append(items, importItem{Shard: sh.id, Parents: nonNil(sh.parents), Result: resultSkipped,
				Reason: "no row in the source table: gokcl creates this lease when it starts"})
		}
	}
	slices.SortFunc(items, func(a, b importItem) int { return strings.Compare(a.Shard, b.Shard) })
	return items, nil
}

// mapRow maps one row to a gokcl lease, or says why not.
func mapRow(ctx context.Context, k shardReader, s streamRef, row vmwareRow, shards []shardInfo) (importItem, error) {
	it := importItem{Shard: row.shardID, SourceCheckpoint: row.checkpoint, SourceOwner: row.assignedTo, Parents: []string{}}
	refuse := func(format string, args ...any) (importItem, error) {
		it.Result, it.Reason = resultRefused, fmt.Sprintf(format, args...)
		return it, nil
	}
	if row.problem != "" {
		return refuse("the row cannot be read: %s", row.problem)
	}
	if !validShardID(row.shardID) {
		return refuse("%s %q is not a shard id", vmShardID, row.shardID)
	}
	sh, inStream := findShard(shards, row.shardID)
	l := lease.Lease{Key: row.shardID, StartingHashKey: sh.startKey, EndingHashKey: sh.endKey, ParentShardIDs: sh.parents}
	if !inStream && row.parent != "" {
		l.ParentShardIDs = []string{row.parent}
	}
	it.Parents = nonNil(l.ParentShardIDs)
	switch {
	case row.checkpoint == "":
		it.Result, it.Reason = resultSkipped, "no checkpoint: not imported, so gokcl creates this lease itself "+
			"(at its InitialPosition, or TRIM_HORIZON as the child of a finished shard)"
		return it, nil
	case row.checkpoint == vmShardEnd:
		l.Checkpoint = checkpoint.ShardEnd
		l.ChildShardIDs = children(shards, row.shardID)
		it.Children = l.ChildShardIDs
	case checkpoint.At(row.checkpoint, 0).Validate() != nil || checkpoint.At(row.checkpoint, 0).IsSentinel():
		return refuse("checkpoint %q is neither a sequence number nor %s", row.checkpoint, vmShardEnd)
	case !inStream:
		return refuse("the shard is not in the stream (another stream's table, or retention removed it): " +
			"the checkpoint cannot be checked; delete the row from the source table if the shard is gone")
	default:
		pos, note, err := afterCheckpoint(ctx, k, s, row.shardID, row.checkpoint)
		if errors.Is(err, errNotInShard) {
			return refuse("%v: is the source table this stream's?", err)
		}
		if err != nil {
			return it, fmt.Errorf("shard %s: %w", row.shardID, err)
		}
		l.Checkpoint, it.Reason = pos, note
	}
	it.lease, it.Checkpoint = l, l.Checkpoint.String()
	if err := l.Validate(); err != nil {
		return refuse("%v", err)
	}
	return it, nil
}

// afterCheckpoint returns the gokcl checkpoint after the record seq of the
// shard, where vmware-go-kcl resumes (AFTER_SEQUENCE_NUMBER): past every
// user record of a KPL aggregate. It reads the record to know whether it is
// one; a record no longer in the stream has no user records left to skip.
func afterCheckpoint(ctx context.Context, k shardReader, s streamRef, shard, seq string) (checkpoint.Position, string, error) {
	pos := checkpoint.At(seq, 0)
	it, err := iterator(ctx, k, s, shard, types.ShardIteratorTypeAtSequenceNumber, seq, timeZero)
	if isBadSequence(err) {
		return pos, "", fmt.Errorf("sequence number %s: %w", seq, errNotInShard)
	}
	if err != nil {
		return pos, "", err
	}
	r, err := firstRecord(ctx, k, it)
	if err != nil {
		return pos, "", err
	}
	if r == nil || aws.ToString(r.SequenceNumber) != seq {
		return pos, "the record is no longer in the stream (retention): nothing of it is left to skip", nil
	}
	after := afterRecord(*r)
	if after.SubSequenceNumber > 0 {
		return after, fmt.Sprintf("a KPL aggregate of %d user records: resumes after all of them, as vmware-go-kcl does", after.SubSequenceNumber+1), nil
	}
	return after, "", nil
}

// applyImport creates the table if needed (and checks its key schema) and
// the leases.
func applyImport(ctx context.Context, r *importReport, store *lease.DynamoStore) error {
	if err := store.EnsureTable(ctx, lease.TableOptions{}); err != nil {
		return err
	}
	for i := range r.Items {
		it := &r.Items[i]
		if it.Result != "" {
			continue
		}
		if err := store.Create(ctx, it.lease); err != nil {
			it.Result, it.Reason = resultFailed, err.Error()
			continue
		}
		it.Result = resultDone
	}
	return nil
}

func countResult(items []importItem, result string) int {
	n := 0
	for _, it := range items {
		if it.Result == result {
			n++
		}
	}
	return n
}

func (r *importReport) write(w io.Writer, format string) error {
	for i := range r.Items {
		if r.Items[i].Result == "" {
			r.Items[i].Result = resultWould
		}
	}
	if format == "json" {
		return writeJSON(w, r)
	}
	fmt.Fprintf(w, "Import from vmware-go-kcl-v2 table %s into lease table %s, %s%s\n\n", r.Source, r.Table, r.Stream, dryRunNote(r.DryRun))
	var rows [][]string
	var notes []string
	for _, it := range r.Items {
		rows = append(rows, []string{it.Shard, it.SourceCheckpoint, it.SourceOwner, it.Checkpoint, strings.Join(it.Parents, ","), it.Result})
		if it.Reason != "" {
			notes = append(notes, it.Shard+": "+it.Reason)
		}
	}
	if err := writeTable(w, []string{"SHARD", "SOURCE CHECKPOINT", "SOURCE OWNER", "GOKCL CHECKPOINT", "PARENTS", "RESULT"}, rows); err != nil {
		return err
	}
	if r.CreateTable {
		verb := "is"
		if r.DryRun {
			verb = "would be"
		}
		notes = append(notes, fmt.Sprintf("lease table %s does not exist: it %s created (on-demand capacity)", r.Table, verb))
	}
	if len(notes) > 0 {
		fmt.Fprintf(w, "\nNotes:\n  %s\n", strings.Join(notes, "\n  "))
	}
	return nil
}
