package sdk_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"

	"github.com/edgepipe/edgepipe/plugins/sdk"
	"github.com/edgepipe/edgepipe/plugins/sdk/sdktest"
)

// publishCall is call n's batch: 1 to 4 messages whose payloads (a few
// hundred bytes to 64 KB) carry n and their index and a pattern of both,
// so that any message can be checked on its own. Topics repeat, and every
// fifth call adds one of its own.
func publishCall(n int) []sdk.Message {
	msgs := make([]sdk.Message, 1+n%4)
	for j := range msgs {
		size := 300 + (n*373+j*1013)%9000
		if (n+j)%5 == 0 {
			size = 64 << 10
		}
		msgs[j] = sdk.Message{Topic: fmt.Sprintf("gw/d%d/data", j), Payload: publishPayload(n, j, size),
			QoS: uint8(j % 2), Retain: j == 3}
		if n%5 == 0 && j == 0 {
			msgs[j].Topic = fmt.Sprintf("gw/call%d", n)
		}
	}
	return msgs
}

func publishPayload(n, j, size int) []byte {
	p := make([]byte, size)
	binary.LittleEndian.PutUint32(p, uint32(n))
	binary.LittleEndian.PutUint32(p[4:], uint32(j))
	for k := 8; k < size; k++ {
		p[k] = byte(n*31 + j*7 + k)
	}
	return p
}

// intact says what is wrong with m, which must be message j of call n as
// publishCall made it ("" if nothing).
func intact(m sdk.Message, n, j int) string {
	if n < 0 || j >= len(publishCall(n)) {
		return fmt.Sprintf("message %d of a batch says it is of call %d (head %x)", j, n, m.Payload[:min(len(m.Payload), 12)])
	}
	want := publishCall(n)[j]
	if m.Topic != want.Topic || m.QoS != want.QoS || m.Retain != want.Retain || !bytes.Equal(m.Payload, want.Payload) {
		return fmt.Sprintf("call %d message %d: topic %q qos %d retain %v payload %d bytes (head %x), want %q %d %v %d bytes",
			n, j, m.Topic, m.QoS, m.Retain, len(m.Payload), m.Payload[:min(len(m.Payload), 12)],
			want.Topic, want.QoS, want.Retain, len(want.Payload))
	}
	return ""
}

// recorder is an output that implements FrameReleaser (it keeps no
// message once Publish returned nil) and records what it was given, as a
// broker would receive it. It checks each message when Publish starts and
// again when it ends, after appending a line end to every payload as a
// file output would: a message must not change while its call runs, and
// an append must not write into another. Every seventh call fails after
// confirming its first message, and the output keeps that call's
// messages, as an output with messages still in flight may: they must
// stay intact whatever follows.
type recorder struct {
	mu     sync.Mutex
	got    map[int][]sdk.Message // by call, copied
	failed map[int][]sdk.Message // calls that failed, as given
	seen   map[*byte]bool        // first bytes of payloads given
	reused int                   // payloads decoded into memory seen before
	broken []string
}

func (r *recorder) Init(context.Context, *sdk.InitRequest) (*sdk.InitResponse, error) {
	return &sdk.InitResponse{}, nil
}
func (r *recorder) Close(context.Context) error { return nil }

var errSeventh = errors.New("every seventh call fails")

func (r *recorder) Publish(_ context.Context, msgs []sdk.Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(msgs) == 0 || len(msgs[0].Payload) < 8 {
		r.broken = append(r.broken, fmt.Sprintf("a call of %d messages without its header: %+v", len(msgs), msgs))
		return nil
	}
	n := int(binary.LittleEndian.Uint32(msgs[0].Payload))
	check := func(when string) {
		for j, m := range msgs {
			if s := intact(m, n, j); s != "" {
				r.broken = append(r.broken, when+": "+s)
			}
		}
	}
	check("as given")
	var copies []sdk.Message
	for _, m := range msgs {
		if r.seen[&m.Payload[0]] {
			r.reused++
		}
		r.seen[&m.Payload[0]] = true
		m.Payload = bytes.Clone(m.Payload)
		copies = append(copies, m)
	}
	r.got[n] = copies
	for _, m := range msgs {
		_, _ = io.Discard.Write(append(m.Payload, '\n'))
	}
	check("at the end of the call")
	if n%7 == 6 {
		r.failed[n] = msgs
		return sdk.PartialError{Confirmed: 1, Err: errSeventh}
	}
	return nil
}

