package lease

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Defaults of TableOptions.
const (
	DefaultTableWait         = 5 * time.Minute
	DefaultTablePollInterval = time.Second
)

// TableOptions says how EnsureTable creates a missing lease table and how
// long it waits for it.
type TableOptions struct {
	// ReadCapacity and WriteCapacity, when set, create a provisioned table
	// with these capacity units; set both or neither. By default the table
	// is on-demand (PAY_PER_REQUEST), as recent KCL versions create it. They
	// do not change an existing table.
	ReadCapacity, WriteCapacity int64

	// Wait bounds the wait for the table to become ACTIVE; default
	// DefaultTableWait (5 minutes).
	Wait time.Duration

	// PollInterval is the time between two DescribeTable calls while
	// waiting; default DefaultTablePollInterval (1 s).
	PollInterval time.Duration
}

func (o TableOptions) validate() error {
	switch {
	case o.ReadCapacity < 0 || o.WriteCapacity < 0:
		return fmt.Errorf("negative capacity (read %d, write %d)", o.ReadCapacity, o.WriteCapacity)
	case (o.ReadCapacity == 0) != (o.WriteCapacity == 0):
		return fmt.Errorf("read capacity %d and write capacity %d: set both or neither", o.ReadCapacity, o.WriteCapacity)
	case o.Wait < 0 || o.PollInterval < 0:
		return fmt.Errorf("negative wait %v or poll interval %v", o.Wait, o.PollInterval)
	}
	return nil
}

func (o TableOptions) withDefaults() TableOptions {
	if o.Wait == 0 {
		o.Wait = DefaultTableWait
	}
	if o.PollInterval == 0 {
		o.PollInterval = DefaultTablePollInterval
	}
	return o
}

// EnsureTable creates the lease table if it does not exist and waits until
// it is ACTIVE (or UPDATING, which serves requests), at most opts.Wait and
// no longer than ctx allows. A table another worker is creating at the same
// time is waited for. A table with another key schema than the KCL's
// (leaseKey, a string, as the only key) is an error wrapping ErrTableSchema
// that names the table and the schema found.
func (s *DynamoStore) EnsureTable(ctx context.Context, opts TableOptions) error {
	if err := opts.validate(); err != nil {
		return fmt.Errorf("lease table %q: options: %w", s.table, err)
	}
	opts = opts.withDefaults()
	ctx, cancel := context.WithTimeout(ctx, opts.Wait)
	defer cancel()
	created := false
	for {
		table, err := s.describe(ctx)
		if err != nil {
			return err
		}
		if table == nil && !created {
			if err := s.create(ctx, opts); err != nil {
				return err
			}
			created = true
			continue
		}
		if table != nil {
			if done, err := s.checkTable(table); done || err != nil {
				return err
			}
		}
		if err := pollSleep(ctx, opts.PollInterval); err != nil {
			return fmt.Errorf("lease table %q: not ACTIVE after waiting up to %v (status %s): %w",
				s.table, opts.Wait, describedStatus(table), err)
		}
	}
}

// describe returns the table's description, or nil if it does not exist.
func (s *DynamoStore) describe(ctx context.Context) (*types.TableDescription, error) {
	out, err := s.client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(s.table)})
	if rnf := (*types.ResourceNotFoundException)(nil); errors.As(err, &rnf) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("describe lease table %q: %w", s.table, err)
	}
	return out.Table, nil
}

// create creates the table; a table that already exists (another worker
// created it first) is not an error: the caller waits for it.
func (s *DynamoStore) create(ctx context.Context, opts TableOptions) error {
	in := &dynamodb.CreateTableInput{
		TableName: aws.String(s.table),
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String(attrKey), AttributeType: types.ScalarAttributeTypeS},
		},
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String(attrKey), KeyType: types.KeyTypeHash},
		},
		BillingMode: types.BillingModePayPerRequest,
	}
	if opts.ReadCapacity > 0 {
		in.BillingMode = types.BillingModeProvisioned
		in.ProvisionedThroughput = &types.ProvisionedThroughput{
			ReadCapacityUnits:  aws.Int64(opts.ReadCapacity),
			WriteCapacityUnits: aws.Int64(opts.WriteCapacity),
		}
	}
	_, err := s.client.CreateTable(ctx, in)
	if riu := (*types.ResourceInUseException)(nil); errors.As(err, &riu) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("create lease table %q: %w", s.table, err)
	}
	return nil
}

// checkTable reports whether the table is ready, or an error if its schema
// is wrong or it will never be ready.
func (s *DynamoStore) checkTable(t *types.TableDescription) (ready bool, err error) {
	if found, ok := keySchemaOK(t); !ok {
		return false, fmt.Errorf("%w: lease table %q has key schema %s; want [%s HASH (S)]", ErrTableSchema, s.table, found, attrKey)
	}
	switch t.TableStatus {
	case types.TableStatusActive, types.TableStatusUpdating:
		return true, nil
	case types.TableStatusCreating, types.TableStatusDeleting:
		return false, nil // a deleted table is created again once gone
	}
	return false, fmt.Errorf("lease table %q: status %s", s.table, t.TableStatus)
}

// keySchemaOK reports whether t's key is leaseKey (S) alone, and formats the
// schema found, e.g. "[id HASH (S), ts RANGE (N)]".
func keySchemaOK(t *types.TableDescription) (found string, ok bool) {
	attrTypes := map[string]types.ScalarAttributeType{}
	for _, d := range t.AttributeDefinitions {
		attrTypes[aws.ToString(d.AttributeName)] = d.AttributeType
	}
	parts := make([]string, len(t.KeySchema))
	for i, k := range t.KeySchema {
		name := aws.ToString(k.AttributeName)
		parts[i] = fmt.Sprintf("%s %s (%s)", name, k.KeyType, attrTypes[name])
	}
	ok = len(t.KeySchema) == 1 && aws.ToString(t.KeySchema[0].AttributeName) == attrKey &&
		t.KeySchema[0].KeyType == types.KeyTypeHash && attrTypes[attrKey] == types.ScalarAttributeTypeS
	return "[" + strings.Join(parts, ", ") + "]", ok
}

func describedStatus(t *types.TableDescription) string {
	if t == nil {
		return "not found"
	}
	return string(t.TableStatus)
}

// pollSleep waits for d or until ctx is done, and then returns ctx's error.
func pollSleep(ctx context.Context, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
