package api

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/moxxie/moxxie/fsm"
)

// RestoreResponse is the body of a successful PUT /v1/snapshot.
type RestoreResponse struct {
	RestoredIndex uint64 `json:"restored_index"`
}

// handleSnapshotSave sends a backup archive. The archive is spooled to a
// temporary file first: its index and checksum go in the headers, which
// precede the body, and a failure midway can still be answered with a JSON
// error instead of a truncated file.
func (s *server) handleSnapshotSave(c *call) error {
	f, err := os.CreateTemp(s.opts.TempDir, "moxxie-snapshot-*")
	if err != nil {
		return internal(fmt.Errorf("snapshot spool file: %w", err))
	}
	defer os.Remove(f.Name())
	defer f.Close()

	sum := sha256.New()
	meta, err := s.b.SnapshotSave(c.r.Context(), io.MultiWriter(f, sum))
	if err != nil {
		return err
	}
	size, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		return internal(err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return internal(err)
	}
	h := c.w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Length", strconv.FormatInt(size, 10))
	h.Set("Content-Disposition", fmt.Sprintf("attachment; filename=\"moxxie-%d.snap\"", meta.Index))
	h.Set(headerSnapshotSHA256, hex.EncodeToString(sum.Sum(nil)))
	c.setIndex(meta.Index)
	c.w.WriteHeader(http.StatusOK)
	if _, err := io.Copy(c.w, f); err != nil {
		s.log.WarnContext(c.r.Context(), "sending snapshot failed", "error", err)
	}
	return nil
}

// handleSnapshotRestore verifies an uploaded archive completely and only
// then asks the backend to restore it; a damaged archive changes nothing.
func (s *server) handleSnapshotRestore(c *call) error {
	meta := fsm.WriteMeta{Actor: c.actor(), RequestID: c.w.reqID, Audit: auditInfo(c)}
	a, err := s.b.SnapshotRestore(c.r.Context(), meta, func() (*fsm.Archive, error) {
		// Read here, not before: the upload runs under the restore's write
		// fence, so that no write is acknowledged while it lasts and then
		// lost to it, and a second restore meanwhile is refused. An upload
		// that stalls is abandoned, and with it the fence.
		rc := http.NewResponseController(c.w.ResponseWriter)
		c.r.Body = &idleBody{ReadCloser: c.r.Body, rc: rc, idle: s.opts.SnapshotUploadIdle}
		defer func() { _ = rc.SetReadDeadline(time.Time{}) }()
		body, err := s.readBody(c)
		if err != nil {
			return nil, err
		}
		return fsm.ReadArchive(bytes.NewReader(body), s.opts.MaxSnapshotBytes)
	})
	if err != nil {
		return err
	}
	c.audited = true // by the restore's first entry
	writeJSON(c.w, http.StatusOK, RestoreResponse{RestoredIndex: a.Meta.Index})
	return nil
}

// idleBody is a request body whose every read must get data within idle:
// it moves the connection's read deadline on before each read.
type idleBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	idle time.Duration
}

func (b *idleBody) Read(p []byte) (int, error) {
	_ = b.rc.SetReadDeadline(time.Now().Add(b.idle)) // not every writer can; then only the server's read timeout applies
	n, err := b.ReadCloser.Read(p)
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		err = fmt.Errorf("the upload sent nothing for %s: %w", b.idle, err)
	}
	return n, err
}
