package demo

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"
)

// Timeouts of every HTTP server the examples start. Kommo waits at most 5
// seconds for the answer to a webhook and never sends it again, so reading
// a request may take well under that; writing leaves room for a handler
// that runs to its own deadline (kommo's webhook handler: 4 s by default).
const (
	ReadHeaderTimeout = 2 * time.Second
	ReadTimeout       = 3 * time.Second
	WriteTimeout      = 10 * time.Second
	IdleTimeout       = 30 * time.Second
)

// WebhookPattern is where ServeWebhooks serves the webhook handler. A
// channel's webhook URL ends in "/kommo/:scope_id"; Kommo replaces
// ":scope_id" with the scope of each hook.
const WebhookPattern = "POST /kommo/{scope_id}"

// HTTPServer is an HTTP server running in the background.
type HTTPServer struct {
	srv *http.Server
	ln  net.Listener
	err chan error
}

// Serve listens on addr (e.g. ":8080", or "127.0.0.1:0" for any free
// loopback port) and serves h with the timeouts above.
func Serve(addr string, h http.Handler) (*HTTPServer, error) {
	return serve(addr, &http.Server{
		Handler:           h,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
	})
}

func serve(addr string, srv *http.Server) (*HTTPServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &HTTPServer{srv: srv, ln: ln, err: make(chan error, 1)}
	go func() {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			s.err <- err
		}
	}()
	return s, nil
}

// ServeWebhooks serves a webhook handler (kommo.NewWebhookHandler) at
// WebhookPattern.
func ServeWebhooks(addr string, h http.Handler) (*HTTPServer, error) {
	mux := http.NewServeMux()
	mux.Handle(WebhookPattern, h)
	return Serve(addr, mux)
}

// Addr is the address the server listens on.
func (s *HTTPServer) Addr() net.Addr { return s.ln.Addr() }

// URL is "http://" and the listening address.
func (s *HTTPServer) URL() string { return "http://" + s.ln.Addr().String() }

// WebhookURL is the webhook URL of a ServeWebhooks server as a channel
// registration gives it: URL + "/kommo/:scope_id".
func (s *HTTPServer) WebhookURL() string { return s.URL() + "/kommo/:scope_id" }

// Err reports why the server stopped serving before Shutdown, if it did.
func (s *HTTPServer) Err() <-chan error { return s.err }

// Shutdown stops accepting requests and waits, until ctx is done, for
// those in flight.
func (s *HTTPServer) Shutdown(ctx context.Context) error { return s.srv.Shutdown(ctx) }

// Stop is Shutdown with a 5 s limit, for a defer.
func (s *HTTPServer) Stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.srv.Shutdown(ctx)
}
