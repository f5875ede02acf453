//go:build !linux

package queue

import "os"

func datasync(f *os.File) error { return f.Sync() }

func lockDir(*os.File) error { return nil }
