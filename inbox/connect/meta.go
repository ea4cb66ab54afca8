package connect

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/switchboard/switchboard/inbox"
	"github.com/switchboard/switchboard/store"
)

// Meta maps a Graph API webhook delivery (the body Meta POSTs, already
// verified) to inbound messages:
//
//   - object "page" (network facebook): entry[].messaging[] Messenger
//     messages (kind dm, thread "dm:<PSID>"), and entry[].changes[] with
//     field "feed": comments (item "comment", verb "add"; kind comment) and
//     visitor posts (item "status", "post", "photo" or "video"; kind
//     mention), threaded "post:<post_id>:<author id>".
//   - object "instagram" (network instagram): entry[].messaging[] DMs
//     (thread "dm:<IGSID>"), changes with field "comments" or
//     "live_comments" (kind comment, thread "post:<media id>:<author id>"),
//     and "mentions" when the notification carries the comment's text and
//     author (kind mention).
//   - object "whatsapp_business_account" (network whatsapp): changes with
//     field "messages", value.messages[] (kind dm, thread "dm:<wa_id>").
//
// The profile is the entry's account: the Page id, the Instagram
// professional account id, or the WhatsApp phone_number_id. Echoes
// (message.is_echo, or sent by the Page or account itself) and the brand's
// own comments and posts are ignored, as are receipts, statuses, reactions
// and every unknown object, field or event type.
//
// The documentation shows some payloads wrapped in a JSON array; a top-level
// array of such objects is accepted too.
func Meta(body []byte) (Result, error) {
	var res Result
	b := bytes.TrimSpace(body)
	if len(b) > 0 && b[0] == '[' && json.Valid(b) {
		var envs []json.RawMessage
		if err := json.Unmarshal(b, &envs); err != nil {
			return res, errMalformed()
		}
		for i, env := range envs {
			if !jsonObject(env) {
				res.drop(fmt.Sprintf("[%d]", i), "not an object")
				continue
			}
			metaEnvelope(&res, fmt.Sprintf("[%d].", i), env)
		}
		return res, nil
	}
	if !jsonObject(b) {
		return res, errMalformed()
	}
	metaEnvelope(&res, "", b)
	return res, nil
}

type metaEntry struct {
	ID        id                `json:"id"`
	Time      num               `json:"time"`
	Messaging []json.RawMessage `json:"messaging"`
	Changes   []json.RawMessage `json:"changes"`
	// Some documented examples put one change inline in the entry.
	Field string          `json:"field"`
	Value json.RawMessage `json:"value"`
}

type metaChange struct {
	Field string          `json:"field"`
	Value json.RawMessage `json:"value"`
}

