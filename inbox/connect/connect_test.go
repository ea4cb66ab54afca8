package connect

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/switchboard/switchboard/inbox"
	"github.com/switchboard/switchboard/routing"
	"github.com/switchboard/switchboard/store"
)

// brief is a message reduced to what the mapping decides.
type brief struct {
	Network, Profile, Thread, ExternalID, Kind, Author, Text, SentAt string
}

func briefs(ms []inbox.MessageInput) []brief {
	out := make([]brief, len(ms))
	for i, m := range ms {
		sent := ""
		if m.SentAt != nil {
			sent = m.SentAt.Format(time.RFC3339Nano)
		}
		out[i] = brief{m.Network, m.Profile, m.ThreadExternalID, m.ExternalID, m.Kind, m.Author.ID, m.Text, sent}
	}
	return out
}

func mustMap(t *testing.T, f func([]byte) (Result, error), body string) Result {
	t.Helper()
	res, err := f([]byte(body))
	if err != nil {
		t.Fatalf("map %s: %v", body, err)
	}
	return res
}

func TestUnixTime_SecondsAndMillisecondsByMagnitude(t *testing.T) {
	for _, c := range []struct {
		in   string
		want string
	}{
		{`1795427880`, "2026-11-23T09:58:00Z"},
		{`"1795427880"`, "2026-11-23T09:58:00Z"},
		{`1795427880123`, "2026-11-23T09:58:00.123Z"},
		{`"1795427880123"`, "2026-11-23T09:58:00.123Z"},
		{`1.795427880e9`, "2026-11-23T09:58:00Z"},
		{`0`, ""}, {`-5`, ""}, {`"soon"`, ""}, {`null`, ""}, {`true`, ""},
	} {
		var n num
		if err := n.UnmarshalJSON([]byte(c.in)); err != nil {
			t.Fatalf("%s: %v", c.in, err)
		}
		got := ""
		if tt := unixTime(n); tt != nil {
			got = tt.Format(time.RFC3339Nano)
		}
		if got != c.want {
			t.Errorf("%s: %q, want %q", c.in, got, c.want)
		}
	}
}

func TestID_NumbersKeepEveryDigit(t *testing.T) {
	for in, want := range map[string]string{
		`1860000000000000001`:   "1860000000000000001", // beyond float64 precision
		`"1860000000000000001"`: "1860000000000000001",
		`" 42 "`:                "42",
		`null`:                  "",
	} {
		var v id
		if err := v.UnmarshalJSON([]byte(in)); err != nil || string(v) != want {
			t.Errorf("%s: %q, %v; want %q", in, v, err, want)
		}
	}
	var v id
	if err := v.UnmarshalJSON([]byte(`{}`)); err == nil {
		t.Error("an object read as an id")
	}
}

func TestMeta_MessengerThreadsPerCustomerAndSkipsEchoes(t *testing.T) {
	res := mustMap(t, Meta, `{"object": "page", "entry": [{"id": "P", "time": 1795427999000, "messaging": [
		{"sender": {"id": "U1"}, "recipient": {"id": "P"}, "timestamp": 1795427880123, "message": {"mid": "m1", "text": "hi"}},
		{"sender": {"id": "P"}, "recipient": {"id": "U1"}, "timestamp": 1795427881000, "message": {"mid": "m2", "text": "echo without the flag"}},
		{"sender": {"id": "X"}, "recipient": {"id": "U1"}, "timestamp": 1795427881000, "message": {"mid": "m3", "text": "echo", "is_echo": true}},
		{"sender": {"id": "U2"}, "recipient": {"id": "P"}, "message": {"mid": "m4", "text": "no timestamp"}},
		{"sender": {"id": "U2"}, "recipient": {"id": "P"}, "message": {"mid": "m5", "text": "gone", "is_deleted": true}},
		{"sender": {"id": "U2"}, "recipient": {"id": "P"}, "read": {"watermark": 1}},
		{"sender": {"id": "U1"}, "recipient": {"id": "P"}, "timestamp": 1795427890500, "message_edit": {"mid": "m1", "text": "hi, order 7", "num_edit": 1}},
		{"sender": {"id": "U1"}, "recipient": {"id": "P"}, "message_edit": {"mid": "m0", "text": "", "num_edit": 2}},
		{"sender": {"id": "U1"}, "recipient": {"id": "P"}, "message_edit": {"text": "no id"}}
	]}]}`)
	want := []brief{
		{"facebook", "P", "dm:U1", "m1", "dm", "U1", "hi", "2026-11-23T09:58:00.123Z"},
		{"facebook", "P", "dm:U2", "m4", "dm", "U2", "no timestamp", "2026-11-23T09:59:59Z"}, // entry.time
	}
	if got := briefs(res.Messages); !reflect.DeepEqual(got, want) {
		t.Fatalf("messages %+v\nwant %+v", got, want)
	}
	// An unsent message is a deletion: what it said is not kept.
	if res.Ignored != 3 || len(res.Dropped) != 2 ||
		!reflect.DeepEqual(res.Deleted, []Deletion{{Path: "entry[0].messaging[4]", Network: "facebook", ExternalID: "m5"}}) {
		t.Fatalf("ignored %d, dropped %+v, deleted %+v", res.Ignored, res.Dropped, res.Deleted)
	}
	// An edit names the message and brings its whole new text, made at the
	// event's time; one without text or id cannot be applied.
	wantEdits := []Edit{{Path: "entry[0].messaging[6]", Network: "facebook", ExternalID: "m1", Text: "hi, order 7",
		At: time.Date(2026, 11, 23, 9, 58, 10, 500_000_000, time.UTC)}}
	if !reflect.DeepEqual(res.Edited, wantEdits) || res.Dropped[0].Path != "entry[0].messaging[7]" || res.Dropped[1].Path != "entry[0].messaging[8]" {
		t.Fatalf("edits %+v, dropped %+v\nwant edits %+v", res.Edited, res.Dropped, wantEdits)
	}
}

// TestMeta_MessengerTapsUnsupportedMessagesAndStoryReplies: a tap on a
// button the page offered ("Talk to a person") and a message the network
// would not pass on were dropped, though each is the customer writing; a
// reply to a story lost which story it answered.
func TestMeta_MessengerTapsUnsupportedMessagesAndStoryReplies(t *testing.T) {
	res := mustMap(t, Meta, `{"object": "instagram", "entry": [{"id": "IG", "time": 1795427999000, "messaging": [
		{"sender": {"id": "U1"}, "recipient": {"id": "IG"}, "timestamp": 1795427880000, "postback": {"mid": "pb1", "title": "Talk to a person", "payload": "HUMAN"}},
		{"sender": {"id": "U2"}, "recipient": {"id": "IG"}, "timestamp": 1795427881000, "postback": {"title": "Get Started", "payload": "START"}},
		{"sender": {"id": "U2"}, "recipient": {"id": "IG"}, "timestamp": 1795427882000, "postback": {"mid": "pb3", "payload": "NO_TITLE"}},
		{"sender": {"id": "U3"}, "recipient": {"id": "IG"}, "timestamp": 1795427883000, "message": {"mid": "m4", "is_unsupported": true}},
		{"sender": {"id": "U3"}, "recipient": {"id": "IG"}, "timestamp": 1795427884000, "message": {"mid": "m5", "text": "is this still on sale?",
			"reply_to": {"story": {"url": "https://lookaside.fbsbx.com/story/1", "id": "s1"}}}}
	]}]}`)
	want := []brief{
		{"instagram", "IG", "dm:U1", "pb1", "dm", "U1", "Talk to a person", "2026-11-23T09:58:00Z"},
		{"instagram", "IG", "dm:U2", "postback:U2:1795427881000", "dm", "U2", "Get Started", "2026-11-23T09:58:01Z"},
		{"instagram", "IG", "dm:U3", "m4", "dm", "U3", unsupportedText, "2026-11-23T09:58:03Z"},
		{"instagram", "IG", "dm:U3", "m5", "dm", "U3", "is this still on sale?", "2026-11-23T09:58:04Z"},
	}
	if got := briefs(res.Messages); !reflect.DeepEqual(got, want) {
		t.Fatalf("messages %+v\nwant %+v", got, want)
	}
	if res.Ignored != 1 || len(res.Dropped) != 0 {
		t.Fatalf("ignored %d (want the tap without a title), dropped %+v", res.Ignored, res.Dropped)
	}
	if a := res.Messages[3].Attachments; len(a) != 1 || a[0].Type != "story" || a[0].URL != "https://lookaside.fbsbx.com/story/1" {
		t.Fatalf("a story reply's attachments %+v, want the story", a)
	}
	// Meta retries a delivery: the same tap is the same message.
	again := mustMap(t, Meta, `{"object": "instagram", "entry": [{"id": "IG", "messaging": [
		{"sender": {"id": "U2"}, "recipient": {"id": "IG"}, "timestamp": 1795427881000, "postback": {"title": "Get Started", "payload": "START"}}]}]}`)
	if len(again.Messages) != 1 || again.Messages[0].ExternalID != res.Messages[1].ExternalID {
		t.Fatalf("the same tap again: %+v", again.Messages)
	}
}

