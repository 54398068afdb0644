package pvesim

import (
	"encoding/json"
	"math"
	"strconv"
	"unicode/utf8"
)

// rawJSON is a handler result that is already encoded: serveAPI writes it
// as the "data" member as it is. Large lists (cluster/resources of a big
// cluster) are encoded by hand this way, several times faster than
// encoding/json's reflection.
type rawJSON []byte

// appendJSONString appends s as a JSON string.
func appendJSONString(b []byte, s string) []byte {
	mark := len(b)
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x80 && !utf8.ValidString(s) {
			// encoding/json replaces invalid UTF-8; let it.
			enc, _ := json.Marshal(s)
			return append(b[:mark], enc...)
		}
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', "0123456789abcdef"[c>>4], "0123456789abcdef"[c&0xf])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendJSONFloat appends f as encoding/json writes a float64.
func appendJSONFloat(b []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(b, '0')
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	return strconv.AppendFloat(b, f, format, -1, 64)
}

// appendJSON appends r with the same member names, order and omissions as
// encoding/json gives its struct tags.
func (r *guestResource) appendJSON(b []byte) []byte {
	b = append(b, `{"id":"`...)
	b = append(b, r.Type...)
	b = append(b, '/')
	b = strconv.AppendInt(b, int64(r.VMID), 10)
	b = append(b, `","type":`...)
	b = appendJSONString(b, r.Type)
	b = append(b, `,"vmid":`...)
	b = strconv.AppendInt(b, int64(r.VMID), 10)
	b = append(b, `,"node":`...)
	b = appendJSONString(b, r.Node)
	b = append(b, `,"name":`...)
	b = appendJSONString(b, r.Name)
	b = append(b, `,"status":`...)
	b = appendJSONString(b, r.Status)
	b = append(b, `,"cpu":`...)
	b = appendJSONFloat(b, r.CPU)
	b = append(b, `,"maxcpu":`...)
	b = strconv.AppendInt(b, int64(r.MaxCPU), 10)
	for _, f := range [...]struct {
		name string
		v    uint64
	}{
		{`,"mem":`, r.Mem}, {`,"maxmem":`, r.MaxMem}, {`,"disk":`, r.Disk}, {`,"maxdisk":`, r.MaxDisk},
		{`,"diskread":`, r.DiskRead}, {`,"diskwrite":`, r.DiskWrite}, {`,"netin":`, r.NetIn},
		{`,"netout":`, r.NetOut}, {`,"uptime":`, r.Uptime},
	} {
		b = append(b, f.name...)
		b = strconv.AppendUint(b, f.v, 10)
	}
	b = append(b, `,"template":`...)
	b = strconv.AppendInt(b, int64(r.Template), 10)
	for _, f := range [...]struct{ name, v string }{{`,"tags":`, r.Tags}, {`,"lock":`, r.Lock}, {`,"pool":`, r.Pool}} {
		if f.v != "" {
			b = append(b, f.name...)
			b = appendJSONString(b, f.v)
		}
	}
	return append(b, '}')
}
