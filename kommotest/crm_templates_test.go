package kommotest_test

import (
	"errors"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kommo-go/kommo"
)

func TestTemplatesLifecycle(t *testing.T) {
	t.Parallel()
	e := newKTEnv(t)
	c := e.srv.MustClient()
	ctx := t.Context()

	created, _, err := c.Templates.Create(ctx, []*kommo.Template{
		{Name: "Hello", Content: "Hello {{contact.name}}", ExternalID: "hello", RequestID: "r1"},
		{Name: "Order", Content: "Order {{lead.id}} is ready", Type: kommo.TemplateTypeWABA, WABACategory: kommo.TemplateCategoryUtility,
			WABALanguage: "en", WABAExamples: kommo.TemplateExamples{"{{lead.id}}": "42"},
			Buttons: []*kommo.TemplateButton{{Type: kommo.TemplateButtonURL, Text: "Track", URL: "https://shop.example/track"}}},
	})
	require.NoError(t, err)
	require.Len(t, created, 2)
	hello, order := created[0], created[1]
	assert.Equal(t, "r1", hello.RequestID)
	assert.Equal(t, "1", order.RequestID)
	assert.Equal(t, kommo.TemplateTypeAmoCRM, hello.Type)
	assert.Equal(t, e.srv.AccountID(), hello.AccountID)
	assert.Nil(t, hello.WABAExamples, "[] for none")
	assert.Equal(t, kommo.TemplateExamples{"{{lead.id}}": "42"}, order.WABAExamples)

	list, resp, err := c.Templates.List(ctx, &kommo.TemplateListOptions{Limit: 1})
	require.NoError(t, err)
	require.Len(t, list, 1)
	assert.Equal(t, 2, resp.NextPage)
	all, err := kommo.Collect(c.Templates.All(ctx, &kommo.TemplateListOptions{ExternalIDs: []string{"hello"}}))
	require.NoError(t, err)
	require.Len(t, all, 1)
	assert.Equal(t, hello.ID, all[0].ID)

	upd, _, err := c.Templates.UpdateOne(ctx, &kommo.Template{ID: hello.ID, Content: "Hi {{contact.name}}", IsEditable: kommo.Ptr(true)})
	require.NoError(t, err)
	assert.Equal(t, "Hi {{contact.name}}", upd.Content)
	assert.Equal(t, "Hello", upd.Name, "unchanged fields stay")
	assert.True(t, *upd.IsEditable)

	// WhatsApp review.
	_, _, err = c.Templates.SendForReview(ctx, hello.ID)
	assert.ErrorIs(t, err, kommo.ErrBadRequest, "only waba templates are reviewed")
	reviews, _, err := c.Templates.SendForReview(ctx, order.ID)
	require.NoError(t, err)
	require.Len(t, reviews, 1)
	assert.Equal(t, kommo.TemplateReviewOnReview, reviews[0].Status)
	got, _, err := c.Templates.Get(ctx, order.ID, &kommo.TemplateOptions{WithReviews: true})
	require.NoError(t, err)
	assert.Equal(t, kommo.TemplateReviewOnReview, got.ReviewStatus)
	assert.True(t, *got.IsOnReview)
	require.NotNil(t, got.Embedded)
	assert.Len(t, got.Embedded.Reviews, 1)
	plain, _, err := c.Templates.Get(ctx, order.ID, nil)
	require.NoError(t, err)
	assert.Empty(t, plain.ReviewStatus, "review fields only with=reviews")
	assert.Nil(t, plain.Embedded)

	_, _, err = c.Templates.Update(ctx, []*kommo.Template{{ID: order.ID, Name: "x"}})
	var ae *kommo.APIError
	require.True(t, errors.As(err, &ae), "a waba template on review is not editable: %v", err)
	assert.Equal(t, http.StatusBadRequest, ae.StatusCode)

	rev, _, err := c.Templates.UpdateReview(ctx, order.ID, reviews[0].ID, &kommo.TemplateReviewUpdate{Status: kommo.TemplateReviewRejected, RejectReason: "no"})
	require.NoError(t, err)
	assert.Equal(t, "rejected", rev.Status)
	assert.Equal(t, "no", rev.RejectReason)
	_, _, err = c.Templates.Update(ctx, []*kommo.Template{{ID: order.ID, Name: "Order v2"}})
	require.NoError(t, err, "editable again once rejected")

	_, err = c.Templates.Delete(ctx, []int64{hello.ID, 999999})
	assert.ErrorIs(t, err, kommo.ErrBadRequest, "an unknown id fails the batch")
	_, err = c.Templates.Delete(ctx, []int64{hello.ID})
	require.NoError(t, err)
	_, err = c.Templates.DeleteOne(ctx, order.ID)
	require.NoError(t, err)
	_, err = c.Templates.DeleteOne(ctx, order.ID)
	assert.ErrorIs(t, err, kommo.ErrNotFound)
	none, _, err := c.Templates.List(ctx, nil)
	require.NoError(t, err)
	assert.Empty(t, none, "204 when none")
}

func TestTemplatesRefusesBadBodies(t *testing.T) {
	t.Parallel()
	e := newKTEnv(t)
	resp, data := e.crm(http.MethodPost, "/api/v4/chats/templates", []map[string]any{{"name": "x"}})
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	assert.Contains(t, string(data), `"path":"content"`)
	resp, _ = e.crm(http.MethodPost, "/api/v4/chats/templates", []map[string]any{{"name": "x", "content": "y", "type": "sms"}})
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	resp, _ = e.crm(http.MethodGet, "/api/v4/chats/templates?limit=51", nil)
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
}