func TestMeta_AttachmentsKeepOnlyUsableURLs(t *testing.T) {
	var many []string
	for range 25 {
		many = append(many, `{"type": "image", "payload": {"url": "https://cdn.example/a.jpg"}}`)
	}
	res := mustMap(t, Meta, `{"object": "page", "entry": [{"id": "P", "messaging": [
		{"sender": {"id": "U"}, "message": {"mid": "m1", "text": "t", "attachments": [
			{"type": "image", "payload": {"url": "ftp://cdn.example/x"}},
			{"type": "fallback", "payload": null},
			{"type": "template", "url": "https://www.facebook.com/commerce/update/", "payload": {"template_type": "media"}},
			{"type": "location", "payload": {"coordinates": {"lat": 1, "long": 2}}},
			{"type": "", "payload": {"url": "https://cdn.example/file.pdf"}},
			{"type": "video", "payload": {"url": "https://`+strings.Repeat("v", 2050)+`"}}
		]}},
		{"sender": {"id": "U"}, "message": {"mid": "m2", "attachments": [{"type": "image", "payload": {"url": "not a url"}}]}},
		{"sender": {"id": "U"}, "message": {"mid": "m3", "attachments": [`+strings.Join(many, ",")+`]}}
	]}]}`)
	if len(res.Messages) != 3 || len(res.Dropped) != 0 {
		t.Fatalf("messages %+v, dropped %+v", briefs(res.Messages), res.Dropped)
	}
	want := []store.Attachment{{Type: "template", URL: "https://www.facebook.com/commerce/update/"}, {Type: "file", URL: "https://cdn.example/file.pdf"}}
	if got := res.Messages[0].Attachments; !reflect.DeepEqual([]store.Attachment(got), want) {
		t.Fatalf("attachments %+v, want %+v", got, want)
	}
	// What has no URL to keep is told in the text, as WhatsApp's media are:
	// the customer sent something (a message of only an image whose URL is
	// unusable was dropped).
	if got, want := res.Messages[0].Text, "[image] [fallback] [location] (1, 2) [video] t"; got != want {
		t.Fatalf("text %q, want %q", got, want)
	}
	if m := res.Messages[1]; m.Text != "[image]" || len(m.Attachments) != 0 {
		t.Fatalf("an image without a usable URL: %+v", m)
	}
	if m := res.Messages[2]; len(m.Attachments) != inbox.MaxAttachments || m.Text != "" {
		t.Fatalf("%d attachments kept and text %q, want at most %d and no text", len(m.Attachments), m.Text, inbox.MaxAttachments)
	}
}

// TestMeta_AHeartOrALocationIsStored: Instagram's heart and a Messenger
// location carry no URL and were dropped, though the customer wrote.
func TestMeta_AHeartOrALocationIsStored(t *testing.T) {
	res := mustMap(t, Meta, `{"object": "instagram", "entry": [{"id": "IG", "messaging": [
		{"sender": {"id": "U1"}, "recipient": {"id": "IG"}, "timestamp": 1795427880000, "message": {"mid": "m1", "attachments": [{"type": "like_heart"}]}},
		{"sender": {"id": "U2"}, "recipient": {"id": "IG"}, "timestamp": 1795427881000, "message": {"mid": "m2", "attachments": [
			{"type": "location", "payload": {"title": "Pinned location", "coordinates": {"lat": 52.52, "long": 13.405}}}]}},
		{"sender": {"id": "U3"}, "recipient": {"id": "IG"}, "timestamp": 1795427882000, "message": {"mid": "m3", "attachments": [{"payload": {}}]}}
	]}]}`)
	want := []brief{
		{"instagram", "IG", "dm:U1", "m1", "dm", "U1", "[like heart]", "2026-11-23T09:58:00Z"},
		{"instagram", "IG", "dm:U2", "m2", "dm", "U2", "[location] (52.52, 13.405) Pinned location", "2026-11-23T09:58:01Z"},
		{"instagram", "IG", "dm:U3", "m3", "dm", "U3", "[attachment]", "2026-11-23T09:58:02Z"}, // no type either
	}
	if got := briefs(res.Messages); !reflect.DeepEqual(got, want) || len(res.Dropped) != 0 {
		t.Fatalf("messages %+v, dropped %+v\nwant %+v", got, res.Dropped, want)
	}
}

func TestMeta_FeedAndInstagramCommentsThreadPerAuthorWithinPost(t *testing.T) {
	res := mustMap(t, Meta, `{"object": "page", "entry": [{"id": "P", "time": 1795427000, "changes": [
		{"field": "feed", "value": {"item": "comment", "verb": "add", "post_id": "P_1", "comment_id": "1_a", "from": {"id": "A", "name": "Ann"}, "message": "one", "created_time": 1795427880}},
		{"field": "feed", "value": {"item": "comment", "verb": "add", "post_id": "P_1", "comment_id": "1_b", "from": {"id": "B"}, "message": "two", "created_time": "1795427881"}},
		{"field": "feed", "value": {"item": "comment", "verb": "add", "post_id": "P_1", "comment_id": "1_c", "from": {"id": "P"}, "message": "page"}},
		{"field": "feed", "value": {"item": "comment", "verb": "remove", "post_id": "P_1", "comment_id": "1_a", "from": {"id": "A"}}},
		{"field": "feed", "value": {"item": "photo", "verb": "add", "post_id": "P_2", "from": {"id": "C"}, "photo": "https://cdn.example/p.jpg"}},
		{"field": "feed", "value": {"item": "comment", "verb": "add", "post_id": "P_1", "from": {"id": "A"}, "message": "no id"}},
		{"field": "feed", "value": {"item": "comment", "verb": "edited", "post_id": "P_1", "comment_id": "1_b", "from": {"id": "B"}, "message": "two, edited", "created_time": 1795427881}}
	]}]}`)
	want := []brief{
		{"facebook", "P", "post:P_1:A", "1_a", "comment", "A", "one", "2026-11-23T09:58:00Z"},
		{"facebook", "P", "post:P_1:B", "1_b", "comment", "B", "two", "2026-11-23T09:58:01Z"},
		{"facebook", "P", "post:P_2:C", "P_2", "mention", "C", "", "2026-11-23T09:43:20Z"},
	}
	if got := briefs(res.Messages); !reflect.DeepEqual(got, want) {
		t.Fatalf("messages %+v\nwant %+v", got, want)
	}
	// A removed comment is a deletion: what it said is not kept; an edited
	// one takes its new text.
	if res.Ignored != 1 || len(res.Dropped) != 1 || !strings.Contains(res.Dropped[0].Reason, "comment id") ||
		!reflect.DeepEqual(res.Deleted, []Deletion{{Path: "entry[0].changes[3]", Network: "facebook", ExternalID: "1_a"}}) ||
		!reflect.DeepEqual(res.Edited, []Edit{{Path: "entry[0].changes[6]", Network: "facebook", ExternalID: "1_b", Text: "two, edited", At: time.Date(2026, 11, 23, 9, 43, 20, 0, time.UTC)}}) {
		t.Fatalf("ignored %d, dropped %+v, deleted %+v, edited %+v", res.Ignored, res.Dropped, res.Deleted, res.Edited)
	}

	// The examples in Meta's Instagram docs show the change inline in the
	// entry and the payload wrapped in an array: both are accepted.
	res = mustMap(t, Meta, `[{"object": "instagram", "entry": [{"id": "IG", "time": 1795427880,
		"field": "comments", "value": {"id": "c1", "text": "nice", "from": {"id": "U", "username": "ana"}, "media": {"id": "M"}}}]}]`)
	want = []brief{{"instagram", "IG", "post:M:U", "c1", "comment", "U", "nice", "2026-11-23T09:58:00Z"}}
	if got := briefs(res.Messages); !reflect.DeepEqual(got, want) || res.Messages[0].Author.Handle != "@ana" {
		t.Fatalf("messages %+v (%+v)\nwant %+v", got, res.Messages, want)
	}

	// A mention with text and author maps; one with ids only cannot.
	res = mustMap(t, Meta, `{"object": "instagram", "entry": [{"id": "IG", "time": 1795427880, "changes": [
		{"field": "mentions", "value": {"comment_id": "c9", "media_id": "M9"}},
		{"field": "mentions", "value": {"comment_id": "c8", "media_id": "M8", "text": "@acme look", "from": {"id": "V", "username": "v"}}},
		{"field": "story_insights", "value": {"media_id": "M", "reach": 17}}
	]}]}`)
	want = []brief{{"instagram", "IG", "post:M8:V", "c8", "mention", "V", "@acme look", "2026-11-23T09:58:00Z"}}
	if got := briefs(res.Messages); !reflect.DeepEqual(got, want) || len(res.Dropped) != 1 || res.Ignored != 1 {
		t.Fatalf("messages %+v, dropped %+v, ignored %d", got, res.Dropped, res.Ignored)
	}
}

