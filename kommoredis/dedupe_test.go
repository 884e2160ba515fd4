package kommoredis_test

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kommo-go/kommo/internal/testkit"
	"github.com/kommo-go/kommo/kommoredis"
)

func TestDedupeReserveCompleteRelease(t *testing.T) {
	t.Parallel()
	_, rdb := newRedis(t, false)
	ctx := testkit.Context(t)
	d := must[*kommoredis.Dedupe](t)(kommoredis.NewDedupe(rdb))
	const key = "message:m1:00ff"

	ok, err := d.Reserve(ctx, key)
	require.NoError(t, err)
	assert.True(t, ok, "first reserve owns the key")
	ok, err = d.Reserve(ctx, key)
	require.NoError(t, err)
	assert.False(t, ok, "a second reserve while reserved")

	require.NoError(t, d.Release(ctx, key))
	ok, err = d.Reserve(ctx, key)
	require.NoError(t, err)
	assert.True(t, ok, "released: reserved again")
	ttl, err := rdb.PTTL(ctx, "kommo:dedupe:"+key).Result()
	require.NoError(t, err)
	assert.InDelta(t, kommoredis.DefaultReservationTTL.Seconds(), ttl.Seconds(), 5, "the reservation TTL")

	require.NoError(t, d.Complete(ctx, key))
	ok, err = d.Reserve(ctx, key)
	require.NoError(t, err)
	assert.False(t, ok, "completed: not reserved again")
	require.NoError(t, d.Release(ctx, key))
	ok, err = d.Reserve(ctx, key)
	require.NoError(t, err)
	assert.False(t, ok, "release does not undo a completion")
	ttl, err = rdb.PTTL(ctx, "kommo:dedupe:"+key).Result()
	require.NoError(t, err)
	assert.InDelta(t, kommoredis.DefaultDoneTTL.Seconds(), ttl.Seconds(), 5, "the done TTL")
}

func TestDedupeReservationExpires(t *testing.T) {
	t.Parallel()
	const ttl = 200 * time.Millisecond
	_, rdb := newRedis(t, false)
	ctx := testkit.Context(t)
	d := must[*kommoredis.Dedupe](t)(kommoredis.NewDedupe(rdb, kommoredis.WithReservationTTL(ttl), kommoredis.WithDoneTTL(ttl)))
	ok, err := d.Reserve(ctx, "body:aa")
	require.NoError(t, err)
	require.True(t, ok)
	ok, err = d.Reserve(ctx, "body:aa")
	require.NoError(t, err)
	require.False(t, ok)
	time.Sleep(ttl + 100*time.Millisecond) // the instance that reserved died
	ok, err = d.Reserve(ctx, "body:aa")
	require.NoError(t, err)
	assert.True(t, ok, "an expired reservation is free again")

	require.NoError(t, d.Complete(ctx, "body:aa"))
	time.Sleep(ttl + 100*time.Millisecond)
	ok, err = d.Reserve(ctx, "body:aa")
	require.NoError(t, err)
	assert.True(t, ok, "a completed key is forgotten after the done TTL")
}

// TestDedupeReserveIsAtomic: of many concurrent reserves over two clients,
// exactly one wins.
func TestDedupeReserveIsAtomic(t *testing.T) {
	t.Parallel()
	srv, rdb := newRedis(t, false)
	ctx := testkit.Context(t)
	stores := []*kommoredis.Dedupe{
		must[*kommoredis.Dedupe](t)(kommoredis.NewDedupe(rdb)),
		must[*kommoredis.Dedupe](t)(kommoredis.NewDedupe(newClient(t, srv.Addr()))),
	}
	var (
		won atomic.Int64
		wg  sync.WaitGroup
	)
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := stores[i%2].Reserve(ctx, "body:race")
			assert.NoError(t, err)
			if ok {
				won.Add(1)
			}
		}()
	}
	wg.Wait()
	assert.Equal(t, int64(1), won.Load())
}

func TestDedupeRedisDown(t *testing.T) {
	t.Parallel()
	srv, rdb := newRedis(t, false)
	ctx := testkit.Context(t)
	d := must[*kommoredis.Dedupe](t)(kommoredis.NewDedupe(rdb))
	srv.Stop()
	start := time.Now()
	ok, err := d.Reserve(ctx, "body:x")
	assert.Error(t, err)
	assert.False(t, ok, "no ownership without the store")
	assert.Less(t, time.Since(start), time.Second)
	assert.Error(t, d.Complete(ctx, "body:x"))
	assert.Error(t, d.Release(ctx, "body:x"))
}
