package agent

import (
	"context"
	"slices"
	"sync"

	"github.com/edgepipe/edgepipe/plugins/sdk"
)

// readBacks is the core's one mechanism for reading back a write (SPEC 5,
// see sdk.ReadBackDevices): the devices of a polled input written since
// its last poll. A write adds to it and wakes the poll loop; the next
// Gather takes it, asks the input for those devices whatever their
// schedule, and marks their batches ReadBack so every processor passes
// them.
type readBacks struct {
	mu      sync.Mutex
	devices []string
}

// readBackAfter asks for the read-back of the devices a write succeeded
// on (at least one point of the device written without error).
func (in *instance) readBackAfter(reqs []sdk.WriteRequest, res []sdk.WriteResult, err error) {
	if err != nil || in.caps.Stream {
		return // a streaming input reads back on its own
	}
	in.readBack.mu.Lock()
	added := false
	for k, r := range reqs {
		if k < len(res) && res[k].Error == "" && !slices.Contains(in.readBack.devices, r.Device) {
			in.readBack.devices = append(in.readBack.devices, r.Device)
			added = true
		}
	}
	in.readBack.mu.Unlock()
	if added {
		in.pollSoon()
	}
}

// gather polls a polled input, reading back the devices written since
// the last poll. A failed poll keeps them for the next one.
func (in *instance) gather(ctx context.Context) (*sdk.Frame, error) {
	in.readBack.mu.Lock()
	devs := in.readBack.devices
	in.readBack.devices = nil
	in.readBack.mu.Unlock()
	f, err := in.impl.(sdk.Input).Gather(sdk.WithReadBack(ctx, devs))
	if err != nil {
		if len(devs) > 0 {
			in.readBack.mu.Lock()
			for _, d := range devs {
				if !slices.Contains(in.readBack.devices, d) {
					in.readBack.devices = append(in.readBack.devices, d)
				}
			}
			in.readBack.mu.Unlock()
		}
		return f, err
	}
	if f != nil && len(devs) > 0 {
		for i := range f.Batches {
			if slices.Contains(devs, f.Batches[i].Device) {
				f.Batches[i].ReadBack = true
			}
		}
	}
	return f, nil
}
