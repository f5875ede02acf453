package queue

import (
	"os"
	"syscall"
)

// datasync makes written data durable. fdatasync skips the inode's
// timestamps, which the queue does not need after a crash: the file size
// is part of the data it does flush.
func datasync(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if err != syscall.EINTR {
			return err
		}
	}
}

// lockDir takes an exclusive lock on the queue directory so that two
// gateways (or a gateway and a forgotten one) never write one queue.
func lockDir(f *os.File) error {
	return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
}
