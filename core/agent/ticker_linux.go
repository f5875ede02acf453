//go:build linux

package agent

import (
	"os"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// kernelTickMin is the shortest interval newKernelTicker serves: sysmon's
// longest sleep while the gateway is busy.
const kernelTickMin = 10 * time.Millisecond

// newKernelTicker ticks from a timerfd that the runtime's network poller
// waits on, or returns nil when one cannot be made.
//
// Why not a time.Ticker: a runtime timer is also what the sysmon thread
// sleeps until, and it wakes a few hundred microseconds before the network
// poller does (epoll's timeout is in whole milliseconds), finds the timer
// due, and starts another thread to run it; the poller itself wakes once
// early and once more. Three threads woke for every poll, and on a small
// VM a wake-up costs more CPU than polling a few registers (measured with
// the modbus-mqtt benchmark, README "Performance"). A timerfd's expiry is
// an fd becoming readable: one thread wakes, at the right time, and sysmon
// sleeps on. Its counter is read with a raw system call, for the reason
// given in internal/sockio.
//
// Only for intervals of kernelTickMin and more: under it the gateway is
// seldom idle long enough for sysmon to sleep, and a timerfd's expiries
// cost an interrupt each whether or not they are taken (at 1 us it
// delivered about a hundred ticks a second, where the synthetic benchmark
// polls as fast as it goes).
func newKernelTicker(d time.Duration) *ticker {
	if d < kernelTickMin {
		return nil
	}
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return nil
	}
	ts := unix.NsecToTimespec(d.Nanoseconds())
	if err := unix.TimerfdSettime(fd, 0, &unix.ItimerSpec{Interval: ts, Value: ts}, nil); err != nil {
		unix.Close(fd)
		return nil
	}
	f := os.NewFile(uintptr(fd), "poll-timer") // non-blocking: the poller waits on it
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil
	}
	c := make(chan time.Time, 1)
	stopped := make(chan struct{})
	tick := func() {
		select {
		case c <- time.Now():
		default:
		}
	}
	go func() {
		var n uint64 // expirations since the last read; missed ticks are dropped
		for {
			var errno syscall.Errno
			err := rc.Read(func(fd uintptr) bool {
				_, _, errno = syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&n)), unsafe.Sizeof(n))
				return errno != syscall.EAGAIN
			})
			switch {
			case err != nil:
				return // closed by stop
			case errno == 0:
				tick()
			case errno != syscall.EINTR:
				// Not seen in practice; the schedule must go on anyway.
				f.Close()
				t := time.NewTicker(d)
				defer t.Stop()
				for {
					select {
					case <-t.C:
						tick()
					case <-stopped:
						return
					}
				}
			}
		}
	}()
	return &ticker{C: c, stop: func() {
		close(stopped)
		f.Close()
	}}
}
