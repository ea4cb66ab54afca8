package connect

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/switchboard/switchboard/inbox"
	"github.com/switchboard/switchboard/store"
)

// X maps an Account Activity API delivery (already verified) to inbound
// messages, network "twitter", profile for_user_id (the subscribed account):
//
//   - tweet_create_events: mentions of the account and replies to it. The
//     account's own posts (user.id_str == for_user_id) and retweets are
//     ignored. Kind comment for a reply to one of the account's posts,
//     mention otherwise;
//     thread "conv:<root>:<author id>", root being conversation_id when the
//     payload has one, else in_reply_to_status_id_str, else the post's id.
//   - direct_message_events of type message_create, except those the account
//     sent; kind dm, thread "dm:<sender id>", author from the users map.
//
// Every other event (favorite_events, follow_events, tweet_delete_events,
// typing and read indicators, ...) is ignored.
func X(body []byte) (Result, error) {
	var res Result
	if !jsonObject(body) {
		return res, errMalformed()
	}
	var env map[string]json.RawMessage
	if err := json.Unmarshal(body, &env); err != nil {
		return res, errMalformed()
	}
	var forUser id
	if raw, ok := env["for_user_id"]; ok && json.Unmarshal(raw, &forUser) != nil {
		forUser = ""
	}
	var users map[string]json.RawMessage
	if raw, ok := env["users"]; ok {
		_ = json.Unmarshal(raw, &users)
	}
	// X marks posts of people the account has blocked (true, or "true"):
	// the brand chose not to hear from them, so they queue nothing.
	blocked := false
	if raw, ok := env["user_has_blocked"]; ok {
		blocked = strings.Trim(string(raw), `"`) == "true"
	}
	for key, raw := range env {
		switch {
		case key == "tweet_create_events" || key == "direct_message_events":
		case key == "tweet_delete_events":
			xDeletes(&res, raw)
		case strings.HasSuffix(key, "_events") || key == "user_event":
			var events []json.RawMessage
			if json.Unmarshal(raw, &events) == nil {
				res.Ignored += len(events)
			} else {
				res.Ignored++
			}
		}
	}
	for _, key := range []string{"tweet_create_events", "direct_message_events"} {
		raw, ok := env[key]
		if !ok {
			continue
		}
		var events []json.RawMessage
		if err := json.Unmarshal(raw, &events); err != nil {
			res.drop(key, "not an array")
			continue
		}
		for i, ev := range events {
			path := fmt.Sprintf("%s[%d]", key, i)
			if forUser == "" {
				// Without it the account's own posts cannot be told apart.
				res.drop(path, "no for_user_id")
				continue
			}
			if key == "tweet_create_events" && blocked {
				res.Ignored++
			} else if key == "tweet_create_events" {
				xTweetEvent(&res, string(forUser), path, ev)
			} else {
				xDMEvent(&res, string(forUser), users, path, ev)
			}
		}
	}
	return res, nil
}

// xDeletes reads tweet_delete_events: posts their authors deleted, which X's
// terms require be deleted here too.
func xDeletes(res *Result, raw json.RawMessage) {
	var events []struct {
		Status struct {
			ID id `json:"id"`
		} `json:"status"`
	}
	if json.Unmarshal(raw, &events) != nil {
		res.drop("tweet_delete_events", "not an array of deletions")
		return
	}
	for i, ev := range events {
		path := fmt.Sprintf("tweet_delete_events[%d]", i)
		if ev.Status.ID == "" {
			res.drop(path, "no status.id")
			continue
		}
		res.deleted(path, "twitter", string(ev.Status.ID))
	}
}

type xUser struct {
	IDStr          id     `json:"id_str"`
	ID             id     `json:"id"`
	ScreenName     string `json:"screen_name"`
	Name           string `json:"name"`
	FollowersCount num    `json:"followers_count"`
	Verified       bool   `json:"verified"`
}

func (u xUser) author() store.Author {
	followers := int(u.FollowersCount)
	if followers < 0 {
		followers = 0
	}
	return store.Author{ID: string(firstID(u.IDStr, u.ID)), Handle: handle(u.ScreenName), Name: u.Name,
		Followers: followers, Verified: u.Verified}
}

type xEntities struct {
	Media []struct {
		MediaURLHTTPS string `json:"media_url_https"`
		Type          string `json:"type"`
	} `json:"media"`
}

type xTweet struct {
	IDStr         id     `json:"id_str"`
	ID            id     `json:"id"`
	CreatedAt     string `json:"created_at"`
	TimestampMS   num    `json:"timestamp_ms"`
	Text          string `json:"text"`
	FullText      string `json:"full_text"`
	ExtendedTweet *struct {
		FullText         string    `json:"full_text"`
		Entities         xEntities `json:"entities"`
		ExtendedEntities xEntities `json:"extended_entities"`
	} `json:"extended_tweet"`
	User                 xUser           `json:"user"`
	InReplyToStatusIDStr id              `json:"in_reply_to_status_id_str"`
	InReplyToUserIDStr   id              `json:"in_reply_to_user_id_str"`
	ConversationID       id              `json:"conversation_id"`
	ConversationIDStr    id              `json:"conversation_id_str"`
	RetweetedStatus      json.RawMessage `json:"retweeted_status"`
	Entities             xEntities       `json:"entities"`
	ExtendedEntities     xEntities       `json:"extended_entities"`
	Lang                 string          `json:"lang"`
}

