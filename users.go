package kommo

import (
	"context"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Values of UserOptions.With: each adds fields to a User. The SDK always
// asks for UserWithAmojoID.
const (
	UserWithAmojoID     = "amojo_id"
	UserWithRole        = "role"
	UserWithGroup       = "group"
	UserWithUUID        = "uuid"
	UserWithUserRank    = "user_rank"
	UserWithPhoneNumber = "phone_number"
)

// UsersService handles /api/v4/users: the account's users (managers), in
// particular their amojo ids, which a message sent as a manager carries as
// sender.ref_id and a reaction as user.ref_id. Kommo allows these methods
// to account administrators only.
//
// amoCRM: https://www.amocrm.ru/developers/content/crm_platform/users-api
type UsersService service

// User is a user of the CRM account (GET /api/v4/users). Fields marked
// "with" are present only when requested through UserOptions.With.
type User struct {
	ID    int    `json:"id"`
	Name  string `json:"name"`
	Email string `json:"email"`
	// Lang is the user's language: "ru", "en" or "es".
	Lang string `json:"lang,omitempty"`
	// AmojoID is the user's id in the Chat API (with amojo_id, always
	// requested by the SDK); "" when Kommo answers null (a user who never
	// used chats).
	AmojoID string `json:"amojo_id,omitempty"`
	// UUID (with uuid) is not used by third-party integrations.
	UUID string `json:"uuid,omitempty"`
	// Rank (with user_rank) is "newbie", "candidate" or "master".
	Rank string `json:"user_rank,omitempty"`
	// PhoneNumber (with phone_number).
	PhoneNumber string        `json:"phone_number,omitempty"`
	Rights      *UserRights   `json:"rights,omitempty"`
	Links       *Links        `json:"_links,omitempty"`
	Embedded    *UserEmbedded `json:"_embedded,omitempty"`
}

// UserRights are a user's access rights. Entity rights map an action
// ("view", "edit", "add", "delete", "export") to a level ("A" all, "G"
// group, "M" own, "D" denied).
type UserRights struct {
	Leads         map[string]string  `json:"leads,omitempty"`
	Contacts      map[string]string  `json:"contacts,omitempty"`
	Companies     map[string]string  `json:"companies,omitempty"`
	Tasks         map[string]string  `json:"tasks,omitempty"`
	MailAccess    bool               `json:"mail_access"`
	CatalogAccess bool               `json:"catalog_access"`
	IsAdmin       bool               `json:"is_admin"`
	IsFree        bool               `json:"is_free"`
	IsActive      bool               `json:"is_active"`
	GroupID       *int               `json:"group_id"`
	RoleID        *int               `json:"role_id"`
	StatusRights  []*UserStatusRight `json:"status_rights"`
}

// UserStatusRight is a user's rights on the leads in one pipeline status.
type UserStatusRight struct {
	EntityType string            `json:"entity_type"`
	PipelineID int               `json:"pipeline_id"`
	StatusID   int               `json:"status_id"`
	Rights     map[string]string `json:"rights"`
}

// UserEmbedded holds a user's roles (with role) and groups (with group).
type UserEmbedded struct {
	Roles  []*UserRole  `json:"roles,omitempty"`
	Groups []*UserGroup `json:"groups,omitempty"`
}

// UserRole is a role a user has.
type UserRole struct {
	ID    int    `json:"id"`
	Name  string `json:"name"`
	Links *Links `json:"_links,omitempty"`
}

// UserGroup is a group a user belongs to.
type UserGroup struct {
	ID   int    `json:"id"`
	Name string `json:"name"`
}

// Sender returns the user as the sender of a message sent as this manager
// (Messages.Send or Import of an outgoing message): ID is "user-" and the
// CRM user id (the integration's own id of the participant), RefID the
// amojo id and Name the user's name.
//
//	u, _, err := client.Users.Get(ctx, managerID, nil)
//	req.Sender = u.Sender()
func (u *User) Sender() *Participant {
	return &Participant{ID: "user-" + strconv.Itoa(u.ID), RefID: u.AmojoID, Name: u.Name}
}

// ReactionUser returns the user as the user of Messages.React and Unreact
// (by amojo id).
func (u *User) ReactionUser() ReactionUser { return ReactionUser{RefID: u.AmojoID} }

// UserOptions selects the optional parts of Users.Get.
type UserOptions struct {
	// With lists optional fields (UserWith... constants); amojo_id is
	// always added.
	With []string
}

// UserListOptions selects the optional parts and the page of Users.List
// and Users.All.
type UserListOptions struct {
	// With lists optional fields (UserWith... constants); amojo_id is
	// always added.
	With []string
	// Page and Limit select a page (Limit at most ListMaxLimit). All
	// starts at Page and follows _links.next.
	Page  int
	Limit int
}

// userWith encodes "with" as a comma-separated list that always holds
// amojo_id.
func userWith(v *validator, q url.Values, with []string) {
	list := []string{UserWithAmojoID}
	for i, w := range with {
		if strings.TrimSpace(w) == "" || strings.Contains(w, ",") {
			v.addf("opts.With[%d]: %q is not a single field name", i, w)
			continue
		}
		if !slices.Contains(list, w) {
			list = append(list, w)
		}
	}
	q.Set("with", strings.Join(list, ","))
}

func (o *UserListOptions) values(v *validator) url.Values {
	q := url.Values{}
	if o == nil {
		userWith(v, q, nil)
		return q
	}
	userWith(v, q, o.With)
	crmPageLimit(v, q, o.Page, o.Limit, ListMaxLimit)
	return q
}

// crmPageLimit checks and sets page and limit (limit at most max).
func crmPageLimit(v *validator, q url.Values, page, limit, maxLimit int) {
	if page < 0 {
		v.addf("opts.Page: must not be negative, got %d", page)
	} else if page > 0 {
		q.Set("page", strconv.Itoa(page))
	}
	if limit < 0 || limit > maxLimit {
		v.addf("opts.Limit: must be within 0..%d, got %d", maxLimit, limit)
	} else if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
}

// List returns one page of the account's users, with their amojo ids.
// Response.NextPage tells whether another page follows; All walks every
// page. opts may be nil.
//
// GET /api/v4/users?with=amojo_id
//
//	users, resp, err := client.Users.List(ctx, &kommo.UserListOptions{Limit: 50})
//
// amoCRM docs: https://www.amocrm.ru/developers/content/crm_platform/users-api
func (s *UsersService) List(ctx context.Context, opts *UserListOptions) ([]*User, *Response, error) {
	v := validator{op: "Users.List"}
	q := opts.values(&v)
	if err := v.err(); err != nil {
		return nil, nil, err
	}
	items, _, resp, err := crmListPage[*User](ctx, s.client, "Users.List", "api/v4/users", q, "users")
	if err != nil {
		return nil, resp, err
	}
	return items, resp, nil
}

// All iterates over every user of the account, following _links.next. It
// fetches lazily, yields at most one error and then stops. opts may be nil.
//
// GET /api/v4/users?with=amojo_id
//
//	for u, err := range client.Users.All(ctx, nil) {
//		if err != nil { return err }
//		fmt.Println(u.ID, u.Name, u.AmojoID)
//	}
//
// amoCRM docs: https://www.amocrm.ru/developers/content/crm_platform/users-api
func (s *UsersService) All(ctx context.Context, opts *UserListOptions) iter.Seq2[*User, error] {
	v := validator{op: "Users.All"}
	q := opts.values(&v)
	if err := v.err(); err != nil {
		return func(yield func(*User, error) bool) { yield(nil, err) }
	}
	return crmAll[*User](ctx, s.client, "Users.All", "api/v4/users", q, "users")
}

// Get returns one user, with its amojo id. opts may be nil.
//
// GET /api/v4/users/{id}?with=amojo_id
//
//	u, _, err := client.Users.Get(ctx, 185848, nil)
//
// amoCRM docs: https://www.amocrm.ru/developers/content/crm_platform/users-api
func (s *UsersService) Get(ctx context.Context, id int, opts *UserOptions) (*User, *Response, error) {
	v := validator{op: "Users.Get"}
	crmPositive(&v, id, "id")
	q := url.Values{}
	var with []string
	if opts != nil {
		with = opts.With
	}
	userWith(&v, q, with)
	if err := v.err(); err != nil {
		return nil, nil, err
	}
	u := new(User)
	resp, err := s.client.do(ctx, &call{op: "Users.Get", api: crmAPI, method: http.MethodGet, path: "api/v4/users/" + strconv.Itoa(id), query: q, out: u})
	if err != nil {
		return nil, resp, err
	}
	return u, resp, nil
}

// AmojoID returns the amojo id of a CRM user (a manager): what a message
// sent as that manager carries as sender.ref_id and a reaction as
// user.ref_id. A user without one (Kommo answers null) fails with an error
// matching ErrNoAmojoID.
//
// GET /api/v4/users/{id}?with=amojo_id
//
//	ref, _, err := client.Users.AmojoID(ctx, acc.CurrentUserID)
//
// amoCRM docs: https://www.amocrm.ru/developers/content/crm_platform/users-api
func (s *UsersService) AmojoID(ctx context.Context, id int) (string, *Response, error) {
	u, resp, err := s.Get(ctx, id, nil)
	if err != nil {
		return "", resp, err
	}
	if u.AmojoID == "" {
		return "", resp, fmt.Errorf("kommo: Users.AmojoID: user %d: %w", id, ErrNoAmojoID)
	}
	return u.AmojoID, resp, nil
}
