package kommo_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/jarcoal/httpmock"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kommo-go/kommo"
	"github.com/kommo-go/kommo/internal/testkit"
)

const chatTestChatRef = "8b1a1828-fc4a-4874-9469-15e0d847570f"

var chatHistoryPath = "/v2/origin/custom/" + chatTestScope + "/chats/" + chatTestChatRef + "/history"

// chatHistoryBody builds a history page with n messages numbered from first.
func chatHistoryBody(t *testing.T, first, n int) string {
	t.Helper()
	type msg struct {
		ID   string `json:"id"`
		Type string `json:"type"`
		Text string `json:"text"`
	}
	type item struct {
		Timestamp int64          `json:"timestamp"`
		Sender    map[string]any `json:"sender"`
		Message   msg            `json:"message"`
	}
	page := struct {
		Messages []item `json:"messages"`
	}{Messages: []item{}}
	for i := first; i < first+n; i++ {
		page.Messages = append(page.Messages, item{
			Timestamp: 1700000000 + int64(i),
			Sender:    map[string]any{"id": "client"},
			Message:   msg{ID: fmt.Sprintf("msg-%03d", i), Type: "text", Text: strconv.Itoa(i)},
		})
	}
	b, err := json.Marshal(page)
	require.NoError(t, err)
	return string(b)
}

// chatPagedHistory serves total messages, honouring offset and limit.
func chatPagedHistory(t *testing.T, total int) func(int, chatRequest) *http.Response {
	return func(_ int, r chatRequest) *http.Response {
		q, err := url.ParseQuery(r.Query)
		if err != nil {
			return httpmock.NewStringResponse(400, err.Error())
		}
		offset, _ := strconv.Atoi(q.Get("offset"))
		limit, _ := strconv.Atoi(q.Get("limit"))
		n := max(0, min(limit, total-offset))
		if n == 0 {
			return httpmock.NewStringResponse(http.StatusNoContent, "")
		}
		return httpmock.NewStringResponse(200, chatHistoryBody(t, offset, n))
	}
}

func TestHistoryListDecodesEveryField(t *testing.T) {
	c, srv := newChatTestClient(t, chatNow, chatReply(200, string(testkit.Fixture(t, "chat", "history_page.json"))))
	msgs, resp, err := c.History.List(t.Context(), chatTestScope, chatTestChatRef, &kommo.HistoryOptions{Limit: 50})
	require.NoError(t, err)
	assert.Equal(t, 200, resp.StatusCode)

	r := srv.only()
	assert.Equal(t, "GET", r.Method)
	assert.Equal(t, chatHistoryPath, r.Path)
	assert.Equal(t, "limit=50&offset=0", r.Query)
	assert.Empty(t, r.Body)
	assert.Equal(t, "d41d8cd98f00b204e9800998ecf8427e", chatHeader(r.Header, "Content-MD5"))
	chatAssertSigned(t, r, chatTestSecret) // over the path only

	require.Len(t, msgs, 6)
	assert.Equal(t, &kommo.HistoryMessage{
		Timestamp:     1596470953,
		MsecTimestamp: 1596470953512,
		Sender:        &kommo.ChatUser{ID: "d8d9f9c4-9611-4794-a136-a253a13e1bb5", Name: "Менеджер Василий"},
		Receiver: &kommo.ChatUser{
			ID: "86a0caef-41ec-49ac-814b-b27da2cea267", ClientID: "sk-1376265f-86df-4c49-a0c3-a4816df41af9",
			Avatar: "https:/example.com/users/avatar.png", Name: "Example Client",
			Phone: "79151112233", Email: "example.client@example.com",
		},
		Message: kommo.ChatMessage{
			ID: "3985523d-78b3-45b7-aeaf-142405bbf1dc", ClientID: "skm-5f2836a8ca468", Type: kommo.MessageTypeText,
			Text: "Да, конечно. Вы можете оплатить наличными и картой курьеру при получении.",
		},
	}, msgs[0])
	assert.Equal(t, time.UnixMilli(1596470953512), msgs[0].Time())

	assert.Nil(t, msgs[1].Receiver, "an absent receiver stays nil")
	assert.Equal(t, "sk-1376265f-86df-4c49-a0c3-a4816df41af9", msgs[1].Sender.ClientID)
	assert.Equal(t, time.Unix(1596470809, 0), msgs[1].Time())

	assert.Equal(t, kommo.ChatMessage{
		ID: "5b0e3c1e-9a43-4b6f-8d0b-2f4f1c7a6e01", ClientID: "skm-5f2836a8ca460", Type: kommo.MessageTypePicture,
		Media:     "https://amojo.kommo.com/attachments/5b0e3c1e/photo-1.jpg",
		Thumbnail: "https://amojo.kommo.com/attachments/5b0e3c1e/photo-1-thumb.jpg",
		FileName:  "photo-1.jpg", FileSize: 183204, MediaGroupID: "b7b1e5b4-6b2a-4a57-9d0e-ffb0f8a1c0aa",
	}, msgs[2].Message)
	assert.Equal(t, msgs[2].Message.MediaGroupID, msgs[3].Message.MediaGroupID, "split attachments share the group id")
	assert.Equal(t, &kommo.Location{Lon: 37.617635, Lat: 55.755814}, msgs[4].Message.Location)
	assert.Equal(t, kommo.MessageTypeLocation, msgs[4].Message.Type)
	assert.Equal(t, &kommo.ContactCard{Name: "Иван", Phone: "+79161234567"}, msgs[5].Message.Contact)
	assert.Equal(t, kommo.MessageTypeContact, msgs[5].Message.Type)
}

