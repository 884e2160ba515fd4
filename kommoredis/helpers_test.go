package kommoredis_test

import (
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/kommo-go/kommo/internal/testkit"
)

// newRedis starts a redis-server for t and returns it with a client on it,
// closed when the test ends.
func newRedis(t *testing.T, appendOnly bool) (*testkit.RedisServer, *redis.Client) {
	t.Helper()
	srv := testkit.StartRedis(t, appendOnly)
	return srv, newClient(t, srv.Addr())
}

// newClient returns another client on the Redis at addr, as another
// process would have.
func newClient(t *testing.T, addr string) *redis.Client {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

func must[T any](t *testing.T) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}
