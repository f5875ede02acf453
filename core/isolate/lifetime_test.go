//go:build linux

package isolate

import (
	"context"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/edgepipe/edgepipe/plugins/sdk/sdktest"
)

// alive reports whether pid is a running (not zombie) process.
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && i+2 < len(s) && s[i+2] != 'Z' && s[i+2] != 'X'
}

// The plugin's parent-death signal is tied to the thread that forked it
// (prctl(2)). Start is called here from a goroutine that is locked to its
// thread and returns without unlocking, so the Go runtime ends that thread
// right after: the plugin must survive it, because Start forks from a
// thread of its own.
func TestPluginSurvivesTheExitOfTheThreadThatStartedIt(t *testing.T) {
	type started struct {
		s   *Supervised
		tid int
		err error
	}
	res := make(chan started, 1)
	spec := selfSpec(t, "inputs.synthetic")
	var r started
	for {
		go func() {
			runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
			if syscall.Gettid() == os.Getpid() {
				// The main thread is never ended, only parked: try again.
				res <- started{tid: -1}
				return
			}
			s, err := Start(spec)
			res <- started{s, syscall.Gettid(), err}
		}()
		if r = <-res; r.tid != -1 {
			break
		}
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	s := r.s
	defer s.Close(context.Background())
	pid := s.Pid()
	task := "/proc/self/task/" + strconv.Itoa(r.tid)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Stat(task); os.IsNotExist(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the locked thread %d did not exit", r.tid)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// A death signal sent at that thread's exit lands within microseconds;
	// give it a generous second to show.
	for end := time.Now().Add(time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if !alive(pid) {
			t.Fatalf("plugin process %d died with the thread that started it", pid)
		}
	}
	if _, err := s.Init(context.Background(), sdktest.Request("points = 1\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Gather(context.Background()); err != nil || s.Restarts() != 0 || s.Pid() != pid {
		t.Fatalf("gather: %v, restarts %d, pid %d (was %d)", err, s.Restarts(), s.Pid(), pid)
	}
}
