package connect

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"strings"
)

// The signature headers.
const (
	// MetaSignatureHeader carries "sha256=" + hex(HMAC-SHA256(body, app
	// secret)); the generic webhook uses it too, with the source's secret.
	MetaSignatureHeader = "X-Hub-Signature-256"
	// XSignatureHeader carries "sha256=" + base64(HMAC-SHA256(body,
	// consumer secret)).
	XSignatureHeader = "X-Twitter-Webhooks-Signature"
)

func mac(secret string, msg []byte) []byte {
	h := hmac.New(sha256.New, []byte(secret))
	h.Write(msg)
	return h.Sum(nil)
}

// VerifyHex reports whether header is "sha256=<hex HMAC-SHA256 of body keyed
// by secret>", compared in constant time. An empty secret never verifies.
func VerifyHex(header string, body []byte, secret string) bool {
	sig, ok := strings.CutPrefix(strings.TrimSpace(header), "sha256=")
	if !ok || secret == "" {
		return false
	}
	got, err := hex.DecodeString(sig)
	if err != nil {
		return false
	}
	return hmac.Equal(got, mac(secret, body))
}

// VerifyBase64 is VerifyHex with the digest in standard base64, as X signs.
func VerifyBase64(header string, body []byte, secret string) bool {
	sig, ok := strings.CutPrefix(strings.TrimSpace(header), "sha256=")
	if !ok || secret == "" {
		return false
	}
	got, err := base64.StdEncoding.DecodeString(sig)
	if err != nil {
		return false
	}
	return hmac.Equal(got, mac(secret, body))
}

// SignHex returns the X-Hub-Signature-256 value for body.
func SignHex(body []byte, secret string) string {
	return "sha256=" + hex.EncodeToString(mac(secret, body))
}

// SignBase64 returns the x-twitter-webhooks-signature value for body.
func SignBase64(body []byte, secret string) string {
	return "sha256=" + base64.StdEncoding.EncodeToString(mac(secret, body))
}

// CRCResponse is X's challenge-response check: "sha256=" +
// base64(HMAC-SHA256 of the crc_token keyed by the consumer secret).
func CRCResponse(crcToken, consumerSecret string) string {
	return SignBase64([]byte(crcToken), consumerSecret)
}

// EqualToken compares a presented token with the configured one in constant
// time (lengths included: both are hashed first). An empty configured token
// never matches.
func EqualToken(got, want string) bool {
	if want == "" {
		return false
	}
	g, w := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1
}
