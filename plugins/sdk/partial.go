package sdk

import (
	"errors"
	"fmt"
)

// PartialError is how an Output says that only the start of a batch got
// through: the first Confirmed messages were confirmed by the server (PUBACK
// at QoS 1), the rest were not, for the reason in Err. The core then
// acknowledges those Confirmed messages to its queue, which forgets them,
// and offers the rest again later; without it a timeout in the middle of a
// batch resends the whole batch, and on a slow link the same first messages
// go out again and again while the backlog never drains.
//
// Confirmed counts a prefix: the queue can only forget messages in order, so
// a message confirmed after an unconfirmed one does not count (it will be
// sent again: delivery is at least once). A message the output dropped for
// good (a topic the server would refuse) counts as confirmed. Return it
// directly or wrapped:
//
//	return sdk.PartialError{Confirmed: n, Err: err}
//	return fmt.Errorf("broker %s: %w", name, sdk.PartialError{Confirmed: n, Err: err})
//
// A plain error means nothing was confirmed (Confirmed 0), nil means all
// was. It crosses the gRPC boundary intact: an isolated output's caller
// sees the same Confirmed and the same error text, and errors.Is still finds
// context.DeadlineExceeded or context.Canceled in Err.
type PartialError struct {
	Confirmed int
	Err       error
}

// Error is Err's text alone, so that wrapping a failure in a PartialError
// changes no log line; the core reports the count next to it.
func (e PartialError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("only the first %d messages were confirmed", e.Confirmed)
	}
	return e.Err.Error()
}

func (e PartialError) Unwrap() error { return e.Err }

// ConfirmedOf tells how many of a batch of n messages a Publish that
// returned err delivered: n for nil, the PartialError's Confirmed (clamped
// to 0..n) when err is or wraps one, 0 for any other error. The core calls
// it; an output's own tests may too.
func ConfirmedOf(err error, n int) int {
	if err == nil {
		return n
	}
	var pe PartialError
	var pp *PartialError
	c := 0
	switch {
	case errors.As(err, &pe):
		c = pe.Confirmed
	case errors.As(err, &pp) && pp != nil:
		c = pp.Confirmed
	}
	return max(0, min(c, n))
}
