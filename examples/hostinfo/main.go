// Command edgepipe-hostinfo is an example third-party edgepipe input: it
// reports the health of the box it runs on (load, free memory, uptime) as
// points of the device "host". It is written only against edgepipe's plugin
// SDK and built as its own Go module, as any vendor's plugin would be.
//
// Wire it in with
//
//	[[inputs.external]]
//	command = "/opt/edgepipe/plugins/edgepipe-hostinfo"
//	sha256 = "..."            # optional: sha256sum of the binary
//	[inputs.external.config]  # optional: every key has a default
//	device = "host"
//	interval = "10s"
package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/edgepipe/edgepipe/plugins/sdk"
)

// HostInfo reads /proc.
type HostInfo struct {
	Device   string       `toml:"device"`
	Interval sdk.Duration `toml:"interval"`
	ProcDir  string       `toml:"proc_dir"`
}

func (h *HostInfo) Init(_ context.Context, req *sdk.InitRequest) (*sdk.InitResponse, error) {
	h.Device, h.Interval, h.ProcDir = "host", sdk.Duration(10*time.Second), "/proc"
	src, err := sdk.DecodeConfig(req, h)
	if err != nil {
		return nil, err
	}
	if h.Device == "" {
		return nil, sdk.ConfigErrors{src.Errorf("device", "must not be empty")}
	}
	pt := func(name, typ, unit string, k sdk.Kind) sdk.PointSchema {
		return sdk.PointSchema{Device: h.Device, Name: name, Type: typ, Kind: k, Unit: unit}
	}
	return &sdk.InitResponse{Interval: h.Interval.D(), Points: []sdk.PointSchema{
		pt("load1", "float64", "", sdk.KindFloat),
		pt("mem_available", "uint64", "MB", sdk.KindUint),
		pt("uptime", "float64", "s", sdk.KindFloat),
	}}, nil
}

func (h *HostInfo) Close(context.Context) error { return nil }

// Gather reads the three values; one that cannot be read is reported with
// quality bad rather than left out.
func (h *HostInfo) Gather(context.Context) (*sdk.Frame, error) {
	now := time.Now().UnixMilli()
	b := sdk.Batch{Device: h.Device, TS: now}
	add := func(name string, v sdk.Value, err error) {
		p := sdk.Point{Name: name, Value: v, TS: now}
		if err != nil {
			p.Quality, p.Value = sdk.QualityBad, sdk.Value{}
		}
		b.Points = append(b.Points, p)
	}
	load, err := firstFloat(h.ProcDir + "/loadavg")
	add("load1", sdk.Float(load), err)
	mem, err := meminfo(h.ProcDir+"/meminfo", "MemAvailable:")
	add("mem_available", sdk.Uint(mem/1024), err)
	up, err := firstFloat(h.ProcDir + "/uptime")
	add("uptime", sdk.Float(up), err)
	return &sdk.Frame{Batches: []sdk.Batch{b}}, nil
}

func firstFloat(path string) (float64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0, fmt.Errorf("%s is empty", path)
	}
	return strconv.ParseFloat(f[0], 64)
}

// meminfo returns the kB value of one /proc/meminfo line.
func meminfo(path, key string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), key); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				return strconv.ParseUint(f[0], 10, 64)
			}
		}
	}
	return 0, fmt.Errorf("%s: no %s line", path, key)
}

func main() {
	sdk.Serve(func() sdk.Plugin { return &HostInfo{} })
}
