package demo

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrTimeout is Await's error when nothing arrived in time.
var ErrTimeout = errors.New("timed out")

// Await returns the first value received from ch within timeout. It fails
// with an error matching ErrTimeout when none arrives in time, and with
// ctx's error when ctx is done first.
func Await[T any](ctx context.Context, ch <-chan T, timeout time.Duration) (T, error) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var zero T
	select {
	case v := <-ch:
		return v, nil
	case <-timer.C:
		return zero, fmt.Errorf("%w after %s", ErrTimeout, timeout)
	case <-ctx.Done():
		return zero, ctx.Err()
	}
}
