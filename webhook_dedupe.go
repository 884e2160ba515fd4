package kommo

import (
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"sync"
)

// webhookDedupeKeys returns the store keys of a verified hook. key is
// shared only by exact copies: for a message event the amojo message id
// with a hash of the verified body ("message:<id>:<hex>", the first 128
// bits of its SHA-256), else the body's SHA-256 ("body:<hex>"). idKey, for
// message events only, is shared by every hook carrying that message id
// ("message-id:<id>"): it tells a second, different body with a known id
// (a collision) from a first delivery.
func webhookDedupeKeys(ev WebhookEvent, signed []byte) (key, idKey string) {
	sum := sha256.Sum256(signed)
	if m, ok := ev.(*MessageEvent); ok && m.Message.ID != "" {
		return "message:" + m.Message.ID + ":" + hex.EncodeToString(sum[:16]), "message-id:" + m.Message.ID
	}
	return "body:" + hex.EncodeToString(sum[:]), ""
}

// WebhookDedupeStore remembers which webhooks a WebhookHandler has handled.
// Keys are opaque strings (treat them as such: the format may change);
// today they are "message:<amojo message id>:<hex>" (the id and a hash of the
// verified body) and "message-id:<amojo message id>" for message events,
// "body:<sha256 of the body>" for the others. Implementations must be safe
// for concurrent use and Reserve must be atomic (e.g. Redis SET NX).
//
// The handler calls Reserve before the callback, then Complete when the
// callback returned nil in time or Release when it failed or was too late,
// so a replay after a failure runs the callback again, a replay after a
// success does not, and two concurrent copies never both run it. A message
// hook reserves its exact key and then its id key; when the exact key is
// new but the id key is taken, the body is a second, different one with a
// known id: the callback runs and the error hook gets
// ErrWebhookDedupeCollision. A store shared by several instances should
// expire reservations (e.g. after a minute) in case an instance dies
// mid-callback, and completed keys after a longer window.
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
// capacity keys (oldest evicted first); a message hook takes two keys, any
// other hook one. It is safe for concurrent use and suits a single
// instance; several instances need a shared store.
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
