package kommo

import (
	"container/heap"
	"container/list"
	"context"
	"fmt"
	"sync"
	"time"
)

// WebhookDelivery is a verified webhook in a WebhookQueue: the body as
// Kommo signed it, with what the handler learnt when it took it in.
type WebhookDelivery struct {
	// ID is the event key: the same for exact copies of one webhook, so
	// the worker runs each event once (see WebhookDedupeStore).
	ID string `json:"id"`
	// ScopeID is the scope id of the URL the webhook arrived on.
	ScopeID string `json:"scope_id"`
	// Body is the verified body, byte for byte.
	Body []byte `json:"body"`
	// ReceivedAt is when the handler took the webhook in.
	ReceivedAt time.Time `json:"received_at"`
	// Attempts is how many times the worker has run the callback on it.
	Attempts int `json:"attempts"`
	// LastError is the text of the callback's last failure.
	LastError string `json:"last_error,omitempty"`
	// Receipt is the queue's handle of this delivery while a worker holds
	// it (an implementation's own value: leave it as it is).
	Receipt string `json:"-"`
}

// WebhookQueue is a durable intake for webhooks: the handler enqueues a
// verified webhook and answers 200 at once (WithWebhookQueue), and a
// WebhookWorker runs the callback from the queue, with retries, so a
// webhook answered 200 is not lost when the process dies afterwards.
//
// Delivery is at least once: a delivery received and not acknowledged
// within the queue's lease (its worker died, say) is received again, by
// another worker. Implementations must be safe for concurrent use by many
// workers and handlers, in many processes for a shared queue (package
// kommoredis, on Redis Streams). MemoryWebhookQueue is the in-process one,
// which is not durable.
type WebhookQueue interface {
	// Enqueue stores d. It must not return nil before d is durable. It is
	// idempotent on d.ID for a while (a day, say; the implementation says
	// how long): a delivery whose ID was enqueued before is dropped and
	// Enqueue returns nil, so an event reaches the worker once however
	// often the same webhook arrives.
	Enqueue(ctx context.Context, d *WebhookDelivery) error
	// Receive waits until a delivery is due or ctx ends, and leases it to
	// the caller, who then calls Ack, Retry or Bury with it.
	Receive(ctx context.Context) (*WebhookDelivery, error)
	// Ack removes a received delivery: it is handled.
	Ack(ctx context.Context, d *WebhookDelivery) error
	// Retry puts a received delivery back, due at at, with its Attempts
	// and LastError as the worker set them.
	Retry(ctx context.Context, d *WebhookDelivery, at time.Time) error
	// Bury moves a received delivery to the dead letters.
	Bury(ctx context.Context, d *WebhookDelivery) error
	// DeadLetters lists up to limit dead letters, oldest first.
	DeadLetters(ctx context.Context, limit int) ([]*WebhookDelivery, error)
	// Replay moves the dead letter with the id back into the queue, due
	// now, with its Attempts reset; it reports whether there was one.
	Replay(ctx context.Context, id string) (bool, error)
}

// MemoryWebhookQueue is the in-process WebhookQueue, idempotent on the
// last 10,000 delivery ids (or twice its capacity). It is not durable:
// deliveries queued in it die with the process, so a webhook answered 200
// is lost if the process stops before the worker has handled it. It suits
// tests and a single process that accepts that risk; production needs a
// durable queue (package kommoredis).
type MemoryWebhookQueue struct {
	mu      sync.Mutex
	ready   chan struct{} // signalled when a delivery may have become due
	due     deliveryHeap
	leased  map[string]*WebhookDelivery
	dead    []*WebhookDelivery
	next    int64
	maxSize int
	seen    map[string]*list.Element // ids enqueued, for Enqueue's idempotency
	order   *list.List               // of ids, oldest first
}

// memoryQueueSeen is how many delivery ids a MemoryWebhookQueue remembers
// for Enqueue's idempotency, at least.
const memoryQueueSeen = 10000

// NewMemoryWebhookQueue returns an empty MemoryWebhookQueue holding at most
// capacity deliveries (queued and leased); Enqueue fails beyond it.
func NewMemoryWebhookQueue(capacity int) (*MemoryWebhookQueue, error) {
	if capacity <= 0 {
		return nil, optionErr("NewMemoryWebhookQueue", "capacity must be positive, got %d", capacity)
	}
	return &MemoryWebhookQueue{ready: make(chan struct{}, 1), leased: make(map[string]*WebhookDelivery), maxSize: capacity,
		seen: make(map[string]*list.Element), order: list.New()}, nil
}

