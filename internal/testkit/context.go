package testkit

import (
	"context"
	"testing"
	"time"
)

// ContextTimeout is how long a context from Context lives at most: long
// enough for any test on a loaded machine, short enough that a hung call
// fails the test instead of the whole run.
const ContextTimeout = 60 * time.Second

// Context returns t.Context() bounded by ContextTimeout; it is canceled
// when the test ends.
func Context(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), ContextTimeout)
	t.Cleanup(cancel)
	return ctx
}
