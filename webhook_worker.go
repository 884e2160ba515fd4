package kommo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// WebhookWorker runs the callback of webhooks that a WebhookHandler put in
// a WebhookQueue (WithWebhookQueue). Each delivery gets up to MaxAttempts
// runs of the callback (WithWorkerRetry), spaced by the policy's backoff;
// one that fails them all becomes a dead letter (WebhookQueue.DeadLetters,
// Replay), and, for a message event, can be reported to Kommo as delivery
// status -1 (WithWorkerDeliveryStatus) so the manager sees that the
// message did not get through.
//
// Delivery is at least once: the queue gives a delivery whose worker died
// before acknowledging it to another worker after its lease, so a
// callback interrupted by a crash runs again. Make it idempotent (keyed on
// the message id, say). The queue drops exact copies of a webhook
// (WebhookDelivery.ID), so a webhook posted twice runs once.
type WebhookWorker struct {
	q   WebhookQueue
	fn  WebhookFunc
	cfg workerConfig
}

// WebhookWorkerOption configures a WebhookWorker. An invalid value is an
// *OptionError from NewWebhookWorker.
type WebhookWorkerOption func(*workerConfig) error

type workerConfig struct {
	concurrency int
	retry       RetryPolicy
	timeout     time.Duration
	onError     func(d *WebhookDelivery, err error)
	logger      *slog.Logger
	clock       Clock
	status      *Client
	observer    *Observer
}

// Worker defaults.
const (
	// WebhookWorkerDefaultConcurrency is how many callbacks a WebhookWorker
	// runs at once by default.
	WebhookWorkerDefaultConcurrency = 4
	// WebhookWorkerDefaultTimeout bounds each callback run by default. Keep
	// it below the queue's lease, or a slow callback's delivery is given
	// to a second worker while the first still runs it.
	WebhookWorkerDefaultTimeout = 20 * time.Second
)

// DefaultWebhookWorkerRetry is a WebhookWorker's default retry policy: 8
// runs, 1 s doubling to at most 5 min between them (about 10 minutes in
// all), 25 % jitter.
func DefaultWebhookWorkerRetry() RetryPolicy {
	return RetryPolicy{MaxAttempts: 8, BaseBackoff: time.Second, MaxBackoff: 5 * time.Minute, Jitter: 0.25}
}

// WithWorkerConcurrency runs up to n callbacks at once (default
// WebhookWorkerDefaultConcurrency); n must be positive.
func WithWorkerConcurrency(n int) WebhookWorkerOption {
	return func(c *workerConfig) error {
		if n <= 0 {
			return optionErr("WithWorkerConcurrency", "concurrency must be positive, got %d", n)
		}
		c.concurrency = n
		return nil
	}
}

// WithWorkerRetry sets how often a failed callback runs again and how long
// the worker waits between runs (MaxAttempts, BaseBackoff, MaxBackoff and
// Jitter of p; the other fields are not used). Default
// DefaultWebhookWorkerRetry.
func WithWorkerRetry(p RetryPolicy) WebhookWorkerOption {
	return func(c *workerConfig) error {
		if err := p.validate(); err != nil {
			return optionErr("WithWorkerRetry", "%v", err)
		}
		c.retry = p
		return nil
	}
}

// WithWorkerTimeout bounds each callback run (default
// WebhookWorkerDefaultTimeout); d must be positive.
func WithWorkerTimeout(d time.Duration) WebhookWorkerOption {
	return func(c *workerConfig) error {
		if d <= 0 {
			return optionErr("WithWorkerTimeout", "timeout must be positive, got %s", d)
		}
		c.timeout = d
		return nil
	}
}

// WithWorkerErrorHandler calls fn with every failure: of a callback run
// (err wraps ErrWebhookCallback; more runs may follow), of a delivery that
// became a dead letter (ErrWebhookDeadLetter), of the queue (a
// *StoreError) and of a delivery-status report.
func WithWorkerErrorHandler(fn func(d *WebhookDelivery, err error)) WebhookWorkerOption {
	return func(c *workerConfig) error {
		if fn == nil {
			return optionErr("WithWorkerErrorHandler", "nil function")
		}
		c.onError = fn
		return nil
	}
}

// WithWorkerLogger logs each failure (warn) and dead letter (error).
func WithWorkerLogger(l *slog.Logger) WebhookWorkerOption {
	return func(c *workerConfig) error {
		if l == nil {
			return optionErr("WithWorkerLogger", "nil logger")
		}
		c.logger = l
		return nil
	}
}

