package kommo

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"unicode/utf8"
)

// TemplateReview is a WhatsApp template's review for one source (one
// WhatsApp number).
type TemplateReview struct {
	ID           int    `json:"id"`
	SourceID     int    `json:"source_id"`
	Status       string `json:"status"`
	RejectReason string `json:"reject_reason"`
}

// TemplateReviewUpdate is the body of Templates.UpdateReview.
type TemplateReviewUpdate struct {
	// Status is TemplateReviewApproved, TemplateReviewPaused or
	// TemplateReviewRejected.
	Status string `json:"status,omitempty"`
	// RejectReason is free text of at most TemplateReviewRejectReasonMaxLen
	// characters.
	RejectReason string `json:"reject_reason,omitempty"`
}

// SendForReview sends a WhatsApp template to review (moderation) and
// returns its reviews, one per WhatsApp source. The result arrives later
// as the CRM webhook event add_chat_template_review (see
// ParseCRMWebhook).
//
// POST /api/v4/chats/templates/{id}/review
//
//	reviews, _, err := client.Templates.SendForReview(ctx, 7349)
//
// amoCRM docs: https://www.amocrm.ru/developers/content/crm_platform/chat-templates-api
func (s *TemplatesService) SendForReview(ctx context.Context, id int64) ([]*TemplateReview, *Response, error) {
	v := validator{op: "Templates.SendForReview"}
	templateID(&v, id, "id")
	if err := v.err(); err != nil {
		return nil, nil, err
	}
	return crmDoEmbedded[*TemplateReview](ctx, s.client, &call{op: "Templates.SendForReview", api: crmAPI, method: http.MethodPost,
		path: templatePath(id) + "/review", body: json.RawMessage("{}")}, "reviews")
}

// UpdateReview changes the status of a WhatsApp template's review and
// returns the review. Status, when set, must be approved, paused or
// rejected.
//
// POST /api/v4/chats/templates/{id}/review/{review_id}
//
//	rev, _, err := client.Templates.UpdateReview(ctx, 7349, 367, &kommo.TemplateReviewUpdate{
//		Status: kommo.TemplateReviewRejected, RejectReason: "Failed the internal check",
//	})
//
// amoCRM docs: https://www.amocrm.ru/developers/content/crm_platform/chat-templates-api
func (s *TemplatesService) UpdateReview(ctx context.Context, id int64, reviewID int, upd *TemplateReviewUpdate) (*TemplateReview, *Response, error) {
	v := validator{op: "Templates.UpdateReview"}
	templateID(&v, id, "id")
	crmPositive(&v, reviewID, "review_id")
	body := TemplateReviewUpdate{}
	if upd == nil {
		v.addf("update: nil")
	} else {
		body = *upd
		switch upd.Status {
		case "", TemplateReviewApproved, TemplateReviewPaused, TemplateReviewRejected:
		default:
			v.addf("update.status: %q is not approved, paused or rejected", upd.Status)
		}
		if n := utf8.RuneCountInString(upd.RejectReason); n > TemplateReviewRejectReasonMaxLen {
			v.addf("update.reject_reason: %d characters, at most %d allowed", n, TemplateReviewRejectReasonMaxLen)
		}
	}
	if err := v.err(); err != nil {
		return nil, nil, err
	}
	rev := new(TemplateReview)
	resp, err := s.client.do(ctx, &call{op: "Templates.UpdateReview", api: crmAPI, method: http.MethodPost,
		path: templatePath(id) + "/review/" + strconv.Itoa(reviewID), body: body, out: rev})
	if err != nil {
		return nil, resp, err
	}
	return rev, resp, nil
}
