//go:build !linux

package runtimecfg

// TrimStartup does nothing outside Linux (see trim_linux.go).
func TrimStartup() error { return nil }
