package testkit

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"
)

// LongTests reports whether the opt-in long tests run (KOMMO_LONG_TESTS=1).
func LongTests() bool { return os.Getenv("KOMMO_LONG_TESTS") == "1" }

// BuildHelper builds the helper command at pkg (a path relative to the
// test's package, e.g. "./internal/hookproc") into t.TempDir() and returns
// the binary's path. Each -X setting in xflags goes to -ldflags. It skips
// the test where subprocesses or the go command are not available.
func BuildHelper(t testing.TB, pkg string, xflags ...string) string {
	t.Helper()
	if runtime.GOOS == "js" || runtime.GOOS == "wasip1" || runtime.GOOS == "ios" || runtime.GOOS == "android" {
		t.Skip("no subprocesses on " + runtime.GOOS)
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build the helper: ", err)
	}
	name := filepath.Base(pkg)
	if name == "." || name == string(filepath.Separator) {
		name = "helper"
	}
	bin := filepath.Join(t.TempDir(), name)
	if runtime.GOOS == "windows" {
		bin += ".exe"
	}
	ldflags := "-s -w" // no symbol table and DWARF: a faster link
	for _, x := range xflags {
		ldflags += " -X " + x
	}
	start := time.Now()
	out, err := exec.Command(goBin, "build", "-buildvcs=false", "-ldflags="+ldflags, "-o", bin, pkg).CombinedOutput()
	if err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	t.Logf("built %s in %v", pkg, time.Since(start).Round(time.Millisecond))
	return bin
}

// LogWriter is an io.Writer that logs each line written to it with t.Log,
// for a subprocess's standard error. Lines written after the test ended
// are dropped.
type LogWriter struct {
	T      testing.TB
	Prefix string

	mu   sync.Mutex
	buf  []byte
	done bool
}

// Write logs every complete line of p.
func (w *LogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return len(p), nil
	}
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.T.Log(w.Prefix + string(w.buf[:i]))
		w.buf = w.buf[i+1:]
	}
	return len(p), nil
}

// Close drops what comes later (call it before the test ends, e.g. in
// t.Cleanup after the process exited).
func (w *LogWriter) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.done = true
	return nil
}