func metaEnvelope(res *Result, prefix string, body []byte) {
	var env struct {
		Object json.RawMessage `json:"object"`
		Entry  json.RawMessage `json:"entry"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		res.drop(strings.TrimSuffix(prefix, "."), "not an object")
		return
	}
	var object string
	_ = json.Unmarshal(env.Object, &object)
	network := map[string]string{"page": "facebook", "instagram": "instagram", "whatsapp_business_account": "whatsapp"}[object]
	if network == "" {
		res.Ignored++ // user, permissions, application, ... or no object at all
		return
	}
	var entries []json.RawMessage
	if len(env.Entry) > 0 && json.Unmarshal(env.Entry, &entries) != nil {
		res.drop(prefix+"entry", "not an array")
		return
	}
	for i, raw := range entries {
		path := fmt.Sprintf("%sentry[%d]", prefix, i)
		var e metaEntry
		if err := json.Unmarshal(raw, &e); err != nil {
			res.drop(path, "malformed entry")
			continue
		}
		for j, m := range e.Messaging {
			metaMessaging(res, network, e, fmt.Sprintf("%s.messaging[%d]", path, j), m)
		}
		changes := e.Changes
		if len(changes) == 0 && e.Field != "" {
			inline, _ := json.Marshal(metaChange{Field: e.Field, Value: e.Value})
			changes = []json.RawMessage{inline}
		}
		for j, raw := range changes {
			cpath := fmt.Sprintf("%s.changes[%d]", path, j)
			var c metaChange
			if err := json.Unmarshal(raw, &c); err != nil {
				res.drop(cpath, "malformed change")
				continue
			}
			metaChangeItem(res, network, e, cpath, c)
		}
		if len(e.Messaging) == 0 && len(changes) == 0 {
			res.Ignored++ // standby, or an entry of another kind
		}
	}
}

// metaMessagingItem is one Messenger or Instagram messaging event.
type metaMessagingItem struct {
	Sender struct {
		ID id `json:"id"`
	} `json:"sender"`
	Recipient struct {
		ID id `json:"id"`
	} `json:"recipient"`
	Timestamp num          `json:"timestamp"`
	Message   *metaMessage `json:"message"`
	// MessageEdit is the customer's edit of a message sent before: its
	// whole new text.
	MessageEdit *struct {
		MID  string `json:"mid"`
		Text string `json:"text"`
	} `json:"message_edit"`
	// Postback is a tap on a button the brand's page offered ("Talk to a
	// person", an ice breaker): often the customer's first word.
	Postback *struct {
		MID   string `json:"mid"`
		Title string `json:"title"`
	} `json:"postback"`
}

type metaMessage struct {
	MID           string            `json:"mid"`
	Text          string            `json:"text"`
	IsEcho        bool              `json:"is_echo"`
	IsDeleted     bool              `json:"is_deleted"`
	IsUnsupported bool              `json:"is_unsupported"`
	Attachments   []json.RawMessage `json:"attachments"`
	ReplyTo       *struct {
		Story *struct {
			URL string `json:"url"`
		} `json:"story"`
	} `json:"reply_to"`
}

// unsupportedText stands for a message the network did not pass on (a
// kind its API cannot show): the customer wrote, and someone should ask
// them to send it again, rather than nobody seeing that they wrote.
const unsupportedText = "[unsupported message: the network did not pass it on; ask the customer to send it again]"

// metaAttachment is a messaging attachment; the URL is in payload.url (some
// echo templates carry it at the top).
type metaAttachment struct {
	Type    string `json:"type"`
	URL     string `json:"url"`
	Payload struct {
		URL         string `json:"url"`
		Title       string `json:"title"`
		Coordinates *struct {
			Lat  float64 `json:"lat"`
			Long float64 `json:"long"`
		} `json:"coordinates"`
	} `json:"payload"`
}

// placeholder renders an attachment that has no URL to keep (Instagram's
// heart, a Messenger location) as text, as WhatsApp's media are: "[type]",
// with a location's coordinates or the title it has.
func (a metaAttachment) placeholder() string {
	typ := strings.ToLower(strings.TrimSpace(a.Type))
	if typ == "" {
		typ = "attachment"
	}
	s := "[" + strings.ReplaceAll(typ, "_", " ") + "]"
	if c := a.Payload.Coordinates; c != nil {
		s += fmt.Sprintf(" (%g, %g)", c.Lat, c.Long)
	}
	if t := strings.TrimSpace(a.Payload.Title); t != "" {
		s += " " + t
	}
	return s
}

func metaMessaging(res *Result, network string, e metaEntry, path string, raw []byte) {
	var m metaMessagingItem
	if err := json.Unmarshal(raw, &m); err != nil {
		res.drop(path, "malformed messaging event")
		return
	}
	account := string(e.ID)
	if account == "" {
		account = string(m.Recipient.ID)
	}
	if pb := m.Postback; m.Message == nil && pb != nil && pb.Title != "" {
		mid := pb.MID
		if mid == "" && m.Timestamp > 0 && m.Sender.ID != "" {
			// A "Get Started" tap may come without one: the tap's sender
			// and time name it, the same on Meta's retries.
			mid = fmt.Sprintf("postback:%s:%d", m.Sender.ID, m.Timestamp)
		}
		m.Message = &metaMessage{MID: mid, Text: pb.Title}
	}
	if ed := m.MessageEdit; m.Message == nil && ed != nil {
		switch {
		case m.Sender.ID != "" && string(m.Sender.ID) == account:
			res.Ignored++ // the brand's own message
		case ed.MID == "":
			res.drop(path, "no message id")
		default:
			res.edited(path, network, ed.MID, ed.Text, unixTime(m.Timestamp), unixTime(e.Time))
		}
		return
	}
	switch {
	case m.Message == nil: // read, delivery, reaction, referral, ...
		res.Ignored++
		return
	case m.Message.IsEcho || (m.Sender.ID != "" && string(m.Sender.ID) == account):
		res.Ignored++ // the brand's own message
		return
	case m.Message.IsDeleted && m.Message.MID != "":
		// Unsent by the customer: what it said is not kept either.
		res.deleted(path, network, m.Message.MID)
		return
	case m.Message.IsDeleted:
		res.Ignored++
		return
	case m.Message.MID == "":
		res.drop(path, "no message id")
		return
	case m.Sender.ID == "":
		res.drop(path, "no sender id")
		return
	}
	var atts attachments
	var placeholders []string
	for _, ra := range m.Message.Attachments {
		var a metaAttachment
		if json.Unmarshal(ra, &a) != nil {
			continue
		}
		u := a.Payload.URL
		if u == "" {
			u = a.URL
		}
		if !atts.add(a.Type, u) {
			placeholders = append(placeholders, a.placeholder())
		}
	}
	if len(placeholders) > 0 {
		m.Message.Text = strings.TrimSpace(strings.Join(placeholders, " ") + " " + m.Message.Text)
	}
	if r := m.Message.ReplyTo; r != nil && r.Story != nil {
		atts.add("story", r.Story.URL) // the story the customer answers
	}
	if m.Message.IsUnsupported && m.Message.Text == "" {
		m.Message.Text = unsupportedText
	}
	if m.Message.Text == "" && len(atts) == 0 {
		res.drop(path, "no text nor attachment with a URL")
		return
	}
	sender := string(m.Sender.ID)
	res.message(path, inbox.MessageInput{
		Network: network, ExternalID: m.Message.MID, ThreadExternalID: dmThread(sender),
		Profile: account, Kind: "dm", Text: clip(m.Message.Text), Attachments: atts,
		Author: store.Author{ID: sender},
		SentAt: firstTime(unixTime(m.Timestamp), unixTime(e.Time)),
	})
}

func metaChangeItem(res *Result, network string, e metaEntry, path string, c metaChange) {
	switch {
	case network == "facebook" && c.Field == "feed":
		pageFeed(res, e, path, c.Value)
	case network == "facebook" && c.Field == "ratings":
		pageRating(res, e, path, c.Value)
	case network == "instagram" && (c.Field == "comments" || c.Field == "live_comments"):
		igComment(res, e, path, c.Value, "comment")
	case network == "instagram" && c.Field == "mentions":
		igComment(res, e, path, c.Value, "mention")
	case network == "whatsapp" && c.Field == "messages":
		whatsApp(res, e, path, c.Value)
	case (network == "facebook" || network == "instagram") && c.Field == "messages":
		// The App Dashboard's "Test" button sends a messaging event as a
		// change; real deliveries use entry[].messaging[].
		metaMessaging(res, network, e, path+".value", c.Value)
	default:
		res.Ignored++
	}
}

// pageFeedValue is a Page "feed" change.
type pageFeedValue struct {
	Item      string `json:"item"`
	Verb      string `json:"verb"`
	PostID    id     `json:"post_id"`
	CommentID id     `json:"comment_id"`
	From      struct {
		ID   id     `json:"id"`
		Name string `json:"name"`
	} `json:"from"`
	Message     string `json:"message"`
	CreatedTime num    `json:"created_time"`
	Photo       string `json:"photo"`
	Video       string `json:"video"`
	Link        string `json:"link"`
}

func pageFeed(res *Result, e metaEntry, path string, raw []byte) {
	var v pageFeedValue
	if err := json.Unmarshal(raw, &v); err != nil {
		res.drop(path, "malformed feed change")
		return
	}
	var kind string
	var extID id
	switch v.Item {
	case "comment":
		kind, extID = "comment", v.CommentID
	case "status", "post", "photo", "video":
		kind, extID = "mention", v.PostID // a visitor's post on the Page
	default: // reaction, like, share, rating, ...
		res.Ignored++
		return
	}
	switch {
	case v.Verb == "remove" && extID != "":
		// Deleted on Facebook: what it said is not kept either.
		res.deleted(path, "facebook", string(extID))
		return
	case v.From.ID != "" && v.From.ID == e.ID:
		res.Ignored++ // the Page's own comment or post
		return
	case edited(v.Verb) && extID != "" && v.Message != "":
		res.edited(path, "facebook", string(extID), v.Message, unixTime(e.Time))
		return
	case v.Verb != "add": // hide, a photo changed, ...
		res.Ignored++
		return
	case extID == "":
		res.drop(path, "no "+v.Item+" id")
		return
	case v.PostID == "":
		res.drop(path, "no post_id")
		return
	case v.From.ID == "":
		res.drop(path, "no author id")
		return
	}
	var atts attachments
	atts.add("image", v.Photo)
	atts.add("video", v.Video)
	if len(atts) == 0 {
		// A visitor's photo or video post carries its media in link
		// (with photo_id or video_id), not in photo or video.
		switch v.Item {
		case "photo":
			atts.add("image", v.Link)
		case "video":
			atts.add("video", v.Link)
		}
	}
	if v.Message == "" && len(atts) == 0 {
		res.drop(path, "no text nor attachment with a URL")
		return
	}
	res.message(path, inbox.MessageInput{
		Network: "facebook", ExternalID: string(extID), ThreadExternalID: postThread(string(v.PostID), string(v.From.ID)),
		Profile: string(e.ID), Kind: kind, Text: clip(v.Message), Attachments: atts,
		Author: store.Author{ID: string(v.From.ID), Name: v.From.Name},
		SentAt: firstTime(unixTime(v.CreatedTime), unixTime(e.Time)),
	})
}

// edited reports whether a feed or ratings change's verb is an edit.
func edited(verb string) bool { return verb == "edited" || verb == "edit" }

// pageRating maps a Page "ratings" change, a review (recommendation) of
// the Page: a thread per reviewer, kind review. The stars or the
// recommendation lead the text, so a review without words still says
// something.
func pageRating(res *Result, e metaEntry, path string, raw []byte) {
	var v struct {
		Item               string `json:"item"`
		Verb               string `json:"verb"`
		ReviewerID         id     `json:"reviewer_id"`
		ReviewerName       string `json:"reviewer_name"`
		Rating             num    `json:"rating"`
		ReviewText         string `json:"review_text"`
		RecommendationType string `json:"recommendation_type"`
		StoryID            id     `json:"open_graph_story_id"`
		CreatedTime        num    `json:"created_time"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		res.drop(path, "malformed ratings change")
		return
	}
	extID := string(v.StoryID)
	if extID == "" && v.ReviewerID != "" {
		extID = "rating:" + string(v.ReviewerID) // one review per reviewer and Page
	}
	switch {
	case v.Item != "" && v.Item != "rating": // a comment on a review, ...
		res.Ignored++
		return
	case v.Verb == "remove" && extID != "":
		res.deleted(path, "facebook", extID)
		return
	case v.Verb != "add" && !edited(v.Verb): // hidden, ...
		res.Ignored++
		return
	case v.ReviewerID == "":
		res.drop(path, "no reviewer_id")
		return
	}
	var lead string
	switch {
	case v.Rating > 0:
		lead = fmt.Sprintf("[%d★]", v.Rating)
	case v.RecommendationType == "positive":
		lead = "[recommends]"
	case v.RecommendationType == "negative":
		lead = "[does not recommend]"
	}
	text := strings.TrimSpace(lead + " " + v.ReviewText)
	switch {
	case text == "":
		res.drop(path, "no rating, recommendation nor text")
		return
	case edited(v.Verb):
		res.edited(path, "facebook", extID, text, unixTime(e.Time))
		return
	}
	res.message(path, inbox.MessageInput{
		Network: "facebook", ExternalID: extID, ThreadExternalID: "review:" + string(v.ReviewerID),
		Profile: string(e.ID), Kind: "review", Text: clip(text),
		Author: store.Author{ID: string(v.ReviewerID), Name: v.ReviewerName},
		SentAt: firstTime(unixTime(v.CreatedTime), unixTime(e.Time)),
	})
}

