package kommo

import (
	"context"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/time/rate"
)

// stallClock reads real time; every sleep that starts before release
// ends only at release, as timers do when the whole process stalls, and
// later sleeps are real.
type stallClock struct {
	SystemClock
	release chan struct{}
}

func (c stallClock) Sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-c.release:
		return c.SystemClock.Sleep(ctx, d)
	default:
	}
	select {
	case <-c.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// TestLimiterDoesNotBurstAfterAStall: callers waiting on the rate limiter
// when the process stalls do not all send when it resumes; they keep to
// the rate. (A reservation taken before the sleep would be spent at once
// by every sleeper.)
func TestLimiterDoesNotBurstAfterAStall(t *testing.T) {
	const (
		waiters = 8
		rps     = 20 // one token every 50 ms
	)
	clk := stallClock{release: make(chan struct{})}
	c := &Client{clock: clk}
	l := rate.NewLimiter(rps, 1)
	require.True(t, l.Allow(), "take the only token: everyone below must wait")

	var (
		mu     sync.Mutex
		passed []time.Time
		wg     sync.WaitGroup
	)
	for range waiters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.waitLimiter(t.Context(), sharedRateLimiter{l}, "chat:test", nil); err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			passed = append(passed, time.Now())
			mu.Unlock()
		}()
	}
	time.Sleep(500 * time.Millisecond) // the stall: every waiter's timer is overdue
	close(clk.release)
	wg.Wait()

	require.Len(t, passed, waiters)
	sort.Slice(passed, func(i, j int) bool { return passed[i].Before(passed[j]) })
	// At the rate, 8 waiters need 7 token intervals (350 ms) after the
	// first; all at once would take a few microseconds. Half the ideal span
	// is an honest margin for a loaded machine.
	span := passed[waiters-1].Sub(passed[0])
	assert.GreaterOrEqual(t, span, (waiters-1)*time.Second/rps/2, "the waiters kept to the rate after the stall")
}
