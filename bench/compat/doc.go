// Package compat holds tests and benchmarks that check deagg against KPL
// implementations gokcl did not write. It is its own module so that the
// library's go.mod never depends on them.
package compat