// igCommentValue is an Instagram "comments" or "mentions" change. Mentions
// carry comment_id and media_id; comments carry id, text, from and media.
type igCommentValue struct {
	ID        id     `json:"id"`
	CommentID id     `json:"comment_id"`
	MediaID   id     `json:"media_id"`
	Text      string `json:"text"`
	From      struct {
		ID       id     `json:"id"`
		Username string `json:"username"`
	} `json:"from"`
	Media struct {
		ID id `json:"id"`
	} `json:"media"`
	Timestamp num `json:"timestamp"`
}

func igComment(res *Result, e metaEntry, path string, raw []byte, kind string) {
	var v igCommentValue
	if err := json.Unmarshal(raw, &v); err != nil {
		res.drop(path, "malformed "+kind)
		return
	}
	extID := firstID(v.ID, v.CommentID)
	media := firstID(v.Media.ID, v.MediaID)
	switch {
	case v.From.ID != "" && v.From.ID == e.ID:
		res.Ignored++ // the account's own comment
		return
	case kind == "mention" && (v.Text == "" || v.From.ID == ""):
		// The mentions notification names only the comment and the media;
		// text and author need a Graph API lookup, which needs a token.
		res.drop(path, "mention without text or author (needs a Graph API lookup)")
		return
	case extID == "":
		res.drop(path, "no comment id")
		return
	case v.From.ID == "":
		res.drop(path, "no author id")
		return
	case media == "":
		res.drop(path, "no media id")
		return
	case v.Text == "":
		res.drop(path, "no text")
		return
	}
	res.message(path, inbox.MessageInput{
		Network: "instagram", ExternalID: string(extID), ThreadExternalID: postThread(string(media), string(v.From.ID)),
		Profile: string(e.ID), Kind: kind, Text: clip(v.Text),
		Author: store.Author{ID: string(v.From.ID), Handle: handle(v.From.Username)},
		SentAt: firstTime(unixTime(v.Timestamp), unixTime(e.Time)),
	})
}