func xTweetEvent(res *Result, forUser, path string, raw []byte) {
	var t xTweet
	if err := json.Unmarshal(raw, &t); err != nil {
		res.drop(path, "malformed tweet")
		return
	}
	tweetID := string(firstID(t.IDStr, t.ID))
	author := t.User.author()
	switch {
	case author.ID == forUser:
		res.Ignored++ // the account's own post or reply
		return
	case len(t.RetweetedStatus) > 0 && string(t.RetweetedStatus) != "null":
		res.Ignored++ // a retweet says nothing to answer
		return
	case tweetID == "":
		res.drop(path, "no id_str")
		return
	case author.ID == "":
		res.drop(path, "no user.id_str")
		return
	}
	text := t.Text
	media := t.ExtendedEntities.Media
	if len(media) == 0 {
		media = t.Entities.Media
	}
	if t.FullText != "" {
		text = t.FullText
	}
	if et := t.ExtendedTweet; et != nil {
		if et.FullText != "" {
			text = et.FullText
		}
		if len(et.ExtendedEntities.Media) > 0 {
			media = et.ExtendedEntities.Media
		} else if len(et.Entities.Media) > 0 {
			media = et.Entities.Media
		}
	}
	var atts attachments
	for _, m := range media {
		atts.add(m.Type, m.MediaURLHTTPS)
	}
	if text == "" && len(atts) == 0 {
		res.drop(path, "no text")
		return
	}
	// Posts are threaded per author within a conversation: its id when the
	// post has one, else the post it answers, else its own. The Account
	// Activity API's (v1.1) posts name no conversation, and the post a
	// reply answers changes at every turn of a back-and-forth (the customer
	// answers the brand's reply, not their first post): in_reply_to lets
	// ingest put the reply in the thread of the post it answers when
	// Switchboard has it (the brand's reply, by the id its delivery report
	// gave), instead of a thread per turn.
	root := string(firstID(t.ConversationIDStr, t.ConversationID, t.InReplyToStatusIDStr))
	if root == "" {
		root = tweetID
	}
	thread := convPrefix + root + ":" + author.ID
	// A reply to one of the account's posts is a comment on it; anything
	// else naming the account (a post starting with @account sets
	// in_reply_to_user_id without a status) is a mention.
	kind := "mention"
	if t.InReplyToStatusIDStr != "" && string(t.InReplyToUserIDStr) == forUser {
		kind = "comment"
	}
	sentAt := unixTime(t.TimestampMS)
	if sentAt == nil {
		if ct, err := time.Parse(time.RubyDate, t.CreatedAt); err == nil {
			ct = ct.UTC()
			sentAt = &ct
		}
	}
	lang := strings.ToLower(t.Lang)
	if lang == "und" || len(lang) > 16 {
		lang = ""
	}
	res.message(path, inbox.MessageInput{
		Network: "twitter", ExternalID: tweetID, ThreadExternalID: thread, InReplyTo: string(t.InReplyToStatusIDStr),
		Profile: forUser, Kind: kind, Text: clip(text), Attachments: atts, Author: author,
		Language: lang, SentAt: sentAt,
	})
}

type xDM struct {
	Type             string `json:"type"`
	ID               id     `json:"id"`
	CreatedTimestamp num    `json:"created_timestamp"`
	MessageCreate    *struct {
		Target struct {
			RecipientID id `json:"recipient_id"`
		} `json:"target"`
		SenderID    id `json:"sender_id"`
		MessageData struct {
			Text       string `json:"text"`
			Attachment *struct {
				Type  string `json:"type"`
				Media *struct {
					MediaURLHTTPS string `json:"media_url_https"`
					Type          string `json:"type"`
				} `json:"media"`
			} `json:"attachment"`
		} `json:"message_data"`
	} `json:"message_create"`
}

func xDMEvent(res *Result, forUser string, users map[string]json.RawMessage, path string, raw []byte) {
	var d xDM
	if err := json.Unmarshal(raw, &d); err != nil {
		res.drop(path, "malformed direct message event")
		return
	}
	if d.Type != "message_create" || d.MessageCreate == nil {
		res.Ignored++
		return
	}
	mc := d.MessageCreate
	sender := string(mc.SenderID)
	switch {
	case sender == forUser:
		res.Ignored++ // sent by the account
		return
	case d.ID == "":
		res.drop(path, "no id")
		return
	case sender == "":
		res.drop(path, "no message_create.sender_id")
		return
	}
	author := store.Author{ID: sender}
	if raw, ok := users[sender]; ok {
		var u xUser
		if json.Unmarshal(raw, &u) == nil {
			author = u.author()
			author.ID = sender
		}
	}
	var atts attachments
	if a := mc.MessageData.Attachment; a != nil && a.Media != nil {
		atts.add(a.Media.Type, a.Media.MediaURLHTTPS)
	}
	if mc.MessageData.Text == "" && len(atts) == 0 {
		res.drop(path, "no text")
		return
	}
	res.message(path, inbox.MessageInput{
		Network: "twitter", ExternalID: string(d.ID), ThreadExternalID: dmThread(sender),
		Profile: forUser, Kind: "dm", Text: clip(mc.MessageData.Text), Attachments: atts, Author: author,
		SentAt: unixTime(d.CreatedTimestamp),
	})
}
