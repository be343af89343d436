// Package deagg reads and writes the Kinesis Producer Library's aggregated
// record format, which packs many user records into one Kinesis record.
package deagg
