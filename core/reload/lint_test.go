package reload

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/edgepipe/edgepipe/core/config"
	"github.com/edgepipe/edgepipe/internal/testbroker"
	"github.com/edgepipe/edgepipe/plugins/sdk"
)

// warnDevice is a lint that warns about every input device named
// "warn-me", at the points the dry run found: the reloader's plumbing of
// warnings, whatever core/lint finds.
func warnDevice(_ *config.Config, points []sdk.PointSchema) sdk.ConfigErrors {
	var ws sdk.ConfigErrors
	for _, p := range points {
		if p.Device == "warn-me" {
			ws = append(ws, sdk.ConfigError{Path: p.FullName(), Msg: "looks wrong", Warning: true})
		}
	}
	return ws
}

// TestWarningsShownNeverRefuse: the reload path lints as `edgepipe check`
// does. A text with warnings is taken by every way in (console apply,
// remote set, SIGHUP); the console's check and apply and the set's reply
// carry the warnings, and a text with an error is still refused with the
// warnings beside the error.
func TestWarningsShownNeverRefuse(t *testing.T) {
	b := testbroker.StartMochi(t, testbroker.MochiOptions{})
	replies := b.Subscribe("Topic/flexem/fbox/GW-R/system/config/reply")
	dir := t.TempDir()
	remote := "[agent.remote]\nenabled = true"
	out := fmt.Sprintf("\n[[outputs.mqtt]]\nalias = \"up\"\nservers = [%q]\n", b.URL())
	r, _, path := gatewayWith(t, doc(dir, remote, out), Options{Lint: warnDevice})
	warned := doc(dir, remote, out+"\n[[inputs.synthetic]]\ndevice = \"warn-me\"\npoints = 1\n")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.Run(ctx)
	}()
	defer func() { cancel(); <-done }()

	_, err := r.Check(ctx, "console.toml", []byte(warned))
	if sdk.Failures(err) != nil || len(sdk.Warnings(err)) == 0 || !strings.Contains(err.Error(), "looks wrong") {
		t.Fatalf("check: want the warning and no failure, got %v", err)
	}
	if err := r.ApplyText(ctx, []byte(warned)); sdk.Failures(err) != nil || len(sdk.Warnings(err)) == 0 {
		t.Fatalf("apply: want it applied with its warning, got %v", err)
	}
	if _, h, _ := r.Running(); h != Hash([]byte(warned)) {
		t.Fatal("a text with only warnings was not applied")
	}

	// A set with a warning is taken, and its reply lists the warning.
	set := warned + "\n[[inputs.synthetic]]\ndevice = \"second\"\npoints = 1\n"
	if m := r.Command("up", cmd("set", map[string]string{"id": "s-1", "config": set, "confirm": "0s"})); len(m.Payload) != 0 {
		t.Fatalf("a set that checks was answered before it was applied: %s", m.Payload)
	}
	replies.Wait(t, 30*time.Second, "the set's reply with its warning", func(m []testbroker.Received) bool {
		for _, x := range m {
			var got reply
			if json.Unmarshal(x.Payload, &got) == nil && got.ID == "s-1" {
				if !got.OK || len(got.Warnings) != 1 || !strings.Contains(got.Warnings[0], "looks wrong") {
					t.Fatalf("set reply: %s", x.Payload)
				}
				return true
			}
		}
		return false
	})
	if _, h, _ := r.Running(); h != Hash([]byte(set)) {
		t.Fatal("the set with a warning is not running")
	}

	// A set with an error is refused; the reply has both lists.
	bad := warned + "\n[[inputs.nosuch]]\n"
	got := decode(t, r.Command("up", cmd("set", map[string]string{"id": "s-2", "config": bad})))
	if got.OK || !strings.Contains(strings.Join(got.Errors, "\n"), "nosuch") {
		t.Fatalf("refused set: %+v", got)
	}
	if len(got.Warnings) != 0 {
		// check prints no warnings for a file that does not load.
		t.Logf("warnings beside the load error: %v", got.Warnings)
	}
	for _, e := range got.Errors {
		if strings.Contains(e, "warning:") {
			t.Fatalf("a warning is listed among the errors: %v", got.Errors)
		}
	}

	// SIGHUP: the file with a warning is reloaded.
	if err := os.WriteFile(path, []byte(warned), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := r.Reload(ctx); err != nil {
		t.Fatalf("a file with only warnings was refused: %v", err)
	}
}
