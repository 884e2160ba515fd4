package kommoredis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/kommo-go/kommo"
	"github.com/redis/go-redis/v9"
)

// WebhookQueue is a kommo.WebhookQueue on Redis Streams with a consumer
// group, shared by every handler and worker of one queue name:
//
//   - Enqueue adds the delivery to the stream (XADD; the stream is never
//     trimmed, so nothing undelivered is dropped);
//   - Receive first moves retries that are due back to the stream, then
//     takes over a delivery whose lease expired (XAUTOCLAIM: its worker
//     died or is too slow), else reads a new one (XREADGROUP), blocking up
//     to the poll time (WithPoll) at a time;
//   - Ack acknowledges and deletes the entry (XACK, XDEL); Retry does so
//     and adds the delivery to a set of retries scored by due time; Bury
//     moves it to a dead-letter stream; Replay moves a dead letter back.
//     Each is one script, so a delivery is never in two places or none.
//
// Delivery is at least once: a delivery received and not acknowledged
// within the lease (WithLease, default 30 s) is received again, by any
// worker of the group. Due times use Redis's clock. It is safe for
// concurrent use.
//
// Enqueue drops a delivery whose id it took within the seen TTL
// (WithSeenTTL, default 1 h), so copies of one webhook run once.
//
// Enqueue returns once Redis has the delivery; that it survives a Redis
// crash takes appendonly yes (with appendfsync always to lose nothing).
type WebhookQueue struct {
	rdb                   redis.UniversalClient
	cfg                   *config
	name                  string
	stream, delayed, dead string
	seen                  string // prefix of the delivery-id keys
	groupReady            atomic.Bool
}

var _ kommo.WebhookQueue = (*WebhookQueue)(nil)

// maxPromote bounds how many due retries one Receive moves back.
const maxPromote = 100

// NewWebhookQueue returns the queue called name on rdb (a name without
// "{" or "}"). Options: WithPrefix, WithTimeout, WithLease, WithSeenTTL, WithPoll,
// WithGroup, WithConsumer.
func NewWebhookQueue(rdb redis.UniversalClient, name string, opts ...Option) (*WebhookQueue, error) {
	if err := checkClient("NewWebhookQueue", rdb); err != nil {
		return nil, err
	}
	switch {
	case name == "":
		return nil, optionErr("NewWebhookQueue", "empty queue name")
	case strings.ContainsAny(name, "{}"):
		return nil, optionErr("NewWebhookQueue", "queue name %q must not contain { or }", name)
	}
	cfg, err := newConfig(kindQueue, opts)
	if err != nil {
		return nil, err
	}
	base := cfg.prefix + "{q:" + name + "}:"
	return &WebhookQueue{rdb: rdb, cfg: cfg, name: name,
		stream: base + "stream", delayed: base + "delayed", dead: base + "dead", seen: base + "seen:"}, nil
}

// Consumer returns this worker's consumer name in the group.
func (q *WebhookQueue) Consumer() string { return q.cfg.consumer }

// String describes the queue.
func (q *WebhookQueue) String() string {
	return fmt.Sprintf("kommoredis.WebhookQueue{%s, group %s, consumer %s, lease %v}", q.stream, q.cfg.group, q.cfg.consumer, q.cfg.lease)
}

func (q *WebhookQueue) err(op string, err error) error { return storeErr("queue "+op, q.name, err) }

func encodeDelivery(d *kommo.WebhookDelivery) (string, error) {
	b, err := json.Marshal(d)
	return string(b), err
}

// decodeEntry returns the delivery of a stream entry, its Receipt the
// entry id.
func decodeEntry(m redis.XMessage) (*kommo.WebhookDelivery, error) {
	s, ok := m.Values["d"].(string)
	if !ok {
		return nil, fmt.Errorf("entry %s has no delivery", m.ID)
	}
	d := new(kommo.WebhookDelivery)
	if err := json.Unmarshal([]byte(s), d); err != nil {
		return nil, fmt.Errorf("entry %s: %w", m.ID, err)
	}
	d.Receipt = m.ID
	return d, nil
}