// TestMeta_PageReviewsThreadPerReviewer: a review of the Page (its ratings
// field) is a customer speaking in public, to be answered like a comment;
// it was ignored.
func TestMeta_PageReviewsThreadPerReviewer(t *testing.T) {
	res := mustMap(t, Meta, `{"object": "page", "entry": [{"id": "P", "time": 1795427000, "changes": [
		{"field": "ratings", "value": {"item": "rating", "verb": "add", "reviewer_id": "R1", "reviewer_name": "Ria", "rating": 2, "review_text": "Slow delivery", "open_graph_story_id": "S1", "created_time": 1795427880}},
		{"field": "ratings", "value": {"item": "rating", "verb": "add", "reviewer_id": "R2", "recommendation_type": "negative", "created_time": "1795427881"}},
		{"field": "ratings", "value": {"item": "rating", "verb": "edit", "reviewer_id": "R1", "review_text": "Slow delivery, rude staff", "open_graph_story_id": "S1"}},
		{"field": "ratings", "value": {"item": "rating", "verb": "remove", "reviewer_id": "R3", "open_graph_story_id": "S3"}},
		{"field": "ratings", "value": {"item": "rating", "verb": "add", "reviewer_id": "R4"}},
		{"field": "ratings", "value": {"item": "comment", "verb": "remove", "reviewer_id": "R5", "open_graph_story_id": "S1", "comment_id": "C1"}}
	]}]}`)
	want := []brief{
		{"facebook", "P", "review:R1", "S1", "review", "R1", "[2★] Slow delivery", "2026-11-23T09:58:00Z"},
		{"facebook", "P", "review:R2", "rating:R2", "review", "R2", "[does not recommend]", "2026-11-23T09:58:01Z"},
	}
	if got := briefs(res.Messages); !reflect.DeepEqual(got, want) || res.Messages[0].Author.Name != "Ria" {
		t.Fatalf("messages %+v\nwant %+v", got, want)
	}
	if res.Ignored != 1 || len(res.Dropped) != 1 || !reflect.DeepEqual(res.Deleted, []Deletion{{Path: "entry[0].changes[3]", Network: "facebook", ExternalID: "S3"}}) {
		t.Fatalf("ignored %d (the removed comment on a review), dropped %+v (the empty one), deleted %+v", res.Ignored, res.Dropped, res.Deleted)
	}
	// An edited review takes its new words (and stars, when sent).
	wantEdits := []Edit{{Path: "entry[0].changes[2]", Network: "facebook", ExternalID: "S1", Text: "Slow delivery, rude staff",
		At: time.Date(2026, 11, 23, 9, 43, 20, 0, time.UTC)}}
	if !reflect.DeepEqual(res.Edited, wantEdits) {
		t.Fatalf("edits %+v\nwant %+v", res.Edited, wantEdits)
	}
}

func TestMeta_DashboardTestEventAsChange(t *testing.T) {
	res := mustMap(t, Meta, `{"object": "page", "entry": [{"id": "P", "time": 1795427880000, "changes": [
		{"field": "messages", "value": {"sender": {"id": "U"}, "recipient": {"id": "P"}, "timestamp": "1795427880", "message": {"mid": "m_test", "text": "test"}}}
	]}]}`)
	want := []brief{{"facebook", "P", "dm:U", "m_test", "dm", "U", "test", "2026-11-23T09:58:00Z"}}
	if got := briefs(res.Messages); !reflect.DeepEqual(got, want) {
		t.Fatalf("messages %+v", got)
	}
}

func TestMeta_WhatsAppMessageTypesAsText(t *testing.T) {
	res := mustMap(t, Meta, `{"object": "whatsapp_business_account", "entry": [{"id": "W", "changes": [{"field": "messages", "value": {
		"messaging_product": "whatsapp", "metadata": {"display_phone_number": "15550001111", "phone_number_id": "PN"},
		"contacts": [{"profile": {"name": "Kai"}, "wa_id": "111"}],
		"messages": [
			{"from": "111", "id": "w1", "timestamp": "1795427880", "type": "location", "location": {"latitude": 38.7, "longitude": -9.1, "name": "Shop", "address": "Rua 1"}},
			{"from": "111", "id": "w2", "timestamp": "1795427880", "type": "interactive", "interactive": {"type": "button_reply", "button_reply": {"id": "b", "title": "Track order"}}},
			{"from": "111", "id": "w3", "timestamp": "1795427880", "type": "button", "button": {"text": "Yes", "payload": "Y"}},
			{"from": "111", "id": "w4", "timestamp": "1795427880", "type": "document", "document": {"filename": "invoice.pdf", "id": "d"}},
			{"from": "111", "id": "w5", "timestamp": "1795427880", "type": "contacts", "contacts": [{"name": {"formatted_name": "X"}}]},
			{"from": "111", "id": "w6", "timestamp": "1795427880", "type": "unsupported", "errors": [{"code": 131051}]},
			{"from": "222", "id": "w7", "timestamp": "1795427880", "type": "text", "text": {"body": "unknown contact"}},
			{"from": "111", "id": "w8", "timestamp": "1795427880", "type": "order", "order": {"catalog_id": "C", "text": "please ship fast",
				"product_items": [{"product_retailer_id": "SKU-9", "quantity": "2", "item_price": 12.5, "currency": "EUR"}, {"product_retailer_id": "SKU-1", "quantity": 1, "item_price": "3", "currency": "EUR"}]}},
			{"from": "111", "id": "w9", "timestamp": "1795427880", "type": "interactive", "interactive": {"type": "nfm_reply",
				"nfm_reply": {"name": "flow", "body": "Sent", "response_json": "{\"order_no\": \"123\", \"flow_token\": \"t\", \"reason\": \"broken\"}"}}},
			{"from": "111", "id": "w10", "timestamp": "1795427880", "type": "reaction", "reaction": {"message_id": "w1", "emoji": "👍"}},
			{"from": "111", "id": "w11", "timestamp": "1795427880", "type": "system", "system": {"body": "Kai changed from 111 to 999", "wa_id": "999", "type": "user_changed_number"}},
			{"from": "111", "id": "w12", "timestamp": "1795427880", "type": "system", "system": {"type": "customer_identity_changed"}}
		]}}]}]}`)
	texts := []string{}
	for _, m := range res.Messages {
		texts = append(texts, m.Author.Name+"|"+m.Text)
	}
	// An unsupported message (a first message from a click-to-WhatsApp
	// ad, often) was dropped: nobody saw that the customer wrote. Orders
	// and Flow answers read as what the customer chose.
	want := []string{"Kai|[location] Shop Rua 1 (38.7, -9.1)", "Kai|Track order", "Kai|Yes", "Kai|[document] invoice.pdf", "Kai|[contacts]",
		"Kai|" + unsupportedText, "|unknown contact", "Kai|[order] 2 × SKU-9 12.5 EUR; 1 × SKU-1 3 EUR; please ship fast",
		"Kai|[form] order_no: 123, reason: broken", "Kai|[WhatsApp] Kai changed from 111 to 999"}
	if !reflect.DeepEqual(texts, want) || res.Ignored != 2 {
		t.Fatalf("texts %q (ignored %d), want %q", texts, res.Ignored, want)
	}
	res = mustMap(t, Meta, `{"object": "whatsapp_business_account", "entry": [{"id": "W", "changes": [{"field": "messages", "value": {
		"metadata": {}, "messages": [{"from": "111", "id": "w1", "type": "text", "text": {"body": "x"}}]}}]}]}`)
	if len(res.Messages) != 0 || len(res.Dropped) != 1 || !strings.Contains(res.Dropped[0].Reason, "phone_number_id") {
		t.Fatalf("without phone_number_id: %+v", res)
	}
}