// A page whose sizes are strings (one reference's history table) decodes
// whole, like one with numbers (history_page.json).
func TestHistoryListFileSizeNumberOrString(t *testing.T) {
	c, srv := newChatTestClient(t, chatNow, chatReply(200, string(testkit.Fixture(t, "chat", "history_page_file_size_string.json"))))
	msgs, _, err := c.History.List(t.Context(), chatTestScope, chatTestChatRef, nil)
	require.NoError(t, err)
	r := srv.only()
	assert.Equal(t, "GET", r.Method)
	assert.Equal(t, chatHistoryPath, r.Path)
	require.Len(t, msgs, 3)
	assert.Equal(t, kommo.ChatMessage{
		ID: "5b0e3c1e-9a43-4b6f-8d0b-2f4f1c7a6e01", ClientID: "skm-5f2836a8ca460", Type: kommo.MessageTypePicture,
		Media:     "https://amojo.kommo.com/attachments/5b0e3c1e/photo-1.jpg",
		Thumbnail: "https://amojo.kommo.com/attachments/5b0e3c1e/photo-1-thumb.jpg",
		FileName:  "photo-1.jpg", FileSize: 183204,
	}, msgs[0].Message)
	assert.Equal(t, int64(0), msgs[1].Message.FileSize, `"" is no size`)
	assert.Equal(t, "Можно ли оплатить заказ при получении ?", msgs[1].Message.Text)
	assert.Equal(t, int64(48213), msgs[2].Message.FileSize, "a number still decodes")

	// A size that is no number fails the page as a *DecodeError.
	c, _ = newChatTestClient(t, chatNow, chatReply(200, `{"messages":[{"timestamp":1,"message":{"id":"x","file_size":"big"}}]}`))
	_, _, err = c.History.List(t.Context(), chatTestScope, chatTestChatRef, nil)
	var de *kommo.DecodeError
	assert.ErrorAs(t, err, &de)
}

// History items may quote a message, in either documented form of
// reply_to: nested under "message" or flat.
func TestHistoryListReplyToNestedOrFlat(t *testing.T) {
	c, _ := newChatTestClient(t, chatNow, chatReply(200, string(testkit.Fixture(t, "chat", "history_page_reply_to.json"))))
	msgs, _, err := c.History.List(t.Context(), chatTestScope, chatTestChatRef, nil)
	require.NoError(t, err)
	require.Len(t, msgs, 2)
	assert.Equal(t, &kommo.WebhookReplyTo{Message: kommo.WebhookEmbeddedMessage{
		ID: "1bf6a765-ec6f-4680-8cd5-6f2d31f78ebc", MsgID: "5f283618af2c8", Type: kommo.MessageTypeText,
		Text: "Можно ли оплатить заказ при получении ?", Timestamp: 1596470809, MsecTimestamp: 1596470809000,
		Sender: kommo.ChatUser{ID: "86a0caef-41ec-49ac-814b-b27da2cea267", ClientID: "sk-1376265f-86df-4c49-a0c3-a4816df41af9", Name: "Example Client"},
	}}, msgs[0].Message.ReplyTo, "nested")
	assert.Equal(t, &kommo.WebhookReplyTo{Message: kommo.WebhookEmbeddedMessage{
		ID: "9d2f4c1a-6b3e-4f8a-9c7d-0e1f2a3b4c5d", MsgID: "skm-5f2836a8ca459", Type: kommo.MessageTypeFile,
		Media: "https://amojo.kommo.com/attachments/5b0e3c1e/price-list.pdf", FileName: "price-list.pdf", FileSize: 48213,
		Timestamp: 1596470500, Sender: kommo.ChatUser{ID: "86a0caef-41ec-49ac-814b-b27da2cea267", Name: "Example Client"},
	}}, msgs[1].Message.ReplyTo, "flat")
	assert.Equal(t, "Вот прайс.", msgs[1].Message.Text)
}