// Enqueue implements kommo.WebhookQueue.
func (q *WebhookQueue) Enqueue(ctx context.Context, d *kommo.WebhookDelivery) error {
	if d == nil {
		return errors.New("kommoredis: queue enqueue: nil delivery")
	}
	payload, err := encodeDelivery(d)
	if err != nil {
		return q.err("enqueue", err)
	}
	ctx, cancel := q.cfg.op(ctx)
	defer cancel()
	if d.ID == "" {
		err = q.rdb.XAdd(ctx, &redis.XAddArgs{Stream: q.stream, Values: []string{"d", payload}}).Err()
	} else {
		err = enqueueScript.Run(ctx, q.rdb, []string{q.stream, q.seen + d.ID}, payload, q.cfg.seenTTL.Milliseconds()).Err()
	}
	if err != nil {
		return q.err("enqueue", err)
	}
	return nil
}

// enqueueScript adds a delivery to the stream unless its id was seen
// within the seen TTL: one script, so a copy never slips in between.
var enqueueScript = redis.NewScript(`
if redis.call("SET", KEYS[2], "1", "NX", "PX", ARGV[2]) then
	redis.call("XADD", KEYS[1], "*", "d", ARGV[1])
	return 1
end
return 0
`)

// ensureGroup creates the consumer group (reading from the stream's start,
// so deliveries enqueued before any worker ran are received).
func (q *WebhookQueue) ensureGroup(ctx context.Context) error {
	if q.groupReady.Load() {
		return nil
	}
	ctx, cancel := q.cfg.op(ctx)
	defer cancel()
	err := q.rdb.XGroupCreateMkStream(ctx, q.stream, q.cfg.group, "0").Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return q.err("create group", err)
	}
	q.groupReady.Store(true)
	return nil
}

// promoteScript moves the due retries back to the stream and returns the
// milliseconds until the next one is due, or -1 when there is none.
var promoteScript = redis.NewScript(`
local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local due = redis.call("ZRANGEBYSCORE", KEYS[2], "-inf", now, "LIMIT", 0, tonumber(ARGV[1]))
for _, m in ipairs(due) do
	local i = string.find(m, "|", 1, true)
	redis.call("XADD", KEYS[1], "*", "d", string.sub(m, i + 1))
	redis.call("ZREM", KEYS[2], m)
end
local nxt = redis.call("ZRANGE", KEYS[2], 0, 0, "WITHSCORES")
if #nxt == 0 then
	return -1
end
return math.max(0, tonumber(nxt[2]) - now)`)

// Receive implements kommo.WebhookQueue. It returns when ctx ends, at the
// latest one poll time (WithPoll) after.
func (q *WebhookQueue) Receive(ctx context.Context) (*kommo.WebhookDelivery, error) {
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		d, err := q.receiveOnce(ctx)
		if err := ctxEnded(ctx); err != nil {
			// A delivery read as ctx ended stays pending for this
			// consumer and is received again after the lease.
			return nil, err
		}
		if err != nil && strings.Contains(err.Error(), "NOGROUP") {
			q.groupReady.Store(false) // the stream was deleted (a Redis without persistence restarted)
			continue
		}
		if err != nil || d != nil {
			return d, err
		}
	}
}

// receiveOnce promotes due retries, claims an expired lease or blocks for
// a new delivery once; nil without an error when there was none.
func (q *WebhookQueue) receiveOnce(ctx context.Context) (*kommo.WebhookDelivery, error) {
	if err := q.ensureGroup(ctx); err != nil {
		return nil, err
	}
	octx, cancel := q.cfg.op(ctx)
	next, err := promoteScript.Run(octx, q.rdb, []string{q.stream, q.delayed}, maxPromote).Int64()
	cancel()
	if err != nil {
		return nil, q.err("receive", err)
	}
	if d, err := q.claim(ctx); d != nil || err != nil {
		return d, err
	}
	block := q.cfg.poll
	if next >= 0 {
		block = min(block, max(time.Duration(next)*time.Millisecond, time.Millisecond))
	}
	if dl, ok := ctx.Deadline(); ok {
		// End the block a little before ctx, so that Redis answers
		// "nothing" rather than the read timing out.
		block = min(block, max(time.Until(dl)-blockMargin, time.Millisecond))
	}
	octx, cancel = context.WithTimeout(ctx, block+q.cfg.timeout)
	defer cancel()
	res, err := q.rdb.XReadGroup(octx, &redis.XReadGroupArgs{Group: q.cfg.group, Consumer: q.cfg.consumer,
		Streams: []string{q.stream, ">"}, Count: 1, Block: block}).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, q.err("receive", err)
	}
	if len(res) == 0 || len(res[0].Messages) == 0 {
		return nil, nil
	}
	d, err := decodeEntry(res[0].Messages[0])
	if err != nil {
		return nil, q.err("receive", err)
	}
	return d, nil
}

