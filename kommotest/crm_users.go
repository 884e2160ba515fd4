package kommotest

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// integrationState holds the fake's users, chat templates and CRM webhook
// subscriptions. Its maps are created on first use; every access holds
// s.mu.
type integrationState struct {
	users        []*userState // after the manager
	nextUserID   int
	templates    map[int]*templateState
	tplOrder     []int
	nextTplID    int
	nextReviewID int
	hooks        []*crmHookState
	nextHookID   int
	hookQ        crmHookQueue
	salesbot     salesbotState
}

type userState struct {
	id          int
	name, email string
	amojoID     string // "" answers null
	admin       bool
}

// AddUser adds a user to the account (besides the manager, who is always
// there) and returns its CRM id. amojoID "" makes the user one without an
// amojo id (Kommo answers null). Users are listed by
// GET /api/v4/users after the manager, in the order added.
func (s *Server) AddUser(name, email, amojoID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := &s.integ
	if st.nextUserID == 0 {
		st.nextUserID = s.managerUserID + 1
	}
	u := &userState{id: st.nextUserID, name: name, email: email, amojoID: amojoID}
	st.nextUserID++
	st.users = append(st.users, u)
	return u.id
}

// allUsersLocked returns the manager and the added users.
func (s *Server) allUsersLocked() []*userState {
	manager := &userState{id: s.managerUserID, name: s.managerName, email: "manager@" + s.AccountDomain(),
		amojoID: s.managerAmojoID, admin: true}
	return append([]*userState{manager}, s.integ.users...)
}

// userOut is one user as GET /api/v4/users returns it.
func (s *Server) userOut(r *http.Request, u *userState, with map[string]bool) map[string]any {
	out := map[string]any{
		"id": u.id, "name": u.name, "email": u.email, "lang": "en",
		"rights": map[string]any{
			"leads":          map[string]string{"view": "A", "edit": "A", "add": "A", "delete": "A", "export": "A"},
			"contacts":       map[string]string{"view": "A", "edit": "A", "add": "A", "delete": "A", "export": "A"},
			"companies":      map[string]string{"view": "A", "edit": "A", "add": "A", "delete": "A", "export": "A"},
			"tasks":          map[string]string{"edit": "A", "delete": "A"},
			"mail_access":    false,
			"catalog_access": false,
			"status_rights":  nil,
			"is_admin":       u.admin,
			"is_free":        false,
			"is_active":      true,
			"group_id":       nil,
			"role_id":        nil,
		},
		"_links": selfLink(r, "/api/v4/users/"+strconv.Itoa(u.id)),
	}
	if with["amojo_id"] {
		if u.amojoID == "" {
			out["amojo_id"] = nil
		} else {
			out["amojo_id"] = u.amojoID
		}
	}
	return out
}

// withSet reads the comma-separated "with" query parameter.
func withSet(q url.Values) map[string]bool {
	with := map[string]bool{}
	for _, v := range q["with"] {
		for _, w := range strings.Split(v, ",") {
			with[strings.TrimSpace(w)] = true
		}
	}
	return with
}

// pageOf reads page and limit (defaults 1 and def, limit at most max) and
// says what is wrong with them ("" if nothing).
func pageOf(q url.Values, def, maxLimit int) (page, limit int, problem string) {
	page, limit = 1, def
	if v := q.Get("page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return 0, 0, "page must be a positive integer"
		}
		page = n
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxLimit {
			return 0, 0, "limit must be within 1.." + strconv.Itoa(maxLimit)
		}
		limit = n
	}
	return page, limit, ""
}

// halPage answers one page of items under _embedded.{key}, with _links.next
// and prev as Kommo builds them (the request's query with page changed);
// an empty page is 204.
func halPage(r *http.Request, path, key string, items []any, page, limit int) reply {
	start := (page - 1) * limit
	if start >= len(items) {
		return reply{status: http.StatusNoContent}
	}
	end := min(start+limit, len(items))
	link := func(p int) href {
		q := r.URL.Query()
		q.Set("page", strconv.Itoa(p))
		q.Set("limit", strconv.Itoa(limit))
		return href{Href: baseURL(r) + path + "?" + q.Encode()}
	}
	links := map[string]href{"self": link(page)}
	if end < len(items) {
		links["next"] = link(page + 1)
	}
	if page > 1 {
		links["prev"] = link(page - 1)
	}
	return crmOK(http.StatusOK, map[string]any{
		"_total_items": len(items), "_page": page, "_links": links,
		"_embedded": map[string]any{key: items[start:end]},
	})
}

// GET /api/v4/users?with=amojo_id&page=&limit=
func (s *Server) crmUsersList(r *http.Request) reply {
	q := r.URL.Query()
	page, limit, p := pageOf(q, 50, 250)
	if p != "" {
		return crmFail(http.StatusBadRequest, p)
	}
	with := withSet(q)
	var items []any
	for _, u := range s.allUsersLocked() {
		items = append(items, s.userOut(r, u, with))
	}
	return halPage(r, "/api/v4/users", "users", items, page, limit)
}

// GET /api/v4/users/{id}?with=amojo_id
func (s *Server) crmUserGet(r *http.Request) reply {
	id, err := strconv.Atoi(r.PathValue("id"))
	if err != nil {
		return crmFail(http.StatusNotFound, "user not found")
	}
	for _, u := range s.allUsersLocked() {
		if u.id == id {
			return crmOK(http.StatusOK, s.userOut(r, u, withSet(r.URL.Query())))
		}
	}
	return crmFail(http.StatusNotFound, "user not found")
}

// integrationRoutes registers the users, contacts (create), chat templates
// and CRM webhooks endpoints.
func (s *Server) integrationRoutes(m *http.ServeMux) {
	m.HandleFunc("GET /api/v4/users", s.handle(s.crmUsersList))
	m.HandleFunc("GET /api/v4/users/{id}", s.handle(s.crmUserGet))
	m.HandleFunc("POST /api/v4/contacts", s.handle(s.crmContactsCreate))
	m.HandleFunc("GET /oauth2/account/current/subdomain", s.handle(s.oauthAccountSubdomain))
	s.templateRoutes(m)
	m.HandleFunc("POST /api/v4/salesbot/{bot}/continue/{id}", s.handle(s.crmSalesbotContinue))
	m.HandleFunc("POST /api/v4/marketingbot/{bot}/continue/{id}", s.handle(s.crmSalesbotContinue))
	s.webhookRoutes(m)
}
