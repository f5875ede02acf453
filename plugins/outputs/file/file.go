// Package file is an output that writes messages as text lines, the same
// form `edgepipe once` prints: handy for watching a pipeline or feeding
// another tool.
package file

import (
	"bufio"
	"context"
	_ "embed"
	"fmt"
	"io"
	"os"
	"sync"
	"unicode/utf8"

	"github.com/edgepipe/edgepipe/plugins/sdk"
)

//go:embed sample.conf
var sampleConf string

func init() {
	sdk.Register(sdk.Registration{Kind: sdk.KindOutput, Name: "file",
		Description: "writes messages as TOPIC<TAB>PAYLOAD lines to stdout or a file", SampleConfig: sampleConf,
		Factory: func() sdk.Plugin { return &File{} }})
}

// File writes messages as lines.
type File struct {
	Path string `toml:"path"`

	mu sync.Mutex
	w  *bufio.Writer
	c  io.Closer
}

func (f *File) Init(_ context.Context, req *sdk.InitRequest) (*sdk.InitResponse, error) {
	f.Path = "stdout"
	if _, err := sdk.DecodeConfig(req, f); err != nil {
		return nil, err
	}
	switch f.Path {
	case "stdout":
		f.w = bufio.NewWriter(os.Stdout)
	case "stderr":
		f.w = bufio.NewWriter(os.Stderr)
	default:
		fh, err := os.OpenFile(f.Path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return nil, err
		}
		f.w, f.c = bufio.NewWriter(fh), fh
	}
	return &sdk.InitResponse{}, nil
}

func (f *File) Close(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.w == nil {
		return nil
	}
	err := f.w.Flush()
	if f.c != nil {
		if cerr := f.c.Close(); err == nil {
			err = cerr
		}
	}
	f.w = nil
	return err
}

func (f *File) Publish(_ context.Context, msgs []sdk.Message) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, m := range msgs {
		WriteLine(f.w, m)
	}
	return f.w.Flush()
}

// WriteLine writes "TOPIC<TAB>PAYLOAD\n"; a payload that is not printable
// text is written as "<N bytes>".
func WriteLine(w io.Writer, m sdk.Message) {
	if IsText(m.Payload) {
		fmt.Fprintf(w, "%s\t%s\n", m.Topic, m.Payload)
	} else {
		fmt.Fprintf(w, "%s\t<%d bytes>\n", m.Topic, len(m.Payload))
	}
}

// IsText reports whether b is valid UTF-8 without control characters
// other than tab, newline and carriage return.
func IsText(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	for _, c := range b {
		if c < 0x20 && c != '\t' && c != '\n' && c != '\r' || c == 0x7f {
			return false
		}
	}
	return true
}