// WithWorkerClock sets the clock the worker reads retry times and run
// durations from and sleeps on after a queue failure (default
// SystemClock). The queue decides when a retry is due by its own clock
// (MemoryWebhookQueue: the system's; kommoredis: the Redis server's), so
// a manual clock suits only a queue that reads the same one.
func WithWorkerClock(clk Clock) WebhookWorkerOption {
	return func(c *workerConfig) error {
		if clk == nil {
			return optionErr("WithWorkerClock", "nil clock")
		}
		c.clock = clk
		return nil
	}
}

// WithWorkerDeliveryStatus reports a message event that became a dead
// letter to Kommo through client, as delivery status -1 with error code
// 905 (DeliveryErrorOther) and a text saying the message could not be
// delivered, so the manager sees it in the chat. Only events with a
// message id (MessageEvent) are reported.
func WithWorkerDeliveryStatus(client *Client) WebhookWorkerOption {
	return func(c *workerConfig) error {
		if client == nil {
			return optionErr("WithWorkerDeliveryStatus", "nil client")
		}
		c.status = client
		return nil
	}
}

// WithWorkerObserver reports each callback run to o's WebhookCallbackDone
// hook, as WithWebhookObserver does for the handler's own runs (package
// kommootel: WithWorkerObserver(obs.Hooks())).
func WithWorkerObserver(o *Observer) WebhookWorkerOption {
	return func(c *workerConfig) error {
		if o == nil {
			return optionErr("WithWorkerObserver", "nil observer")
		}
		c.observer = o
		return nil
	}
}

// NewWebhookWorker returns a worker running fn on the deliveries of q. fn
// gets the event and a context carrying the scope id (WebhookScopeID) and
// the run's deadline, as with WebhookHandler.
func NewWebhookWorker(q WebhookQueue, fn WebhookFunc, opts ...WebhookWorkerOption) (*WebhookWorker, error) {
	cfg := workerConfig{
		concurrency: WebhookWorkerDefaultConcurrency,
		retry:       DefaultWebhookWorkerRetry(),
		timeout:     WebhookWorkerDefaultTimeout,
		logger:      slog.New(slog.DiscardHandler),
		clock:       SystemClock{},
	}
	var problems []error
	if q == nil {
		problems = append(problems, optionErr("NewWebhookWorker", "nil queue"))
	}
	if fn == nil {
		problems = append(problems, optionErr("NewWebhookWorker", "nil callback"))
	}
	for _, o := range opts {
		if o == nil {
			problems = append(problems, optionErr("NewWebhookWorker", "nil option"))
			continue
		}
		if err := o(&cfg); err != nil {
			problems = append(problems, err)
		}
	}
	if err := errors.Join(problems...); err != nil {
		return nil, fmt.Errorf("kommo: invalid webhook worker options: %w", err)
	}
	return &WebhookWorker{q: q, fn: fn, cfg: cfg}, nil
}

// workerQueueRetry is how long a worker waits after the queue failed
// before it asks again.
const workerQueueRetry = 500 * time.Millisecond

// Run handles deliveries until ctx ends, then waits for the callbacks in
// progress (each bounded by the worker's timeout) and returns nil. A
// queue failure is reported and Run goes on after a short pause.
func (w *WebhookWorker) Run(ctx context.Context) error {
	if ctx == nil {
		return errors.New("kommo: WebhookWorker.Run: nil context")
	}
	var wg sync.WaitGroup
	for range w.cfg.concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				d, err := w.q.Receive(ctx)
				if err != nil {
					if ctx.Err() != nil {
						return
					}
					w.report(nil, &StoreError{Store: "webhook queue", Op: "Receive", Err: err})
					_ = w.cfg.clock.Sleep(ctx, workerQueueRetry)
					continue
				}
				// The delivery is leased: finish it even while Run stops.
				w.Handle(context.WithoutCancel(ctx), d)
			}
		}()
	}
	wg.Wait()
	return nil
}

