// Package backoff is edgepipe's one retry policy: exponential growth with
// full jitter, used by every reconnect and retry loop (MQTT connect, Modbus
// connection and per-slave backoff, serial and camera port reopening,
// isolated plugin restarts, the core's publish retry and command stream
// reopening, streaming input restarts).
//
// Full jitter means each wait is a uniformly random duration between zero
// and the current ceiling, and the ceiling doubles per failure up to a cap.
// A fleet of gateways that lose their broker at the same instant therefore
// spreads its reconnects over the whole window instead of knocking on the
// restarted broker in lock step, which plain doubling (or the ±50 % jitter
// of a default cenkalti/backoff ExponentialBackOff) would not do.
//
// The ceiling's growth is github.com/cenkalti/backoff/v5's
// ExponentialBackOff with its own randomisation switched off; this package
// adds the full jitter (with an injectable random source for tests) and the
// context-aware wait.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"

	cb "github.com/cenkalti/backoff/v5"
)

// Policy is the shape of one retry loop's backoff.
type Policy struct {
	// Initial is the ceiling of the first wait.
	Initial time.Duration
	// Max caps the ceiling.
	Max time.Duration
	// Rand returns a number in [0, 1); nil means math/rand/v2, which every
	// process seeds on its own, so no two gateways share a sequence.
	Rand func() float64
}

// Backoff is the state of one retry loop. It is not safe for concurrent
// use: each loop owns its own.
type Backoff struct {
	exp  cb.ExponentialBackOff
	rand func() float64
	last time.Duration // ceiling the latest wait was drawn under
}

// New returns a Backoff at its initial ceiling. A Max below Initial is
// raised to Initial.
func New(p Policy) *Backoff {
	if p.Initial <= 0 {
		p.Initial = time.Millisecond
	}
	p.Max = max(p.Max, p.Initial)
	if p.Rand == nil {
		p.Rand = rand.Float64
	}
	b := &Backoff{rand: p.Rand, exp: cb.ExponentialBackOff{
		InitialInterval:     p.Initial,
		RandomizationFactor: 0, // the jitter is ours: full, not ±x %
		Multiplier:          2,
		MaxInterval:         p.Max,
	}}
	b.exp.Reset()
	return b
}

// Next returns the wait before the next attempt, a random duration in
// [0, ceiling], and doubles the ceiling (up to Max).
func (b *Backoff) Next() time.Duration {
	ceil := b.exp.NextBackOff()
	b.last = ceil
	return time.Duration(b.rand() * float64(ceil+1))
}

// NextBackOff makes a Backoff a cenkalti/backoff BackOff (for its Retry).
func (b *Backoff) NextBackOff() time.Duration { return b.Next() }

// Ceiling is the ceiling the latest wait was drawn under (for logs).
func (b *Backoff) Ceiling() time.Duration { return b.last }

// Reset goes back to the initial ceiling, after a success.
func (b *Backoff) Reset() { b.exp.Reset() }

// Wait sleeps Next() unless ctx ends first; it reports whether the wait
// ran out (false: ctx ended, stop retrying).
func (b *Backoff) Wait(ctx context.Context) bool {
	return Sleep(ctx, b.Next())
}

// Sleep waits d unless ctx ends first; it reports whether d ran out.
func Sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

var _ cb.BackOff = (*Backoff)(nil)
