package kommoredis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/kommo-go/kommo"
	"github.com/redis/go-redis/v9"
)

// Defaults of the options.
const (
	// DefaultPrefix starts every key the package writes (see the package
	// doc for the layout).
	DefaultPrefix = "kommo:"
	// DefaultTimeout bounds each Redis round trip of a store operation, so
	// that an unreachable or stuck Redis fails the call quickly.
	DefaultTimeout = 500 * time.Millisecond
	// DefaultLockTTL is how long an account's token lock lives when its
	// holder dies without unlocking. It outlasts a refresh (the token
	// source gives each step 30 s).
	DefaultLockTTL = 90 * time.Second
	// DefaultReservationTTL is how long a webhook dedupe reservation lives
	// when the instance that took it dies mid-callback.
	DefaultReservationTTL = 2 * time.Minute
	// DefaultDoneTTL is how long a handled webhook's key is remembered.
	DefaultDoneTTL = 24 * time.Hour
	// DefaultSeenTTL is how long a WebhookQueue remembers a delivery id, so
	// that Enqueue drops a copy of a webhook arriving within it.
	DefaultSeenTTL = time.Hour
	// DefaultLease is how long a received delivery stays with its worker
	// before another worker may receive it.
	DefaultLease = 30 * time.Second
	// DefaultGroup is the consumer group of a WebhookQueue's workers.
	DefaultGroup = "workers"
	// DefaultPoll bounds how long Receive blocks in Redis at a time; it
	// looks for expired leases and due retries between blocks.
	DefaultPoll = time.Second
)

// Option configures a store. Every constructor takes them; an option that
// does not apply to the store being built (WithLease for a token store,
// say) is an error, as is a bad value: a *kommo.OptionError, matching
// kommo.ErrInvalidOption.
type Option func(*config) error

type kind int

const (
	kindLimiter kind = iota
	kindTokens
	kindDedupe
	kindQueue
)

var kindNames = [...]string{kindLimiter: "NewLimiter", kindTokens: "NewTokenStore", kindDedupe: "NewDedupe", kindQueue: "NewWebhookQueue"}

type config struct {
	kind       kind
	prefix     string
	timeout    time.Duration
	lockTTL    time.Duration
	reserveTTL time.Duration
	doneTTL    time.Duration
	seenTTL    time.Duration
	lease      time.Duration
	poll       time.Duration
	group      string
	consumer   string
}

