package kommo

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"strconv"
)

// Link is one HAL link of a CRM API v4 resource.
type Link struct {
	Href string `json:"href"`
}

// Links are the HAL "_links" of a CRM API v4 resource or list page. A list
// page carries Next until its last page.
type Links struct {
	Self  *Link `json:"self,omitempty"`
	Next  *Link `json:"next,omitempty"`
	Prev  *Link `json:"prev,omitempty"`
	First *Link `json:"first,omitempty"`
}

// ListMaxLimit is the largest page size ("limit") the CRM API v4 accepts
// on paged lists.
const ListMaxLimit = 250

// crmHALPage is one page of a HAL list: _page, _total_items, _links and
// _embedded.{key}[].
type crmHALPage struct {
	Page       int                        `json:"_page"`
	TotalItems int                        `json:"_total_items"`
	Links      Links                      `json:"_links"`
	Embedded   map[string]json.RawMessage `json:"_embedded"`
}

// crmListPage fetches one page of a HAL list at path and decodes
// _embedded.{key}. A 204 (Kommo's "nothing found") is an empty page.
// next is the _links.next href, "" on the last page.
func crmListPage[T any](ctx context.Context, c *Client, op, path string, q url.Values, key string) (items []T, next string, resp *Response, err error) {
	var raw json.RawMessage
	resp, err = c.do(ctx, &call{op: op, api: crmAPI, method: http.MethodGet, path: path, query: q, out: &raw})
	if err != nil {
		return nil, "", resp, err
	}
	items, next, err = crmDecodeList[T](raw, key)
	if err != nil {
		return nil, "", resp, crmDecodeErr(resp, err)
	}
	resp.setPaging(raw)
	return items, next, resp, nil
}

// setPaging fills the Response's paging fields from a HAL list body.
func (r *Response) setPaging(raw json.RawMessage) {
	var page struct {
		Links Links `json:"_links"`
	}
	if r == nil || len(bytes.TrimSpace(raw)) == 0 || json.Unmarshal(raw, &page) != nil {
		return
	}
	if l := page.Links.Next; l != nil {
		r.NextURL, r.NextPage = l.Href, linkPage(l.Href)
	}
	if l := page.Links.Prev; l != nil {
		r.PrevURL, r.PrevPage = l.Href, linkPage(l.Href)
	}
}

// linkPage returns the "page" query value of a HAL href (0 when absent or
// not a positive number).
func linkPage(href string) int {
	u, err := url.Parse(href)
	if err != nil {
		return 0
	}
	n, err := strconv.Atoi(u.Query().Get("page"))
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// crmDoEmbedded makes call cl and decodes _embedded.{key} of its HAL
// answer (an answer without it has no items).
func crmDoEmbedded[T any](ctx context.Context, c *Client, cl *call, key string) ([]T, *Response, error) {
	var page crmHALPage
	cl.out = &page
	resp, err := c.do(ctx, cl)
	if err != nil {
		return nil, resp, err
	}
	items, err := crmEmbedded[T](page, key)
	if err != nil {
		return nil, resp, crmDecodeErr(resp, err)
	}
	return items, resp, nil
}

// crmDoOne makes call cl and decodes its answer about one item with
// crmDecodeOne.
func crmDoOne[T any](ctx context.Context, c *Client, cl *call, key string) (*T, *Response, error) {
	var raw json.RawMessage
	cl.out = &raw
	resp, err := c.do(ctx, cl)
	if err != nil {
		return nil, resp, err
	}
	out, err := crmDecodeOne[T](raw, key)
	if err != nil {
		return nil, resp, crmDecodeErr(resp, err)
	}
	return out, resp, nil
}

// crmDecodeOne decodes the answer about one item: the item itself, or a HAL
// list holding it under _embedded.{key}.
func crmDecodeOne[T any](raw json.RawMessage, key string) (*T, error) {
	var probe struct {
		Embedded map[string]json.RawMessage `json:"_embedded"`
	}
	if err := json.Unmarshal(raw, &probe); err != nil {
		return nil, err
	}
	if _, ok := probe.Embedded[key]; ok {
		items, _, err := crmDecodeList[*T](raw, key)
		if err != nil {
			return nil, err
		}
		if len(items) == 0 || items[0] == nil {
			return nil, fmt.Errorf("_embedded.%s is empty", key)
		}
		return items[0], nil
	}
	out := new(T)
	if err := json.Unmarshal(raw, out); err != nil {
		return nil, err
	}
	return out, nil
}

// crmDecodeList decodes a HAL list body; an empty body yields no items.
func crmDecodeList[T any](raw json.RawMessage, key string) ([]T, string, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, "", nil
	}
	var page crmHALPage
	if err := json.Unmarshal(raw, &page); err != nil {
		return nil, "", err
	}
	items, err := crmEmbedded[T](page, key)
	if err != nil {
		return nil, "", err
	}
	next := ""
	if page.Links.Next != nil {
		next = page.Links.Next.Href
	}
	return items, next, nil
}

