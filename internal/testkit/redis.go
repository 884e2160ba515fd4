package testkit

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// RequireRedisEnv, set to 1, makes a test that needs redis-server fail
// instead of skipping when it is not installed (.ci/run sets it).
const RequireRedisEnv = "KOMMO_REQUIRE_REDIS"

// redisStartTimeout bounds how long a redis-server may take to answer PING.
const redisStartTimeout = 10 * time.Second

// RedisServer is a redis-server of one test: its own loopback port and
// temporary directory, stopped when the test ends.
type RedisServer struct {
	t          testing.TB
	bin        string
	port       int
	dir        string
	appendOnly bool
	cmd        *exec.Cmd
	exited     chan struct{}
}

// Redis starts a redis-server for t without persistence and returns its
// address ("127.0.0.1:port"). See StartRedis.
func Redis(t testing.TB) string {
	t.Helper()
	return StartRedis(t, false).Addr()
}

// StartRedis starts a redis-server for t on a free loopback port, in its
// own temporary directory, with RDB snapshots off and the append-only file
// on (with appendfsync always, so every write is on disk before Redis
// answers) when appendOnly is set. It returns once the server answers PING
// and stops it when the test ends. When redis-server is not installed the
// test is skipped, or fails under KOMMO_REQUIRE_REDIS=1.
func StartRedis(t testing.TB, appendOnly bool) *RedisServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		const msg = "redis-server not installed (apt-get install redis-server); set " + RequireRedisEnv + "=1 to fail instead"
		if os.Getenv(RequireRedisEnv) == "1" {
			t.Fatal("redis-server not installed (apt-get install redis-server) and " + RequireRedisEnv + "=1")
		}
		t.Skip(msg)
	}
	s := &RedisServer{t: t, bin: bin, dir: t.TempDir(), appendOnly: appendOnly}
	s.port = freePort(t)
	s.start()
	t.Cleanup(s.Stop)
	return s
}

// Addr returns the server's address, "127.0.0.1:port"; it stays the same
// across Restart.
func (s *RedisServer) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// Dir returns the server's working directory (its append-only file).
func (s *RedisServer) Dir() string { return s.dir }

func (s *RedisServer) start() {
	s.t.Helper()
	args := []string{"--bind", "127.0.0.1", "--port", strconv.Itoa(s.port), "--dir", s.dir,
		"--save", "", "--daemonize", "no", "--protected-mode", "yes", "--loglevel", "warning",
		"--logfile", "redis.log"}
	if s.appendOnly {
		args = append(args, "--appendonly", "yes", "--appendfsync", "always")
	} else {
		args = append(args, "--appendonly", "no")
	}
	cmd := exec.Command(s.bin, args...)
	cmd.Dir = s.dir
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start redis-server: %v", err)
	}
	s.cmd, s.exited = cmd, make(chan struct{})
	go func(exited chan struct{}) { _ = cmd.Wait(); close(exited) }(s.exited)
	deadline := time.Now().Add(redisStartTimeout)
	for {
		if err := s.ping(); err == nil {
			return
		} else if time.Now().After(deadline) {
			s.Stop()
			log, _ := os.ReadFile(s.dir + "/redis.log")
			s.t.Fatalf("redis-server on %s did not answer PING within %v: %v\n%s", s.Addr(), redisStartTimeout, err, log)
		}
		select {
		case <-s.exited:
			log, _ := os.ReadFile(s.dir + "/redis.log")
			s.t.Fatalf("redis-server on %s exited at start:\n%s", s.Addr(), log)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// ping sends PING over a fresh connection and reads +PONG.
func (s *RedisServer) ping() error {
	c, err := net.DialTimeout("tcp", s.Addr(), time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(line) != "+PONG" {
		return fmt.Errorf("PING answered %q", strings.TrimSpace(line))
	}
	return nil
}

// Stop stops the server (SIGTERM, then SIGKILL after 5 s) and waits for it
// to exit; the address then refuses connections. Stopping a stopped server
// does nothing.
func (s *RedisServer) Stop() {
	if s.cmd == nil {
		return
	}
	s.Resume() // a paused server cannot act on SIGTERM
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(5 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
	s.cmd = nil
}

// Kill kills the server at once (SIGKILL), as a crash would, and waits for
// it to exit.
func (s *RedisServer) Kill() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.exited
	s.cmd = nil
}

// Pause stops the server process (SIGSTOP), as a stuck Redis would be:
// connections stay open and nothing answers. Resume continues it; the
// test's end resumes a paused server before stopping it.
func (s *RedisServer) Pause() {
	if s.cmd != nil {
		_ = s.cmd.Process.Signal(syscall.SIGSTOP)
	}
}

// Resume continues a paused server (SIGCONT).
func (s *RedisServer) Resume() {
	if s.cmd != nil {
		_ = s.cmd.Process.Signal(syscall.SIGCONT)
	}
}

// Start starts a stopped server again on the same port and directory.
func (s *RedisServer) Start() {
	s.t.Helper()
	if s.cmd != nil {
		s.t.Fatal("testkit: RedisServer.Start: already running")
	}
	s.start()
}

// Restart kills the server (SIGKILL: no shutdown save) and starts it again
// on the same port and directory: with the append-only file on, what it
// had acknowledged is back.
func (s *RedisServer) Restart() {
	s.t.Helper()
	s.Kill()
	s.start()
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