// blockMargin is how much before the caller's deadline a blocking read
// ends.
const blockMargin = 20 * time.Millisecond

// ctxEnded returns ctx's error once it has ended or its deadline has
// passed (a read timing out at the deadline may come a moment before ctx
// reports it).
func ctxEnded(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
		return context.DeadlineExceeded
	}
	return nil
}

// maxClaimScans bounds how many XAUTOCLAIM pages one Receive looks through
// for an expired lease.
const maxClaimScans = 10

// claim takes over one delivery whose lease expired, if any.
func (q *WebhookQueue) claim(ctx context.Context) (*kommo.WebhookDelivery, error) {
	start := "0-0"
	for range maxClaimScans {
		octx, cancel := q.cfg.op(ctx)
		msgs, cursor, err := q.rdb.XAutoClaim(octx, &redis.XAutoClaimArgs{Stream: q.stream, Group: q.cfg.group,
			Consumer: q.cfg.consumer, MinIdle: q.cfg.lease, Start: start, Count: 1}).Result()
		cancel()
		if err != nil {
			return nil, q.err("receive", err)
		}
		for _, m := range msgs {
			if len(m.Values) == 0 {
				// Deleted but pending (Redis < 7 reports these): drop it.
				octx, cancel := q.cfg.op(ctx)
				_ = q.rdb.XAck(octx, q.stream, q.cfg.group, m.ID).Err()
				cancel()
				continue
			}
			d, err := decodeEntry(m)
			if err != nil {
				return nil, q.err("receive", err)
			}
			return d, nil
		}
		if cursor == "0-0" || cursor == "" {
			return nil, nil
		}
		start = cursor
	}
	return nil, nil
}

// ackScript acknowledges and deletes an entry; 0 when it was not pending.
var ackScript = redis.NewScript(`
if redis.call("XACK", KEYS[1], ARGV[1], ARGV[2]) == 0 then
	return 0
end
redis.call("XDEL", KEYS[1], ARGV[2])
return 1`)

// retryScript acknowledges and deletes an entry and adds its new payload
// to the retries, due ARGV[4] ms from now (Redis's clock). The member is
// "<old entry id>|<payload>", unique since entry ids are.
var retryScript = redis.NewScript(`
if redis.call("XACK", KEYS[1], ARGV[1], ARGV[2]) == 0 then
	return 0
end
redis.call("XDEL", KEYS[1], ARGV[2])
local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call("ZADD", KEYS[2], now + tonumber(ARGV[4]), ARGV[2] .. "|" .. ARGV[3])
return 1`)

// buryScript acknowledges and deletes an entry and adds its new payload to
// the dead letters.
var buryScript = redis.NewScript(`
if redis.call("XACK", KEYS[1], ARGV[1], ARGV[2]) == 0 then
	return 0
end
redis.call("XDEL", KEYS[1], ARGV[2])
redis.call("XADD", KEYS[2], "*", "d", ARGV[3])
return 1`)

// replayScript moves a dead letter back to the stream with a new payload;
// 0 when it is no longer there.
var replayScript = redis.NewScript(`
if redis.call("XDEL", KEYS[1], ARGV[1]) == 0 then
	return 0
end
redis.call("XADD", KEYS[2], "*", "d", ARGV[2])
return 1`)

// settle runs one of the scripts ending a lease.
func (q *WebhookQueue) settle(ctx context.Context, op string, s *redis.Script, keys []string, d *kommo.WebhookDelivery, args ...any) error {
	if d == nil || d.Receipt == "" {
		return fmt.Errorf("kommoredis: queue %s: not a received delivery", op)
	}
	ctx, cancel := q.cfg.op(ctx)
	defer cancel()
	n, err := s.Run(ctx, q.rdb, keys, append([]any{q.cfg.group, d.Receipt}, args...)...).Int()
	if err != nil {
		return q.err(op, err)
	}
	if n == 0 {
		return fmt.Errorf("kommoredis: queue %s: delivery %s (entry %s) is not leased: acknowledged already", op, d.ID, d.Receipt)
	}
	return nil
}

