package kommoredis

import (
	"context"
	"fmt"

	"github.com/kommo-go/kommo"
	"github.com/redis/go-redis/v9"
)

// Dedupe is a kommo.WebhookDedupeStore on Redis, shared by every instance
// of a webhook handler: Reserve is SET NX PX (atomic: of two concurrent
// copies one wins), Complete marks the key done for the done TTL, Release
// deletes it only while it is still a reservation. A reservation left by
// an instance that died expires after the reservation TTL. It is safe for
// concurrent use.
type Dedupe struct {
	rdb redis.UniversalClient
	cfg *config
}

var _ kommo.WebhookDedupeStore = (*Dedupe)(nil)

// Values of a dedupe key.
const (
	dedupeReserved = "reserved"
	dedupeDone     = "done"
)

// NewDedupe returns the Dedupe on rdb. Options: WithPrefix, WithTimeout,
// WithReservationTTL, WithDoneTTL.
func NewDedupe(rdb redis.UniversalClient, opts ...Option) (*Dedupe, error) {
	if err := checkClient("NewDedupe", rdb); err != nil {
		return nil, err
	}
	cfg, err := newConfig(kindDedupe, opts)
	if err != nil {
		return nil, err
	}
	return &Dedupe{rdb: rdb, cfg: cfg}, nil
}

func (d *Dedupe) key(key string) string { return d.cfg.prefix + "dedupe:" + key }

// Reserve implements kommo.WebhookDedupeStore.
func (d *Dedupe) Reserve(ctx context.Context, key string) (bool, error) {
	ctx, cancel := d.cfg.op(ctx)
	defer cancel()
	ok, err := d.rdb.SetNX(ctx, d.key(key), dedupeReserved, d.cfg.reserveTTL).Result()
	if err != nil {
		return false, storeErr("dedupe reserve", key, err)
	}
	return ok, nil
}

// Complete implements kommo.WebhookDedupeStore: the key is done for the
// done TTL, whether or not its reservation is still there.
func (d *Dedupe) Complete(ctx context.Context, key string) error {
	ctx, cancel := d.cfg.op(ctx)
	defer cancel()
	if err := d.rdb.Set(ctx, d.key(key), dedupeDone, d.cfg.doneTTL).Err(); err != nil {
		return storeErr("dedupe complete", key, err)
	}
	return nil
}

// releaseScript deletes a key only while it is a reservation: a completed
// key stays completed.
var releaseScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
	return redis.call("DEL", KEYS[1])
end
return 0`)

// Release implements kommo.WebhookDedupeStore.
func (d *Dedupe) Release(ctx context.Context, key string) error {
	ctx, cancel := d.cfg.op(ctx)
	defer cancel()
	if err := releaseScript.Run(ctx, d.rdb, []string{d.key(key)}, dedupeReserved).Err(); err != nil {
		return storeErr("dedupe release", key, err)
	}
	return nil
}

// String describes the store.
func (d *Dedupe) String() string {
	return fmt.Sprintf("kommoredis.Dedupe{prefix %q, reservation TTL %v, done TTL %v}", d.cfg.prefix, d.cfg.reserveTTL, d.cfg.doneTTL)
}
