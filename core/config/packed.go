package config

import (
	"bytes"
	"compress/flate"
	"io"
)

// packed is a text kept deflated. A plugin's own table is read when the
// plugin is opened (at start, on a reload that changed it, when an
// isolated plugin is restarted) and compared on every reload, never on the
// hot path; but it is kept for as long as the configuration runs, and with
// tens of thousands of configured points it was the largest thing held per
// point after the plugins' own state (~80 B a Modbus point, one tenth of
// that deflated: TOML tables of points repeat themselves).
type packed struct {
	z []byte // deflated; nil for an empty text
}

// pack deflates b (not kept).
func pack(b []byte) packed {
	if len(b) == 0 {
		return packed{}
	}
	var buf bytes.Buffer
	w, _ := flate.NewWriter(&buf, flate.BestSpeed) // the level is valid: no error
	_, _ = w.Write(b)                              // a bytes.Buffer does not fail
	_ = w.Close()
	return packed{z: bytes.Clone(buf.Bytes())}
}

// bytes inflates the text: a new slice each call, the caller's to keep.
func (p packed) bytes() []byte {
	if p.z == nil {
		return nil
	}
	b, err := io.ReadAll(flate.NewReader(bytes.NewReader(p.z)))
	if err != nil {
		// Written by pack in this process: it always inflates.
		panic("config: a packed text does not inflate: " + err.Error())
	}
	return b
}
