package testkit

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// clockInterface is kommo.Clock, restated: testkit cannot import kommo.
type clockInterface interface {
	Now() time.Time
	Sleep(ctx context.Context, d time.Duration) error
}

var _ clockInterface = (*Clock)(nil)

var start = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

// fakeTB records a Fatalf and stops its goroutine like testing.T does.
type fakeTB struct {
	testing.TB
	failed bool
	msg    string
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Fatalf(format string, args ...any) {
	f.failed, f.msg = true, fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// runFake runs fn with a fakeTB in its own goroutine and returns the fake
// once fn has returned or called Fatalf.
func runFake(t *testing.T, fn func(tb testing.TB)) *fakeTB {
	t.Helper()
	f := &fakeTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(f)
	}()
	<-done
	return f
}

func equalDurations(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestClockNowAdvanceSet(t *testing.T) {
	c := NewClock(start)
	if got := c.Now(); !got.Equal(start) {
		t.Fatalf("Now = %v, want %v", got, start)
	}
	if got := c.Now(); !got.Equal(start) {
		t.Fatalf("second Now = %v, want the same %v", got, start)
	}
	c.Advance(time.Minute)
	if got, want := c.Now(), start.Add(time.Minute); !got.Equal(want) {
		t.Fatalf("after Advance: %v, want %v", got, want)
	}
	later := start.Add(48 * time.Hour)
	c.Set(later)
	if got := c.Now(); !got.Equal(later) {
		t.Fatalf("after Set: %v, want %v", got, later)
	}
	if w := c.Waits(); w != nil {
		t.Fatalf("Advance and Set record no waits: %v", w)
	}
}

func TestClockSleepRecordsAndAdvances(t *testing.T) {
	c := NewClock(start)
	began := time.Now()
	for _, d := range []time.Duration{time.Second, 2 * time.Hour, 0} {
		if err := c.Sleep(t.Context(), d); err != nil {
			t.Fatalf("Sleep(%v) = %v", d, err)
		}
	}
	if spent := time.Since(began); spent > time.Second {
		t.Fatalf("Sleep spent %v of real time", spent)
	}
	want := []time.Duration{time.Second, 2 * time.Hour, 0}
	if got := c.Waits(); !equalDurations(got, want) {
		t.Fatalf("Waits = %v, want %v", got, want)
	}
	if got, want := c.Now(), start.Add(time.Second+2*time.Hour); !got.Equal(want) {
		t.Fatalf("Now = %v, want %v", got, want)
	}
	w := c.Waits()
	w[0] = 0
	if c.Waits()[0] != time.Second {
		t.Fatal("Waits returns a copy")
	}
}

func TestClockSleepDoneContext(t *testing.T) {
	c := NewClock(start)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := c.Sleep(ctx, time.Second); err != context.Canceled {
		t.Fatalf("Sleep on a canceled context = %v, want context.Canceled", err)
	}
	if w := c.Waits(); len(w) != 0 {
		t.Fatalf("a canceled Sleep records nothing: %v", w)
	}
	if got := c.Now(); !got.Equal(start) {
		t.Fatalf("a canceled Sleep does not move the clock: %v", got)
	}
}

func TestClockAdvanceOnNow(t *testing.T) {
	c := NewClock(start, AdvanceOnNow(2*time.Second))
	if got, want := c.Now(), start.Add(2*time.Second); !got.Equal(want) {
		t.Fatalf("first Now = %v, want %v", got, want)
	}
	if got, want := c.Now(), start.Add(4*time.Second); !got.Equal(want) {
		t.Fatalf("second Now = %v, want %v", got, want)
	}
	if err := c.Sleep(t.Context(), time.Minute); err != nil {
		t.Fatal(err)
	}
	if got, want := c.Now(), start.Add(time.Minute+6*time.Second); !got.Equal(want) {
		t.Fatalf("Now after Sleep = %v, want %v", got, want)
	}
}

func TestClockOnSleep(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	calls := 0
	c := NewClock(start, OnSleep(func() { calls++; cancel() }))
	if err := c.Sleep(ctx, time.Second); err != context.Canceled {
		t.Fatalf("Sleep whose hook cancels = %v, want context.Canceled", err)
	}
	if calls != 1 {
		t.Fatalf("hook ran %d times, want 1", calls)
	}
	if got := c.Waits(); !equalDurations(got, []time.Duration{time.Second}) {
		t.Fatalf("the wait is recorded before the hook: %v", got)
	}
	if err := c.Sleep(ctx, time.Second); err != context.Canceled || calls != 1 {
		t.Fatalf("Sleep on the canceled context = %v (hook calls %d), want context.Canceled without the hook", err, calls)
	}
}

func TestClockRealSleep(t *testing.T) {
	c := NewClock(start, RealSleep())
	const d = 30 * time.Millisecond
	began := time.Now()
	if err := c.Sleep(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	if spent := time.Since(began); spent < d {
		t.Fatalf("RealSleep spent %v, want at least %v", spent, d)
	}
	if got, want := c.Now(), start.Add(d); !got.Equal(want) {
		t.Fatalf("Now = %v, want %v", got, want)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	began = time.Now()
	if err := c.Sleep(ctx, time.Minute); err != context.DeadlineExceeded {
		t.Fatalf("Sleep past the deadline = %v, want context.DeadlineExceeded", err)
	}
	if spent := time.Since(began); spent > 10*time.Second {
		t.Fatalf("Sleep did not stop at the deadline: %v", spent)
	}
	if got := c.Waits(); !equalDurations(got, []time.Duration{d, time.Minute}) {
		t.Fatalf("Waits = %v", got)
	}
}

func TestClockConcurrent(t *testing.T) {
	c := NewClock(start, AdvanceOnNow(time.Nanosecond))
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				_ = c.Now()
				_ = c.Sleep(t.Context(), time.Millisecond)
				c.Advance(time.Microsecond)
				_ = c.Waits()
			}
		}()
	}
	wg.Wait()
	if n := len(c.Waits()); n != 800 {
		t.Fatalf("%d waits, want 800", n)
	}
}

func TestFixture(t *testing.T) {
	if got := string(Fixture(t, "sample.json")); got != "{\"name\":\"sample\",\"n\":2}\n" {
		t.Fatalf("Fixture = %q", got)
	}
	if got := string(Fixture(t, "sub", "nested.json")); !strings.Contains(got, "nested") {
		t.Fatalf("joined path: %q", got)
	}
}

func TestFixtureMissingFails(t *testing.T) {
	f := runFake(t, func(tb testing.TB) { Fixture(tb, "no", "such.json") })
	if !f.failed {
		t.Fatal("a missing fixture does not fail the test")
	}
	if !strings.Contains(f.msg, filepath.Join("testdata", "no", "such.json")) {
		t.Fatalf("the failure does not name the file: %s", f.msg)
	}
}

func TestFixtureJSON(t *testing.T) {
	var v struct {
		Name string `json:"name"`
		N    int    `json:"n"`
	}
	FixtureJSON(t, &v, "sample.json")
	if v.Name != "sample" || v.N != 2 {
		t.Fatalf("FixtureJSON = %+v", v)
	}
	f := runFake(t, func(tb testing.TB) { FixtureJSON(tb, &v, "not_json.txt") })
	if !f.failed || !strings.Contains(f.msg, "not_json.txt") {
		t.Fatalf("bad JSON: failed=%v msg=%q", f.failed, f.msg)
	}
	f = runFake(t, func(tb testing.TB) { FixtureJSON(tb, &v, "missing.json") })
	if !f.failed {
		t.Fatal("a missing JSON fixture does not fail the test")
	}
}

func TestFixtureGlob(t *testing.T) {
	got := FixtureGlob(t, "*.json")
	if len(got) != 1 || got[0] != "sample.json" {
		t.Fatalf("FixtureGlob(*.json) = %v", got)
	}
	got = FixtureGlob(t, "sub", "*.json")
	if len(got) != 1 || got[0] != filepath.Join("sub", "nested.json") {
		t.Fatalf("FixtureGlob(sub/*.json) = %v", got)
	}
	if b := Fixture(t, got[0]); !strings.Contains(string(b), "nested") {
		t.Fatal("FixtureGlob's paths are Fixture paths")
	}
	if got := FixtureGlob(t, "*.none"); len(got) != 0 {
		t.Fatalf("no match: %v", got)
	}
	f := runFake(t, func(tb testing.TB) { FixtureGlob(tb, "[") })
	if !f.failed {
		t.Fatal("a malformed pattern does not fail the test")
	}
}

func TestVectors(t *testing.T) {
	v := Vectors(t) // from internal/testkit: found by walking up to go.mod
	if len(v.Requests) == 0 || len(v.Webhooks) == 0 {
		t.Fatalf("%d request and %d webhook vectors", len(v.Requests), len(v.Webhooks))
	}
	for _, r := range v.Requests {
		if r.Name == "" || r.Secret == "" || r.Method == "" || r.Path == "" || r.Date == "" || r.ContentMD5 == "" || r.Signature == "" {
			t.Errorf("request vector with an empty field: %+v", r)
		}
	}
	for _, w := range v.Webhooks {
		if w.Name == "" || w.Secret == "" || w.Signature == "" {
			t.Errorf("webhook vector with an empty field: %+v", w)
		}
	}
	h := v.Request(t, "history")
	if h.Query != "limit=50&offset=0" || h.Body != "" || h.Signature != "2a2593df86235c44943a40ce35409d18bda5778c" {
		t.Fatalf("history vector: %+v", h)
	}
	f := runFake(t, func(tb testing.TB) { v.Request(tb, "no-such-vector") })
	if !f.failed || !strings.Contains(f.msg, "no-such-vector") {
		t.Fatalf("unknown vector: failed=%v msg=%q", f.failed, f.msg)
	}
}

func TestContext(t *testing.T) {
	var ctx context.Context
	t.Run("inner", func(t *testing.T) {
		ctx = Context(t)
		dl, ok := ctx.Deadline()
		if !ok {
			t.Fatal("no deadline")
		}
		if left := time.Until(dl); left <= 0 || left > ContextTimeout {
			t.Fatalf("deadline in %v, want within %v", left, ContextTimeout)
		}
		if err := ctx.Err(); err != nil {
			t.Fatal(err)
		}
	})
	if ctx.Err() == nil {
		t.Fatal("the context outlives its test")
	}
}
