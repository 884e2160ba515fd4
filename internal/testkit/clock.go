package testkit

import (
	"context"
	"sync"
	"time"
)

// Clock is a manual clock for tests. Its time moves only when a test says
// so (Advance, Set), when the code under test sleeps (Sleep advances it by
// the wait instead of spending it) and, with AdvanceOnNow, on every Now.
// Every wait passed to Sleep is recorded for Waits.
//
// Clock satisfies kommo.Clock; pass it to kommo.WithClock,
// kommo.WithSignerClock, kommotest.WithClock or OAuthConfig.Clock so that the
// code under test and the test read the same time. A Clock is safe for concurrent use. The zero
// Clock starts at the zero time and has no options.
type Clock struct {
	mu      sync.Mutex
	now     time.Time
	waits   []time.Duration
	step    time.Duration
	onSleep func()
	sleeps  bool // RealSleep
}

// ClockOption changes how a Clock made by NewClock behaves.
type ClockOption func(*Clock)

// AdvanceOnNow makes every call to Now first advance the clock by step and
// then return the new time, as wall time moves on between two reads (for
// example between two attempts of a request, each with its own Date). The
// first Now therefore returns start+step.
func AdvanceOnNow(step time.Duration) ClockOption {
	return func(c *Clock) { c.step = step }
}

// OnSleep makes Sleep call f after it has recorded the wait and advanced the
// clock, outside the clock's lock; Sleep then returns ctx.Err(). A test uses
// it to act in the middle of a wait, for example to cancel the context the
// code under test is waiting on, so that Sleep fails as a real wait would.
func OnSleep(f func()) ClockOption {
	return func(c *Clock) { c.onSleep = f }
}

// RealSleep makes Sleep also wait d of real time (returning early with
// ctx.Err() when ctx is done), after recording the wait and advancing the
// clock. Use it in end-to-end tests that check a wait really happened.
func RealSleep() ClockOption {
	return func(c *Clock) { c.sleeps = true }
}

// NewClock returns a Clock that reads start until it is moved.
func NewClock(start time.Time, opts ...ClockOption) *Clock {
	c := &Clock{now: start}
	for _, opt := range opts {
		opt(c)
	}
	return c
}

// Now returns the clock's current time (first advancing it by the
// AdvanceOnNow step, if any).
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(c.step)
	return c.now
}

// Sleep returns ctx.Err() at once, recording nothing, if ctx is already
// done. Otherwise it records d, advances the clock by d (a non-positive d
// does not move it) and returns nil without spending real time. With
// OnSleep or RealSleep it then runs the hook or really waits, and returns
// ctx.Err() instead.
func (c *Clock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	c.waits = append(c.waits, d)
	if d > 0 {
		c.now = c.now.Add(d)
	}
	onSleep, sleeps := c.onSleep, c.sleeps
	c.mu.Unlock()
	if onSleep == nil && !sleeps {
		return nil
	}
	if onSleep != nil {
		onSleep()
	}
	if sleeps && d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
		case <-t.C:
		}
	}
	return ctx.Err()
}

// Advance moves the clock forward by d (backward if d is negative).
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// Waits returns a copy of the waits passed to Sleep so far, in order (nil
// when there were none).
func (c *Clock) Waits() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.waits...)
}