func firstID(ids ...id) id {
	for _, v := range ids {
		if v != "" {
			return v
		}
	}
	return ""
}

// waValue is a WhatsApp Cloud API "messages" change.
type waValue struct {
	Metadata struct {
		PhoneNumberID id `json:"phone_number_id"`
	} `json:"metadata"`
	Contacts []struct {
		Profile struct {
			Name string `json:"name"`
		} `json:"profile"`
		WaID id `json:"wa_id"`
		// UserID is the customer's business-scoped user id (BSUID): the
		// only id of one who set a username and hides their number.
		UserID id `json:"user_id"`
	} `json:"contacts"`
	Messages []json.RawMessage `json:"messages"`
	Statuses []json.RawMessage `json:"statuses"`
}

type waMedia struct {
	Caption  string `json:"caption"`
	Filename string `json:"filename"`
}

type waMessage struct {
	From      id     `json:"from"`
	FromUser  id     `json:"from_user_id"` // the BSUID, with or without from
	ID        string `json:"id"`
	Timestamp num    `json:"timestamp"`
	Type      string `json:"type"`
	Text      struct {
		Body string `json:"body"`
	} `json:"text"`
	Image    *waMedia `json:"image"`
	Video    *waMedia `json:"video"`
	Audio    *waMedia `json:"audio"`
	Document *waMedia `json:"document"`
	Sticker  *waMedia `json:"sticker"`
	Location *struct {
		Name    string  `json:"name"`
		Address string  `json:"address"`
		Lat     float64 `json:"latitude"`
		Long    float64 `json:"longitude"`
	} `json:"location"`
	Button *struct {
		Text string `json:"text"`
	} `json:"button"`
	Interactive *struct {
		ButtonReply *struct {
			Title string `json:"title"`
		} `json:"button_reply"`
		ListReply *struct {
			Title string `json:"title"`
		} `json:"list_reply"`
		// NFMReply is a WhatsApp Flow's answers, a JSON object in a string.
		NFMReply *struct {
			Body         string `json:"body"`
			ResponseJSON string `json:"response_json"`
		} `json:"nfm_reply"`
	} `json:"interactive"`
	// System is WhatsApp's own notice in a conversation, e.g. "Kai
	// changed from +1 650 555 1234 to +1 650 555 9999".
	System *struct {
		Body string `json:"body"`
	} `json:"system"`
	// Edit and Revoke are a customer's edit or deletion of a message sent
	// before (WhatsApp Business app numbers, "Coexistence", send them).
	Edit *struct {
		OriginalMessageID string          `json:"original_message_id"`
		Message           json.RawMessage `json:"message"`
	} `json:"edit"`
	Revoke *struct {
		OriginalMessageID string `json:"original_message_id"`
	} `json:"revoke"`
	Order *struct {
		Text         string `json:"text"`
		ProductItems []struct {
			ProductRetailerID string `json:"product_retailer_id"`
			Quantity          id     `json:"quantity"`
			ItemPrice         id     `json:"item_price"`
			Currency          string `json:"currency"`
		} `json:"product_items"`
	} `json:"order"`
}

