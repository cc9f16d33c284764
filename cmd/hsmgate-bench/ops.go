package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"

	"github.com/hsmgate/hsmgate/alg"
	"github.com/hsmgate/hsmgate/hsm"
)

// operation is one measured crypto operation in its raw (package hsm) and
// REST forms, with the key type both use.
type operation struct {
	// ID is the stable name used in the JSON output.
	ID string
	// Name is the human-readable name used in the table.
	Name string
	// payloadLen is the size of the random input.
	payloadLen int
	// rawKey is the key to create with hsm.CreateKey (the label is set later).
	rawKey hsm.CreateKeyRequest
	// restKey is the body of POST /v1/key without the label.
	restKey map[string]any
	// restPath is the REST endpoint of the operation.
	restPath string
	// restBody builds the request body for a key label and a payload.
	restBody func(label string, data []byte) ([]byte, error)
	// rawOp builds the in-process operation for a key label and a payload.
	rawOp func(h *hsm.HSM, label string, data []byte) (opFunc, error)
}

// signFlags are the flags a REST key created with {"sign":true,"verify":true}
// gets (api.keyAttributesDTO.flags); raw keys use the same.
var signFlags = hsm.Flags{Sign: true, Verify: true, Modifiable: true, Destroyable: true, Sensitive: true}

// cryptFlags are the flags of a REST key created with {"encrypt":true,"decrypt":true}.
var cryptFlags = hsm.Flags{Encrypt: true, Decrypt: true, Modifiable: true, Destroyable: true, Sensitive: true}

// operations lists the four measured operations in table order.
func operations() []operation {
	return []operation{
		{
			ID: "ecdsa-p256-sign", Name: "ECDSA P-256 sign", payloadLen: 32,
			rawKey:   hsm.CreateKeyRequest{Algorithm: hsm.AlgEC, CurveOID: hsm.OIDP256, Flags: signFlags},
			restKey:  ecP256KeyBody(),
			restPath: "/v1/synchronousSign", restBody: signBody("SHA256_WITH_ECDSA"),
			rawOp: rawSign("SHA256_WITH_ECDSA"),
		},
		{
			ID: "rsa2048-pkcs1-sign", Name: "RSA-2048 PKCS#1 sign", payloadLen: 32,
			rawKey:   hsm.CreateKeyRequest{Algorithm: hsm.AlgRSA, KeySize: 2048, Flags: signFlags},
			restKey:  map[string]any{"algorithm": "RSA", "keySize": 2048, "attributes": map[string]bool{"sign": true, "verify": true}},
			restPath: "/v1/synchronousSign", restBody: signBody("SHA256_WITH_RSA"),
			rawOp: rawSign("SHA256_WITH_RSA"),
		},
		{
			ID: "aes256-gcm-encrypt", Name: "AES-256-GCM encrypt", payloadLen: 64,
			rawKey:   hsm.CreateKeyRequest{Algorithm: hsm.AlgAES, KeySize: 256, Flags: cryptFlags},
			restKey:  map[string]any{"algorithm": "AES", "keySize": 256, "attributes": map[string]bool{"encrypt": true, "decrypt": true}},
			restPath: "/v1/encrypt", restBody: encryptBody,
			rawOp: rawEncrypt,
		},
		{
			ID: "hmac-sha256", Name: "HMAC-SHA256", payloadLen: 32,
			rawKey:   hsm.CreateKeyRequest{Algorithm: hsm.AlgHMAC, HMACHash: "SHA256", KeySize: 256, Flags: signFlags},
			restKey:  map[string]any{"algorithm": "HMACSHA256", "attributes": map[string]bool{"sign": true, "verify": true}},
			restPath: "/v1/synchronousHmac", restBody: hmacBody,
			rawOp: rawHMAC,
		},
	}
}

// ecP256KeyBody is the POST /v1/key body (without label) of an EC P-256 signing key.
func ecP256KeyBody() map[string]any {
	return map[string]any{"algorithm": "EC", "curveOid": hsm.OIDP256, "attributes": map[string]bool{"sign": true, "verify": true}}
}

// randomBytes returns n bytes from crypto/rand.
func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return b
}

// b64 encodes standard base64 with padding, as TSB clients send it.
func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// signBody returns a body builder for POST /v1/synchronousSign.
func signBody(alg string) func(string, []byte) ([]byte, error) {
	return func(label string, data []byte) ([]byte, error) {
		return json.Marshal(map[string]any{"signRequest": map[string]any{
			"signKeyName": label, "payload": b64(data), "signatureAlgorithm": alg,
		}})
	}
}

// encryptBody builds the body of POST /v1/encrypt with AES_GCM.
func encryptBody(label string, data []byte) ([]byte, error) {
	return json.Marshal(map[string]any{"encryptRequest": map[string]any{
		"encryptKeyName": label, "payload": b64(data), "cipherAlgorithm": "AES_GCM",
	}})
}

// hmacBody builds the body of POST /v1/synchronousHmac.
func hmacBody(label string, data []byte) ([]byte, error) {
	return json.Marshal(map[string]any{"hmacRequest": map[string]any{"keyName": label, "payload": b64(data)}})
}

// withKey returns the raw operation that looks the key up (a cache hit, as
// the REST handler does) and runs use with it.
func withKey(h *hsm.HSM, label string, use func(context.Context, *hsm.Key) error) opFunc {
	return func(ctx context.Context, _ uint64) error {
		k, err := h.Key(ctx, label)
		if err != nil {
			return err
		}
		return use(ctx, k)
	}
}

// rawSign returns the raw form of a signature with DER output, the REST default.
func rawSign(algName string) func(*hsm.HSM, string, []byte) (opFunc, error) {
	return func(h *hsm.HSM, label string, data []byte) (opFunc, error) {
		alg, err := alg.ParseSignature(algName)
		if err != nil {
			return nil, err
		}
		return withKey(h, label, func(ctx context.Context, k *hsm.Key) error {
			_, err := h.Sign(ctx, k, hsm.SignRequest{Algorithm: alg, Payload: data, Raw: false})
			return err
		}), nil
	}
}

// rawEncrypt returns the raw AES-GCM encryption (the IV comes from the
// token's buffered RNG, as over REST).
func rawEncrypt(h *hsm.HSM, label string, data []byte) (opFunc, error) {
	c, err := alg.ParseCipher("AES_GCM")
	if err != nil {
		return nil, err
	}
	return withKey(h, label, func(ctx context.Context, k *hsm.Key) error {
		_, err := h.Encrypt(ctx, k, hsm.CipherRequest{Cipher: c, Data: data})
		return err
	}), nil
}

// rawHMAC returns the raw HMAC-SHA256 operation.
func rawHMAC(h *hsm.HSM, label string, data []byte) (opFunc, error) {
	return withKey(h, label, func(ctx context.Context, k *hsm.Key) error {
		_, err := h.HMAC(ctx, k, data)
		return err
	}), nil
}