// TestMeta_WhatsAppEditsAndRevokesChangeTheMessage: a WhatsApp Business
// app number ("Coexistence") sends a customer's edit or deletion as a
// message of type edit or revoke, which was stored as a new message
// reading "[edit]" or "[revoke]".
func TestMeta_WhatsAppEditsAndRevokesChangeTheMessage(t *testing.T) {
	res := mustMap(t, Meta, `{"object": "whatsapp_business_account", "entry": [{"id": "W", "changes": [{"field": "messages", "value": {
		"messaging_product": "whatsapp", "metadata": {"display_phone_number": "15550001111", "phone_number_id": "PN"},
		"contacts": [{"profile": {"name": "Kai"}, "wa_id": "111"}],
		"messages": [
			{"from": "111", "id": "e1", "timestamp": "1795427890", "type": "edit", "edit": {"original_message_id": "w1",
				"message": {"context": {"id": "w1"}, "type": "text", "text": {"body": "order 124, not 123"}}}},
			{"from": "111", "id": "e2", "timestamp": "1795427891", "type": "edit", "edit": {"original_message_id": "w2",
				"message": {"type": "image", "image": {"caption": "the right receipt", "id": "m"}}}},
			{"from": "111", "id": "r1", "timestamp": "1795427892", "type": "revoke", "revoke": {"original_message_id": "w3"}},
			{"from": "111", "id": "r2", "timestamp": "1795427892", "type": "revoke", "revoke": {}},
			{"from": "111", "id": "e3", "timestamp": "1795427893", "type": "edit", "edit": {"original_message_id": "w4", "message": {}}},
			{"from": "111", "id": "e4", "timestamp": "1795427893", "type": "edit", "edit": {"original_message_id": "w5", "message": {"type": "unsupported"}}}
		]}}]}]}`)
	wantEdits := []Edit{
		{Path: "entry[0].changes[0].value.messages[0]", Network: "whatsapp", ExternalID: "w1", Text: "order 124, not 123", At: time.Unix(1795427890, 0).UTC()},
		{Path: "entry[0].changes[0].value.messages[1]", Network: "whatsapp", ExternalID: "w2", Text: "[image] the right receipt", At: time.Unix(1795427891, 0).UTC()},
	}
	if len(res.Messages) != 0 || !reflect.DeepEqual(res.Edited, wantEdits) ||
		!reflect.DeepEqual(res.Deleted, []Deletion{{Path: "entry[0].changes[0].value.messages[2]", Network: "whatsapp", ExternalID: "w3"}}) ||
		len(res.Dropped) != 3 || res.Dropped[0].Path != "entry[0].changes[0].value.messages[3]" {
		t.Fatalf("messages %q, edits %+v, deleted %+v, dropped %+v", briefs(res.Messages), res.Edited, res.Deleted, res.Dropped)
	}
}

func TestMeta_MalformedBodiesAreErrorsUnknownShapesAreNot(t *testing.T) {
	for _, body := range []string{``, `nul`, `null`, `"page"`, `{"object": "page"`, `[{"object": "page"}`, `42`} {
		if _, err := Meta([]byte(body)); !isBodyError(err) {
			t.Errorf("%q: %v, want a body FieldError", body, err)
		}
	}
	for _, body := range []string{`{}`, `[]`, `[1, "x"]`, `{"object": 1}`, `{"object": "page", "entry": {}}`,
		`{"object": "page", "entry": [1, {"messaging": "x"}, {"changes": [1]}]}`} {
		res, err := Meta([]byte(body))
		if err != nil || len(res.Messages) != 0 {
			t.Errorf("%q: %+v, %v", body, res, err)
		}
	}
}

func isBodyError(err error) bool {
	var fe *inbox.FieldError
	return errors.As(err, &fe) && fe.Field == "body"
}

func TestX_TweetKindsThreadsAndOwnPosts(t *testing.T) {
	res := mustMap(t, X, `{"for_user_id": "B", "tweet_create_events": [
		{"id_str": "1", "text": "@brand hi", "in_reply_to_user_id_str": "B", "user": {"id_str": "U", "screen_name": "u"}, "created_at": "Mon Nov 23 09:58:00 +0000 2026"},
		{"id_str": "2", "text": "@brand reply", "in_reply_to_status_id_str": "100", "in_reply_to_user_id_str": "B", "user": {"id_str": "U"}, "timestamp_ms": "1795427880000"},
		{"id_str": "3", "text": "@brand @u deep reply", "conversation_id": "100", "in_reply_to_status_id_str": "2", "in_reply_to_user_id_str": "U", "user": {"id": 77}},
		{"id_str": "4", "text": "mine", "user": {"id_str": "B"}},
		{"id_str": "5", "full_text": "`+strings.Repeat("é", 25000)+`", "user": {"id_str": "V"}, "quoted_status": {"id_str": "100"}},
		{"id_str": "6", "text": "RT", "retweeted_status": {"id_str": "100"}, "user": {"id_str": "V"}},
		{"text": "no id", "user": {"id_str": "V"}}
	]}`)
	want := []brief{
		{"twitter", "B", "conv:1:U", "1", "mention", "U", "@brand hi", "2026-11-23T09:58:00Z"},
		{"twitter", "B", "conv:100:U", "2", "comment", "U", "@brand reply", "2026-11-23T09:58:00Z"},
		{"twitter", "B", "conv:100:77", "3", "mention", "77", "@brand @u deep reply", ""},
		{"twitter", "B", "conv:5:V", "5", "mention", "V", strings.Repeat("é", inbox.MaxTextRunes), ""},
	}
	if got := briefs(res.Messages); !reflect.DeepEqual(got, want) {
		t.Fatalf("messages %+v\nwant %+v", got, want)
	}
	if res.Ignored != 2 || len(res.Dropped) != 1 {
		t.Fatalf("ignored %d, dropped %+v", res.Ignored, res.Dropped)
	}

	// A back-and-forth with the account in v1.1 posts (no conversation id):
	// the customer answers the brand's reply, then their own post. Each
	// names the post it answers, for ingest to find its thread by.
	res = mustMap(t, X, `{"for_user_id": "B", "tweet_create_events": [
		{"id_str": "1001", "text": "@brand my order arrived broken", "in_reply_to_user_id_str": "B", "user": {"id_str": "111"}},
		{"id_str": "1002", "text": "@cust sorry! DM us", "in_reply_to_status_id_str": "1001", "in_reply_to_user_id_str": "111", "user": {"id_str": "B"}},
		{"id_str": "1003", "text": "@brand done", "in_reply_to_status_id_str": "1002", "in_reply_to_user_id_str": "B", "user": {"id_str": "111"}},
		{"id_str": "1004", "text": "@brand hello?", "in_reply_to_status_id_str": "1003", "in_reply_to_user_id_str": "111", "user": {"id_str": "111"}}
	]}`)
	answers := map[string]string{"1001": "", "1003": "1002", "1004": "1003"}
	for _, m := range res.Messages {
		if m.InReplyTo != answers[m.ExternalID] {
			t.Fatalf("post %s answers %q, want %q", m.ExternalID, m.InReplyTo, answers[m.ExternalID])
		}
	}
	if len(res.Messages) != 3 || res.Ignored != 1 {
		t.Fatalf("a back-and-forth: %d messages, %d ignored; want the customer's 3, the account's 1 ignored", len(res.Messages), res.Ignored)
	}

	// Posts of someone the account has blocked queue nothing.
	res = mustMap(t, X, `{"for_user_id": "B", "user_has_blocked": "true", "tweet_create_events": [
		{"id_str": "2001", "text": "@brand you again", "user": {"id_str": "666"}}]}`)
	if len(res.Messages) != 0 || res.Ignored != 1 {
		t.Fatalf("a blocked user's post: %+v", res)
	}
	res = mustMap(t, X, `{"for_user_id": "B", "user_has_blocked": false, "tweet_create_events": [
		{"id_str": "2002", "text": "@brand hi", "user": {"id_str": "667"}}]}`)
	if len(res.Messages) != 1 {
		t.Fatalf("user_has_blocked false: %+v", res)
	}

	// Deleted posts: X's terms require they go here too.
	res = mustMap(t, X, `{"for_user_id": "B", "tweet_delete_events": [
		{"status": {"id": "1003", "user_id": "111"}, "timestamp_ms": "1795427990000"}, {"status": {}}]}`)
	if !reflect.DeepEqual(res.Deleted, []Deletion{{Path: "tweet_delete_events[0]", Network: "twitter", ExternalID: "1003"}}) ||
		len(res.Dropped) != 1 || res.Ignored != 0 {
		t.Fatalf("tweet_delete_events: %+v", res)
	}

	// Without for_user_id the account's own posts cannot be told apart.
	res = mustMap(t, X, `{"tweet_create_events": [{"id_str": "1", "text": "x", "user": {"id_str": "U"}}]}`)
	if len(res.Messages) != 0 || len(res.Dropped) != 1 {
		t.Fatalf("without for_user_id: %+v", res)
	}
}