// text renders a WhatsApp message as text. Media come with a media id, not
// a URL (fetching them needs a token), so they read as "[image] caption".
func (m waMessage) text() string {
	media := func(kind string, md *waMedia) string {
		s := "[" + kind + "]"
		if md != nil {
			if md.Filename != "" {
				s += " " + md.Filename
			}
			if md.Caption != "" {
				s += " " + md.Caption
			}
		}
		return s
	}
	switch m.Type {
	case "text":
		return m.Text.Body
	case "image":
		return media("image", m.Image)
	case "video":
		return media("video", m.Video)
	case "audio":
		return media("audio", m.Audio)
	case "document":
		return media("document", m.Document)
	case "sticker":
		return media("sticker", m.Sticker)
	case "location":
		if l := m.Location; l != nil {
			return strings.Join(strings.Fields(fmt.Sprintf("[location] %s %s (%g, %g)", l.Name, l.Address, l.Lat, l.Long)), " ")
		}
	case "button":
		if m.Button != nil {
			return m.Button.Text
		}
	case "interactive":
		if i := m.Interactive; i != nil && i.ButtonReply != nil {
			return i.ButtonReply.Title
		} else if i != nil && i.ListReply != nil {
			return i.ListReply.Title
		} else if i != nil && i.NFMReply != nil {
			return "[form] " + flowAnswers(i.NFMReply.ResponseJSON, i.NFMReply.Body)
		}
	case "order":
		if o := m.Order; o != nil {
			parts := []string{"[order]"}
			for _, it := range o.ProductItems {
				parts = append(parts, strings.TrimSpace(fmt.Sprintf("%s × %s %s %s;", it.Quantity, it.ProductRetailerID, it.ItemPrice, it.Currency)))
			}
			if o.Text != "" {
				parts = append(parts, o.Text)
			}
			return strings.TrimSuffix(strings.Join(parts, " "), ";")
		}
	case "unsupported", "unknown":
		return unsupportedText
	case "system":
		if m.System != nil && strings.TrimSpace(m.System.Body) != "" {
			return "[WhatsApp] " + m.System.Body
		}
		return ""
	}
	return "[" + m.Type + "]"
}

