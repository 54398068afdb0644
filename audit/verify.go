package audit

import (
	"errors"
	"fmt"
	"slices"
	"sort"
)

// Kind says how a log was tampered with.
type Kind string

// Kinds of tampering Verify tells apart.
const (
	// KindModified: an entry's content no longer matches its hash, or the
	// chain no longer reaches a checkpoint's hash.
	KindModified Kind = "modified"
	// KindDeleted: an entry is missing.
	KindDeleted Kind = "deleted"
	// KindInserted: an entry that is not part of the chain was added.
	KindInserted Kind = "inserted"
	// KindReordered: an entry appears before its predecessor.
	KindReordered Kind = "reordered"
	// KindCheckpoint: a checkpoint's signature does not verify or its key
	// is not trusted.
	KindCheckpoint Kind = "checkpoint"
)

// ErrTampered is wrapped by every *TamperError.
var ErrTampered = errors.New("audit log tampered")

// TamperError names the first bad entry of a log.
type TamperError struct {
	Kind Kind
	// Seq is the sequence number of the first bad entry (of the first
	// missing one for KindDeleted).
	Seq uint64
	// Line is the 1-based position of the bad entry among the entries
	// verified, or its file line when Options.Lines gives them; 0 when
	// the entry is missing.
	Line int
	// Detail says what was found.
	Detail string
	// Err is the underlying error of a KindCheckpoint failure.
	Err error
}

