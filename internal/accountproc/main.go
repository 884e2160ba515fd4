// Command accountproc is a helper of kommo's multi-replica tests, not part
// of the SDK: the tests build it with go build and run several of it at
// once, as replicas of one integration sharing one Redis, against one
// kommotest server that serves many accounts.
//
//	accountproc -mode tokens  -redis 127.0.0.1:6379 -fake http://127.0.0.1:1234 -accounts a.kommo.com,b.kommo.com -d 5s
//	accountproc -mode limiter -redis 127.0.0.1:6379 -fake http://127.0.0.1:1234 -scopes s1,s2 -channel ID -secret S -d 5s
//
// In tokens mode it serves every account through kommo.Accounts on a
// kommoredis.TokenStore (tokens refreshed under the store's lock) and
// calls GET /api/v4/account for each account, one goroutine per account,
// as fast as the client's own limiter (-rps per account) lets it. In limiter mode one client, paced by a kommoredis.Limiter
// at Kommo's 7 rps with a burst of 1 per scope, sends typing events to
// every scope, one goroutine per scope (-limiter memory: a MemoryLimiter
// of the process instead, the tests' control). Requests for any host go to -fake
// with the host kept in the Host header, as kommotest's RoutingClient
// does.
//
// It prints "ready" once set up, reads a line from standard input, runs
// for -d and prints one JSON line: {"ok":…,"reauth":…,"other":…,
// "in_window":…,"elapsed_ms":…,"per_key":{…},"errors":[…]}; in_window
// counts the successful calls that ended within -d (the last calls end up
// to a few limiter intervals later).
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kommo-go/kommo"
	"github.com/kommo-go/kommo/kommoredis"
	"github.com/kommo-go/kommo/kommotest"
)

// result is what the process prints.
type result struct {
	OK        int            `json:"ok"`
	InWindow  int            `json:"in_window"` // of OK, those done within -d
	Reauth    int            `json:"reauth"`
	Other     int            `json:"other"`
	ElapsedMS int64          `json:"elapsed_ms"`
	PerKey    map[string]int `json:"per_key"` // successful calls per account or scope
	Errors    []string       `json:"errors,omitempty"`
}

// recorder counts outcomes from many goroutines.
type recorder struct {
	mu  sync.Mutex
	res result
}

func (r *recorder) add(key string, err error, inWindow bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case err == nil:
		r.res.OK++
		if inWindow {
			r.res.InWindow++
		}
		r.res.PerKey[key]++
	case errors.Is(err, kommo.ErrReauthorizationRequired):
		r.res.Reauth++
	default:
		r.res.Other++
		if len(r.res.Errors) < 5 {
			r.res.Errors = append(r.res.Errors, key+": "+err.Error())
		}
	}
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "accountproc: "+format+"\n", args...)
	os.Exit(1)
}

func main() {
	mode := flag.String("mode", "", "tokens or limiter")
	redisAddr := flag.String("redis", "", "Redis address")
	fake := flag.String("fake", "", "kommotest server URL")
	accounts := flag.String("accounts", "", "comma-separated account domains (tokens mode)")
	scopes := flag.String("scopes", "", "comma-separated scope ids (limiter mode)")
	channel := flag.String("channel", "", "channel id (limiter mode)")
	secret := flag.String("secret", "", "channel secret (limiter mode)")
	clientID := flag.String("client-id", "", "OAuth client id (tokens mode)")
	clientSecret := flag.String("client-secret", "", "OAuth client secret (tokens mode)")
	redirect := flag.String("redirect", "", "OAuth redirect URI (tokens mode)")
	limiter := flag.String("limiter", "redis", "redis (one kommoredis.Limiter) or memory (a limiter of this process only; the control) (limiter mode)")
	rps := flag.Float64("rps", kommo.DefaultRateLimit, "client-side limit per account, per process (tokens mode)")
	d := flag.Duration("d", 5*time.Second, "how long to run")
	flag.Parse()
	u, err := url.Parse(*fake)
	if *redisAddr == "" || err != nil || u.Host == "" {
		fail("-redis and -fake are required")
	}

	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns, tr.MaxIdleConnsPerHost = 256, 256
	hc := &http.Client{Transport: kommotest.RoutingTransport(u.Host, tr)}
	rdb := redis.NewClient(&redis.Options{Addr: *redisAddr, PoolSize: 64, ContextTimeoutEnabled: true})
	defer rdb.Close()
	ctx := context.Background()

	var keys []string
	var call func(ctx context.Context, key string) error
	switch *mode {
	case "tokens":
		keys = strings.Split(*accounts, ",")
		store, err := kommoredis.NewTokenStore(rdb)
		if err != nil {
			fail("%v", err)
		}
		cfg := &kommo.OAuthConfig{ClientID: *clientID, ClientSecret: *clientSecret, RedirectURL: *redirect, HTTPClient: hc}
		accts, err := kommo.NewAccounts(ctx, cfg, store)
		if err != nil {
			fail("%v", err)
		}
		clients := make(map[string]*kommo.Client, len(keys))
		for _, host := range keys {
			c, err := accts.Client(ctx, host, kommo.WithHTTPClient(hc), kommo.WithRateLimit(*rps, 1))
			if err != nil {
				fail("%s: %v", host, err)
			}
			clients[host] = c
		}
		call = func(ctx context.Context, host string) error {
			_, _, err := clients[host].Account.Get(ctx, nil)
			return err
		}
	case "limiter":
		keys = strings.Split(*scopes, ",")
		var lim kommo.Limiter
		switch *limiter {
		case "redis":
			lim, err = kommoredis.NewLimiter(rdb, kommo.DefaultRateLimit, 1)
		case "memory":
			lim, err = kommo.NewMemoryLimiter(kommo.DefaultRateLimit, 1, 0)
		default:
			err = fmt.Errorf("-limiter must be redis or memory, not %q", *limiter)
		}
		if err != nil {
			fail("%v", err)
		}
		client, err := kommo.NewClient(kommo.WithChannel(*channel, *secret), kommo.WithChatBaseURL(*fake+"/"),
			kommo.WithHTTPClient(hc), kommo.WithLimiter(lim))
		if err != nil {
			fail("%v", err)
		}
		call = func(ctx context.Context, scope string) error {
			_, err := client.Messages.Typing(ctx, scope, &kommo.TypingRequest{ConversationID: "conv", SenderID: "client"})
			return err
		}
	default:
		fail("-mode must be tokens or limiter")
	}
	if err := rdb.Ping(ctx).Err(); err != nil {
		fail("redis: %v", err)
	}

	fmt.Println("ready")
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	rec := &recorder{res: result{PerKey: map[string]int{}}}
	start := time.Now()
	end := start.Add(*d)
	var wg sync.WaitGroup
	for _, key := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(end) {
				err := call(ctx, key)
				rec.add(key, err, time.Now().Before(end))
			}
		}()
	}
	wg.Wait()
	rec.res.ElapsedMS = time.Since(start).Milliseconds()
	_ = json.NewEncoder(os.Stdout).Encode(rec.res)
}
