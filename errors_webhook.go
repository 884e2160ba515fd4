package kommo

import "errors"

// Webhook errors. Every error from ParseWebhook, ParseWebhookBody and the
// WebhookHandler's error hook matches one of these (or ErrInvalidSignature)
// with errors.Is. None of them contains the body or the signature.
var (
	// ErrWebhookTooLarge: the body is larger than the configured cap (413).
	ErrWebhookTooLarge = errors.New("kommo: webhook body too large")

	// ErrWebhookMalformed: the signature is valid but the body is not a
	// JSON object (400). The *json.SyntaxError or *json.UnmarshalTypeError
	// is wrapped too.
	ErrWebhookMalformed = errors.New("kommo: malformed webhook body")

	// ErrWebhookMethodNotAllowed: the request is not a POST (405).
	ErrWebhookMethodNotAllowed = errors.New("kommo: webhook method not allowed")

	// ErrWebhookBodyRead: the body could not be read, e.g. the sender hung
	// up (400).
	ErrWebhookBodyRead = errors.New("kommo: reading webhook body")

	// ErrWebhookTimeout: the callback did not return within the handler's
	// timeout (500). context.DeadlineExceeded is wrapped too.
	ErrWebhookTimeout = errors.New("kommo: webhook callback timed out")

	// ErrWebhookCallback: the callback returned an error or panicked (500).
	// The callback's own error is wrapped too.
	ErrWebhookCallback = errors.New("kommo: webhook callback failed")

	// ErrWebhookDedupe: the dedupe store failed. The handler fails open (it
	// still runs the callback and answers by its result) and reports this
	// through the error hook.
	ErrWebhookDedupe = errors.New("kommo: webhook dedupe store failed")
)

// More webhook errors, matched with errors.Is like the ones above.
var (
	// ErrWebhookScopeMismatch: the account part of the webhook URL's scope
	// id ("{channel_id}_{account_amojo_id}") is not the body's account_id
	// (400). The callback does not run.
	ErrWebhookScopeMismatch = errors.New("kommo: webhook scope does not match the body's account")

	// ErrWebhookDedupeCollision: a validly signed message hook carries the
	// amojo message id of an earlier hook but other bytes. It is not a
	// replay, so the callback runs and the answer follows its result; the
	// error hook gets this error alongside (a forged or reused id, or Kommo
	// sending an updated copy).
	ErrWebhookDedupeCollision = errors.New("kommo: webhook message id seen before with another body")
)

// Errors of webhook callbacks that outlive their answer.
var (
	// ErrWebhookLate is matched by every *WebhookLateError: a callback
	// returned after the WebhookHandler had already answered 500.
	ErrWebhookLate = errors.New("kommo: webhook callback finished after the answer")

	// ErrWebhookOverloaded: as many callbacks as WithWebhookMaxAbandoned
	// allows are still running after their answer, so the handler answered
	// 503 at once without running the callback. Kommo will not redeliver
	// the hook.
	ErrWebhookOverloaded = errors.New("kommo: too many webhook callbacks still running after their answer")
)

// WebhookLateError reports, through the WebhookHandler's error hook, the
// outcome of a callback that returned after the handler had answered 500
// (its deadline passed or the request was cancelled). It arrives after the
// answer, from the callback's goroutine. Err is nil when the callback
// succeeded late: the event is then safe, but Kommo was told otherwise and
// will not redeliver, and the dedupe store does not count it as handled.
type WebhookLateError struct {
	// Event is the hook the callback was given.
	Event WebhookEvent
	// ScopeID is the scope id of the URL it arrived on (see WebhookScopeID).
	ScopeID string
	// Err is the callback's error (ErrWebhookCallback or ErrWebhookTimeout
	// wrapping its own), or nil for a late success.
	Err error
}

// Error says whether the late callback succeeded.
func (e *WebhookLateError) Error() string {
	kind := "unknown"
	if e.Event != nil {
		kind = string(e.Event.Kind())
	}
	if e.Err == nil {
		return "kommo: webhook callback (" + kind + ") finished after the answer: succeeded"
	}
	return "kommo: webhook callback (" + kind + ") finished after the answer: " + e.Err.Error()
}

// Is matches ErrWebhookLate.
func (e *WebhookLateError) Is(target error) bool { return target == ErrWebhookLate }

// Unwrap returns Err.
func (e *WebhookLateError) Unwrap() error { return e.Err }

// ErrWebhookReadTimeout: the webhook body did not arrive within the
// handler's read deadline (WithWebhookReadTimeout), so the handler answered
// 408 and closed the connection without running the callback. It comes
// with ErrWebhookBodyRead and os.ErrDeadlineExceeded.
var ErrWebhookReadTimeout = errors.New("kommo: webhook body read timed out")

// ErrWebhookDeadLetter: a queued webhook's callback failed on every run a
// WebhookWorker gave it (or its body no longer decodes), so it became a
// dead letter (WebhookQueue.DeadLetters, Replay).
var ErrWebhookDeadLetter = errors.New("kommo: webhook became a dead letter")

// ErrWebhookQueueFallback: a WebhookHandler could not enqueue a webhook
// (WithWebhookQueue) and ran the callback inline instead, within the
// handler's deadline, so the webhook Kommo sends once is not lost. It
// comes with the queue's *StoreError.
var ErrWebhookQueueFallback = errors.New("kommo: webhook queue unavailable: callback run inline")