// crmEmbedded decodes _embedded.{key} of a HAL page (none when absent).
func crmEmbedded[T any](page crmHALPage, key string) ([]T, error) {
	var items []T
	if e, ok := page.Embedded[key]; ok {
		if err := json.Unmarshal(e, &items); err != nil {
			return nil, fmt.Errorf("_embedded.%s: %w", key, err)
		}
	}
	return items, nil
}

// crmDecodeErr wraps a decoding failure of a successful response.
func crmDecodeErr(resp *Response, err error) error {
	de := &DecodeError{Err: err}
	if resp != nil && resp.Response != nil {
		de.StatusCode = resp.StatusCode
		if resp.Request != nil {
			de.Method = resp.Request.Method
			de.URL = redactURL(resp.Request.URL)
		}
	}
	return de
}

// crmNextQuery takes the query of a _links.next href. Only the query is
// used: the request goes to the client's own base URL and path, so a next
// link naming another host can never receive the bearer token.
func crmNextQuery(href string) (url.Values, error) {
	u, err := url.Parse(href)
	if err != nil {
		return nil, fmt.Errorf("kommo: malformed _links.next href: %w", err)
	}
	return u.Query(), nil
}

// paginate is the one pager behind every All iterator; op names the call
// in its errors. newPage is called
// once per range over the sequence and returns the page fetcher for that
// walk, which returns one page and whether another follows. The walk is
// lazy, checks ctx before each page, yields at most one error and stops,
// and ends early when the caller breaks.
func paginate[T any](ctx context.Context, op string, newPage func() func(ctx context.Context) (items []T, more bool, err error)) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		var zero T
		if ctx == nil {
			yield(zero, fmt.Errorf("kommo: %s: nil context", op))
			return
		}
		next := newPage()
		for {
			if err := ctx.Err(); err != nil {
				yield(zero, err)
				return
			}
			items, more, err := next(ctx)
			if err != nil {
				yield(zero, err)
				return
			}
			for _, it := range items {
				if !yield(it, nil) {
					return
				}
			}
			if !more || len(items) == 0 {
				return
			}
		}
	}
}

// crmAll iterates over every item of a HAL list, following _links.next,
// and refuses to request the same page twice.
func crmAll[T any](ctx context.Context, c *Client, op, path string, q url.Values, key string) iter.Seq2[T, error] {
	first := crmCloneValues(q)
	return paginate(ctx, op, func() func(context.Context) ([]T, bool, error) {
		q := crmCloneValues(first)
		seen := map[string]bool{}
		return func(ctx context.Context) ([]T, bool, error) {
			enc := q.Encode()
			if seen[enc] {
				return nil, false, fmt.Errorf("kommo: GET %s: _links.next repeats an already fetched page (%s)", path, enc)
			}
			seen[enc] = true
			items, next, _, err := crmListPage[T](ctx, c, op, path, q, key)
			if err != nil || len(items) == 0 || next == "" {
				return items, false, err
			}
			if q, err = crmNextQuery(next); err != nil {
				return nil, false, err
			}
			return items, true, nil
		}
	})
}

// crmCloneValues copies v (nil stays an empty set).
func crmCloneValues(v url.Values) url.Values {
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

// Collect drains an iterator such as History.All into a slice, stopping at
// the first error (returned with the items read before it).
func Collect[T any](seq iter.Seq2[T, error]) ([]T, error) {
	var out []T
	for v, err := range seq {
		if err != nil {
			return out, err
		}
		out = append(out, v)
	}
	return out, nil
}