// releasingRecorder is a recorder that opts in to reuse.
type releasingRecorder struct{ *recorder }

func (releasingRecorder) ReleaseFrame(*sdk.Frame) {}

func newRecorder() *recorder {
	return &recorder{got: map[int][]sdk.Message{}, failed: map[int][]sdk.Message{}, seen: map[*byte]bool{}}
}

// publishAll makes calls Publish calls from callers goroutines at once,
// so that the plugin decodes a call while the one before it runs, and
// checks every answer.
func publishAll(t *testing.T, out sdk.Output, calls, callers int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, calls)
	for g := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := g; n < calls; n += callers {
				err := out.Publish(context.Background(), publishCall(n))
				var pe sdk.PartialError
				switch {
				case n%7 != 6 && err != nil:
					errs <- fmt.Errorf("call %d: %w", n, err)
				case n%7 == 6 && (!errors.As(err, &pe) || pe.Confirmed != 1):
					errs <- fmt.Errorf("call %d: %v, want a partial error with 1 confirmed", n, err)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// checkRecorded asserts every call arrived exactly as sent, once, and
// that the messages of failed calls the output kept are still intact.
func checkRecorded(t *testing.T, r *recorder, calls int) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.broken) > 0 {
		t.Fatalf("%d messages changed under the output, first: %s", len(r.broken), r.broken[0])
	}
	if len(r.got) != calls {
		t.Fatalf("the output got %d calls, want %d", len(r.got), calls)
	}
	for n := range calls {
		want := publishCall(n)
		if len(r.got[n]) != len(want) {
			t.Fatalf("call %d: %d messages, want %d", n, len(r.got[n]), len(want))
		}
		for j, m := range r.got[n] {
			if s := intact(m, n, j); s != "" {
				t.Fatal("recorded: " + s)
			}
		}
	}
	for n, msgs := range r.failed {
		for j, m := range msgs {
			if s := intact(m, n, j); s != "" {
				t.Fatal("kept after its call failed: " + s)
			}
		}
	}
}

// An output that opts in (FrameReleaser) gets every message of every
// Publish exactly as sent, while its requests are decoded into the memory
// of earlier calls; the messages of calls that failed are left alone.
func TestReleasingOutputGetsEveryMessageIntactInReusedMemory(t *testing.T) {
	r := newRecorder()
	c := sdktest.Connect(t, releasingRecorder{r})
	sdktest.Init(t, c, "")
	const calls = 300
	publishAll(t, c, calls, 3)
	checkRecorded(t, r, calls)
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.failed) == 0 {
		t.Fatal("no call failed")
	}
	if r.reused == 0 {
		t.Error("no payload was decoded into the memory of an earlier call")
	}
}

// An output that does not implement FrameReleaser is given messages of
// its own every call: every message of every call, kept, is still intact
// after all the calls that followed.
func TestOutputWithoutReleaserKeepsItsMessages(t *testing.T) {
	k := &messageKeeper{}
	c := sdktest.Connect(t, k)
	sdktest.Init(t, c, "")
	const calls = 150
	for n := range calls {
		if err := c.Publish(context.Background(), publishCall(n)); err != nil {
			t.Fatal(err)
		}
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.kept) != calls {
		t.Fatalf("kept %d calls, want %d", len(k.kept), calls)
	}
	for n, msgs := range k.kept {
		for j, m := range msgs {
			if s := intact(m, n, j); s != "" {
				t.Fatal("kept by the output: " + s)
			}
		}
	}
}

// messageKeeper is an output that keeps every batch it is given, as an
// output that does not implement FrameReleaser may.
type messageKeeper struct {
	mu   sync.Mutex
	kept [][]sdk.Message
}

func (k *messageKeeper) Init(context.Context, *sdk.InitRequest) (*sdk.InitResponse, error) {
	return &sdk.InitResponse{}, nil
}
func (k *messageKeeper) Close(context.Context) error { return nil }
func (k *messageKeeper) Publish(_ context.Context, msgs []sdk.Message) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.kept = append(k.kept, msgs)
	return nil
}