func newConfig(k kind, opts []Option) (*config, error) {
	c := &config{kind: k, prefix: DefaultPrefix, timeout: DefaultTimeout, lockTTL: DefaultLockTTL,
		reserveTTL: DefaultReservationTTL, doneTTL: DefaultDoneTTL, seenTTL: DefaultSeenTTL, lease: DefaultLease,
		poll: DefaultPoll, group: DefaultGroup}
	var errs []error
	for _, o := range opts {
		if o == nil {
			errs = append(errs, optionErr(kindNames[k], "nil option"))
			continue
		}
		if err := o(c); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if k == kindQueue && c.consumer == "" {
		c.consumer = defaultConsumer()
	}
	return c, nil
}

func optionErr(option, format string, args ...any) *kommo.OptionError {
	return &kommo.OptionError{Option: option, Problem: fmt.Sprintf(format, args...)}
}

// only fails an option given to a constructor it does not apply to.
func (c *config) only(option string, kinds ...kind) error {
	for _, k := range kinds {
		if c.kind == k {
			return nil
		}
	}
	return optionErr(option, "does not apply to %s", kindNames[c.kind])
}

func positive(option string, d time.Duration) error {
	if d <= 0 {
		return optionErr(option, "duration must be positive, got %v", d)
	}
	return nil
}

// WithPrefix sets the prefix of every key (DefaultPrefix, "kommo:"), to
// keep several integrations, or test runs, apart on one Redis. It must not
// contain "{" or "}", which would break the keys' hash tags.
func WithPrefix(prefix string) Option {
	return func(c *config) error {
		if strings.ContainsAny(prefix, "{}") {
			return optionErr("WithPrefix", "prefix %q must not contain { or }", prefix)
		}
		c.prefix = prefix
		return nil
	}
}

// WithTimeout bounds each Redis round trip of an operation (DefaultTimeout,
// 500 ms); the caller's context bounds it too. Receive's blocking reads get
// this much on top of their block time.
func WithTimeout(d time.Duration) Option {
	return func(c *config) error {
		c.timeout = d
		return positive("WithTimeout", d)
	}
}

// WithLockTTL sets how long an account's token lock outlives a holder that
// died (DefaultLockTTL, 90 s). NewTokenStore only. Keep it well above the
// longest refresh.
func WithLockTTL(d time.Duration) Option {
	return func(c *config) error {
		c.lockTTL = d
		if err := c.only("WithLockTTL", kindTokens); err != nil {
			return err
		}
		return positive("WithLockTTL", d)
	}
}

// WithReservationTTL sets how long a webhook dedupe reservation lives
// (DefaultReservationTTL, 2 min). NewDedupe only. Keep it above the
// handler's callback timeout.
func WithReservationTTL(d time.Duration) Option {
	return func(c *config) error {
		c.reserveTTL = d
		if err := c.only("WithReservationTTL", kindDedupe); err != nil {
			return err
		}
		return positive("WithReservationTTL", d)
	}
}

// WithDoneTTL sets how long a handled webhook's key is remembered
// (DefaultDoneTTL, 24 h): a copy arriving within it is dropped. NewDedupe
// only.
func WithDoneTTL(d time.Duration) Option {
	return func(c *config) error {
		c.doneTTL = d
		if err := c.only("WithDoneTTL", kindDedupe); err != nil {
			return err
		}
		return positive("WithDoneTTL", d)
	}
}

// WithSeenTTL sets how long a WebhookQueue remembers the id of each
// delivery it took (DefaultSeenTTL, 1 h): Enqueue drops a copy arriving
// within it. Each id costs a small key for that long (at 100 webhooks a
// second, 360,000 keys for an hour). NewWebhookQueue only.
func WithSeenTTL(d time.Duration) Option {
	return func(c *config) error {
		c.seenTTL = d
		if err := c.only("WithSeenTTL", kindQueue); err != nil {
			return err
		}
		return positive("WithSeenTTL", d)
	}
}

// WithLease sets how long a received delivery stays with its worker before
// another worker may receive it (DefaultLease, 30 s). NewWebhookQueue only.
// Keep it above the worker's longest callback: a delivery whose callback
// outlives the lease may run twice.
func WithLease(d time.Duration) Option {
	return func(c *config) error {
		c.lease = d
		if err := c.only("WithLease", kindQueue); err != nil {
			return err
		}
		return positive("WithLease", d)
	}
}

// WithPoll sets how long Receive blocks in Redis at a time before it looks
// again for expired leases and due retries (DefaultPoll, 1 s): a retry or
// an abandoned delivery waits at most about this long past its time.
// NewWebhookQueue only.
func WithPoll(d time.Duration) Option {
	return func(c *config) error {
		c.poll = d
		if err := c.only("WithPoll", kindQueue); err != nil {
			return err
		}
		return positive("WithPoll", d)
	}
}

// WithGroup sets the Redis Streams consumer group of the queue's workers
// (DefaultGroup, "workers"). NewWebhookQueue only. Workers of one queue
// share a group; each delivery goes to one worker of the group.
func WithGroup(name string) Option {
	return func(c *config) error {
		c.group = name
		if err := c.only("WithGroup", kindQueue); err != nil {
			return err
		}
		if name == "" {
			return optionErr("WithGroup", "empty group name")
		}
		return nil
	}
}

// WithConsumer sets this worker's consumer name in the group (by default
// "<hostname>-<pid>-<random>", unique per process and queue). NewWebhookQueue
// only. Two live workers must not share a name.
func WithConsumer(name string) Option {
	return func(c *config) error {
		c.consumer = name
		if err := c.only("WithConsumer", kindQueue); err != nil {
			return err
		}
		if name == "" {
			return optionErr("WithConsumer", "empty consumer name")
		}
		return nil
	}
}

func defaultConsumer() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "host"
	}
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), randomHex(4))
}

// op returns the context of one Redis round trip: ctx bounded by the
// store's timeout.
func (c *config) op(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.timeout)
}

// randomHex returns n random bytes in hex.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24)
	return hex.EncodeToString(b)
}

// storeErr wraps a Redis failure of op with what it was for, never a
// value (a token) it carried.
func storeErr(op, key string, err error) error {
	return fmt.Errorf("kommoredis: %s %q: %w", op, key, err)
}

// checkClient fails a nil client, and a go-redis client that ignores
// contexts (ContextTimeoutEnabled false, go-redis's default): on it no
// timeout of this package nor the caller's context would bound a call to
// a stuck Redis, which would then hold every request for the client's
// ReadTimeout and its retries (seconds each).
func checkClient(constructor string, rdb redis.UniversalClient) error {
	var honoursCtx bool
	switch c := rdb.(type) {
	case nil:
		return optionErr(constructor, "nil Redis client")
	case *redis.Client:
		honoursCtx = c.Options().ContextTimeoutEnabled
	case *redis.ClusterClient:
		honoursCtx = c.Options().ContextTimeoutEnabled
	case *redis.Ring:
		honoursCtx = c.Options().ContextTimeoutEnabled
	default:
		return nil // another implementation: its own business
	}
	if !honoursCtx {
		return optionErr(constructor, "the Redis client ignores contexts: set ContextTimeoutEnabled: true in its options, "+
			"so that a stuck Redis fails calls within the store's timeout")
	}
	return nil
}
