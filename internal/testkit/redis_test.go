package testkit

import (
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
