package kommo_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/kommo-go/kommo"
	"github.com/kommo-go/kommo/internal/testkit"
	"github.com/kommo-go/kommo/kommoredis"
	"github.com/kommo-go/kommo/kommotest"
)

// replicas is how many OS processes the multi-replica proofs run.
const replicas = 3

// accountProcResult is what internal/accountproc prints.
type accountProcResult struct {
	OK        int            `json:"ok"`
	InWindow  int            `json:"in_window"`
	Reauth    int            `json:"reauth"`
	Other     int            `json:"other"`
	ElapsedMS int64          `json:"elapsed_ms"`
	PerKey    map[string]int `json:"per_key"`
	Errors    []string       `json:"errors"`
}

// runReplicas starts replicas processes of bin with args, lets them go
// together once all are set up, and returns what each printed.
func runReplicas(t *testing.T, bin string, args ...string) []accountProcResult {
	t.Helper()
	stdins := make([]io.WriteCloser, replicas)
	outs := make([]*bufio.Reader, replicas)
	cmds := make([]*exec.Cmd, replicas)
	for i := range replicas {
		cmd := exec.Command(bin, args...)
		cmd.Stderr = os.Stderr
		in, err := cmd.StdinPipe()
		require.NoError(t, err)
		out, err := cmd.StdoutPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		cmds[i], stdins[i], outs[i] = cmd, in, bufio.NewReader(out)
	}
	for i := range replicas {
		line, err := outs[i].ReadString('\n')
		require.NoError(t, err, "process %d", i)
		require.Equal(t, "ready\n", line, "process %d", i)
	}
	for _, in := range stdins {
		_, _ = io.WriteString(in, "go\n")
		in.Close()
	}
	res := make([]accountProcResult, replicas)
	for i := range replicas {
		rest, err := io.ReadAll(outs[i])
		require.NoError(t, err)
		require.NoError(t, json.Unmarshal(rest, &res[i]), "process %d printed %q", i, rest)
	}
	return res
}

// redisClient connects to a test's redis-server.
func redisClient(t *testing.T, addr string) *redis.Client {
	rdb := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true})
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// TestReplicasShareAccountTokens: 3 processes serve the same accounts
// (10 for 5 s; 50 for 20 s with KOMMO_LONG_TESTS=1) through kommo.Accounts
// on one kommoredis token store, each calling the CRM API for every
// account without pause, against a fake whose refresh tokens are single
// use and bound to their account. Every access token is due for refresh
// a second after it is issued (its lifetime is TokenExpiryDelta + 1 s),
// so each account's token expires every second. Every call succeeds, no
// call needs re-authorization, and each account is refreshed about once
// per expiry: at least once, at most once per second of the run plus
// one, with no refresh refused, which a second refresh of one token by
// another process would be.
func TestReplicasShareAccountTokens(t *testing.T) {
	t.Parallel() // mostly waiting on go build and the processes
	bin := testkit.BuildHelper(t, "./internal/accountproc")
	rdb := redisClient(t, testkit.Redis(t))
	n, d := 10, 5*time.Second
	if testkit.LongTests() {
		n, d = 50, 20*time.Second
	}
	lifetime := kommo.TokenExpiryDelta + time.Second
	srv := kommotest.New(t, kommotest.WithTokenLifetime(lifetime), kommotest.WithRequestLog(0))
	store, err := kommoredis.NewTokenStore(rdb)
	require.NoError(t, err)
	ctx := t.Context()
	hosts := make([]string, n)
	for i := range hosts {
		hosts[i] = fmt.Sprintf("replica%02d.kommo.com", i+1)
		at, rt := srv.IssueTokensFor(hosts[i], lifetime)
		require.NoError(t, store.SaveToken(ctx, hosts[i], &oauth2.Token{AccessToken: at, RefreshToken: rt, TokenType: "Bearer", Expiry: time.Now().Add(lifetime)}))
	}

	res := runReplicas(t, bin, "-mode", "tokens", "-redis", rdb.Options().Addr, "-fake", srv.URL(),
		"-accounts", strings.Join(hosts, ","), "-client-id", srv.OAuthClientID(), "-client-secret", srv.OAuthClientSecret(),
		"-redirect", srv.OAuthRedirectURI(), "-d", d.String())
	var calls int
	for i, r := range res {
		t.Logf("process %d: %d calls ok in %d ms, %d ErrReauthorizationRequired, %d other %v", i, r.OK, r.ElapsedMS, r.Reauth, r.Other, r.Errors)
		calls += r.OK
		assert.Zero(t, r.Reauth, "process %d: no ErrReauthorizationRequired", i)
		assert.Zero(t, r.Other, "process %d: every call succeeds: %v", i, r.Errors)
		for _, h := range hosts {
			assert.Positive(t, r.PerKey[h], "process %d called %s", i, h)
		}
	}
	expiries := int(d / time.Second)
	var total int
	least, most := -1, 0
	for _, h := range hosts {
		granted, refused := srv.Refreshes(h)
		total += granted
		most = max(most, granted)
		if least < 0 || granted < least {
			least = granted
		}
		assert.GreaterOrEqual(t, granted, 1, "%s was refreshed", h)
		assert.LessOrEqual(t, granted, expiries+1, "%s: one refresh per expiry", h)
		assert.Zero(t, refused, "%s: no refresh token was presented twice", h)
	}
	assert.GreaterOrEqual(t, total, n*expiries/3, "the accounts were refreshed again and again, not once")
	t.Logf("%d processes × %d accounts for %v: %d calls, %d refreshes (%.1f per account, %d to %d; %d expiries each)",
		replicas, n, d, calls, total, float64(total)/float64(n), least, most, expiries)
}

