package fsm

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

var testArchiveMeta = ArchiveMeta{Index: 8, Term: 3, CreatedAt: "2026-01-02T03:04:05Z", ServerID: "n1"}

// archiveOf returns a backup file holding the snapshot stream data.
func archiveOf(t testing.TB, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteArchive(&buf, testArchiveMeta, data); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// craftArchive assembles a backup file from its parts with a correct
// trailer, so that damage to the parts reaches the checks behind the
// checksum.
func craftArchive(magic [8]byte, version uint32, meta []byte, dataLen uint64, data []byte) []byte {
	b := append([]byte(nil), magic[:]...)
	b = binary.BigEndian.AppendUint32(b, version)
	b = binary.BigEndian.AppendUint32(b, uint32(len(meta)))
	b = append(b, meta...)
	b = binary.BigEndian.AppendUint64(b, dataLen)
	b = append(b, data...)
	sum := sha256.Sum256(b)
	return append(b, sum[:]...)
}

// metaFor returns the JSON metadata WriteArchive would write for data.
func metaFor(t testing.TB, data []byte) ArchiveMeta {
	t.Helper()
	m := testArchiveMeta
	m.Version, m.FSMVersion, m.Size = ArchiveVersion, SnapshotVersion, int64(len(data))
	sum := sha256.Sum256(data)
	m.DataChecksum = hex.EncodeToString(sum[:])
	return m
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestArchive_RoundTrip(t *testing.T) {
	populated := New()
	populate(t, populated)
	generated := New()
	applyLog(generated, 1, genLog(t, 3, 300))
	for name, f := range map[string]*FSM{"empty": New(), "populated": populated, "generated": generated} {
		t.Run(name, func(t *testing.T) {
			data := dump(t, f)
			meta := testArchiveMeta
			// WriteArchive fills in what it computes itself.
			meta.Version, meta.FSMVersion, meta.Size, meta.DataChecksum = 99, 99, -1, "bogus"
			var buf bytes.Buffer
			if err := WriteArchive(&buf, meta, data); err != nil {
				t.Fatal(err)
			}
			file := buf.Bytes()

			a, err := ReadArchive(bytes.NewReader(file), int64(len(file)))
			if err != nil {
				t.Fatalf("ReadArchive: %v", err)
			}
			if want := metaFor(t, data); a.Meta != want {
				t.Fatalf("meta = %+v, want %+v", a.Meta, want)
			}
			if !bytes.Equal(a.Data, data) {
				t.Fatal("data differs")
			}
			sum := sha256.Sum256(file[:len(file)-sha256.Size])
			if a.Checksum != hex.EncodeToString(sum[:]) {
				t.Fatalf("Checksum = %s, want the SHA-256 of the file before its trailer", a.Checksum)
			}
			got, err := TableCounts(bytes.NewReader(a.Data))
			if err != nil {
				t.Fatal(err)
			}
			want, err := TableCounts(bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("TableCounts = %v, want %v", got, want)
			}
			// The archive restores to the same state.
			f2 := New()
			if err := restoreBytes(f2, a.Data); err != nil {
				t.Fatal(err)
			}
			requireSameDump(t, f, f2)
			// Writing the parsed archive again gives the same file.
			var again bytes.Buffer
			if err := WriteArchive(&again, a.Meta, a.Data); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(again.Bytes(), file) {
				t.Fatal("rewriting a parsed archive changed it")
			}
		})
	}
}

func TestReadArchive_Truncated(t *testing.T) {
	file := archiveOf(t, smallSnapshot(t))
	for n := range len(file) {
		a, err := ReadArchive(bytes.NewReader(file[:n]), int64(len(file)))
		if !errors.Is(err, ErrBadSnapshot) || a != nil {
			t.Fatalf("truncated to %d of %d bytes: %v, %v; want ErrBadSnapshot", n, len(file), a, err)
		}
	}
}

func TestReadArchive_FlippedByte(t *testing.T) {
	file := archiveOf(t, smallSnapshot(t))
	for off := range file {
		for _, mask := range []byte{0x01, 0x80, 0xff} {
			bad := bytes.Clone(file)
			bad[off] ^= mask
			a, err := ReadArchive(bytes.NewReader(bad), int64(len(bad)))
			if !errors.Is(err, ErrBadSnapshot) || a != nil {
				t.Fatalf("byte %d ^ %#x: %v, %v; want ErrBadSnapshot", off, mask, a, err)
			}
		}
	}
}

func TestReadArchive_Damage(t *testing.T) {
	data := smallSnapshot(t)
	meta := metaFor(t, data)
	mj := mustJSON(t, meta)
	dl := uint64(len(data))
	withMeta := func(edit func(m *ArchiveMeta)) []byte {
		m := meta
		edit(&m)
		return mustJSON(t, m)
	}
	otherData := dump(t, New())
	garbage := []byte("this is not a snapshot stream at all")
	cases := []struct {
		name    string
		file    []byte
		wantMsg string // part of the error text
	}{
		{"empty", nil, "truncated"},
		{"shorter than the fixed parts", archiveOf(t, data)[:12+4+8+sha256.Size-1], "truncated"},
		{"wrong magic", craftArchive(snapshotMagic, ArchiveVersion, mj, dl, data), "not a Moxxie snapshot file"},
		{"a snapshot stream is not an archive", data, ""},
		{"version 0", craftArchive(archiveMagic, 0, mj, dl, data), "version"},
		{"future version", craftArchive(archiveMagic, ArchiveVersion+1, mj, dl, data), "version"},
		{"trailer only checks", append(archiveOf(t, data)[:len(archiveOf(t, data))-1], 0), "checksum"},
		{"meta not JSON", craftArchive(archiveMagic, ArchiveVersion, []byte("{not json"), dl, data), "metadata"},
		{"meta empty", craftArchive(archiveMagic, ArchiveVersion, nil, dl, data), "metadata"},
		{"meta an array", craftArchive(archiveMagic, ArchiveVersion, []byte("[]"), dl, data), "metadata"},
		{"meta unknown field", craftArchive(archiveMagic, ArchiveVersion, []byte(`{"index":1,"extra":true}`), dl, data), "metadata"},
		{"meta wrong field type", craftArchive(archiveMagic, ArchiveVersion, []byte(`{"index":"eight"}`), dl, data), "metadata"},
		{"meta trailing data", craftArchive(archiveMagic, ArchiveVersion, append(bytes.Clone(mj), []byte(" {}")...), dl, data), "metadata"},
		{"meta null", craftArchive(archiveMagic, ArchiveVersion, []byte("null"), dl, data), ""},
		{"meta length over the limit", withLen(craftArchive(archiveMagic, ArchiveVersion, mj, dl, data), maxArchiveMeta+1), "metadata length"},
		{"meta length past the end", withLen(craftArchive(archiveMagic, ArchiveVersion, mj, dl, data), uint32(len(mj)+len(data)+1)), "metadata length"},
		{"meta length short", withLen(craftArchive(archiveMagic, ArchiveVersion, mj, dl, data), uint32(len(mj)-1)), ""},
		{"data length too long", craftArchive(archiveMagic, ArchiveVersion, mj, dl+1, data), "data length"},
		{"data length too short", craftArchive(archiveMagic, ArchiveVersion, mj, dl-1, data), "data length"},
		{"data length huge", craftArchive(archiveMagic, ArchiveVersion, mj, 1<<63, data), "data length"},
		{"meta size disagrees", craftArchive(archiveMagic, ArchiveVersion, withMeta(func(m *ArchiveMeta) { m.Size++ }), dl, data), "data length"},
		{"meta size negative", craftArchive(archiveMagic, ArchiveVersion, withMeta(func(m *ArchiveMeta) { m.Size = -1 }), dl, data), "data length"},
		{"data checksum of other data", craftArchive(archiveMagic, ArchiveVersion, mustJSON(t, metaFor(t, otherData)), dl, data), ""},
		{"data checksum wrong", craftArchive(archiveMagic, ArchiveVersion, withMeta(func(m *ArchiveMeta) { m.DataChecksum = strings.Repeat("0", 64) }), dl, data), "data checksum"},
		{"data checksum upper-case", craftArchive(archiveMagic, ArchiveVersion, withMeta(func(m *ArchiveMeta) { m.DataChecksum = strings.ToUpper(m.DataChecksum) }), dl, data), "data checksum"},
		{"data not a snapshot stream", func() []byte {
			m := metaFor(t, garbage)
			return craftArchive(archiveMagic, ArchiveVersion, mustJSON(t, m), uint64(len(garbage)), garbage)
		}(), "not a Moxxie state snapshot"},
		{"data a truncated stream", func() []byte {
			d := data[:len(data)-1]
			return craftArchive(archiveMagic, ArchiveVersion, mustJSON(t, metaFor(t, d)), uint64(len(d)), d)
		}(), "truncated"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, err := ReadArchive(bytes.NewReader(tc.file), 1<<20)
			if !errors.Is(err, ErrBadSnapshot) || a != nil {
				t.Fatalf("ReadArchive = %v, %v; want ErrBadSnapshot", a, err)
			}
			if !strings.Contains(err.Error(), tc.wantMsg) {
				t.Fatalf("error %q does not say %q", err, tc.wantMsg)
			}
		})
	}
	// Sanity: the crafted good archive is accepted and equals WriteArchive's.
	good := craftArchive(archiveMagic, ArchiveVersion, mj, dl, data)
	if !bytes.Equal(good, archiveOf(t, data)) {
		t.Fatal("craftArchive does not build what WriteArchive writes")
	}
	if _, err := ReadArchive(bytes.NewReader(good), int64(len(good))); err != nil {
		t.Fatal(err)
	}
}

// withLen rewrites the metadata length field of an archive and fixes up the
// trailer.
func withLen(file []byte, ml uint32) []byte {
	b := bytes.Clone(file[:len(file)-sha256.Size])
	binary.BigEndian.PutUint32(b[12:16], ml)
	sum := sha256.Sum256(b)
	return append(b, sum[:]...)
}

func TestReadArchive_Limit(t *testing.T) {
	file := archiveOf(t, smallSnapshot(t))
	size := int64(len(file))
	cases := []struct {
		limit int64
		ok    bool
	}{
		{size, true},
		{size + 1, true},
		{1 << 40, true},
		{size - 1, false},
		{size / 2, false},
		{0, false},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprint(tc.limit), func(t *testing.T) {
			// The reader never ends: ReadArchive must stop at the limit.
			r := &countingReader{r: bytes.NewReader(file)}
			_, err := ReadArchive(r, tc.limit)
			if tc.ok {
				if err != nil {
					t.Fatalf("ReadArchive: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrBadSnapshot) || !strings.Contains(err.Error(), "larger than") {
				t.Fatalf("ReadArchive: %v, want a size error", err)
			}
			if r.n > tc.limit+1 {
				t.Fatalf("read %d bytes with limit %d", r.n, tc.limit)
			}
		})
	}
}

type countingReader struct {
	r interface{ Read([]byte) (int, error) }
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func TestReadArchive_ReadError(t *testing.T) {
	file := archiveOf(t, smallSnapshot(t))
	r := iotest.TimeoutReader(bytes.NewReader(file))
	if _, err := ReadArchive(r, 1<<20); !errors.Is(err, ErrBadSnapshot) {
		t.Fatalf("ReadArchive: %v, want ErrBadSnapshot", err)
	}
	if _, err := ReadArchive(iotest.OneByteReader(bytes.NewReader(file)), 1<<20); err != nil {
		t.Fatalf("one-byte reader: %v", err)
	}
}

// failingWriter accepts n bytes, then fails.
type failingWriter struct{ n int }

var errWriterFull = errors.New("writer full")

func (w *failingWriter) Write(p []byte) (int, error) {
	if len(p) > w.n {
		k := w.n
		w.n = 0
		return k, errWriterFull
	}
	w.n -= len(p)
	return len(p), nil
}

func TestWriteArchive_WriteError(t *testing.T) {
	data := smallSnapshot(t)
	size := len(archiveOf(t, data))
	for n := range size {
		if err := WriteArchive(&failingWriter{n: n}, testArchiveMeta, data); !errors.Is(err, errWriterFull) {
			t.Fatalf("writer failing after %d of %d bytes: %v", n, size, err)
		}
	}
	if err := WriteArchive(&failingWriter{n: size}, testArchiveMeta, data); err != nil {
		t.Fatal(err)
	}
}