func TestHistoryListReproducesVector(t *testing.T) {
	v := testkit.Vectors(t).Request(t, "history")
	// The vector's path is /v2/origin/custom/{channel}_{account}/chats/{chat}/history.
	const channel, account, chat = "f62a0162-46a7-430e-b06c-0ef798d76a21", "52fd2a28-d2eb-4bd8-b862-a67934927b38", "30477717-9f3c-4d3f-8101-60327e14dc48"
	c, srv := newChatTestClientWith(t, chatClientConfig{channel: channel, secret: v.Secret, now: chatVectorTime(t, v)}, chatReply(http.StatusNoContent, ""))
	msgs, _, err := c.History.List(t.Context(), kommo.ScopeID(channel, account), chat, &kommo.HistoryOptions{Limit: 50})
	require.NoError(t, err)
	assert.Empty(t, msgs, "204 is an empty page")
	r := srv.only()
	chatAssertVector(t, v, r)
	assert.Equal(t, v.Query, r.Query, "the query is sent but not signed")
}

func TestHistoryListNoContentAndNoOptions(t *testing.T) {
	c, srv := newChatTestClient(t, chatNow, chatReply(http.StatusNoContent, ""))
	msgs, resp, err := c.History.List(t.Context(), chatTestScope, chatTestChatRef, nil)
	require.NoError(t, err)
	assert.Empty(t, msgs)
	assert.Equal(t, http.StatusNoContent, resp.StatusCode)
	r := srv.only()
	assert.Empty(t, r.Query, "no options, no query")
	chatAssertSigned(t, r, chatTestSecret)
}

func TestHistoryListValidation(t *testing.T) {
	c, srv := newChatTestClient(t, chatNow, chatReply(200, "{}"))
	_, _, err := c.History.List(t.Context(), "", "", &kommo.HistoryOptions{Offset: -1, Limit: 51})
	assert.Equal(t, []string{
		"scope_id: required",
		"amojo_chat_id: required",
		"offset: must not be negative, got -1",
		"limit: must be between 0 (server default) and 50, got 51",
	}, chatValidationProblems(t, err))
	assert.Empty(t, srv.requests())
}

// chatCollect ranges over seq, returning the items and the errors yielded.
func chatCollect(seq func(func(*kommo.HistoryMessage, error) bool)) (items []*kommo.HistoryMessage, errs []error) {
	for m, err := range seq {
		if err != nil {
			errs = append(errs, err)
			continue
		}
		items = append(items, m)
	}
	return items, errs
}

// chatOffsets returns the offset and limit query of every request.
func chatOffsets(t *testing.T, reqs []chatRequest) []string {
	t.Helper()
	var out []string
	for _, r := range reqs {
		assert.Equal(t, "GET", r.Method)
		assert.Equal(t, chatHistoryPath, r.Path)
		chatAssertSigned(t, r, chatTestSecret)
		out = append(out, r.Query)
	}
	return out
}

func TestHistoryAllWalksThreePages(t *testing.T) {
	c, srv := newChatTestClient(t, chatNow, chatPagedHistory(t, 107))
	opts := &kommo.HistoryOptions{}
	seq := c.History.All(t.Context(), chatTestScope, chatTestChatRef, opts)
	assert.Empty(t, srv.requests(), "nothing is fetched before the loop starts")

	items, errs := chatCollect(seq)
	assert.Empty(t, errs)
	require.Len(t, items, 107)
	for i, m := range items {
		require.Equal(t, fmt.Sprintf("msg-%03d", i), m.Message.ID)
	}
	assert.Equal(t, []string{"limit=50&offset=0", "limit=50&offset=50", "limit=50&offset=100"}, chatOffsets(t, srv.requests()))
	assert.Equal(t, &kommo.HistoryOptions{}, opts, "the caller's options are copied")

	// The sequence can be ranged over again from the start.
	items, errs = chatCollect(seq)
	assert.Empty(t, errs)
	assert.Len(t, items, 107)
	assert.Len(t, srv.requests(), 6)
}