// flowAnswers renders a Flow's answers as "field: value, ..." in field
// order (its flow_token, Meta's bookkeeping, left out), or else body.
func flowAnswers(responseJSON, body string) string {
	var answers map[string]any
	if json.Unmarshal([]byte(responseJSON), &answers) != nil || len(answers) == 0 {
		return body
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(answers)) {
		if k != "flow_token" {
			parts = append(parts, fmt.Sprintf("%s: %v", k, answers[k]))
		}
	}
	return strings.Join(parts, ", ")
}

// waStatus reads a delivery report of one of the brand's messages: a
// failed one is kept (the reply never reached the customer: the 24-hour
// window had closed, the number is not on WhatsApp, ...); sent, delivered
// and read change nothing the agent needs.
func waStatus(res *Result, path string, raw []byte) {
	var st struct {
		ID     string `json:"id"`
		Status string `json:"status"`
		Errors []struct {
			Code      num    `json:"code"`
			Title     string `json:"title"`
			Message   string `json:"message"`
			ErrorData struct {
				Details string `json:"details"`
			} `json:"error_data"`
		} `json:"errors"`
	}
	if json.Unmarshal(raw, &st) != nil || st.Status != "failed" || st.ID == "" {
		res.Ignored++
		return
	}
	why := "WhatsApp did not deliver it"
	if len(st.Errors) > 0 {
		e := st.Errors[0]
		if t := strings.TrimSpace(e.Title); t != "" {
			why = t
		}
		if d := strings.TrimSpace(e.ErrorData.Details); d != "" && d != why {
			why += ": " + d
		} else if m := strings.TrimSpace(e.Message); m != "" && m != why {
			why += ": " + m
		}
		if e.Code != 0 {
			why = fmt.Sprintf("%s (%d)", why, e.Code)
		}
	}
	res.Failed = append(res.Failed, FailedDelivery{Path: path, Network: "whatsapp", ExternalID: st.ID, Error: clipRunes(why, inbox.MaxDeliveryError)})
}