func TestX_DirectMessagesFromOthersWithAuthorFromUsers(t *testing.T) {
	res := mustMap(t, X, `{"for_user_id": "B", "direct_message_events": [
		{"type": "message_create", "id": "d1", "created_timestamp": "1795427880000", "message_create": {"target": {"recipient_id": "B"}, "sender_id": "U", "message_data": {"text": "hello"}}},
		{"type": "message_create", "id": "d2", "created_timestamp": "1795427881000", "message_create": {"target": {"recipient_id": "U"}, "sender_id": "B", "message_data": {"text": "hi back"}}},
		{"type": "message_create", "id": "d3", "message_create": {"target": {"recipient_id": "B"}, "sender_id": "Q", "message_data": {"text": "no user entry"}}},
		{"type": "participants_join", "id": "d4"}
	], "users": {"U": {"id": "U", "name": "Una", "screen_name": "una", "followers_count": 7, "verified": true}}}`)
	want := []brief{
		{"twitter", "B", "dm:U", "d1", "dm", "U", "hello", "2026-11-23T09:58:00Z"},
		{"twitter", "B", "dm:Q", "d3", "dm", "Q", "no user entry", ""},
	}
	if got := briefs(res.Messages); !reflect.DeepEqual(got, want) || res.Ignored != 2 {
		t.Fatalf("messages %+v (ignored %d)\nwant %+v", got, res.Ignored, want)
	}
	if a := res.Messages[0].Author; a != (store.Author{ID: "U", Handle: "@una", Name: "Una", Followers: 7, Verified: true}) {
		t.Fatalf("author %+v", a)
	}
}

func TestGeneric_SingleOrBatchWithFieldNamedErrors(t *testing.T) {
	items, batch, err := Generic([]byte(`{"network": "other", "external_id": "g1", "text": "hi", "author": {"id": "u"}}`))
	if err != nil || batch || len(items) != 1 || items[0].Input.ExternalID != "g1" {
		t.Fatalf("single: %+v %v %v", items, batch, err)
	}
	items, batch, err = Generic([]byte(`{"messages": [{"external_id": "a"}, {"external_id": 5}, {"sent_at": "later"}]}`))
	if err != nil || !batch || len(items) != 3 || items[0].Err != nil {
		t.Fatalf("batch: %+v %v %v", items, batch, err)
	}
	for i, field := range map[int]string{1: "external_id", 2: "sent_at"} {
		var fe *inbox.FieldError
		if !errors.As(items[i].Err, &fe) || fe.Field != field {
			t.Errorf("item %d: %v, want a %s error", i, items[i].Err, field)
		}
	}
	for body, field := range map[string]string{
		`{"author": {"followers": "many"}}`: "author.followers",
		`{"messages": "x"}`:                 "messages",
		`{"messages": null}`:                "messages",
		`[]`:                                "body",
		`{"text": `:                         "body",
	} {
		var fe *inbox.FieldError
		if _, _, err := Generic([]byte(body)); !errors.As(err, &fe) || fe.Field != field {
			t.Errorf("%s: %v, want a %s error", body, err, field)
		}
	}
	many := `{"messages": [` + strings.TrimSuffix(strings.Repeat(`{},`, inbox.MaxBatch+1), ",") + `]}`
	if _, _, err := Generic([]byte(many)); !errors.Is(err, ErrTooManyMessages) {
		t.Fatalf("%d messages: %v", inbox.MaxBatch+1, err)
	}
}

func TestSignatures(t *testing.T) {
	body := []byte(`{"object":"page","entry":[]}`)
	// Computed outside Go: python3 hmac.new(b"meta-secret", body, sha256).hexdigest()
	const metaSig = "sha256=c85cd075d7390cfd477f58b73c953366209f6712aa74b05ba29c1b26c4ec8f95"
	if !VerifyHex(metaSig, body, "meta-secret") || SignHex(body, "meta-secret") != metaSig {
		t.Fatal("the known Meta signature does not verify")
	}
	for _, bad := range []string{"", "sha256=", metaSig[7:], "sha1=" + metaSig[7:], metaSig + "00", metaSig[:len(metaSig)-1] + "0", "sha256=zz"} {
		if VerifyHex(bad, body, "meta-secret") {
			t.Errorf("%q verified", bad)
		}
	}
	if VerifyHex(SignHex(body, ""), body, "") {
		t.Error("an empty secret verified")
	}
	// X's example consumer secret and crc_token from its CRC documentation;
	// the answer computed with python3 hmac/base64.
	const secret, token = "z3ZX4v7mAAUGykl3EcmkqbartmuW8VFOOzCloLx9Q45P0hLrFu", "9b4507b3-9040-4669-9ca3-6b94edb50553"
	if got := CRCResponse(token, secret); got != "sha256=Cytd4Sq+NvEcV3MMrXxWJGJx5A+y/lXzzU2Maartkx8=" {
		t.Fatalf("CRC response %q", got)
	}
	xs := SignBase64(body, secret)
	if !VerifyBase64(xs, body, secret) || VerifyBase64(xs, append(body, ' '), secret) || VerifyBase64(SignHex(body, secret), body, secret) {
		t.Fatal("X signature check")
	}
	if !EqualToken("tok", "tok") || EqualToken("tok", "tok2") || EqualToken("", "") || EqualToken("x", "") {
		t.Fatal("EqualToken")
	}
}

// checkMessages asserts what every mapped message must satisfy whatever the
// input: the fields ingest requires, the contract's limits, no invented
// network or kind.
func checkMessages(t *testing.T, res Result) {
	t.Helper()
	for _, m := range res.Messages {
		if !slices.Contains(routing.Networks, m.Network) || !slices.Contains(routing.Kinds, m.Kind) ||
			m.ExternalID == "" || m.Author.ID == "" || m.ThreadExternalID == "" ||
			(m.Text == "" && len(m.Attachments) == 0) || utf8.RuneCountInString(m.Text) > inbox.MaxTextRunes ||
			len(m.Attachments) > inbox.MaxAttachments {
			t.Fatalf("unusable message %+v", m)
		}
		for _, a := range m.Attachments {
			u, err := url.Parse(a.URL)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || a.Type == "" {
				t.Fatalf("unusable attachment %+v", a)
			}
		}
	}
}

func FuzzMeta(f *testing.F) {
	for _, s := range []string{
		`{"object":"page","entry":[{"id":"P","messaging":[{"sender":{"id":"U"},"message":{"mid":"m","text":"t"}}]}]}`,
		`{"object":"instagram","entry":[{"id":"I","changes":[{"field":"comments","value":{"id":"c","text":"t","from":{"id":"U"},"media":{"id":"M"}}}]}]}`,
		`{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages","value":{"metadata":{"phone_number_id":"P"},"messages":[{"from":"1","id":"w","type":"text","text":{"body":"t"}}]}}]}]}`,
		`[{"object":"page","entry":[{"id":"P","changes":[{"field":"feed","value":{"item":"comment","verb":"add","post_id":"p","comment_id":"c","from":{"id":"U"},"message":"m"}}]}]}]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		res, err := Meta(body)
		if err != nil && !isBodyError(err) {
			t.Fatalf("error %v", err)
		}
		checkMessages(t, res)
	})
}

func FuzzX(f *testing.F) {
	for _, s := range []string{
		`{"for_user_id":"B","tweet_create_events":[{"id_str":"1","text":"t","user":{"id_str":"U"}}]}`,
		`{"for_user_id":"B","direct_message_events":[{"type":"message_create","id":"d","message_create":{"sender_id":"U","message_data":{"text":"t"}}}],"users":{"U":{"id":"U"}}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		res, err := X(body)
		if err != nil && !isBodyError(err) {
			t.Fatalf("error %v", err)
		}
		checkMessages(t, res)
	})
}

