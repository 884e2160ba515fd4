// Package kommotest is an in-memory fake of the Kommo Chat API (amojo) and
// the CRM API v4 endpoints the kommo SDK uses, for testing integrations
// without a Kommo account.
//
// A Server listens on a loopback address and behaves like Kommo where it
// matters for correctness:
//
//   - Every Chat API request (/v2/origin/custom/...) must carry Date (within
//     SignatureWindow of the server clock), Content-Type application/json,
//     Content-MD5 (lowercase hex MD5 of the exact body) and X-Signature (the
//     HMAC-SHA1 of method, Content-MD5, Content-Type, Date and path, keyed with
//     the channel secret); otherwise it answers 403 with a JSON body
//     {"error_code":403,"error_type":"signature|date|content_md5","error_description":"…"}.
//   - Every CRM request (/api/v4/...) needs a valid bearer token, else 401
//     with an application/problem+json body.
//   - Chat API: connect and disconnect; create chat (idempotent on
//     conversation_id); new_message (incoming, import, outgoing by a manager
//     or the bot; idempotent on msgid within the scope, so a retried send
//     is stored once, while a msgid reused for another message is refused
//     with 409, see Assumptions) and edit_message; delivery status (both documented bodies; a -1 needs an
//     error code and an error text); typing (204);
//     reactions; history (newest first, offset/limit ≤ 50, 204 when empty;
//     by amojo chat id: an integration's conversation_id is answered 404,
//     see Assumptions).
//     The scope id is "{channel_id}_{account_amojo_id}" and must be connected
//     (404 otherwise).
//   - CRM API: talks (a talk opens when a client's non-silent message arrives
//     in a chat without an open talk; close answers 202, then 422), contact–
//     chat links, sources (list/get answer 204 when empty), the account with
//     its amojo_id, and the OAuth token endpoint with single-use refresh
//     tokens.
//
// All state lives in the Server and is safe for concurrent use. Requests,
// chats, messages, talks and sources can be inspected for assertions. Of
// the requests, only the most recent are kept (DefaultRequestLog, or the
// size given to WithRequestLog), so a long-running server's memory stays
// bounded; RecordedRequest.Seq numbers them in order of arrival.
//
// # Use
//
//	srv := kommotest.New(t)               // closed by t.Cleanup
//	client, err := srv.Client()           // *kommo.Client wired to srv
//	scope := srv.Connect(srv.AccountAmojoID())
//	// … exercise the code under test with client …
//	msgs := srv.Messages(scope, "my-chat-1")
//
// Kommo's side of a conversation is simulated with webhooks, signed with the
// channel secret and posted to the integration's handler:
//
//	err = srv.DeliverWebhook(ctx, hookURL, kommotest.ManagerMessage(chatID, "Hello!"))
//
// # Faults and limits
//
// FailNext, ResetNext, StallNext, TruncateNext and DropResponseNext queue
// faults for the next requests; WithRateLimit answers 429 with Retry-After
// above a rate; WithRandomFailures fails a fraction of requests with 503.
// A request answered with a fault status, a reset or a truncated body
// changes no state; DropResponseNext processes the request and then loses
// the answer, the case that retries must be idempotent for.
//
// # Assumptions
//
// Kommo does not document some behaviour; the fake picks one and says so:
// the Chat API error body shape above; new_message answers the five-field
// {"new_message":{conversation_id (amojo chat id), sender_id, receiver_id,
// msgid (amojo id), ref_id (your msgid)}} and edit_message answers the same
// shape; an edit or delivery status for an unknown message is 404; history
// is newest first. History takes the amojo chat id; Kommo answers an id it
// does not know with 204, so an integration that passes its own
// conversation_id silently reads nothing. The fake answers such a request,
// for a conversation_id it knows in that scope, with 404 and a body naming
// the amojo id to use:
//
//	{"error_code":404,"error_type":"not_found","error_description":"chat \"my-chat-1\" is the integration's conversation_id; history takes the amojo chat id, here \"{amojo id}\" (…)"}
//
// Where Kommo's documents changed, the fake follows the current ones
// strictly: a create chat with user.ref_id (removed by Kommo's changelog)
// is answered 400; a -1 delivery status needs an error code and an error
// text; a message's media must be an absolute http(s) URL, while file_name
// and file_size are optional; a new message may carry
// message.delivery_status.
//
// Kommo does not document what happens when a new_message reuses a msgid.
// The fake is careful rather than forgiving: a resend with the same
// conversation (conversation_id, and conversation_ref_id if given, which
// must name the same chat) and the same message, sender and receiver
// objects, compared as JSON values without null, empty or zero fields,
// answers 200 with the first answer and stores nothing, so the SDK's
// retries, which resend the same body, stay idempotent. Timestamps, silent,
// source, reply_to and forwards are not compared (a resend may carry a new
// time). A msgid of the scope reused with any other payload is refused
// with 409 Conflict and changes nothing:
//
//	{"error_code":409,"error_type":"msgid_conflict","error_description":"payload.msgid \"m1\" is already used in this scope by message {amojo id}; this payload differs in payload.message"}
//
// The description lists what differs: payload.conversation_id,
// payload.conversation_ref_id, payload.message, payload.sender or
// payload.receiver.
package kommotest