// Error describes the tampering.
func (e *TamperError) Error() string {
	s := fmt.Sprintf("audit log tampered: entry %d %s", e.Seq, e.Kind)
	if e.Kind == KindCheckpoint {
		s = fmt.Sprintf("audit log tampered: checkpoint %d", e.Seq)
	}
	if e.Line > 0 {
		s += fmt.Sprintf(" (line %d)", e.Line)
	}
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// Is reports ErrTampered.
func (e *TamperError) Is(target error) bool { return target == ErrTampered }

// Unwrap returns the underlying checkpoint error, if any.
func (e *TamperError) Unwrap() error { return e.Err }

// Options tune Verify.
type Options struct {
	// Trusted, when not nil, is the set of keys checkpoints must be
	// signed by. Without it a checkpoint only needs a valid signature by
	// the key it names, which proves nothing against someone who holds
	// the log (Report.Trusted is false then).
	Trusted Keys
	// Unanchored accepts a log whose first entry follows neither the
	// genesis nor a checkpoint (a partial export): its Prev is taken on
	// trust.
	Unanchored bool
	// Lines, when set, holds the file line of each entry (see
	// ReadExportLines), which errors then name.
	Lines []int
}

// Report describes a log that verified.
type Report struct {
	Entries int    `json:"entries"`
	First   uint64 `json:"first_seq"`
	Last    uint64 `json:"last_seq"`
	Head    Head   `json:"head"`
	// Anchor is where the chain starts: "genesis", "checkpoint N" or
	// "unanchored".
	Anchor string `json:"anchor"`
	// Checkpoints counts the checkpoints whose signature verified and
	// whose hash the chain reaches; Covered is the highest of their Seq.
	Checkpoints int    `json:"checkpoints"`
	Covered     uint64 `json:"covered_seq"`
	// Trusted is true when checkpoints were checked against trusted keys.
	Trusted bool     `json:"trusted"`
	KeyIDs  []string `json:"key_ids,omitempty"`
}

// Verify checks a log: entries in the order given (as stored or
// exported) and the checkpoints of the chain. It returns a *TamperError
// naming the first bad entry, or a report.
//
// The chain starts at the newest checkpoint before the first entry (kept
// by retention), or at the genesis. Entries after the newest checkpoint
// are protected by the chain only: someone who rewrites every hash from
// an entry to the end is caught by the first checkpoint after that entry,
// or by comparing the head with the cluster's.
func Verify(entries []Entry, cps []Checkpoint, opt Options) (*Report, error) {
	cps = slices.Clone(cps)
	sort.SliceStable(cps, func(i, j int) bool { return cps[i].Seq < cps[j].Seq })
	rep := &Report{Entries: len(entries), Trusted: opt.Trusted != nil}
	keys := map[string]bool{}
	for i := range cps {
		if err := cps[i].CheckSignature(opt.Trusted); err != nil {
			return nil, &TamperError{Kind: KindCheckpoint, Seq: cps[i].Seq, Detail: err.Error(), Err: err}
		}
		if !keys[cps[i].KeyID] {
			keys[cps[i].KeyID] = true
			rep.KeyIDs = append(rep.KeyIDs, cps[i].KeyID)
		}
	}
	if len(entries) == 0 {
		if n := len(cps); n > 0 {
			rep.Head = Head{Seq: cps[n-1].Seq, Hash: cps[n-1].Hash}
			rep.Anchor = fmt.Sprintf("checkpoint %d", cps[n-1].Seq)
		} else {
			rep.Head, rep.Anchor = Head{Hash: ZeroHash}, "genesis"
		}
		return rep, nil
	}

	first := &entries[0]
	expSeq, expPrev := uint64(1), ZeroHash
	rep.Anchor = "genesis"
	for i := len(cps) - 1; i >= 0; i-- {
		if cps[i].Seq < first.Seq {
			expSeq, expPrev = cps[i].Seq+1, cps[i].Hash
			rep.Anchor = fmt.Sprintf("checkpoint %d", cps[i].Seq)
			break
		}
	}
	if opt.Unanchored && (first.Seq != expSeq || first.Prev != expPrev) {
		expSeq, expPrev = first.Seq, first.Prev
		rep.Anchor = "unanchored"
	}

	// Where each hash appears: what a broken link points at.
	hashPos := make(map[string]int, len(entries))
	for i := range entries {
		if _, dup := hashPos[entries[i].Hash]; !dup {
			hashPos[entries[i].Hash] = i
		}
	}
	referenced := func(i int, hash string) bool {
		for j := i + 1; j < len(entries); j++ {
			if entries[j].Prev == hash {
				return true
			}
		}
		for _, c := range cps {
			if c.Hash == hash {
				return true
			}
		}
		return false
	}
	// ln returns the line of entries[i] for messages.
	ln := func(i int) int {
		if len(opt.Lines) == len(entries) {
			return opt.Lines[i]
		}
		return i + 1
	}
	hashAt := make(map[uint64]string, len(entries))
	for i := range entries {
		e := &entries[i]
		selfOK := e.ComputeHash() == e.Hash
		if selfOK && e.Prev == expPrev && e.Seq == expSeq {
			hashAt[e.Seq] = e.Hash
			expSeq, expPrev = expSeq+1, e.Hash
			continue
		}
		line := ln(i)
		switch p, known := hashPos[e.Prev]; {
		case e.Prev == expPrev:
			return nil, &TamperError{Kind: KindModified, Seq: expSeq, Line: line, Detail: "its content does not match its hash"}
		case i > 0 && e.Prev == entries[i-1].Prev:
			// Two entries claim the same predecessor: one is not part of
			// the chain. The genuine one is linked to by what follows.
			if referenced(i, e.Hash) {
				return nil, &TamperError{Kind: KindInserted, Seq: entries[i-1].Seq, Line: ln(i - 1), Detail: "no entry or checkpoint follows it"}
			}
			return nil, &TamperError{Kind: KindInserted, Seq: e.Seq, Line: line, Detail: "entry " + fmt.Sprint(entries[i-1].Seq) + " already follows the same predecessor"}
		case known && p > i && i+1 < len(entries) && entries[i+1].Prev == expPrev:
			// It was moved up: what follows it continues the chain.
			return nil, &TamperError{Kind: KindReordered, Seq: e.Seq, Line: line, Detail: fmt.Sprintf("it belongs after line %d", ln(p))}
		case known && p > i:
			return nil, &TamperError{Kind: KindReordered, Seq: entries[p].Seq, Line: ln(p),
				Detail: fmt.Sprintf("it belongs before line %d (entry %d)", line, e.Seq)}
		case known && e.Seq < expSeq:
			return nil, &TamperError{Kind: KindInserted, Seq: e.Seq, Line: line, Detail: fmt.Sprintf("entry %d is already at line %d", e.Seq, ln(p+1))}
		case known:
			return nil, &TamperError{Kind: KindReordered, Seq: e.Seq, Line: line, Detail: fmt.Sprintf("its predecessor is at line %d, not line %d", ln(p), ln(i-1))}
		case selfOK && e.Seq > expSeq:
			return nil, &TamperError{Kind: KindDeleted, Seq: expSeq, Detail: fmt.Sprintf("entries %d-%d are missing before line %d", expSeq, e.Seq-1, line)}
		case !selfOK:
			return nil, &TamperError{Kind: KindModified, Seq: expSeq, Line: line, Detail: "its content does not match its hash"}
		case e.Seq == expSeq && i > 0:
			// A valid entry in its place whose predecessor's hash is not
			// the one it records: the predecessor was rewritten.
			return nil, &TamperError{Kind: KindModified, Seq: entries[i-1].Seq, Line: ln(i - 1), Detail: fmt.Sprintf("its hash is not the one entry %d records", e.Seq)}
		case e.Seq == expSeq:
			return nil, &TamperError{Kind: KindModified, Seq: e.Seq, Line: line, Detail: "it does not follow " + rep.Anchor}
		default:
			return nil, &TamperError{Kind: KindInserted, Seq: e.Seq, Line: line, Detail: "it does not follow the entry before it"}
		}
	}
	last := &entries[len(entries)-1]
	rep.First, rep.Last = first.Seq, last.Seq
	rep.Head = Head{Seq: last.Seq, Hash: last.Hash}
	good := first.Seq
	for _, c := range cps {
		if c.Seq < first.Seq {
			continue
		}
		if c.Seq > last.Seq {
			return nil, &TamperError{Kind: KindDeleted, Seq: last.Seq + 1, Detail: fmt.Sprintf("checkpoint %d signs a longer log than the %d entries given", c.Seq, last.Seq)}
		}
		if hashAt[c.Seq] != c.Hash {
			return nil, &TamperError{Kind: KindModified, Seq: good, Line: ln(int(good - first.Seq)),
				Detail: fmt.Sprintf("the chain does not reach the hash of checkpoint %d: entries %d-%d were rewritten", c.Seq, good, c.Seq)}
		}
		good = c.Seq + 1
		rep.Checkpoints++
		rep.Covered = c.Seq
	}
	return rep, nil
}
