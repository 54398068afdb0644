package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/moxxie/moxxie/client"
)

// printJSON writes v as indented JSON.
func printJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// newTable returns a tabwriter for tab-separated rows; Flush it.
func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
}

// row writes cells as one tab-separated table row, each made safe by cell
// (a cell that is already is left as it is).
func row(w io.Writer, cells ...string) {
	safe := make([]string, len(cells))
	for i, c := range cells {
		safe[i] = cell(c)
	}
	fmt.Fprintln(w, strings.Join(safe, "\t"))
}

// cell makes a value safe for a table cell and a terminal: text with tabs,
// newlines, other control characters (C0 and C1, which can start terminal
// escape sequences), bidirectional overrides or anything else Go does not
// count as printable is quoted, with those characters escaped.
func cell(s string) string {
	for _, r := range s {
		if !strconv.IsPrint(r) {
			return strconv.Quote(s)
		}
	}
	return s
}

// formatTime formats a timestamp for tables, or dash when unset.
func formatTime(t client.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// orDash returns s, or a dash when it is empty.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// keyValues prints aligned "Key: value" lines.
func keyValues(w io.Writer, kv ...string) error {
	tw := newTable(w)
	for i := 0; i+1 < len(kv); i += 2 {
		row(tw, kv[i]+":", kv[i+1])
	}
	return tw.Flush()
}

func u64(n uint64) string { return strconv.FormatUint(n, 10) }

// printf writes to w and returns the write error, if any.
func printf(w io.Writer, format string, args ...any) error {
	_, err := fmt.Fprintf(w, format, args...)
	return err
}
