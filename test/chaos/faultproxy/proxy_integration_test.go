//go:build integration

package faultproxy

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/stretchr/testify/require"

	"github.com/gokcl/kcl/checkpoint"
	"github.com/gokcl/kcl/internal/testenv"
	"github.com/gokcl/kcl/lease"
)

// Against the real DynamoDB test server: a renewal whose answer is lost is
// retried by the SDK and refused, since the first attempt moved the counter.
// dynalite's refusal lacks the item that DynamoDB returns; with
// ConditionItems the lease store sees it, as the lease manager's recovery
// from a lost answer needs.
func TestIntegrationConditionItemsOnDynalite(t *testing.T) {
	_, dynamoURL := testenv.Endpoints(t)
	direct := testenv.DynamoDB(t)
	table := testenv.Name(t)
	ctx := testenv.Context(t, time.Minute)
	store, err := lease.NewDynamoStore(direct, table)
	require.NoError(t, err)
	require.NoError(t, store.EnsureTable(ctx, lease.TableOptions{PollInterval: 100 * time.Millisecond}))
	t.Cleanup(func() {
		_, _ = direct.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(table)})
	})
	require.NoError(t, store.Create(ctx, lease.Lease{Key: "shard-0", Checkpoint: checkpoint.TrimHorizon}))
	held, err := store.Take(ctx, lease.Lease{Key: "shard-0", Checkpoint: checkpoint.TrimHorizon}, "w1")
	require.NoError(t, err)

	for _, emulate := range []bool{false, true} {
		p, err := New(dynamoURL, Options{ConditionItems: emulate, Plan: Plan{"DynamoDB_20120810.UpdateItem": {Lost500: 1}}})
		require.NoError(t, err)
		proxied, err := lease.NewDynamoStore(testenv.DynamoDB(t, func(o *dynamodb.Options) {
			o.BaseEndpoint = aws.String(p.URL())
			o.Retryer = retryer(1)
		}), table)
		require.NoError(t, err)

		// The renewal lands and loses its answer; sent again, as the SDK's
		// retry would, it is refused: the counter has moved.
		_, err = proxied.Renew(ctx, held)
		require.Error(t, err)
		require.NoError(t, p.SetPlan(nil))
		_, err = proxied.Renew(ctx, held)
		var refused *lease.RefusedError
		require.True(t, errors.As(err, &refused), "%v", err)
		if !emulate {
			require.Nil(t, refused.Found, "dynalite returns no item with the refusal")
		} else {
			require.NotNil(t, refused.Found, "the item, as DynamoDB returns it")
			require.Equal(t, "w1", refused.Found.Owner)
			require.Equal(t, held.Counter+1, refused.Found.Counter, "one write further: the lost one")
		}
		held.Counter++
		require.NoError(t, p.Close())
	}
}
