package testkit

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// LongTests reports whether the opt-in long tests run (KOMMO_LONG_TESTS=1).
func LongTests() bool { return os.Getenv("KOMMO_LONG_TESTS") == "1" }

// BuildHelper builds the helper command at pkg (a path relative to the
// test's package, e.g. "./internal/hookproc") and returns the binary's
// path. Each -X setting in xflags goes to -ldflags. Tests running at the
// same time share one build of the same pkg and flags; the binary is
// removed when the last of them ends. It skips the test where subprocesses
// or the go command are not available.
func BuildHelper(t testing.TB, pkg string, xflags ...string) string {
	t.Helper()
	if runtime.GOOS == "js" || runtime.GOOS == "wasip1" || runtime.GOOS == "ios" || runtime.GOOS == "android" {
		t.Skip("no subprocesses on " + runtime.GOOS)
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build the helper: ", err)
	}
	key := pkg + "\x00" + strings.Join(xflags, "\x00")
	helpers.mu.Lock()
	b := helpers.builds[key]
	if b == nil {
		b = &helperBuild{}
		if helpers.builds == nil {
			helpers.builds = map[string]*helperBuild{}
		}
		helpers.builds[key] = b
	}
	b.users++
	helpers.mu.Unlock()
	t.Cleanup(func() {
		helpers.mu.Lock()
		defer helpers.mu.Unlock()
		if b.users--; b.users == 0 {
			delete(helpers.builds, key)
			if b.dir != "" {
				_ = os.RemoveAll(b.dir)
			}
		}
	})
	b.once.Do(func() { b.bin, b.dir, b.err = buildHelper(goBin, pkg, xflags) })
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.bin
}

// helpers are the helper builds in use, by package and flags.
var helpers struct {
	mu     sync.Mutex
	builds map[string]*helperBuild
}

type helperBuild struct {
	once     sync.Once
	bin, dir string
	err      error
	users    int // tests using it (under helpers.mu)
}

func buildHelper(goBin, pkg string, xflags []string) (bin, dir string, err error) {
	dir, err = os.MkdirTemp("", "kommo-helper-")
	if err != nil {
		return "", "", err
	}
	name := filepath.Base(pkg)
	if name == "." || name == string(filepath.Separator) {
		name = "helper"
	}
	bin = filepath.Join(dir, name)
	if runtime.GOOS == "windows" {
		bin += ".exe"
	}
	ldflags := "-s -w" // no symbol table and DWARF: a faster link
	for _, x := range xflags {
		ldflags += " -X " + x
	}
	out, err := exec.Command(goBin, "build", "-buildvcs=false", "-ldflags="+ldflags, "-o", bin, pkg).CombinedOutput()
	if err != nil {
		return "", dir, fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
	}
	return bin, dir, nil
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
