package kommo

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"strings"
)

// Call sends a request to any CRM API v4 endpoint the SDK has no method
// for, with everything the service methods get: the bearer token (and its
// refresh), the rate limiter, retries by the client's RetryPolicy, the
// timeout, middleware, logging, and errors as *APIError (matching
// ErrNotFound and the other sentinels), *RetryError, *RateLimitError and
// *DecodeError. It is the SDK's one raw call; there is no need to fall back
// to net/http.
//
// path is relative to the account's base URL and must start with
// "api/v4/" (a leading "/" is allowed): "api/v4/contacts". It must not
// carry a query (pass query), a fragment, "." or ".." segments, a "\\" or
// control characters. body is sent as JSON (a []byte or json.RawMessage
// as is; nil sends none); GET and HEAD take none. out, when not nil, must be a non-nil pointer; a 2xx body is
// decoded into it (a *json.RawMessage keeps it raw; 204 leaves it as it
// is). Bad arguments are a *ValidationError (Op "Call") before any request.
//
// POST and PATCH are not retried after a response may have been acted on,
// as for every CRM call (see RetryPolicy).
//
//	var out struct {
//		Embedded struct {
//			Contacts []struct{ ID int `json:"id"` } `json:"contacts"`
//		} `json:"_embedded"`
//	}
//	_, err := client.Call(ctx, http.MethodPost, "api/v4/contacts", nil,
//		[]map[string]any{{"name": "Alice"}}, &out)
//
// Kommo API reference: https://developers.kommo.com/reference
func (c *Client) Call(ctx context.Context, method, path string, query url.Values, body, out any) (*Response, error) {
	v := validator{op: "Call"}
	switch method {
	case http.MethodGet, http.MethodHead:
		if body != nil {
			v.addf("body: a %s request has no body", method)
		}
	case http.MethodPost, http.MethodPatch, http.MethodPut, http.MethodDelete:
	default:
		v.addf("method: %q is not one of GET, HEAD, POST, PATCH, PUT, DELETE", method)
	}
	rel := strings.TrimPrefix(path, "/")
	rawCheckPath(&v, rel)
	if out != nil {
		if rv := reflect.ValueOf(out); rv.Kind() != reflect.Pointer || rv.IsNil() {
			v.addf("out: must be a non-nil pointer, got %T", out)
		}
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	var q any
	if len(query) > 0 {
		q = query
	}
	var raw json.RawMessage
	resp, err := c.do(ctx, &call{op: "Call", api: crmAPI, method: method, path: rel, query: q, body: body, out: &raw})
	if err != nil {
		return resp, err
	}
	resp.setPaging(raw) // a list page's paging, for callers of list endpoints
	if out != nil && len(bytes.TrimSpace(raw)) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			return resp, crmDecodeErr(resp, err)
		}
	}
	return resp, nil
}

// rawCheckPath records what keeps rel from naming a CRM API v4 endpoint
// below the base URL.
func rawCheckPath(v *validator, rel string) {
	if !strings.HasPrefix(rel, "api/v4/") || len(rel) == len("api/v4/") {
		v.addf("path: %q must name an endpoint below api/v4/", rel)
		return
	}
	if strings.ContainsAny(rel, "?#\\") {
		v.addf("path: %q must not contain ?, # or \\ (pass the query separately)", rel)
	}
	for _, seg := range strings.Split(rel, "/") {
		if seg == "." || seg == ".." {
			v.addf("path: %q must not contain . or .. segments", rel)
			break
		}
	}
	for _, r := range rel {
		if r < 0x20 || r == 0x7f {
			v.addf("path: must not contain control characters")
			break
		}
	}
	if u, err := url.Parse(rel); err != nil || u.Scheme != "" || u.Host != "" {
		v.addf("path: %q must be a relative path", rel)
	}
}
