package kommo

import (
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"sync"
)

// webhookDedupeKey is the message id for message events ("message:<id>")
// and a SHA-256 of the verified body for everything else ("body:<hex>").
func webhookDedupeKey(ev WebhookEvent, signed []byte) string {
	if m, ok := ev.(*MessageEvent); ok && m.Message.ID != "" {
		return "message:" + m.Message.ID
	}
	sum := sha256.Sum256(signed)
	return "body:" + hex.EncodeToString(sum[:])
}

// WebhookDedupeStore remembers which webhooks a WebhookHandler has handled.
// Keys are "message:<amojo message id>" for message events and
// "body:<sha256 of the body>" for the others. Implementations must be safe
// for concurrent use and Reserve must be atomic (e.g. Redis SET NX).
//
// The handler calls Reserve before the callback, then Complete when the
// callback returned nil or Release when it failed, so a replay after a
// failure runs the callback again, a replay after a success does not, and
// two concurrent copies never both run it. A store shared by several
// instances should expire reservations (e.g. after a minute) in case an
// instance dies mid-callback, and completed keys after a longer window.
type WebhookDedupeStore interface {
	// Reserve claims key. It returns true when the caller now owns it and
	// must run the callback, false when key is reserved or completed.
	Reserve(ctx context.Context, key string) (bool, error)
	// Complete marks key as handled.
	Complete(ctx context.Context, key string) error
	// Release drops the reservation of key.
	Release(ctx context.Context, key string) error
}

// MemoryDedupe is the in-memory WebhookDedupeStore: it remembers the last
// capacity keys (oldest evicted first). It is safe for concurrent use and
// suits a single instance; several instances need a shared store.
type MemoryDedupe struct {
	mu    sync.Mutex
	cap   int
	order *list.List               // of *hookDedupeEntry, oldest first
	keys  map[string]*list.Element // key → element in order
}

type hookDedupeEntry struct {
	key  string
	done bool
}

// NewMemoryDedupe returns a MemoryDedupe holding up to capacity keys
// (WebhookDefaultDedupeCapacity when capacity <= 0).
func NewMemoryDedupe(capacity int) *MemoryDedupe {
	if capacity <= 0 {
		capacity = WebhookDefaultDedupeCapacity
	}
	return &MemoryDedupe{cap: capacity, order: list.New(), keys: make(map[string]*list.Element)}
}

// Reserve claims key; false when it is already reserved or completed.
func (d *MemoryDedupe) Reserve(_ context.Context, key string) (bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.keys[key]; ok {
		return false, nil
	}
	d.add(key, false)
	return true, nil
}

// Complete marks key as handled (adding it when it was evicted meanwhile).
func (d *MemoryDedupe) Complete(_ context.Context, key string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if el, ok := d.keys[key]; ok {
		el.Value.(*hookDedupeEntry).done = true
		return nil
	}
	d.add(key, true)
	return nil
}

// Release forgets key.
func (d *MemoryDedupe) Release(_ context.Context, key string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if el, ok := d.keys[key]; ok {
		d.order.Remove(el)
		delete(d.keys, key)
	}
	return nil
}

// Len returns how many keys are remembered.
func (d *MemoryDedupe) Len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.keys)
}

func (d *MemoryDedupe) add(key string, done bool) {
	d.keys[key] = d.order.PushBack(&hookDedupeEntry{key: key, done: done})
	for d.order.Len() > d.cap {
		oldest := d.order.Front()
		d.order.Remove(oldest)
		delete(d.keys, oldest.Value.(*hookDedupeEntry).key)
	}
}
