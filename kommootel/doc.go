// Package kommootel reports a kommo client's calls and a kommo webhook
// handler's hooks to OpenTelemetry: one span per call and one per HTTP
// attempt, and metrics per operation and account. It implements
// kommo.Observer; the kommo package itself does not depend on
// OpenTelemetry.
//
//	obs, err := kommootel.NewObserver() // the global TracerProvider and MeterProvider
//	client, err := kommo.NewClient(..., obs.ClientOption())
//	handler, err := kommo.NewWebhookHandler(secret, fn, obs.WebhookOption())
//
// The client's option also counts the token refreshes its calls start;
// Observer.Context counts those of an OAuthConfig.Refresh call or of a
// token source used without an observed client.
//
// # Spans
//
// A call is an internal span named after its operation ("Messages.Send")
// with the attributes kommo.operation, kommo.api ("chat" or "crm"),
// kommo.account (the scope id of a Chat API call, the CRM host of a CRM
// call), kommo.attempts, http.response.status_code and, on failure,
// error.type. Each HTTP attempt is a client span below it, named after the
// HTTP method, with the HTTP client semantic conventions
// (http.request.method, server.address, server.port, url.full,
// http.response.status_code, http.request.resend_count, error.type) plus
// kommo.operation, kommo.account, kommo.attempt and, for a retry,
// kommo.retry.reason (kommo.api is on the call span only). A failed span's
// status description is its error.type, never the error text.
//
// A span's attributes are set when it ends, in one SetAttributes call, and
// only if the span is recording: a sampler sees none of them, an unsampled
// call builds none, and a span processor's OnStart sees a span without
// them. Below a call span that does not record (an unsampled trace, a
// no-op tracer) no attempt span is started: the request carries the call
// span's context, so a trace is still propagated, and a sampler that would
// sample an attempt below an unsampled call gets no attempt to sample.
//
// # Metrics
//
//   - kommo.client.requests (counter): HTTP attempts by kommo.operation,
//     kommo.api, kommo.account and kommo.status_class ("2xx", "4xx",
//     "5xx", "error" when no response came).
//   - kommo.client.retries (counter): retries by operation, API, account
//     and kommo.retry.reason.
//   - kommo.client.rate_limited (counter): 429 answers by operation, API
//     and account.
//   - kommo.client.limiter.wait (histogram, s): waits on the client-side
//     rate limiter by operation, API and account.
//   - kommo.oauth.refreshes (counter): token refreshes by kommo.account
//     and kommo.outcome ("ok", "failed").
//   - kommo.webhook.received (counter): verified hooks by
//     kommo.webhook.kind and kommo.account (the URL's scope id).
//   - kommo.webhook.handler.duration (histogram, s): from arrival to
//     answer, by kind, http.response.status_code and
//     kommo.webhook.within_budget (answered within Kommo's 5 s).
//   - kommo.webhook.lag (histogram, s): receipt time less the hook's own
//     "time", by kind and account.
//   - kommo.webhook.callback.failures (counter): failed callbacks by kind,
//     account and error.type ("timeout", "error").
//   - kommo.delivery_status.errors (counter): delivery errors reported
//     with Messages.UpdateDeliveryStatus by account and
//     kommo.delivery.error_code.
//
// No attribute holds a token, secret, signature or message text.
package kommootel
