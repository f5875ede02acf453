package reload

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/edgepipe/edgepipe/internal/testbroker"
)

// TestTrialWithoutConfirmRollsBack: a set on trial whose output does
// reach the server but gets no confirm is rolled back when its time is up,
// the rollback announced on the reply topic and in the status.
func TestTrialWithoutConfirmRollsBack(t *testing.T) {
	b := testbroker.StartMochi(t, testbroker.MochiOptions{})
	replies := b.Subscribe("Topic/flexem/fbox/GW-R/system/config/reply")
	status := b.Subscribe("Topic/flexem/fbox/GW-R/status")
	dir := t.TempDir()
	out := fmt.Sprintf("\n[[outputs.mqtt]]\nalias = \"up\"\nservers = [%q]\nmax_reconnect_interval = \"500ms\"\n", b.URL())
	base := doc(dir, "[agent.remote]\nenabled = true", out)
	r, _, _ := gateway(t, base)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.Run(ctx)
	}()
	defer func() { cancel(); <-done }()
	_, before, _ := r.Running()

	next := base + "\n[[inputs.synthetic]]\ndevice = \"trial\"\n"
	if m := r.Command("up", cmd("set", map[string]string{"id": "s-1", "config": next, "confirm": "1s"})); m.Topic != "" {
		t.Fatalf("a good set answered before it was applied: %s", m.Payload)
	}
	find := func(what string, cond func(reply, string) bool) {
		t.Helper()
		replies.Wait(t, 30*time.Second, what, func(m []testbroker.Received) bool {
			for _, x := range m {
				var got reply
				if json.Unmarshal(x.Payload, &got) == nil && cond(got, string(x.Payload)) {
					return true
				}
			}
			return false
		})
	}
	find("the set applied on trial", func(got reply, raw string) bool {
		return got.ID == "s-1" && got.OK && strings.Contains(raw, `"config_state":"trial"`)
	})
	find("the rollback", func(got reply, raw string) bool {
		return got.ID == "s-1" && !got.OK && strings.Contains(raw, `"rolled_back":true`) && strings.Contains(got.Error, "no confirm")
	})
	if _, h, st := r.Running(); h != before || st != StateRolledBack {
		t.Fatalf("after the rollback: %s %s, want %s rolled_back", h, st, before)
	}
	status.Wait(t, 30*time.Second, "the status saying rolled_back", func(m []testbroker.Received) bool {
		for _, x := range m {
			if strings.Contains(string(x.Payload), `"config_state":"rolled_back"`) && strings.Contains(string(x.Payload), `"config":"`+before+`"`) {
				return true
			}
		}
		return false
	})
	vs, _ := r.Store().Versions()
	if len(vs) != 1 || vs[0].State != StateRolledBack {
		t.Fatalf("stored versions %+v", vs)
	}
}

// TestSetOverTrialRollsBackToLastGood: a set that replaces one still on
// trial, and is itself not confirmed, rolls back to what ran before both.
func TestSetOverTrialRollsBackToLastGood(t *testing.T) {
	base := doc(t.TempDir(), "[agent.remote]\nenabled = true", "")
	r, a, _ := gateway(t, base)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.Run(ctx)
	}()
	defer func() { cancel(); <-done }()
	_, before, _ := r.Running()
	first := base + "\n[[inputs.synthetic]]\ndevice = \"first\"\n"
	second := base + "\n[[inputs.synthetic]]\ndevice = \"second\"\n"
	r.Command("up", cmd("set", map[string]string{"id": "s-1", "config": first, "confirm": "1h"}))
	waitState(t, r, func(h, st string) bool { return h == Hash([]byte(first)) && st == StateTrial })
	r.Command("up", cmd("set", map[string]string{"id": "s-2", "config": second, "confirm": "1s"}))
	waitState(t, r, func(h, st string) bool { return h == before && st == StateRolledBack })
	for _, p := range a.Points() {
		if p.Device == "first" || p.Device == "second" {
			t.Fatalf("point %s of a rolled back set still registered", p.Device)
		}
	}
	vs, _ := r.Store().Versions()
	if len(vs) != 2 || vs[0].State != StateRolledBack || vs[1].State != StateRolledBack {
		t.Fatalf("stored versions %+v", vs)
	}
}

func waitState(t *testing.T, r *Reloader, cond func(hash, state string) bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, h, st := r.Running()
		if cond(h, st) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("running %s %s", h, st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
