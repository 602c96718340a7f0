package wshub

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"time"
)

// MintToken mints an API token (HS256 JWT) from the server's JWT secret that expires after ttl.
// With systemID "" it is an admin token (every system); otherwise it is scoped to that system,
// which it may register and act on, and nothing else.
//
// A token minted here can also be a client token for --client-auth jwt; use MintClientToken
// to carry a userId.
func MintToken(secret, systemID string, ttl time.Duration) (string, error) {
	return MintClientToken(secret, systemID, "", ttl)
}

// MintClientToken is MintToken with a userId claim ("" for none): a client connecting with it
// to a server run with --client-auth jwt has that user.
func MintClientToken(secret, systemID, userID string, ttl time.Duration) (string, error) {
	if secret == "" {
		return "", errors.New("wshub: minting a token needs the server's secret")
	}
	if ttl <= 0 {
		return "", errors.New("wshub: a token's ttl must be positive")
	}
	now := time.Now()
	claims := map[string]any{
		"iat": now.Unix(),
		"exp": now.Add(ttl).Unix(),
	}
	if systemID != "" {
		claims["systemId"] = systemID
	}
	if userID != "" {
		claims["userId"] = userID
	}
	header, err := json.Marshal(map[string]string{"alg": "HS256", "typ": "JWT"})
	if err != nil {
		return "", err
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	enc := base64.RawURLEncoding
	signingInput := enc.EncodeToString(header) + "." + enc.EncodeToString(payload)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(signingInput))
	return signingInput + "." + enc.EncodeToString(mac.Sum(nil)), nil
}