func TestHistoryAllExactMultipleEndsOnEmptyPage(t *testing.T) {
	c, srv := newChatTestClient(t, chatNow, chatPagedHistory(t, 40))
	items, errs := chatCollect(c.History.All(t.Context(), chatTestScope, chatTestChatRef, &kommo.HistoryOptions{Offset: 10, Limit: 15}))
	assert.Empty(t, errs)
	require.Len(t, items, 30)
	assert.Equal(t, "msg-010", items[0].Message.ID)
	assert.Equal(t, "msg-039", items[29].Message.ID)
	// 15 + 15, then a 204 at offset 40 ends the walk.
	assert.Equal(t, []string{"limit=15&offset=10", "limit=15&offset=25", "limit=15&offset=40"}, chatOffsets(t, srv.requests()))
}

func TestHistoryAllNoContentYieldsNothing(t *testing.T) {
	c, srv := newChatTestClient(t, chatNow, chatReply(http.StatusNoContent, ""))
	items, errs := chatCollect(c.History.All(t.Context(), chatTestScope, chatTestChatRef, nil))
	assert.Empty(t, items)
	assert.Empty(t, errs)
	assert.Equal(t, []string{"limit=50&offset=0"}, chatOffsets(t, srv.requests()))
}

func TestHistoryAllFailingSecondPageYieldsOneError(t *testing.T) {
	c, srv := newChatTestClient(t, chatNow, func(n int, r chatRequest) *http.Response {
		if n == 1 {
			return httpmock.NewStringResponse(400, `{"error_code":400,"error_description":"bad offset"}`)
		}
		return chatPagedHistory(t, 107)(n, r)
	})
	items, errs := chatCollect(c.History.All(t.Context(), chatTestScope, chatTestChatRef, nil))
	assert.Len(t, items, 50)
	require.Len(t, errs, 1)
	assert.ErrorIs(t, errs[0], kommo.ErrBadRequest)
	assert.Equal(t, []string{"limit=50&offset=0", "limit=50&offset=50"}, chatOffsets(t, srv.requests()))
}

func TestHistoryAllBreakStopsPaging(t *testing.T) {
	c, srv := newChatTestClient(t, chatNow, chatPagedHistory(t, 107))
	n := 0
	for _, err := range c.History.All(t.Context(), chatTestScope, chatTestChatRef, nil) {
		require.NoError(t, err)
		n++
		if n == 50 {
			break
		}
	}
	assert.Equal(t, 50, n)
	assert.Len(t, srv.requests(), 1, "no page is fetched after break")
}

func TestHistoryAllHonoursCancellation(t *testing.T) {
	c, srv := newChatTestClient(t, chatNow, chatPagedHistory(t, 107))
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var items int
	var errs []error
	for m, err := range c.History.All(ctx, chatTestScope, chatTestChatRef, nil) {
		if err != nil {
			errs = append(errs, err)
			continue
		}
		items++
		if m.Message.ID == "msg-049" {
			cancel()
		}
	}
	assert.Equal(t, 50, items)
	require.Len(t, errs, 1)
	assert.ErrorIs(t, errs[0], context.Canceled)
	assert.Len(t, srv.requests(), 1)

	// Already cancelled: one error, no request.
	items2, errs2 := chatCollect(c.History.All(ctx, chatTestScope, chatTestChatRef, nil))
	assert.Empty(t, items2)
	require.Len(t, errs2, 1)
	assert.ErrorIs(t, errs2[0], context.Canceled)
	assert.Len(t, srv.requests(), 1)
}

func TestHistoryAllStopsWhenServerIgnoresOffset(t *testing.T) {
	c, srv := newChatTestClient(t, chatNow, func(int, chatRequest) *http.Response {
		return httpmock.NewStringResponse(200, chatHistoryBody(t, 0, 50)) // the same full page, whatever the offset
	})
	items, errs := chatCollect(c.History.All(t.Context(), chatTestScope, chatTestChatRef, nil))
	assert.Len(t, items, 50)
	require.Len(t, errs, 1)
	assert.ErrorIs(t, errs[0], kommo.ErrHistoryNoProgress)
	assert.Contains(t, errs[0].Error(), "History.All")
	assert.Equal(t, []string{"limit=50&offset=0", "limit=50&offset=50"}, chatOffsets(t, srv.requests()))
}

func TestHistoryAllInvalidOptionsYieldOneError(t *testing.T) {
	c, srv := newChatTestClient(t, chatNow, chatPagedHistory(t, 10))
	items, errs := chatCollect(c.History.All(t.Context(), chatTestScope, chatTestChatRef, &kommo.HistoryOptions{Limit: 60}))
	assert.Empty(t, items)
	require.Len(t, errs, 1)
	assert.ErrorIs(t, errs[0], kommo.ErrInvalidRequest)
	assert.Empty(t, srv.requests())
}
