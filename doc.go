// Package kommo is a Go client for the Kommo messenger CRM: its Chat API (the
// signed /v2/origin/custom/... API that chat-channel integrations use to move
// messages between a messenger and Kommo) and the CRM API v4 endpoints that go
// with it (talks, contact–chat links, sources, account, OAuth).
//
// # Clients and authentication
//
// One Client serves both APIs. Chat API requests are signed with the channel
// secret issued when the channel was registered; CRM API v4 requests carry an
// OAuth 2.0 or long-lived bearer token:
//
//	client, err := kommo.NewClient(
//		kommo.WithChannel(channelID, channelSecret), // Chat API
//		kommo.WithBaseDomain("example.kommo.com"),   // CRM API v4 host
//		kommo.WithAccessToken(token),                // or WithTokenSource(ts)
//	)
//
// A Chat API call on a client without WithChannel fails with ErrNoChannel, a
// CRM call without a token with ErrNoCredentials. One client may serve every
// account the channel is connected to: Chat API methods take the scope id
// that Channels.Connect returns (see ScopeID).
//
// For public integrations, NewTokenSource refreshes OAuth tokens and persists
// each new pair in a TokenStore (NewFileTokenStore writes a file atomically)
// before the access token is used: Kommo's refresh tokens are single use, so
// a lost pair means the user must authorize again (ErrReauthorizationRequired).
//
// # Sending and receiving messages
//
//	conn, _, err := client.Channels.Connect(ctx, &kommo.ConnectRequest{AccountID: amojoID, Title: "My channel"})
//	sent, _, err := client.Messages.Send(ctx, conn.ScopeID, &kommo.SendMessageRequest{
//		ConversationID: "chat-42",
//		Sender:         &kommo.Participant{ID: "client-7", Name: "Alice"},
//		Message:        kommo.TextMessage("Hi!"),
//	})
//
// Send generates a message id when the request has none, before the first
// attempt, so every retry of a send carries the same msgid. Whether Kommo
// drops a repeated msgid is not documented, so this keeps the retry
// identifiable rather than promising that no duplicate can appear. Messages a
// manager writes in Kommo arrive as webhooks: NewWebhookHandler verifies
// them, decodes them into *MessageEvent, *TypingEvent, *ReactionEvent or
// *UnknownEvent, and answers Kommo (which waits 5 seconds and never retries)
// only after your callback has taken the event, or once a queue holds it
// (WithWebhookQueue).
//
// # Chat API signing
//
// Every Chat API request carries Date, Content-Type, Content-MD5 and
// X-Signature headers (see Signer). The client marshals each body once, and
// signs it again right before every attempt, so a retry gets a fresh Date.
//
// # Errors
//
// Every non-2xx response is an *APIError; errors.Is matches it against
// ErrBadRequest, ErrUnauthorized, ErrPaymentRequired, ErrForbidden,
// ErrNotFound, ErrUnprocessableEntity, ErrRateLimited, ErrServer and
// ErrTalkClosed. Requests the SDK refuses to send return a *ValidationError
// listing every problem (errors.Is(err, ErrInvalidRequest)). No error string
// contains a token, secret or signature.
//
//	var apiErr *kommo.APIError
//	if errors.As(err, &apiErr) {
//		log.Println(apiErr.StatusCode, apiErr.Detail, apiErr.ValidationErrors)
//	}
//
// # Retries and rate limits
//
// A 429, or a request that provably never left (a refused dial), is retried
// for every call; a transport error after sending, 408, 500, 502, 503 or 504
// only for idempotent calls (GETs, DELETEs and Chat API calls, which keep
// their msgid); a CRM POST or PATCH that may have reached the server, and a
// 2xx whose body does not decode (*DecodeError), never. Waits use
// exponential backoff with jitter (see RetryPolicy, whose CheckRetry can
// replace the rule) and honour Retry-After. After the last attempt the
// error is a *RetryError wrapping the last *APIError. A wait that would
// pass the context's deadline ends the call at once with a
// *RateLimitError. The client throttles itself to DefaultRateLimit requests
// per second per account, each scope id and each CRM host on its own
// (Limiter, MemoryLimiter; Kommo blocks accounts that keep exceeding it);
// see WithRateLimit and WithLimiter. WithLogger logs attempts and retries
// through log/slog; WithMiddleware wraps every attempt for metrics or
// tracing.
//
// # Many accounts and replicas
//
// Accounts hands out a token source and client per account from an
// AccountTokenStore, refreshing each account's single-use refresh token
// under the store's lock. WithWebhookQueue makes the webhook handler a
// durable intake that answers 200 once a hook is queued; a WebhookWorker
// runs the callback with retries and dead letters. The in-memory Limiter,
// MemoryTokenStore, MemoryDedupe and MemoryWebhookQueue suit one process
// (the queue is not durable); package kommoredis implements all four on
// Redis for replicas.
//
// # Pagination
//
// History.All and Sources.All return an iter.Seq2 that fetches pages lazily
// and stops at the first error. History pages are newest first: offset 0 is
// the latest message, and History.All walks back in time. History takes
// the chat's amojo id (Chat.ID from Chats.Create, SentMessage.ConversationID,
// a webhook's conversation.id), not your conversation_id, for which Kommo
// answers an empty page:
//
//	for msg, err := range client.History.All(ctx, scopeID, chat.ID, nil) {
//		if err != nil {
//			return err
//		}
//		fmt.Println(msg.Message.Text)
//	}
//
// # Testing
//
// Package github.com/kommo-go/kommo/kommotest runs an in-memory fake of the
// Chat API and the CRM endpoints on loopback: it checks signatures and tokens
// like Kommo, keeps chats, messages and talks, can inject faults and rate
// limits, and delivers signed webhooks to your handler. Its Client method
// returns a *Client wired to it.
package kommo
