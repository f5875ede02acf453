//go:build !linux

package agent

import "time"

// kernelTickMin: no kernel ticker here (see ticker_linux.go).
const kernelTickMin = 10 * time.Millisecond

func newKernelTicker(time.Duration) *ticker { return nil }
