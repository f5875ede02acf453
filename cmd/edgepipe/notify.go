package main

import (
	"log/slog"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"

	"github.com/edgepipe/edgepipe/core/agent"
)

// stallLimit is how long the pipeline's processing loop may stay on one
// frame before the gateway counts as wedged and stops feeding systemd's
// watchdog. A well-behaved chain is bounded at 30 s per frame (the
// processors' context); the limit leaves room above it.
const stallLimit = 45 * time.Second

// notifySystemd tells systemd (Type=notify) that the gateway is ready and,
// when the unit sets WatchdogSec, feeds the watchdog from the pipeline's
// own heartbeat (agent.Stalled): a wedged pipeline stops the feeding and
// systemd restarts the service. Outside systemd (no NOTIFY_SOCKET) it does
// nothing. The returned function says STOPPING=1 and ends the feeding.
func notifySystemd(a *agent.Agent, log *slog.Logger) (stop func()) {
	if sent, err := daemon.SdNotify(false, daemon.SdNotifyReady); err != nil {
		log.Warn("cannot notify systemd", "err", err)
	} else if !sent {
		return func() {}
	}
	interval, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		log.Warn("systemd watchdog settings", "err", err)
	}
	done := make(chan struct{})
	fed := make(chan struct{})
	go func() {
		defer close(fed)
		if interval <= 0 {
			return
		}
		// systemd advises feeding at half the interval; a third leaves
		// room for a loaded machine.
		t := time.NewTicker(interval / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			if err := a.Stalled(stallLimit); err != nil {
				log.Error("pipeline wedged: not feeding the systemd watchdog, the service will be restarted", "err", err)
				continue
			}
			_, _ = daemon.SdNotify(false, daemon.SdNotifyWatchdog)
		}
	}()
	return func() {
		close(done)
		<-fed
		_, _ = daemon.SdNotify(false, daemon.SdNotifyStopping)
	}
}
