package statestore

import (
	"os"
	"testing"
	"time"
)

func TestSavesArePacedAndCloseWritesTheRest(t *testing.T) {
	dir := t.TempDir()
	f, err := Open(dir, "processors.deadband#1")
	if err != nil {
		t.Fatal(err)
	}
	f.MinInterval = time.Hour // only the first Save writes now
	f.Set("a", []byte("1"))
	if err := f.Save(); err != nil {
		t.Fatal(err)
	}
	f.Set("a", []byte("2"))
	if err := f.Save(); err != nil {
		t.Fatal(err)
	}
	reopened, err := Open(dir, "processors.deadband#1")
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := reopened.Get("a"); string(v) != "1" {
		t.Fatalf("second save within the interval was written at once: %q", v)
	}
	if err := f.Flush(); err != nil {
		t.Fatal(err)
	}
	reopened, _ = Open(dir, "processors.deadband#1")
	if v, _ := reopened.Get("a"); string(v) != "2" {
		t.Fatalf("Flush did not write the pending change: %q", v)
	}
	if _, err := os.Stat(f.path + ".tmp"); !os.IsNotExist(err) {
		t.Fatalf("temporary file left behind: %v", err)
	}
}

func TestDamagedFileIsAClearError(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(dir+"/x.json", []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, "x"); err == nil {
		t.Fatal("want an error naming the damaged file")
	}
}
