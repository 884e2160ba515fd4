package kommotest

import (
	"context"
	"fmt"
	"io"
	"net/http"
	neturl "net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// CRMWebhookTimeout is how long the server waits for a CRM webhook's
// answer, as Kommo does (2 seconds).
const CRMWebhookTimeout = 2 * time.Second

type crmHookState struct {
	id          int
	destination string
	settings    []string
	sort        int
	createdAt   int64
}

// hookField is one key=value of a form-encoded CRM webhook, in order.
type hookField struct{ key, value string }

// CRMWebhookDelivery is one CRM webhook the server sent.
type CRMWebhookDelivery struct {
	// Event is the subscription name, e.g. "add_talk".
	Event       string
	Destination string
	// Body is the form-encoded body as sent.
	Body string
	// StatusCode is the receiver's answer (0 when it could not be reached).
	StatusCode int
	// Err is the transport error, or a non-2xx answer.
	Err error
}

// crmHookQueue sends CRM webhooks one at a time, in the order queued.
type crmHookQueue struct {
	mu      sync.Mutex
	pending []crmHookJob
	running bool
	wg      sync.WaitGroup
	done    []CRMWebhookDelivery
}

type crmHookJob struct {
	event, destination, body string
}

// crmHookQueue returns the server's queue (it has its own lock; s.mu is
// not needed).
func (s *Server) crmHookQueue() *crmHookQueue { return &s.integ.hookQ }

// queueCRMHookLocked queues event with fields (the account part is added)
// for every subscribed destination. Delivery happens in the background, in
// order; WaitCRMWebhooks waits for it. Call with s.mu held.
func (s *Server) queueCRMHookLocked(event string, fields []hookField) {
	var dests []string
	for _, h := range s.integ.hooks {
		if slices.Contains(h.settings, event) {
			dests = append(dests, h.destination)
		}
	}
	if len(dests) == 0 {
		return
	}
	var b strings.Builder
	for _, f := range fields {
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(neturl.QueryEscape(f.key) + "=" + neturl.QueryEscape(f.value))
	}
	for _, f := range []hookField{{"account[subdomain]", s.subdomain}, {"account[id]", strconv.Itoa(s.accountID)},
		{"account[_links][self]", "https://" + s.AccountDomain()}} {
		b.WriteString("&" + neturl.QueryEscape(f.key) + "=" + neturl.QueryEscape(f.value))
	}
	q := s.crmHookQueue()
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, d := range dests {
		q.pending = append(q.pending, crmHookJob{event: event, destination: d, body: b.String()})
		q.wg.Add(1)
	}
	if !q.running {
		q.running = true
		go s.runCRMHooks(q)
	}
}

func (s *Server) runCRMHooks(q *crmHookQueue) {
	hc := &http.Client{Transport: s.hookTransport, Timeout: CRMWebhookTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for {
		q.mu.Lock()
		if len(q.pending) == 0 {
			q.running = false
			q.mu.Unlock()
			return
		}
		job := q.pending[0]
		q.pending = q.pending[1:]
		q.mu.Unlock()

		d := CRMWebhookDelivery{Event: job.event, Destination: job.destination, Body: job.body}
		select {
		case <-s.closed:
			d.Err = fmt.Errorf("kommotest: server closed before the CRM webhook was sent")
		default:
			d.StatusCode, d.Err = s.sendCRMHook(hc, job)
		}
		q.mu.Lock()
		q.done = append(q.done, d)
		q.mu.Unlock()
		q.wg.Done()
	}
}

func (s *Server) sendCRMHook(hc *http.Client, job crmHookJob) (int, error) {
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, job.destination, strings.NewReader(job.body))
	if err != nil {
		return 0, fmt.Errorf("kommotest: build CRM webhook: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("User-Agent", "kommotest-webhooks/1.0")
	resp, err := hc.Do(req)
	if err != nil {
		return 0, fmt.Errorf("kommotest: deliver CRM webhook: %w", err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, &WebhookError{StatusCode: resp.StatusCode, Body: string(data)}
	}
	return resp.StatusCode, nil
}

// WaitCRMWebhooks waits until every CRM webhook queued so far (add_talk
// and update_talk when a talk opens or changes, add_chat_template_review
// when a template is sent for review) has been delivered to the
// destinations subscribed to it (POST /api/v4/webhooks) or has failed,
// and returns all deliveries made so far, in order.
func (s *Server) WaitCRMWebhooks() []CRMWebhookDelivery {
	q := s.crmHookQueue()
	q.wg.Wait()
	q.mu.Lock()
	defer q.mu.Unlock()
	return slices.Clone(q.done)
}

// talkHookFields is talk[{action}][0][…] as Kommo sends it.
func (s *Server) talkHookFields(t *talkState, action string) []hookField {
	p := "talk[" + action + "][0]"
	return []hookField{
		{p + "[talk_id]", strconv.Itoa(t.id)}, {p + "[created_at]", strconv.FormatInt(t.createdAt.Unix(), 10)},
		{p + "[updated_at]", strconv.FormatInt(t.updatedAt.Unix(), 10)}, {p + "[rate]", "0"},
		{p + "[contact_id]", strconv.Itoa(t.contactID)}, {p + "[chat_id]", t.chatID},
		{p + "[entity_id]", strconv.Itoa(t.leadID)}, {p + "[entity_type]", "lead"},
		{p + "[is_in_work]", boolDigit(!t.closed)}, {p + "[is_read]", boolDigit(t.read)},
		{p + "[origin]", s.channelCode}, {p + "[account_id]", strconv.Itoa(s.accountID)},
	}
}

// talkHookLocked queues add_talk or update_talk for t. Call with s.mu held.
func (s *Server) talkHookLocked(t *talkState, added bool) {
	if added {
		s.queueCRMHookLocked("add_talk", s.talkHookFields(t, "add"))
		return
	}
	s.queueCRMHookLocked("update_talk", s.talkHookFields(t, "update"))
}

type hookOut struct {
	ID          int      `json:"id"`
	Destination string   `json:"destination"`
	CreatedAt   int64    `json:"created_at"`
	UpdatedAt   int64    `json:"updated_at"`
	AccountID   int      `json:"account_id"`
	CreatedBy   int      `json:"created_by"`
	Sort        int      `json:"sort"`
	Disabled    bool     `json:"disabled"`
	Settings    []string `json:"settings"`
}

func (s *Server) hookOut(h *crmHookState) hookOut {
	return hookOut{ID: h.id, Destination: h.destination, CreatedAt: h.createdAt, UpdatedAt: h.createdAt,
		AccountID: s.accountID, CreatedBy: s.managerUserID, Sort: h.sort, Settings: slices.Clone(h.settings)}
}

// GET /api/v4/webhooks?filter[destination]=…
func (s *Server) crmHooksList(r *http.Request) reply {
	dest := r.URL.Query().Get("filter[destination]")
	out := []hookOut{}
	for _, h := range s.integ.hooks {
		if dest == "" || h.destination == dest {
			out = append(out, s.hookOut(h))
		}
	}
	return crmOK(http.StatusOK, map[string]any{"_total_items": len(out), "_embedded": map[string]any{"webhooks": out}})
}

// POST /api/v4/webhooks — 201; an existing destination gets the new
// settings.
func (s *Server) crmHooksSubscribe(r *http.Request) reply {
	var req struct {
		Destination string   `json:"destination"`
		Settings    []string `json:"settings"`
		Sort        int      `json:"sort"`
	}
	if p := decodeJSON(bodyOf(r), &req); p != "" {
		return crmFail(http.StatusBadRequest, p)
	}
	var v verrs
	if u, err := neturl.Parse(req.Destination); err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		v.add("0", "InvalidUrl", "destination", "This value is not a valid URL.")
	}
	if len(req.Settings) == 0 {
		v.add("0", "NotBlank", "settings", "This value should not be blank.")
	}
	if rep := v.reply(); rep != nil {
		return *rep
	}
	for _, h := range s.integ.hooks {
		if h.destination == req.Destination {
			h.settings, h.sort = slices.Clone(req.Settings), req.Sort
			return crmOK(http.StatusCreated, s.hookOut(h))
		}
	}
	if len(s.integ.hooks) >= 100 {
		return crmFail(http.StatusUnprocessableEntity, "at most 100 webhooks per account")
	}
	if s.integ.nextHookID == 0 {
		s.integ.nextHookID = 839001
	}
	h := &crmHookState{id: s.integ.nextHookID, destination: req.Destination, settings: slices.Clone(req.Settings),
		sort: req.Sort, createdAt: s.now().Unix()}
	s.integ.nextHookID++
	s.integ.hooks = append(s.integ.hooks, h)
	return crmOK(http.StatusCreated, s.hookOut(h))
}

// DELETE /api/v4/webhooks — body {"destination":…}; 204, 404.
func (s *Server) crmHooksUnsubscribe(r *http.Request) reply {
	var req struct {
		Destination string `json:"destination"`
	}
	if p := decodeJSON(bodyOf(r), &req); p != "" {
		return crmFail(http.StatusBadRequest, p)
	}
	i := slices.IndexFunc(s.integ.hooks, func(h *crmHookState) bool { return h.destination == req.Destination })
	if i < 0 {
		return crmFail(http.StatusNotFound, "webhook not found")
	}
	s.integ.hooks = slices.Delete(s.integ.hooks, i, i+1)
	return reply{status: http.StatusNoContent}
}

// webhookRoutes registers /api/v4/webhooks.
func (s *Server) webhookRoutes(m *http.ServeMux) {
	m.HandleFunc("GET /api/v4/webhooks", s.handle(s.crmHooksList))
	m.HandleFunc("POST /api/v4/webhooks", s.handle(s.crmHooksSubscribe))
	m.HandleFunc("DELETE /api/v4/webhooks", s.handle(s.crmHooksUnsubscribe))
}
