package sdk

import (
	"context"
	"slices"
)

// Read-back after a write (SPEC 5: "after a successful write the new value
// is read back and reported, whatever the processors in between would
// filter") has one owner, the core:
//
//  1. after a successful Write it polls the input at once, and the context
//     of that Gather names the devices written (ReadBackDevices);
//  2. the input reads those devices in that call whatever their own
//     schedule says (an input that reads every device on every Gather has
//     nothing to do);
//  3. the core marks the batches of those devices ReadBack, and every
//     processor passes them (Batch.ReadBack).
//
// Over gRPC the devices travel in the Gather request.

type readBackKey struct{}

// WithReadBack returns a context for a Gather that must read the given
// devices now. The core calls it; inputs read it with ReadBackDevices.
func WithReadBack(ctx context.Context, devices []string) context.Context {
	if len(devices) == 0 {
		return ctx
	}
	return context.WithValue(ctx, readBackKey{}, slices.Clone(devices))
}

// ReadBackDevices names the devices a Gather must read now, whatever their
// interval, because they were just written; nil for an ordinary poll.
func ReadBackDevices(ctx context.Context) []string {
	d, _ := ctx.Value(readBackKey{}).([]string)
	return d
}

// IsReadBack reports whether a Gather must read device now (see
// ReadBackDevices).
func IsReadBack(ctx context.Context, device string) bool {
	return slices.Contains(ReadBackDevices(ctx), device)
}
