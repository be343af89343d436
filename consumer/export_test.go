package consumer

// BufferedBytes returns the bytes of fetched records not yet processed, for
// the tests of package consumer_test.
func (c *Consumer) BufferedBytes() int64 { return c.budget.inUse.Load() }

// RecordSize is the memory the budget counts for a Record besides its
// payload.
const RecordSize = recordSize
