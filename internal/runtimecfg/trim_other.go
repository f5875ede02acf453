//go:build !linux

package runtimecfg

import "os"

// TrimStartup does nothing outside Linux (see trim_linux.go).
func TrimStartup() error { return nil }

// TrimOnSignal does nothing outside Linux (see trim_linux.go).
func TrimOnSignal() {}

func signalTrim(*os.Process) error { return nil }
