package demo

import (
	"context"
	"testing"
	"time"
)

// TestContext is the context for one example test: cancelled after 60 s,
// or when the test ends.
func TestContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}
