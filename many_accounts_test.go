package kommo_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/time/rate"

	"github.com/kommo-go/kommo"
	"github.com/kommo-go/kommo/internal/testkit"
	"github.com/kommo-go/kommo/kommotest"
)

// Kommo's per-account limit, and the fake's per-scope bucket in these
// proofs: a second's worth of requests (the tolerance the load tests
// settled on, see serverTolerance) against the client's burst of 1.
const (
	scopeRPS   = kommo.DefaultRateLimit
	scopeBurst = kommo.DefaultRateLimit
)

// manyScopes is a fake serving n connected scopes (one channel, n
// accounts) each limited to scopeRPS, and each scope's conversation.
type manyScopes struct {
	srv    *kommotest.Server
	scopes []string
	hc     *http.Client
}

// amojoID is the made-up amojo id of account i.
func amojoID(i int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012d", i) }

func newManyScopes(tb testing.TB, n int, opts ...kommotest.Option) *manyScopes {
	tb.Helper()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = amojoID(i + 1)
	}
	srv := kommotest.New(tb, append([]kommotest.Option{
		kommotest.WithExtraAccounts(ids...),
		kommotest.WithScopeRateLimit(scopeRPS, scopeBurst),
		kommotest.WithRequestLog(0), // counted per scope instead
	}, opts...)...)
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n}}
	tb.Cleanup(hc.CloseIdleConnections)
	m := &manyScopes{srv: srv, hc: hc}
	setup := srv.MustClient(kommo.WithHTTPClient(hc)) // no client limit: 1 request per scope
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i, id := range ids {
		scope := srv.Connect(id)
		m.scopes = append(m.scopes, scope)
		wg.Add(1)
		go func() { // the chat Typing needs
			defer wg.Done()
			_, _, errs[i] = setup.Messages.Send(context.Background(), scope, &kommo.SendMessageRequest{
				ConversationID: "conv", Sender: &kommo.Participant{ID: "client", Name: "Client"},
				Message: kommo.TextMessage("hello"), Silent: true,
			})
		}()
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(tb, err)
	}
	return m
}

// scopesRun is the outcome of one run.
type scopesRun struct {
	ok, failed int
	firstErr   error
	elapsed    time.Duration
	limited    int // 429s the fake answered
	overLimit  []string
}

// rate is the steady-state aggregate: the requests after each scope's
// first (the client's burst of 1, sent at once) per second of the run.
func (r scopesRun) rate(scopes int) float64 {
	return float64(r.ok-min(r.ok, scopes)) / r.elapsed.Seconds()
}

// run sends Typing calls through client, one goroutine per scope, while
// more() says so (a goroutine stops at its first error when stopOnErr),
// and counts what the client and the fake saw.
func (m *manyScopes) run(ctx context.Context, client *kommo.Client, stopOnErr bool, more func() bool) scopesRun {
	var ok, failed atomic.Int64
	var firstErr atomic.Pointer[error]
	before := m.srv.RateLimitCounts()
	start := time.Now()
	var wg sync.WaitGroup
	for _, scope := range m.scopes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for more() {
				_, err := client.Messages.Typing(ctx, scope, &kommo.TypingRequest{ConversationID: "conv", SenderID: "client"})
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, &err)
					if stopOnErr {
						return
					}
					continue
				}
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	r := scopesRun{ok: int(ok.Load()), failed: int(failed.Load()), elapsed: time.Since(start)}
	if p := firstErr.Load(); p != nil {
		r.firstErr = *p
	}
	for key, c := range m.srv.RateLimitCounts() {
		if n := c.Limited - before[key].Limited; n > 0 {
			r.limited += n
			r.overLimit = append(r.overLimit, key)
		}
	}
	return r
}

// until returns a more() that is true until d has passed.
func until(d time.Duration) func() bool {
	end := time.Now().Add(d)
	return func() bool { return time.Now().Before(end) }
}

// manyScopesCount is how many scopes the test runs: Kommo's 200 in a
// plain run; under the race detector, which makes each request several
// times dearer, a 2-core machine cannot send 1,400 signed requests a
// second, so it runs 40 (280 requests a second) to test the same thing.
func manyScopesCount() int {
	if raceEnabled {
		return 40
	}
	return 200
}

// rateFloor is the share of the scopes' aggregate limit a run must reach.
// A run with KOMMO_LONG_TESTS=1, meant for a quiet machine, must reach the
// issue's 90 %. The default run must also pass on a loaded, shared 2-core
// machine, where the scheduler wakes the limiter's sleepers late and a
// late wake is time lost for good (a burst of 1 saves nothing up): at a
// load average of 15 the 200-scope run measured 43 % to 87 %. It asserts
// 25 %, still 50 times what one limiter shared by all scopes lets through
// (the control), so a client pacing its accounts together still fails
// it. BenchmarkManyScopes measures the figure (BENCHMARKS.md).
func rateFloor() float64 {
	if testkit.LongTests() {
		return 0.9
	}
	return 0.25
}