// Ack implements kommo.WebhookQueue. A delivery acknowledged already (by
// a worker that took it over after its lease expired, say) is an error.
func (q *WebhookQueue) Ack(ctx context.Context, d *kommo.WebhookDelivery) error {
	return q.settle(ctx, "ack", ackScript, []string{q.stream}, d)
}

// Retry implements kommo.WebhookQueue: d, with its Attempts and LastError,
// is received again once at has passed (by about the poll time at most).
func (q *WebhookQueue) Retry(ctx context.Context, d *kommo.WebhookDelivery, at time.Time) error {
	if d == nil {
		return errors.New("kommoredis: queue retry: nil delivery")
	}
	payload, err := encodeDelivery(d)
	if err != nil {
		return q.err("retry", err)
	}
	delay := max(time.Until(at), 0).Milliseconds()
	return q.settle(ctx, "retry", retryScript, []string{q.stream, q.delayed}, d, payload, delay)
}

// Bury implements kommo.WebhookQueue.
func (q *WebhookQueue) Bury(ctx context.Context, d *kommo.WebhookDelivery) error {
	if d == nil {
		return errors.New("kommoredis: queue bury: nil delivery")
	}
	payload, err := encodeDelivery(d)
	if err != nil {
		return q.err("bury", err)
	}
	return q.settle(ctx, "bury", buryScript, []string{q.stream, q.dead}, d, payload)
}

// DeadLetters implements kommo.WebhookQueue. The deliveries' Receipt is
// their dead-letter entry id.
func (q *WebhookQueue) DeadLetters(ctx context.Context, limit int) ([]*kommo.WebhookDelivery, error) {
	if limit <= 0 {
		return []*kommo.WebhookDelivery{}, nil
	}
	ctx, cancel := q.cfg.op(ctx)
	defer cancel()
	msgs, err := q.rdb.XRangeN(ctx, q.dead, "-", "+", int64(limit)).Result()
	if err != nil {
		return nil, q.err("dead letters", err)
	}
	out := make([]*kommo.WebhookDelivery, 0, len(msgs))
	for _, m := range msgs {
		d, err := decodeEntry(m)
		if err != nil {
			return nil, q.err("dead letters", err)
		}
		out = append(out, d)
	}
	return out, nil
}

// replayPage is how many dead letters Replay reads at a time.
const replayPage = 100

// Replay implements kommo.WebhookQueue: it looks through the dead letters,
// oldest first, and moves the first with the id back, its Attempts and
// LastError reset.
func (q *WebhookQueue) Replay(ctx context.Context, id string) (bool, error) {
	start := "-"
	for {
		octx, cancel := q.cfg.op(ctx)
		msgs, err := q.rdb.XRangeN(octx, q.dead, start, "+", replayPage).Result()
		cancel()
		if err != nil {
			return false, q.err("replay", err)
		}
		for _, m := range msgs {
			d, err := decodeEntry(m)
			if err != nil || d.ID != id {
				continue
			}
			d.Attempts, d.LastError = 0, ""
			payload, err := encodeDelivery(d)
			if err != nil {
				return false, q.err("replay", err)
			}
			octx, cancel := q.cfg.op(ctx)
			n, err := replayScript.Run(octx, q.rdb, []string{q.dead, q.stream}, m.ID, payload).Int()
			cancel()
			if err != nil {
				return false, q.err("replay", err)
			}
			if n == 1 {
				return true, nil
			}
			// Another caller replayed it meanwhile: look on.
		}
		if len(msgs) < replayPage {
			return false, nil
		}
		start = "(" + msgs[len(msgs)-1].ID
	}
}

// Len reports how many deliveries are queued (new, leased or waiting for a
// retry) and how many are dead letters.
func (q *WebhookQueue) Len(ctx context.Context) (queued, dead int64, err error) {
	ctx, cancel := q.cfg.op(ctx)
	defer cancel()
	var s, z, dl *redis.IntCmd
	_, err = q.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		s, z, dl = p.XLen(ctx, q.stream), p.ZCard(ctx, q.delayed), p.XLen(ctx, q.dead)
		return nil
	})
	if err != nil {
		return 0, 0, q.err("len", err)
	}
	return s.Val() + z.Val(), dl.Val(), nil
}
