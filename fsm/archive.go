package fsm

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// ArchiveVersion is the version of the backup file format written by
// WriteArchive.
const ArchiveVersion = 1

var archiveMagic = [8]byte{'M', 'O', 'X', 'X', 'S', 'N', 'A', 'P'}

// maxArchiveMeta bounds the metadata block of an archive.
const maxArchiveMeta = 1 << 20

// ArchiveMeta describes a backup: where in the log it was taken and what it
// holds.
type ArchiveMeta struct {
	Version      int    `json:"version"`
	FSMVersion   int    `json:"fsm_version"`
	Index        uint64 `json:"index"`
	Term         uint64 `json:"term"`
	CreatedAt    string `json:"created_at"`
	ServerID     string `json:"server_id"`
	Size         int64  `json:"size"`
	DataChecksum string `json:"data_sha256"`
}

// Archive is a parsed, verified backup file.
type Archive struct {
	Meta ArchiveMeta
	// Data is the FSM snapshot stream (see WriteSnapshot).
	Data []byte
	// Checksum is the SHA-256 of the whole file before the trailer.
	Checksum string
}

// WriteArchive writes a backup file: magic, version, a JSON metadata block,
// the FSM snapshot stream, and a SHA-256 trailer over everything before it.
func WriteArchive(w io.Writer, meta ArchiveMeta, data []byte) error {
	meta.Version = ArchiveVersion
	meta.FSMVersion = SnapshotVersion
	meta.Size = int64(len(data))
	sum := sha256.Sum256(data)
	meta.DataChecksum = hex.EncodeToString(sum[:])
	mj, err := json.Marshal(meta)
	if err != nil {
		return err
	}
	h := sha256.New()
	mw := io.MultiWriter(w, h)
	var hdr [12]byte
	copy(hdr[:8], archiveMagic[:])
	binary.BigEndian.PutUint32(hdr[8:], ArchiveVersion)
	var lens [12]byte
	binary.BigEndian.PutUint32(lens[:4], uint32(len(mj)))
	binary.BigEndian.PutUint64(lens[4:], uint64(len(data)))
	for _, b := range [][]byte{hdr[:], lens[:4], mj, lens[4:], data} {
		if _, err := mw.Write(b); err != nil {
			return err
		}
	}
	_, err = w.Write(h.Sum(nil))
	return err
}

// ReadArchive reads and verifies a whole backup file: structure, both
// checksums and every record of the FSM stream. Any damage is reported as
// ErrBadSnapshot with what was wrong; nothing is returned half-read.
func ReadArchive(r io.Reader, limit int64) (*Archive, error) {
	buf, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%w: read: %v", ErrBadSnapshot, err)
	}
	if int64(len(buf)) > limit {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrBadSnapshot, limit)
	}
	if len(buf) < 12+4+8+sha256.Size {
		return nil, fmt.Errorf("%w: truncated: %d bytes", ErrBadSnapshot, len(buf))
	}
	if [8]byte(buf[:8]) != archiveMagic {
		return nil, fmt.Errorf("%w: not a Moxxie snapshot file", ErrBadSnapshot)
	}
	if v := binary.BigEndian.Uint32(buf[8:12]); v == 0 || v > ArchiveVersion {
		return nil, fmt.Errorf("%w: file version %d, this build reads up to %d", ErrBadSnapshot, v, ArchiveVersion)
	}
	body, trailer := buf[:len(buf)-sha256.Size], buf[len(buf)-sha256.Size:]
	sum := sha256.Sum256(body)
	if !bytes.Equal(sum[:], trailer) {
		return nil, fmt.Errorf("%w: checksum mismatch (file truncated or corrupted)", ErrBadSnapshot)
	}
	p := body[12:]
	ml := binary.BigEndian.Uint32(p[:4])
	p = p[4:]
	if ml > maxArchiveMeta || uint64(len(p)) < uint64(ml)+8 {
		return nil, fmt.Errorf("%w: bad metadata length %d", ErrBadSnapshot, ml)
	}
	a := &Archive{Checksum: hex.EncodeToString(sum[:])}
	dec := json.NewDecoder(bytes.NewReader(p[:ml]))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&a.Meta); err != nil {
		return nil, fmt.Errorf("%w: metadata: %v", ErrBadSnapshot, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: metadata: trailing data", ErrBadSnapshot)
	}
	p = p[ml:]
	dl := binary.BigEndian.Uint64(p[:8])
	p = p[8:]
	if dl != uint64(len(p)) || int64(dl) != a.Meta.Size {
		return nil, fmt.Errorf("%w: data length %d does not match %d bytes present", ErrBadSnapshot, dl, len(p))
	}
	dsum := sha256.Sum256(p)
	if hex.EncodeToString(dsum[:]) != a.Meta.DataChecksum {
		return nil, fmt.Errorf("%w: data checksum mismatch", ErrBadSnapshot)
	}
	if _, _, err := readSnapshot(bytes.NewReader(p)); err != nil {
		return nil, err
	}
	a.Data = p
	return a, nil
}
