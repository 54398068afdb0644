package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// The export format is JSON lines: one entry per line, as a SIEM ingests
// it, with each checkpoint on a line of its own, {"checkpoint": {...}},
// after the entry it signs (checkpoints before the first entry come
// first). ReadExport reads it back for offline verification.

// maxLine bounds one line of an export.
const maxLine = 1 << 20

// line is one line of an export: an entry or a checkpoint.
type line struct {
	*Entry
	Checkpoint *Checkpoint `json:"checkpoint,omitempty"`
}

// ExportWriter writes an export: entries in order, each checkpoint after
// the entry it signs.
type ExportWriter struct {
	w   *bufio.Writer
	cps []Checkpoint // not yet written, ascending
}

// NewExportWriter returns a writer of the entries that follow; cps are
// all the checkpoints to include, in ascending Seq.
func NewExportWriter(w io.Writer, cps []Checkpoint) *ExportWriter {
	return &ExportWriter{w: bufio.NewWriter(w), cps: cps}
}

func (x *ExportWriter) writeLine(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	_, err = x.w.Write(b)
	return err
}

// flushCheckpoints writes the pending checkpoints up to seq.
func (x *ExportWriter) flushCheckpoints(seq uint64) error {
	for len(x.cps) > 0 && x.cps[0].Seq <= seq {
		if err := x.writeLine(line{Checkpoint: &x.cps[0]}); err != nil {
			return err
		}
		x.cps = x.cps[1:]
	}
	return nil
}

// Write writes one entry, after the checkpoints before it.
func (x *ExportWriter) Write(e *Entry) error {
	if err := x.flushCheckpoints(e.Seq - 1); err != nil {
		return err
	}
	if err := x.writeLine(e); err != nil {
		return err
	}
	return x.flushCheckpoints(e.Seq)
}

// Close writes the remaining checkpoints and flushes.
func (x *ExportWriter) Close() error {
	if err := x.flushCheckpoints(^uint64(0)); err != nil {
		return err
	}
	return x.w.Flush()
}

// ErrBadExport means an export file could not be parsed.
var ErrBadExport = errors.New("bad audit export")

// ReadExport reads an export written by ExportWriter: the entries in
// file order and the checkpoints.
func ReadExport(r io.Reader) ([]Entry, []Checkpoint, error) {
	es, cps, _, err := ReadExportLines(r)
	return es, cps, err
}

// ReadExportLines is ReadExport that also returns the file line of each
// entry, for Options.Lines.
func ReadExportLines(r io.Reader) ([]Entry, []Checkpoint, []int, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	var entries []Entry
	var cps []Checkpoint
	var lines []int
	n := 0
	for sc.Scan() {
		n++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		var e Entry
		l := line{Entry: &e}
		if err := json.Unmarshal(b, &l); err != nil {
			return nil, nil, nil, fmt.Errorf("%w: line %d: %v", ErrBadExport, n, err)
		}
		if l.Checkpoint != nil {
			cps = append(cps, *l.Checkpoint)
			continue
		}
		if e.Action == "" && e.Hash == "" {
			return nil, nil, nil, fmt.Errorf("%w: line %d is neither an entry nor a checkpoint", ErrBadExport, n)
		}
		entries = append(entries, e)
		lines = append(lines, n)
	}
	if err := sc.Err(); err != nil {
		return nil, nil, nil, fmt.Errorf("%w: %v", ErrBadExport, err)
	}
	return entries, cps, lines, nil
}