func FuzzGeneric(f *testing.F) {
	f.Add([]byte(`{"network":"other","external_id":"g","text":"t","author":{"id":"u"}}`))
	f.Add([]byte(`{"messages":[{"network":"other"},{"sent_at":5}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		items, _, err := Generic(body)
		var fe *inbox.FieldError
		if err != nil && !errors.As(err, &fe) && !errors.Is(err, ErrTooManyMessages) {
			t.Fatalf("error %v", err)
		}
		for _, it := range items {
			if it.Err != nil && !errors.As(it.Err, &fe) {
				t.Fatalf("item error %v", it.Err)
			}
		}
	})
}

// hexHMAC is an independent HMAC for the tests' own signatures.
func hexHMAC(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

func TestVerifyHex_AgreesWithAnIndependentHMAC(t *testing.T) {
	for _, body := range []string{"", "{}", strings.Repeat("x", 70000)} {
		if !VerifyHex("sha256="+hexHMAC("k", []byte(body)), []byte(body), "k") {
			t.Fatalf("body of %d bytes", len(body))
		}
	}
}

// TestAttachments_TypeAndURLCountCharacters: a network's type longer than
// the contract's 32 characters is cut at a character, not in the middle of
// one (which stored invalid UTF-8), and a URL is measured in characters as
// the contract's limit is.
func TestAttachments_TypeAndURLCountCharacters(t *testing.T) {
	var as attachments
	as.add(strings.Repeat("写真", 20), "https://cdn.example/a.jpg")
	as.add("image", "https://cdn.example/"+strings.Repeat("é", 2048-len("https://cdn.example/")))
	as.add("image", "https://cdn.example/"+strings.Repeat("é", 2049-len("https://cdn.example/")))
	if len(as) != 2 {
		t.Fatalf("%d attachments kept, want the first two (the third's URL is 2,049 characters)", len(as))
	}
	if typ := as[0].Type; typ != strings.Repeat("写真", 16) || !utf8.ValidString(typ) {
		t.Fatalf("type cut to %q, want the first 32 characters", typ)
	}
	in := inbox.MessageInput{Network: "facebook", ExternalID: "m", Kind: "dm", Author: store.Author{ID: "u"}, Attachments: []store.Attachment(as)}
	if err := in.Validate(time.Now()); err != nil {
		t.Fatalf("the mapped attachments do not pass the contract's checks: %v", err)
	}
}

// TestMeta_MessagingWithoutAnEntryIDTakesTheRecipientAsTheAccount: with no
// entry id, the account a customer wrote to is the message's recipient:
// the thread's profile, which keys the thread.
func TestMeta_MessagingWithoutAnEntryIDTakesTheRecipientAsTheAccount(t *testing.T) {
	res := mustMap(t, Meta, `{"object": "instagram", "entry": [{"time": 1795427999000, "messaging": [
		{"sender": {"id": "U1"}, "recipient": {"id": "IG"}, "timestamp": 1795427880000, "message": {"mid": "m1", "text": "hi"}}
	]}]}`)
	want := []brief{{"instagram", "IG", "dm:U1", "m1", "dm", "U1", "hi", "2026-11-23T09:58:00Z"}}
	if got := briefs(res.Messages); !reflect.DeepEqual(got, want) {
		t.Fatalf("messages %+v\nwant %+v", got, want)
	}
}

// TestX_DirectMessageAuthorIsTheSenderWhateverTheUsersEntrySays: the
// users map is keyed by id; its entry may leave the id out, and the author
// is still the sender (an author without an id would be refused).
func TestX_DirectMessageAuthorIsTheSenderWhateverTheUsersEntrySays(t *testing.T) {
	res := mustMap(t, X, `{"for_user_id": "B", "direct_message_events": [
		{"type": "message_create", "id": "dm-1", "created_timestamp": "1795427880000",
		 "message_create": {"target": {"recipient_id": "B"}, "sender_id": "111", "message_data": {"text": "hello"}}}],
	 "users": {"111": {"name": "Ana", "screen_name": "ana", "followers_count": 12}}}`)
	if len(res.Messages) != 1 {
		t.Fatalf("messages %+v", res.Messages)
	}
	a := res.Messages[0].Author
	if a.ID != "111" || a.Handle != "@ana" || a.Name != "Ana" || a.Followers != 12 {
		t.Fatalf("author %+v, want id 111 with the users entry's handle, name and followers", a)
	}
}

// TestUnixTime_MillisecondsFromExactly1e11: the magnitude that tells
// milliseconds from seconds is 1e11 itself, as documented; a timestamp in
// milliseconds from before 2001 is not read as a date thousands of years on.
func TestUnixTime_MillisecondsFromExactly1e11(t *testing.T) {
	for in, want := range map[string]string{
		`99999999999`:  "5138-11-16T09:46:39Z",     // the last value read as seconds
		`100000000000`: "1973-03-03T09:46:40Z",     // the first read as milliseconds
		`999999999999`: "2001-09-09T01:46:39.999Z", // milliseconds, below 1e12
	} {
		var n num
		if err := n.UnmarshalJSON([]byte(in)); err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if got := unixTime(n); got == nil || got.Format(time.RFC3339Nano) != want {
			t.Errorf("%s: %v, want %s", in, got, want)
		}
	}
}

// TestAttachments_KeepsWhatTheContractTakesUnderItsOwnTypes: an attachment
// ingest would refuse (an http(s) URL without a host) is left out, since
// it would cost the whole message; plain http is an http(s) URL; the
// networks' own media types read as the contract's.
func TestAttachments_KeepsWhatTheContractTakesUnderItsOwnTypes(t *testing.T) {
	for _, c := range []struct {
		typ, url, want string // want "" when left out
	}{
		{"image", "http://cdn.example/a.jpg", "image"},
		{"image", "https:///a.jpg", ""},
		{"image", "https:a.jpg", ""},
		{"photo", "https://pbs.twimg.com/media/a.jpg", "image"},
		{"animated_gif", "https://video.twimg.com/tweet_video/a.mp4", "video"},
		{" Video ", "https://cdn.example/v.mp4", "video"},
	} {
		var as attachments
		as.add(c.typ, c.url)
		got := ""
		if len(as) == 1 {
			got = as[0].Type
		}
		if got != c.want {
			t.Errorf("%q %q: kept as %q, want %q", c.typ, c.url, got, c.want)
			continue
		}
		in := inbox.MessageInput{Network: "facebook", ExternalID: "m", Kind: "dm", Text: "t", Author: store.Author{ID: "u"}, Attachments: as}
		if err := in.Validate(time.Now()); err != nil {
			t.Errorf("%q %q: a kept attachment costs the message: %v", c.typ, c.url, err)
		}
	}
}

func TestHandle_OneAtSign(t *testing.T) {
	for in, want := range map[string]string{"ana": "@ana", " ana ": "@ana", "@ana": "@ana", "": "", "  ": ""} {
		if got := handle(in); got != want {
			t.Errorf("handle(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestGeneric_NullIsMalformedAndAFullBatchIsTaken: a body of null is not
// a message object (it was read as an empty message, refused by its
// network field); a batch of exactly inbox.MaxBatch messages is allowed.
func TestGeneric_NullIsMalformedAndAFullBatchIsTaken(t *testing.T) {
	for _, body := range []string{`null`, ` null `} {
		if _, _, err := Generic([]byte(body)); !isBodyError(err) {
			t.Errorf("%q: %v, want a body FieldError", body, err)
		}
	}
	full := `{"messages": [` + strings.TrimSuffix(strings.Repeat(`{"external_id": "x"},`, inbox.MaxBatch), ",") + `]}`
	items, batch, err := Generic([]byte(full))
	if err != nil || !batch || len(items) != inbox.MaxBatch {
		t.Fatalf("a batch of %d: %d items, batch %v, %v", inbox.MaxBatch, len(items), batch, err)
	}
}

// TestSignatures_OnlyTheExactDigestUnderItsPrefixVerifies: a good digest
// with anything after it, a digest without "sha256=", or one made with an
// empty secret never verifies, for either encoding.
func TestSignatures_OnlyTheExactDigestUnderItsPrefixVerifies(t *testing.T) {
	body := []byte(`{"for_user_id":"B","direct_message_events":[]}`)
	const secret = "s3cret"
	hexSig, b64Sig := SignHex(body, secret), SignBase64(body, secret)
	for _, c := range []struct {
		name   string
		verify func(string, []byte, string) bool
		header string
		secret string
		want   bool
	}{
		{"hex: good", VerifyHex, hexSig, secret, true},
		{"hex: trailing junk", VerifyHex, hexSig + "zz", secret, false},
		{"hex: trailing half byte", VerifyHex, hexSig + "0", secret, false},
		{"base64: good", VerifyBase64, b64Sig, secret, true},
		{"base64: no prefix", VerifyBase64, strings.TrimPrefix(b64Sig, "sha256="), secret, false},
		{"base64: empty secret", VerifyBase64, SignBase64(body, ""), "", false},
	} {
		if got := c.verify(c.header, body, c.secret); got != c.want {
			t.Errorf("%s: verified %v, want %v", c.name, got, c.want)
		}
	}
}

// mapCase is one delivery and what it must map to.
type mapCase struct {
	name             string
	body             string
	want             []brief
	atts             []string // "type url" of every message's attachments, in order
	ignored, dropped int
	edits            []Edit
}

func runMapCases(t *testing.T, f func([]byte) (Result, error), cases []mapCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := mustMap(t, f, c.body)
			got := briefs(res.Messages)
			if len(got) == 0 {
				got = nil
			}
			var atts []string
			for _, m := range res.Messages {
				for _, a := range m.Attachments {
					atts = append(atts, a.Type+" "+a.URL)
				}
				// Everything mapped must pass ingest, or the message is lost.
				if err := m.Validate(time.Now()); err != nil {
					t.Errorf("message %s is refused by ingest: %v", m.ExternalID, err)
				}
			}
			if !reflect.DeepEqual(got, c.want) || !reflect.DeepEqual(atts, c.atts) {
				t.Fatalf("messages %+v, attachments %q\nwant %+v, %q", got, atts, c.want, c.atts)
			}
			if res.Ignored != c.ignored || len(res.Dropped) != c.dropped || !reflect.DeepEqual(res.Edited, c.edits) {
				t.Fatalf("ignored %d, dropped %+v, edits %+v; want %d ignored, %d dropped, edits %+v",
					res.Ignored, res.Dropped, res.Edited, c.ignored, c.dropped, c.edits)
			}
		})
	}
}

func TestMeta_MappingEdgeCases(t *testing.T) {
	page := func(items string) string {
		return `{"object": "page", "entry": [{"id": "P", "time": 1795427000, "messaging": [` + items + `]}]}`
	}
	feed := func(value string) string {
		return `{"object": "page", "entry": [{"id": "P", "time": 1795427000, "changes": [{"field": "feed", "value": ` + value + `}]}]}`
	}
	ratings := func(value string) string {
		return `{"object": "page", "entry": [{"id": "P", "time": 1795427000, "changes": [{"field": "ratings", "value": ` + value + `}]}]}`
	}
	ig := func(value string) string {
		return `{"object": "instagram", "entry": [{"id": "IG", "time": 1795427000, "changes": [{"field": "comments", "value": ` + value + `}]}]}`
	}
	wa := func(entryTime, contacts, messages string) string {
		return `{"object": "whatsapp_business_account", "entry": [{"id": "W"` + entryTime + `, "changes": [{"field": "messages", "value": {
			"metadata": {"phone_number_id": "PN"}, "contacts": ` + contacts + `, "messages": [` + messages + `]}}]}]}`
	}
	kai := `[{"profile": {"name": "Kai"}, "wa_id": "111"}]`
	runMapCases(t, Meta, []mapCase{
		{name: "odd array element", body: `[null]`, dropped: 1},
		{name: "entry not an array", body: `{"object": "page", "entry": {}}`, dropped: 1},
		{name: "deleted without a mid", body: page(`{"sender": {"id": "U"}, "recipient": {"id": "P"}, "message": {"is_deleted": true}}`), ignored: 1},
		{name: "message without a sender", body: page(`{"recipient": {"id": "P"}, "timestamp": 1795427880000, "message": {"mid": "m1", "text": "hi"}}`), dropped: 1},
		{name: "tap without mid nor time", body: page(`{"sender": {"id": "U"}, "recipient": {"id": "P"}, "postback": {"title": "Get Started"}}`), dropped: 1},
		{name: "the Page's own edit", body: page(`{"sender": {"id": "P"}, "recipient": {"id": "U"}, "timestamp": 1795427880000, "message_edit": {"mid": "m_page", "text": "fixed typo"}}`), ignored: 1},
		{name: "unsupported flag with a text",
			body: page(`{"sender": {"id": "U"}, "recipient": {"id": "P"}, "timestamp": 1795427880000, "message": {"mid": "m1", "text": "hello", "is_unsupported": true}}`),
			want: []brief{{"facebook", "P", "dm:U", "m1", "dm", "U", "hello", "2026-11-23T09:58:00Z"}}},
		{name: "visitor's video post",
			body: feed(`{"item": "video", "verb": "add", "post_id": "P_3", "from": {"id": "V"}, "message": "look", "video": "https://cdn.example/v.mp4", "created_time": 1795427880}`),
			want: []brief{{"facebook", "P", "post:P_3:V", "P_3", "mention", "V", "look", "2026-11-23T09:58:00Z"}},
			atts: []string{"video https://cdn.example/v.mp4"}},
		{name: "visitor's photo post",
			body: feed(`{"item": "photo", "verb": "add", "post_id": "P_4", "from": {"id": "V"}, "photo": "https://cdn.example/p.jpg", "created_time": 1795427880}`),
			want: []brief{{"facebook", "P", "post:P_4:V", "P_4", "mention", "V", "", "2026-11-23T09:58:00Z"}},
			atts: []string{"image https://cdn.example/p.jpg"}},
		{name: "hidden comment", body: feed(`{"item": "comment", "verb": "hide", "post_id": "P_1", "comment_id": "1_a", "from": {"id": "A"}, "message": "one"}`), ignored: 1},
		{name: "comment without post_id", body: feed(`{"item": "comment", "verb": "add", "comment_id": "1_a", "from": {"id": "A"}, "message": "one"}`), dropped: 1},
		{name: "positive recommendation",
			body: ratings(`{"item": "rating", "verb": "add", "reviewer_id": "R", "recommendation_type": "positive", "review_text": "Great", "created_time": 1795427880}`),
			want: []brief{{"facebook", "P", "review:R", "rating:R", "review", "R", "[recommends] Great", "2026-11-23T09:58:00Z"}}},
		{name: "rating without item",
			body: ratings(`{"verb": "add", "reviewer_id": "R", "rating": 5, "open_graph_story_id": "S", "created_time": 1795427880}`),
			want: []brief{{"facebook", "P", "review:R", "S", "review", "R", "[5★]", "2026-11-23T09:58:00Z"}}},
		{name: "Instagram comment without media", body: ig(`{"id": "c1", "text": "nice", "from": {"id": "U", "username": "u"}}`), dropped: 1},
		{name: "Instagram comment's own time",
			body: ig(`{"id": "c1", "text": "nice", "from": {"id": "U", "username": "u"}, "media": {"id": "M"}, "timestamp": 1795427880}`),
			want: []brief{{"instagram", "IG", "post:M:U", "c1", "comment", "U", "nice", "2026-11-23T09:58:00Z"}}},
		{name: "WhatsApp list reply",
			body: wa("", kai, `{"from": "111", "id": "w1", "timestamp": "1795427880", "type": "interactive", "interactive": {"type": "list_reply", "list_reply": {"id": "b", "title": "Blue"}}}`),
			want: []brief{{"whatsapp", "PN", "dm:111", "w1", "dm", "111", "Blue", "2026-11-23T09:58:00Z"}}},
		{name: "WhatsApp Flow answers not JSON",
			body: wa("", kai, `{"from": "111", "id": "w1", "timestamp": "1795427880", "type": "interactive", "interactive": {"type": "nfm_reply", "nfm_reply": {"body": "Sent", "response_json": "oops"}}}`),
			want: []brief{{"whatsapp", "PN", "dm:111", "w1", "dm", "111", "[form] Sent", "2026-11-23T09:58:00Z"}}},
		{name: "WhatsApp request_welcome", body: wa("", kai, `{"from": "111", "id": "w1", "timestamp": "1795427880", "type": "request_welcome"}`), ignored: 1},
		{name: "WhatsApp message time before the entry's",
			body: wa(`, "time": 1795427999`, kai, `{"from": "111", "id": "w1", "timestamp": "1795427880", "type": "text", "text": {"body": "a"}},
				{"from": "111", "id": "w2", "type": "text", "text": {"body": "b"}}`),
			want: []brief{{"whatsapp", "PN", "dm:111", "w1", "dm", "111", "a", "2026-11-23T09:58:00Z"},
				{"whatsapp", "PN", "dm:111", "w2", "dm", "111", "b", "2026-11-23T09:59:59Z"}}},
		{name: "WhatsApp edit at its own time",
			body:  wa(`, "time": 1795427999`, kai, `{"from": "111", "id": "e1", "timestamp": "1795427890", "type": "edit", "edit": {"original_message_id": "w1", "message": {"type": "text", "text": {"body": "new"}}}}`),
			edits: []Edit{{Path: "entry[0].changes[0].value.messages[0]", Network: "whatsapp", ExternalID: "w1", Text: "new", At: time.Unix(1795427890, 0).UTC()}}},
	})

	// A single contact without wa_id names the message's sender.
	res := mustMap(t, Meta, wa("", `[{"profile": {"name": "Kai"}}]`, `{"from": "111", "id": "w1", "type": "text", "text": {"body": "a"}}`))
	if len(res.Messages) != 1 || res.Messages[0].Author.Name != "Kai" {
		t.Fatalf("messages %+v, want one by Kai", res.Messages)
	}
}

// TestMeta_WhatsAppOnlyFailedStatusesAreFailures: sent, delivered and read
// reports change nothing; a failure says why, from errors[0].
func TestMeta_WhatsAppOnlyFailedStatusesAreFailures(t *testing.T) {
	status := func(st, errors string) string {
		return `{"object": "whatsapp_business_account", "entry": [{"id": "W", "changes": [{"field": "messages", "value": {
			"metadata": {"phone_number_id": "PN"}, "statuses": [{"id": "wamid.1", "status": "` + st + `", "recipient_id": "111"` + errors + `}]}}]}]}`
	}
	for _, c := range []struct {
		status, errors, want string // want "" when not a failure
	}{
		{"sent", "", ""},
		{"delivered", "", ""},
		{"read", "", ""},
		{"failed", "", "WhatsApp did not deliver it"},
		{"failed", `, "errors": [{"code": 131026, "title": "Message undeliverable", "message": "Receiver is incapable of receiving this message"}]`,
			"Message undeliverable: Receiver is incapable of receiving this message (131026)"},
	} {
		res := mustMap(t, Meta, status(c.status, c.errors))
		var got string
		if len(res.Failed) == 1 {
			got = res.Failed[0].Error
		}
		if got != c.want || len(res.Failed) > 1 || (c.want == "" && res.Ignored != 1) {
			t.Errorf("status %s %s: failed %+v (ignored %d), want %q", c.status, c.errors, res.Failed, res.Ignored, c.want)
		}
	}
}

func TestX_MappingEdgeCases(t *testing.T) {
	tweet := func(fields string) string {
		return `{"for_user_id": "B", "tweet_create_events": [{"id_str": "1", "text": "@brand hi", "user": {"id_str": "U"}` + fields + `}]}`
	}
	photo := func(n int) string {
		return `{"type": "photo", "media_url_https": "https://pbs.twimg.com/media/` + string(rune('a'+n)) + `.jpg"}`
	}
	runMapCases(t, X, []mapCase{
		{name: "every unknown event counted", body: `{"for_user_id": "B", "favorite_events": [{}, {}, {}]}`, ignored: 3},
		{name: "retweeted_status null is no retweet", body: tweet(`, "retweeted_status": null`),
			want: []brief{{"twitter", "B", "conv:1:U", "1", "mention", "U", "@brand hi", ""}}},
		{name: "negative follower count", body: `{"for_user_id": "B", "tweet_create_events": [{"id_str": "1", "text": "@brand hi", "user": {"id_str": "U", "followers_count": -1}}]}`,
			want: []brief{{"twitter", "B", "conv:1:U", "1", "mention", "U", "@brand hi", ""}}},
		{name: "extended_entities hold every photo",
			body: tweet(`, "entities": {"media": [` + photo(0) + `]}, "extended_entities": {"media": [` + photo(0) + `, ` + photo(1) + `]}`),
			want: []brief{{"twitter", "B", "conv:1:U", "1", "mention", "U", "@brand hi", ""}},
			atts: []string{"image https://pbs.twimg.com/media/a.jpg", "image https://pbs.twimg.com/media/b.jpg"}},
		{name: "conversation_id_str roots the thread", body: tweet(`, "conversation_id_str": "900", "in_reply_to_status_id_str": "950"`),
			want: []brief{{"twitter", "B", "conv:900:U", "1", "mention", "U", "@brand hi", ""}}},
	})
}

// TestMeta_WhatsAppCustomersWhoHideTheirNumber: a WhatsApp user with a
// username may hide their number; Meta then sends their business-scoped
// user id (from_user_id, and user_id in contacts) and no from. Such a
// message was dropped ("no sender") and answered 200: lost. A customer
// who shows their number stays on the thread begun with it.
func TestMeta_WhatsAppCustomersWhoHideTheirNumber(t *testing.T) {
	res := mustMap(t, Meta, `{"object": "whatsapp_business_account", "entry": [{"id": "W", "changes": [{"field": "messages", "value": {
		"messaging_product": "whatsapp", "metadata": {"display_phone_number": "15550001111", "phone_number_id": "PN"},
		"contacts": [{"profile": {"name": "Kai"}, "user_id": "US.1349120865"}, {"profile": {"name": "Lu"}, "wa_id": "222", "user_id": "US.77"}],
		"messages": [
			{"from_user_id": "US.1349120865", "id": "w1", "timestamp": "1795427880", "type": "text", "text": {"body": "where is my order"}},
			{"from": "222", "from_user_id": "US.77", "id": "w2", "timestamp": "1795427880", "type": "text", "text": {"body": "hi"}}
		]}}]}]}`)
	want := []brief{
		{"whatsapp", "PN", "dm:US.1349120865", "w1", "dm", "US.1349120865", "where is my order", "2026-11-23T09:58:00Z"},
		{"whatsapp", "PN", "dm:222", "w2", "dm", "222", "hi", "2026-11-23T09:58:00Z"},
	}
	if got := briefs(res.Messages); !reflect.DeepEqual(got, want) || len(res.Dropped) != 0 {
		t.Fatalf("messages %+v (dropped %+v)\nwant %+v", got, res.Dropped, want)
	}
	if a, b := res.Messages[0].Author, res.Messages[1].Author; a.Name != "Kai" || a.Handle != "" || b.Name != "Lu" || b.Handle != "+222" {
		t.Fatalf("authors %+v and %+v", a, b)
	}
}

// TestMeta_FeedPhotoAndVideoPostsTakeTheirMediaFromLink: Meta sends a
// visitor's photo or video post with the media's URL in link (and a
// photo_id or video_id); only photo and video were read, so a photo posted
// without a caption was dropped, and one with a caption lost its image.
func TestMeta_FeedPhotoAndVideoPostsTakeTheirMediaFromLink(t *testing.T) {
	res := mustMap(t, Meta, `{"object": "page", "entry": [{"id": "P", "time": 1795427000, "changes": [
		{"field": "feed", "value": {"item": "photo", "verb": "add", "post_id": "P_3", "photo_id": "9", "from": {"id": "C"}, "link": "https://scontent.example/p.jpg"}},
		{"field": "feed", "value": {"item": "video", "verb": "add", "post_id": "P_4", "video_id": "8", "from": {"id": "D"}, "message": "look", "link": "https://video.example/v.mp4"}}
	]}]}`)
	if len(res.Messages) != 2 || len(res.Dropped) != 0 {
		t.Fatalf("messages %+v, dropped %+v", res.Messages, res.Dropped)
	}
	for i, want := range []store.Attachment{{Type: "image", URL: "https://scontent.example/p.jpg"}, {Type: "video", URL: "https://video.example/v.mp4"}} {
		if got := res.Messages[i].Attachments; len(got) != 1 || got[0].Type != want.Type || got[0].URL != want.URL {
			t.Fatalf("message %d attachments %+v, want %+v", i, got, want)
		}
	}
}

// TestResult_IgnoreOwnKeepsThePaths: the messages left keep where each was
// in the payload, for the log line of one refused later.
func TestResult_IgnoreOwnKeepsThePaths(t *testing.T) {
	res := mustMap(t, X, `{"for_user_id": "B", "tweet_create_events": [
		{"id_str": "1", "text": "@b one", "user": {"id_str": "U"}},
		{"id_str": "2", "text": "@b two", "user": {"id_str": "A"}},
		{"id_str": "3", "text": "@b three", "user": {"id_str": "U"}}]}`)
	err := res.IgnoreOwn(func(m *inbox.MessageInput) (bool, error) { return m.Author.ID == "A", nil })
	if err != nil || len(res.Messages) != 2 || res.Ignored != 1 || res.Messages[1].ExternalID != "3" ||
		!slices.Equal(res.Paths, []string{"tweet_create_events[0]", "tweet_create_events[2]"}) {
		t.Fatalf("%v: messages %+v, paths %q, ignored %d", err, briefs(res.Messages), res.Paths, res.Ignored)
	}
	failed := errors.New("store away")
	if err := res.IgnoreOwn(func(*inbox.MessageInput) (bool, error) { return false, failed }); !errors.Is(err, failed) {
		t.Fatalf("%v, want the lookup's error", err)
	}
}
