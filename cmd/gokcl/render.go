package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// writeTable writes rows under a header, in columns two spaces apart; an
// empty cell is shown as "-".
func writeTable(w io.Writer, header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		cells := make([]string, len(r))
		for i, c := range r {
			if c == "" {
				c = "-"
			}
			cells[i] = c
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	return tw.Flush()
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// resultUnwritten marks what a refused command would have written.
const resultUnwritten = "not written"

// millis is a duration in JSON: whole milliseconds.
func millis(d time.Duration) int64 { return d.Milliseconds() }

// formatAge formats how long ago something was seen: "1.2s ago".
func formatAge(d time.Duration) string {
	return formatMillis(max(d.Milliseconds(), 0)) + " ago"
}

func plural(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}

func dryRunNote(dryRun bool) string {
	if dryRun {
		return " (dry run: nothing written)"
	}
	return ""
}
