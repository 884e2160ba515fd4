package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/kommo-go/kommo"
)

// Main runs an example's run with a context that is cancelled on Ctrl+C
// or SIGTERM, so that the example can stop cleanly. When run fails, Main
// prints "<name>: <error>" to stderr, with the request id to quote to
// Kommo's support when the error carries one, and exits with status 1.
func Main(name string, run func(ctx context.Context) error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx)
	stop()
	if err != nil {
		report(os.Stderr, name, err)
		os.Exit(1)
	}
}

// report prints a failed run's error.
func report(w io.Writer, name string, err error) {
	fmt.Fprintf(w, "%s: %v\n", name, err)
	// An *APIError carries what Kommo answered.
	var apiErr *kommo.APIError
	if errors.As(err, &apiErr) && apiErr.RequestID != "" {
		fmt.Fprintf(w, "%s: request id: %s\n", name, apiErr.RequestID)
	}
}

// Usage prints "<name>: <msg>" to stderr and exits with status 2, for a
// configuration the example cannot run with.
func Usage(name, msg string) {
	fmt.Fprintf(os.Stderr, "%s: %s\n", name, msg)
	os.Exit(2)
}