// scopeLimiterRun runs the 3 processes in limiter mode over m's scopes
// for d (limiter "redis": one kommoredis.Limiter on one Redis; "memory":
// each process its own MemoryLimiter, the control) and returns the calls
// that succeeded, the aggregate steady-state rate over d and the 429s the
// fake answered per scope.
func scopeLimiterRun(t *testing.T, bin string, m *manyScopes, addr, limiter string, d time.Duration) (ok int, rps float64, limited map[string]int) {
	t.Helper()
	before := m.srv.RateLimitCounts()
	res := runReplicas(t, bin, "-mode", "limiter", "-limiter", limiter, "-redis", addr, "-fake", m.srv.URL(),
		"-scopes", strings.Join(m.scopes, ","), "-channel", m.srv.ChannelID(), "-secret", m.srv.ChannelSecret(), "-d", d.String())
	var inWindow int
	for i, r := range res {
		t.Logf("process %d (%s limiter): %d calls ok in %d ms (%d within %v), %d failed %v", i, limiter, r.OK, r.ElapsedMS, r.InWindow, d, r.Other+r.Reauth, r.Errors)
		ok += r.OK
		inWindow += r.InWindow
		if limiter == "redis" {
			assert.Zero(t, r.Other+r.Reauth, "process %d: every call succeeds: %v", i, r.Errors)
		}
	}
	limited = map[string]int{}
	for key, c := range m.srv.RateLimitCounts() {
		if n := c.Limited - before[key].Limited; n > 0 {
			limited[key] = n
		}
	}
	// The calls that ended within d, per second of d; each scope's first
	// call, its burst of 1, is not part of the rate.
	rps = float64(inWindow-min(inWindow, len(m.scopes))) / d.Seconds()
	return ok, rps, limited
}

// TestReplicasShareScopeLimiter: 3 processes send to the same 50 scopes
// through one kommoredis limiter (7 rps, burst 1 per scope) against a
// fake that limits each scope to 7 rps (a second's worth of burst, the
// load tests' tolerance). No scope goes over its limit (no 429), and
// together they reach 90 % of 50 × 7 rps (with KOMMO_LONG_TESTS=1; the
// default run asserts rateFloor, see there). The control runs the
// same processes each with its own in-memory limiter: together they send
// 3 × 7 rps per scope and the fake answers 429s. 2 s (20 s with
// KOMMO_LONG_TESTS=1), the control 1.5 s.
func TestReplicasShareScopeLimiter(t *testing.T) {
	t.Parallel() // its rate floor allows for a loaded machine (rateFloor)
	bin := testkit.BuildHelper(t, "./internal/accountproc")
	addr := testkit.Redis(t)
	const n = 50
	d := 2 * time.Second
	if testkit.LongTests() {
		d = 20 * time.Second
	}
	m := newManyScopes(t, n)
	want := float64(n) * scopeRPS

	ok, rps, limited := scopeLimiterRun(t, bin, m, addr, "redis", d)
	t.Logf("shared Redis limiter: %d processes × %d scopes for %v: %d calls, %.0f req/s steady (%.1f %% of %.0f), 429s: %v",
		replicas, n, d, ok, rps, 100*rps/want, want, limited)
	assert.Empty(t, limited, "no scope went over its limit")
	assert.GreaterOrEqual(t, rps, rateFloor()*want, "aggregate at least %.0f %% of %d × %d rps", 100*rateFloor(), n, scopeRPS)

	time.Sleep(time.Second) // the fake's buckets fill up again
	_, rps, limited = scopeLimiterRun(t, bin, m, addr, "memory", 1500*time.Millisecond)
	t.Logf("control, a limiter per process: %.0f req/s, 429s on %d scopes", rps, len(limited))
	assert.NotEmpty(t, limited, "without the shared limiter the processes together exceed the scopes' limits")
}