type dueDelivery struct {
	at  time.Time
	seq int64
	d   *WebhookDelivery
}

type deliveryHeap []dueDelivery

func (h deliveryHeap) Len() int { return len(h) }
func (h deliveryHeap) Less(i, j int) bool {
	if !h[i].at.Equal(h[j].at) {
		return h[i].at.Before(h[j].at)
	}
	return h[i].seq < h[j].seq
}
func (h deliveryHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *deliveryHeap) Push(x any)   { *h = append(*h, x.(dueDelivery)) }
func (h *deliveryHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

func (q *MemoryWebhookQueue) push(d *WebhookDelivery, at time.Time) {
	q.next++
	heap.Push(&q.due, dueDelivery{at: at, seq: q.next, d: d})
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// Enqueue implements WebhookQueue.
func (q *MemoryWebhookQueue) Enqueue(_ context.Context, d *WebhookDelivery) error {
	if d == nil {
		return fmt.Errorf("kommo: MemoryWebhookQueue: nil delivery")
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if _, dup := q.seen[d.ID]; dup && d.ID != "" {
		return nil
	}
	if q.due.Len()+len(q.leased) >= q.maxSize {
		return fmt.Errorf("kommo: MemoryWebhookQueue: full (%d deliveries)", q.maxSize)
	}
	if d.ID != "" {
		q.seen[d.ID] = q.order.PushBack(d.ID)
		if q.order.Len() > max(memoryQueueSeen, 2*q.maxSize) {
			delete(q.seen, q.order.Remove(q.order.Front()).(string))
		}
	}
	cp := *d
	q.push(&cp, time.Now())
	return nil
}

// Receive implements WebhookQueue.
func (q *MemoryWebhookQueue) Receive(ctx context.Context) (*WebhookDelivery, error) {
	for {
		q.mu.Lock()
		var wait time.Duration = time.Hour
		if q.due.Len() > 0 {
			top := q.due[0]
			if d := time.Until(top.at); d > 0 {
				wait = d
			} else {
				heap.Pop(&q.due)
				q.next++
				top.d.Receipt = fmt.Sprint(q.next)
				q.leased[top.d.Receipt] = top.d
				cp := *top.d
				q.mu.Unlock()
				return &cp, nil
			}
		}
		q.mu.Unlock()
		t := time.NewTimer(wait)
		select {
		case <-q.ready:
			t.Stop()
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		}
	}
}

// take removes a leased delivery, reporting whether it was leased.
func (q *MemoryWebhookQueue) take(d *WebhookDelivery) (*WebhookDelivery, error) {
	held, ok := q.leased[d.Receipt]
	if !ok {
		return nil, fmt.Errorf("kommo: MemoryWebhookQueue: delivery %s is not leased", d.ID)
	}
	delete(q.leased, d.Receipt)
	held.Attempts, held.LastError, held.Receipt = d.Attempts, d.LastError, ""
	return held, nil
}

// Ack implements WebhookQueue.
func (q *MemoryWebhookQueue) Ack(_ context.Context, d *WebhookDelivery) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	_, err := q.take(d)
	return err
}

// Retry implements WebhookQueue.
func (q *MemoryWebhookQueue) Retry(_ context.Context, d *WebhookDelivery, at time.Time) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	held, err := q.take(d)
	if err != nil {
		return err
	}
	q.push(held, at)
	return nil
}

// Bury implements WebhookQueue.
func (q *MemoryWebhookQueue) Bury(_ context.Context, d *WebhookDelivery) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	held, err := q.take(d)
	if err != nil {
		return err
	}
	q.dead = append(q.dead, held)
	return nil
}

// DeadLetters implements WebhookQueue.
func (q *MemoryWebhookQueue) DeadLetters(_ context.Context, limit int) ([]*WebhookDelivery, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := min(max(limit, 0), len(q.dead))
	out := make([]*WebhookDelivery, n)
	for i := range n {
		cp := *q.dead[i]
		out[i] = &cp
	}
	return out, nil
}

// Replay implements WebhookQueue.
func (q *MemoryWebhookQueue) Replay(_ context.Context, id string) (bool, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for i, d := range q.dead {
		if d.ID == id {
			q.dead = append(q.dead[:i], q.dead[i+1:]...)
			d.Attempts, d.LastError = 0, ""
			q.push(d, time.Now())
			return true, nil
		}
	}
	return false, nil
}

// Len reports how many deliveries are queued or leased, and how many are
// dead letters.
func (q *MemoryWebhookQueue) Len() (queued, dead int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.due.Len() + len(q.leased), len(q.dead)
}
