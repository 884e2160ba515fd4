// Command hookproc is a helper of kommo's durable-intake test, not part of
// the SDK: the test builds it with go build and runs webhook handlers and
// workers as separate processes on one Redis, and kills the workers.
//
//	hookproc -mode handler -redis 127.0.0.1:6379 -secret S -record handler1.log
//	hookproc -mode worker  -redis 127.0.0.1:6379 -secret S -record worker1.log -lease 1s
//
// A handler prints "listening http://127.0.0.1:PORT" and serves
// kommo.WebhookHandler with the Redis queue at POST /kommo/{scope_id}; a
// worker prints "working" and runs a kommo.WebhookWorker on the queue. The
// callback of both (the handler runs it inline when Redis is down) appends
// the message id of each message event to the -record file, one write per
// line, so a line written before a SIGKILL survives it. A worker also
// appends "ack-failed <id>" for each delivery it handled but could not
// acknowledge (it runs again), a handler "fallback <id>" for each webhook
// it ran inline because the queue failed (the enqueue may have gone
// through all the same).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kommo-go/kommo"
	"github.com/kommo-go/kommo/kommoredis"
)

func main() {
	mode := flag.String("mode", "", "handler or worker")
	addr := flag.String("redis", "", "Redis address")
	secret := flag.String("secret", "", "channel secret")
	record := flag.String("record", "", "file to append handled message ids to")
	lease := flag.Duration("lease", time.Second, "queue lease")
	concurrency := flag.Int("concurrency", 4, "worker concurrency")
	flag.Parse()
	if *addr == "" || *secret == "" || *record == "" {
		fail(errors.New("-redis, -secret and -record are required"))
	}
	f, err := os.OpenFile(*record, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		fail(err)
	}
	rec := &recorder{f: f}

	rdb := redis.NewClient(&redis.Options{Addr: *addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond, ContextTimeoutEnabled: true})
	q, err := kommoredis.NewWebhookQueue(rdb, "proof", kommoredis.WithLease(*lease), kommoredis.WithPoll(100*time.Millisecond))
	if err != nil {
		fail(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()

	switch *mode {
	case "handler":
		h, err := kommo.NewWebhookHandler(*secret, rec.callback, kommo.WithWebhookQueue(q),
			kommo.WithWebhookErrorHandler(func(_ *http.Request, err error) {
				var se *kommo.StoreError
				if errors.Is(err, kommo.ErrWebhookQueueFallback) && errors.As(err, &se) {
					rec.line("fallback " + se.Key)
				}
			}))
		if err != nil {
			fail(err)
		}
		mux := http.NewServeMux()
		mux.Handle("POST /kommo/{scope_id}", h)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fail(err)
		}
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 2 * time.Second, ReadTimeout: 3 * time.Second, WriteTimeout: 10 * time.Second}
		go func() {
			<-ctx.Done()
			_ = srv.Shutdown(context.Background())
		}()
		fmt.Printf("listening http://%s\n", ln.Addr())
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			fail(err)
		}
	case "worker":
		policy := kommo.DefaultWebhookWorkerRetry()
		policy.BaseBackoff, policy.MaxBackoff = 50*time.Millisecond, 200*time.Millisecond
		w, err := kommo.NewWebhookWorker(q, rec.callback, kommo.WithWorkerConcurrency(*concurrency),
			kommo.WithWorkerRetry(policy), kommo.WithWorkerTimeout(*lease/2),
			kommo.WithWorkerErrorHandler(func(d *kommo.WebhookDelivery, err error) {
				var se *kommo.StoreError
				if d != nil && errors.As(err, &se) && se.Op == "Ack" {
					rec.line("ack-failed " + d.ID)
				}
			}))
		if err != nil {
			fail(err)
		}
		fmt.Println("working")
		if err := w.Run(ctx); err != nil {
			fail(err)
		}
	default:
		fail(fmt.Errorf("unknown -mode %q", *mode))
	}
}

// recorder appends lines to a file, one write each.
type recorder struct {
	mu sync.Mutex
	f  *os.File
}

func (r *recorder) line(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, err := r.f.WriteString(strings.TrimSpace(s) + "\n"); err != nil {
		fail(err)
	}
}

func (r *recorder) callback(_ context.Context, ev kommo.WebhookEvent) error {
	if m, ok := ev.(*kommo.MessageEvent); ok {
		r.line(m.Message.ID)
	}
	return nil
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "hookproc:", err)
	os.Exit(1)
}
