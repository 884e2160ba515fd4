package testkit

import (
	"fmt"
	"net"
	"os"
	"testing"
	"time"
)

func TestRedisStartsAnswersAndStops(t *testing.T) {
	s := StartRedis(t, true)
	if err := s.ping(); err != nil {
		t.Fatalf("PING: %v", err)
	}
	if _, err := os.Stat(s.Dir()); err != nil {
		t.Fatalf("dir: %v", err)
	}
	s.Restart()
	if err := s.ping(); err != nil {
		t.Fatalf("PING after Restart: %v", err)
	}
	s.Stop()
	if c, err := net.DialTimeout("tcp", s.Addr(), time.Second); err == nil {
		c.Close()
		t.Fatalf("%s still accepts connections after Stop", s.Addr())
	}
	s.Stop() // a second Stop does nothing
}

func TestRedisAddrIsLoopback(t *testing.T) {
	addr := Redis(t)
	host, _, err := net.SplitHostPort(addr)
	if err != nil || host != "127.0.0.1" {
		t.Fatalf("Redis(t) = %q, want 127.0.0.1:port", addr)
	}
}

// stopTB records a Skip or Fatal and stops the helper there, as the real
// ones do, without ending the test that drives it.
type stopTB struct {
	testing.TB
	skipped, fatal string
}

type tbStopped struct{}

func (s *stopTB) Helper()                      {}
func (s *stopTB) Skip(args ...any)             { s.skipped = fmt.Sprint(args...); panic(tbStopped{}) }
func (s *stopTB) Fatal(args ...any)            { s.fatal = fmt.Sprint(args...); panic(tbStopped{}) }
func (s *stopTB) Fatalf(f string, args ...any) { s.Fatal(fmt.Sprintf(f, args...)) }

func startWithout(tb *stopTB) {
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(tbStopped); !ok {
				panic(r)
			}
		}
	}()
	StartRedis(tb, false)
}

// TestRedisMissingSkipsOrFails: without redis-server on PATH a test skips
// with the install hint, and fails instead under KOMMO_REQUIRE_REDIS=1.
func TestRedisMissingSkipsOrFails(t *testing.T) {
	t.Setenv("PATH", t.TempDir())

	t.Setenv(RequireRedisEnv, "")
	tb := &stopTB{TB: t}
	startWithout(tb)
	if want := "redis-server not installed (apt-get install redis-server); set KOMMO_REQUIRE_REDIS=1 to fail instead"; tb.skipped != want || tb.fatal != "" {
		t.Errorf("skipped %q, fatal %q; want skipped %q", tb.skipped, tb.fatal, want)
	}

	t.Setenv(RequireRedisEnv, "1")
	tb = &stopTB{TB: t}
	startWithout(tb)
	if want := "redis-server not installed (apt-get install redis-server) and KOMMO_REQUIRE_REDIS=1"; tb.fatal != want || tb.skipped != "" {
		t.Errorf("fatal %q, skipped %q; want fatal %q", tb.fatal, tb.skipped, want)
	}
}