func whatsApp(res *Result, e metaEntry, path string, raw []byte) {
	var v waValue
	if err := json.Unmarshal(raw, &v); err != nil {
		res.drop(path, "malformed messages change")
		return
	}
	for k, rs := range v.Statuses {
		waStatus(res, fmt.Sprintf("%s.value.statuses[%d]", path, k), rs)
	}
	names := map[id]string{}
	for _, c := range v.Contacts {
		for _, k := range []id{c.WaID, c.UserID} {
			if k != "" {
				names[k] = c.Profile.Name
			}
		}
	}
	for k, rm := range v.Messages {
		mpath := fmt.Sprintf("%s.value.messages[%d]", path, k)
		var m waMessage
		if err := json.Unmarshal(rm, &m); err != nil {
			res.drop(mpath, "malformed message")
			continue
		}
		switch {
		case m.Type == "reaction" || m.Type == "request_welcome" || m.Type == "" ||
			(m.Type == "system" && m.text() == ""):
			res.Ignored++
			continue
		case m.Type == "revoke" && m.Revoke != nil && m.Revoke.OriginalMessageID != "":
			res.deleted(mpath, "whatsapp", m.Revoke.OriginalMessageID)
			continue
		case m.Type == "edit" && m.Edit != nil && m.Edit.OriginalMessageID != "":
			var edited waMessage
			switch err := json.Unmarshal(m.Edit.Message, &edited); {
			case err != nil:
				res.drop(mpath, "malformed edit")
				continue
			case edited.Type == "", slices.Contains([]string{"unsupported", "unknown", "edit", "revoke", "reaction", "system"}, edited.Type):
				// Nothing to show in place of what the customer wrote.
				res.drop(mpath, "edit without a message to show")
				continue
			}
			res.edited(mpath, "whatsapp", m.Edit.OriginalMessageID, edited.text(), unixTime(m.Timestamp), unixTime(e.Time))
			continue
		case m.Type == "revoke" || m.Type == "edit":
			res.drop(mpath, m.Type+" without original_message_id")
			continue
		case v.Metadata.PhoneNumberID == "":
			res.drop(mpath, "no metadata.phone_number_id")
			continue
		case m.ID == "":
			res.drop(mpath, "no message id")
			continue
		case m.From == "" && m.FromUser == "":
			res.drop(mpath, "no sender")
			continue
		}
		// The phone number while the customer shows it (threads began
		// with it go on), else the BSUID of one who hides it.
		sender := firstID(m.From, m.FromUser)
		name := names[sender]
		if name == "" && len(v.Contacts) == 1 && firstID(v.Contacts[0].WaID, v.Contacts[0].UserID) == "" {
			name = v.Contacts[0].Profile.Name
		}
		handle := ""
		if m.From != "" {
			handle = "+" + strings.TrimPrefix(string(m.From), "+")
		}
		text := m.text()
		if strings.TrimSpace(text) == "" {
			res.drop(mpath, "no text")
			continue
		}
		res.message(mpath, inbox.MessageInput{
			Network: "whatsapp", ExternalID: m.ID, ThreadExternalID: dmThread(string(sender)),
			Profile: string(v.Metadata.PhoneNumberID), Kind: "dm", Text: clip(text),
			Author: store.Author{ID: string(sender), Handle: handle, Name: name},
			SentAt: firstTime(unixTime(m.Timestamp), unixTime(e.Time)),
		})
	}
}
