package kommo_test

import (
	"context"
	"fmt"

	"github.com/kommo-go/kommo"
	"github.com/kommo-go/kommo/kommotest"
)

// A WhatsApp template is created, then sent for review; the review's
// result arrives as the CRM webhook event add_chat_template_review.
func ExampleTemplatesService_SendForReview() {
	srv := kommotest.NewServer()
	defer srv.Close()
	client := srv.MustClient()
	ctx := context.Background()

	created, _, err := client.Templates.Create(ctx, []*kommo.Template{{
		Name:         "Order ready",
		Content:      "Order {{lead.id}} is ready",
		ExternalID:   "order-ready",
		Type:         kommo.TemplateTypeWABA,
		WABACategory: kommo.TemplateCategoryUtility,
		WABALanguage: "en",
		WABAExamples: kommo.TemplateExamples{"{{lead.id}}": "1042"},
	}})
	if err != nil {
		fmt.Println(err)
		return
	}
	tpl := created[0]
	reviews, _, err := client.Templates.SendForReview(ctx, tpl.ID)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(tpl.Name, tpl.Type, "|", reviews[0].Status)

	got, _, err := client.Templates.Get(ctx, tpl.ID, &kommo.TemplateOptions{WithReviews: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(got.ReviewStatus, *got.IsOnReview)
	// Output:
	// Order ready waba | review
	// review true
}