// Handle runs the callback once on a delivery received from the worker's
// queue and then acknowledges it, puts it back for a retry, or buries it.
// Run calls it; call it yourself only to drive a queue by hand.
func (w *WebhookWorker) Handle(ctx context.Context, d *WebhookDelivery) {
	ev, err := hookDecode(d.Body)
	if err != nil {
		// A body the handler verified and decoded no longer decodes: no
		// retry can help.
		d.LastError = err.Error()
		w.bury(ctx, d, nil, fmt.Errorf("%w: undecodable body: %w", ErrWebhookDeadLetter, err))
		return
	}
	d.Attempts++
	cerr := w.run(ctx, d, ev)
	if cerr == nil {
		if err := w.q.Ack(ctx, d); err != nil {
			w.report(d, &StoreError{Store: "webhook queue", Op: "Ack", Key: d.ID, Err: err})
		}
		return
	}
	d.LastError = cerr.Error()
	w.report(d, cerr)
	if d.Attempts >= max(w.cfg.retry.MaxAttempts, 1) {
		w.bury(ctx, d, ev, fmt.Errorf("%w after %d attempts: %w", ErrWebhookDeadLetter, d.Attempts, cerr))
		return
	}
	at := w.cfg.clock.Now().Add(w.cfg.retry.Backoff(d.Attempts))
	if err := w.q.Retry(ctx, d, at); err != nil {
		w.report(d, &StoreError{Store: "webhook queue", Op: "Retry", Key: d.ID, Err: err})
	}
}

// run calls the callback once under the worker's timeout, turning a panic
// into an error.
func (w *WebhookWorker) run(ctx context.Context, d *WebhookDelivery, ev WebhookEvent) (err error) {
	ctx, cancel := context.WithTimeout(context.WithValue(ctx, hookScopeKey{}, d.ScopeID), w.cfg.timeout)
	defer cancel()
	if o := w.cfg.observer; o != nil && o.WebhookCallbackDone != nil {
		start := w.cfg.clock.Now()
		defer func() {
			o.WebhookCallbackDone(ctx, WebhookCallbackDone{Kind: ev.Kind(), ScopeID: d.ScopeID,
				Duration: w.cfg.clock.Now().Sub(start), Err: err})
		}()
	}
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: panic: %v", ErrWebhookCallback, p)
		}
	}()
	if cerr := w.fn(ctx, ev); cerr != nil {
		return fmt.Errorf("%w: %w", ErrWebhookCallback, cerr)
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%w after %s: %w", ErrWebhookTimeout, w.cfg.timeout, ctx.Err())
	}
	return nil
}

// bury makes d a dead letter and reports it, to Kommo too for a message
// event when WithWorkerDeliveryStatus is set.
func (w *WebhookWorker) bury(ctx context.Context, d *WebhookDelivery, ev WebhookEvent, why error) {
	if err := w.q.Bury(ctx, d); err != nil {
		w.report(d, &StoreError{Store: "webhook queue", Op: "Bury", Key: d.ID, Err: err})
		return
	}
	w.cfg.logger.LogAttrs(ctx, slog.LevelError, "kommo: webhook became a dead letter",
		slog.String("id", d.ID), slog.String("scope_id", d.ScopeID), slog.Int("attempts", d.Attempts),
		slog.String("error", why.Error()))
	w.report(d, why)
	m, ok := ev.(*MessageEvent)
	if !ok || w.cfg.status == nil || m.Message.ID == "" {
		return
	}
	sctx, cancel := context.WithTimeout(ctx, w.cfg.timeout)
	defer cancel()
	_, err := w.cfg.status.Messages.UpdateDeliveryStatus(sctx, d.ScopeID, m.Message.ID, &DeliveryStatusRequest{
		Status:    DeliveryStatusError,
		ErrorCode: DeliveryErrorOther,
		Error:     fmt.Sprintf("The message could not be delivered (%d attempts)", d.Attempts),
	})
	if err != nil {
		w.report(d, fmt.Errorf("kommo: report the dead letter's delivery status: %w", err))
	}
}

// report hands err to the error hook and logs it.
func (w *WebhookWorker) report(d *WebhookDelivery, err error) {
	attrs := []slog.Attr{slog.String("error", err.Error())}
	if d != nil {
		attrs = append(attrs, slog.String("id", d.ID), slog.String("scope_id", d.ScopeID), slog.Int("attempts", d.Attempts))
	}
	w.cfg.logger.LogAttrs(context.Background(), slog.LevelWarn, "kommo: webhook worker", attrs...)
	if w.cfg.onError == nil {
		return
	}
	defer func() {
		if p := recover(); p != nil {
			w.cfg.logger.LogAttrs(context.Background(), slog.LevelError, "kommo: webhook worker error hook panicked",
				slog.String("panic", fmt.Sprint(p)))
		}
	}()
	w.cfg.onError(d, err)
}