// TestManyScopesOneClient: one client, one process, 200 scopes at Kommo's
// 7 rps each against a fake that limits each scope to 7 rps: the client's
// per-account limiter lets every scope go at its own limit, so the
// aggregate reaches 90 % of 200 × 7 = 1,400 requests per second (with
// KOMMO_LONG_TESTS=1, 10 s; the default 2 s run asserts rateFloor), with
// no error and no 429. BenchmarkManyScopes measures the same.
func TestManyScopesOneClient(t *testing.T) {
	n, d := manyScopesCount(), 2*time.Second
	if testkit.LongTests() {
		d = 10 * time.Second
	}
	m := newManyScopes(t, n)
	client := m.srv.MustClient(kommo.WithHTTPClient(m.hc), kommo.WithRateLimit(scopeRPS, 1))
	r := m.run(t.Context(), client, false, until(d))
	want := float64(n) * scopeRPS
	t.Logf("%d scopes for %v: %d calls ok, %d failed, %.0f req/s steady (%.1f %% of %.0f), %d 429s",
		n, r.elapsed.Round(time.Millisecond), r.ok, r.failed, r.rate(n), 100*r.rate(n)/want, want, r.limited)
	require.Zero(t, r.failed, "first error: %v", r.firstErr)
	assert.Zero(t, r.limited, "no scope went over its limit: %v", r.overLimit)
	assert.GreaterOrEqual(t, r.rate(n), rateFloor()*want, "aggregate at least %.0f %% of %d scopes × %d rps", 100*rateFloor(), n, scopeRPS)
	assert.LessOrEqual(t, r.rate(n), 1.05*want, "and not above the scopes' limits")
}

// TestManyScopesSharedRateLimiterControl is the control: the same run
// through one *rate.Limiter shared by every scope (WithChatRateLimiter,
// the way a client limited all its accounts together before issue 15)
// goes at 7 requests per second in all, whatever the number of scopes.
func TestManyScopesSharedRateLimiterControl(t *testing.T) {
	n, d := manyScopesCount(), time.Second
	m := newManyScopes(t, n)
	client := m.srv.MustClient(kommo.WithHTTPClient(m.hc), kommo.WithChatRateLimiter(rate.NewLimiter(scopeRPS, 1)))
	ctx, cancel := context.WithTimeout(t.Context(), d)
	defer cancel()
	// A call whose wait would pass the deadline fails at once with a
	// *RateLimitError: that is how each goroutine's run ends; only
	// successes count.
	r := m.run(ctx, client, true, func() bool { return ctx.Err() == nil })
	var rle *kommo.RateLimitError
	require.ErrorAs(t, r.firstErr, &rle, "the runs ended at the deadline")
	t.Logf("%d scopes, one shared limiter, %v: %d calls ok (%.1f req/s), %d refused by the deadline",
		n, r.elapsed.Round(time.Millisecond), r.ok, float64(r.ok)/r.elapsed.Seconds(), r.failed)
	assert.LessOrEqual(t, r.ok, int(scopeRPS*d.Seconds())+2, "the shared limiter holds all scopes to 7 rps together")
	assert.GreaterOrEqual(t, r.ok, 2, "and it does let calls through")
	assert.Zero(t, r.limited)
}

// BenchmarkManyScopes: one client, 200 scopes at Kommo's 7 rps each
// against kommotest's per-scope limit of 7 rps; b.N calls in all, shared
// by one goroutine per scope. It reports the steady-state aggregate as
// req/s (each scope's first call, the client's burst, not counted) and
// fails on any error or 429. Run with -benchtime=10s for a steady figure:
//
//	go test -run '^$' -bench BenchmarkManyScopes -benchtime=10s -count=5
func BenchmarkManyScopes(b *testing.B) {
	const n = 200
	m := newManyScopes(b, n)
	client := m.srv.MustClient(kommo.WithHTTPClient(m.hc), kommo.WithRateLimit(scopeRPS, 1))
	var left atomic.Int64
	left.Store(int64(b.N))
	b.ResetTimer()
	r := m.run(b.Context(), client, false, func() bool { return left.Add(-1) >= 0 })
	b.StopTimer()
	if r.failed > 0 || r.limited > 0 {
		b.Fatalf("%d errors (first: %v), %d 429s on %v", r.failed, r.firstErr, r.limited, r.overLimit)
	}
	b.ReportMetric(r.rate(n), "req/s")
	b.ReportMetric(100*r.rate(n)/(n*scopeRPS), "pct_of_limit")
}
