package kommo

import (
	"context"
	"time"
)

// Clock supplies time to the client: Now for Date headers and Retry-After
// dates, Sleep for every wait (retry backoff, Retry-After, rate limiting).
// Tests inject one to observe waits without spending them.
type Clock interface {
	Now() time.Time
	// Sleep waits for d or until ctx is done, returning ctx's error then.
	Sleep(ctx context.Context, d time.Duration) error
}

// SystemClock is the Clock clients use by default: real time, and waits on
// a timer that stops when the context is done. Embed it in a Clock of your
// own to change only Now.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// Sleep waits for d, or until ctx is done (returning ctx's error).
func (SystemClock) Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
