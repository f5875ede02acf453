package agent

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// A queue failing on every poll is logged once, then once a minute with
// the messages dropped since, and its recovery once.
func TestPushLogAtMostOncePerMinute(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	now := time.Unix(1_700_000_000, 0)
	l := pushLog{now: func() time.Time { return now }}
	full := errors.New("queue write: no space left on device")
	lines := func() int { return strings.Count(buf.String(), "queue cannot be written") }

	for i := 0; i < 600; i++ { // ten polls a second for a minute
		l.record(log, 2, full)
		now = now.Add(100 * time.Millisecond)
	}
	if n := lines(); n != 1 {
		t.Fatalf("%d lines in the first minute:\n%s", n, buf.String())
	}
	l.record(log, 2, full) // a minute and more after the first line
	if n := lines(); n != 2 || !strings.Contains(buf.String(), "dropped=1200") {
		t.Fatalf("second line missing or without the count since the first:\n%s", buf.String())
	}
	l.record(log, 5, nil)
	l.record(log, 5, nil)
	if n := strings.Count(buf.String(), "queuing resumed"); n != 1 || !strings.Contains(buf.String(), "dropped_while_failing=1202") {
		t.Fatalf("recovery logged %d times:\n%s", n, buf.String())
	}
}
