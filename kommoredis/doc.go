// Package kommoredis implements the SDK's shared stores on Redis, so that
// many replicas serving many accounts act as one:
//
//   - [Limiter], a kommo.Limiter: one GCRA limit per account key
//     (github.com/go-redis/redis_rate), Redis's clock;
//   - [TokenStore], a kommo.AccountTokenStore: each account's OAuth token
//     and a lock (SET NX PX with a random value, deleted by a
//     compare-and-delete script) so that one refresh runs per account;
//   - [Dedupe], a kommo.WebhookDedupeStore: SET NX PX reservations, so a
//     webhook copy reaching two instances runs its callback once;
//   - [WebhookQueue], a kommo.WebhookQueue on Redis Streams with a consumer
//     group: at-least-once delivery with leases, retries and dead letters.
//
// Every constructor takes a redis.UniversalClient (a *redis.Client, a
// *redis.ClusterClient or a failover client) and Options, which return
// errors (a *kommo.OptionError). The client must honour contexts
// (ContextTimeoutEnabled: true; the constructors refuse a go-redis client
// without it), so that the stores' timeouts hold:
//
//	rdb := redis.NewClient(&redis.Options{Addr: "redis:6379", ContextTimeoutEnabled: true})
//	limiter, err := kommoredis.NewLimiter(rdb, kommo.DefaultRateLimit, 1)
//	tokens, err := kommoredis.NewTokenStore(rdb)
//	accounts, err := kommo.NewAccounts(ctx, cfg, tokens)
//	client, err := accounts.Client(ctx, "example.kommo.com", kommo.WithLimiter(limiter))
//	queue, err := kommoredis.NewWebhookQueue(rdb, "hooks")
//	dedupe, err := kommoredis.NewDedupe(rdb)
//
// # Keys
//
// Every key starts with the prefix (WithPrefix, default "kommo:", shown
// below). Keys that a script reads together carry one hash tag ({…}), so
// they live in one Redis Cluster slot; independent keys carry none, so they
// spread over the cluster.
//
//	rate:kommo:rl:<limiter key>     Limiter: GCRA state of one key ("chat:<scope id>",
//	                                "crm:<host>"); redis_rate adds "rate:". TTL: until
//	                                the key's budget is full again (at most burst/rps).
//	kommo:{tok:<account>}:token     TokenStore: the account's token, JSON
//	                                {"access_token","token_type","refresh_token","expiry"}.
//	                                No TTL.
//	kommo:{tok:<account>}:lock      TokenStore: the account's lock, a random value.
//	                                TTL: the lock TTL (WithLockTTL, default 90 s).
//	kommo:dedupe:<key>              Dedupe: "reserved" (TTL WithReservationTTL, default
//	                                2 min) or "done" (TTL WithDoneTTL, default 24 h).
//	kommo:{q:<name>}:stream         WebhookQueue: the deliveries, one entry each (field
//	                                "d": the WebhookDelivery as JSON), with the consumer
//	                                group (WithGroup, default "workers"). No TTL, never
//	                                trimmed: an entry goes when it is acknowledged.
//	kommo:{q:<name>}:delayed        WebhookQueue: retries, a sorted set scored by due time
//	                                (Unix ms, Redis's clock). No TTL.
//	kommo:{q:<name>}:dead           WebhookQueue: dead letters, a stream. No TTL: they stay
//	                                until replayed (or deleted by an operator).
//	kommo:{q:<name>}:seen:<id>      WebhookQueue: a delivery id Enqueue took, so a copy of
//	                                the webhook is dropped. TTL: WithSeenTTL (1 h).
//
// <account> is the account's base domain, "example.kommo.com"; <key> a
// webhook dedupe key (kommo.WebhookDedupeStore); <name> the queue's name.
// Each consumer of a queue appears in its group under its name (WithConsumer,
// by default "<hostname>-<pid>-<random>"); consumers of processes gone stay
// listed, without entries once their leases were taken over, until removed
// with XGROUP DELCONSUMER.
//
// # Why Redis Streams for the queue
//
// The queue's operations map one to one onto a stream with a consumer
// group: XADD, XREADGROUP (each entry to one consumer), XAUTOCLAIM (take
// over a lease that expired), XACK. Entries live in one key per queue, so
// Ack, Retry, Bury and Replay are single scripts, and nothing beyond
// go-redis is needed (a job framework such as asynq would bring its own
// worker model, retry policy and key layout to a worker that has them).
//
// # Failures
//
// A store operation fails, rather than hangs, when Redis is unreachable or
// stuck: each Redis round trip is bounded by WithTimeout (default 500 ms)
// and by the caller's context. (go-redis retries a refused dial, so a
// Redis that is down costs a call the whole timeout; lower DialerRetries
// or MaxRetries in the client's options to fail sooner.) The errors wrap the Redis client's; the
// kommo client wraps them in a *kommo.StoreError (kommo.ErrStoreUnavailable)
// and does not go ahead without the store (no request without the
// limiter's leave, no refresh without the lock).
//
// # Durability
//
// What is written survives a Redis restart only as Redis's persistence
// allows: run Redis with appendonly yes (appendfsync everysec loses at
// most a second of writes in a crash, always loses none) and replicas for
// failover. A token lost is an account to install again.
package kommoredis
