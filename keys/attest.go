package keys

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"time"

	"github.com/hsmgate/hsmgate/hsm"
	"github.com/hsmgate/hsmgate/roles"
)

// algorithmOIDs are the algorithmOid values of each key family.
var algorithmOIDs = map[string]string{
	hsm.AlgRSA: "1.2.840.113549.1.1.1", hsm.AlgEC: "1.2.840.10045.2.1", hsm.AlgED: "1.3.101.112",
	hsm.AlgAES: "2.16.840.1.101.3.4.1", hsm.AlgTDEA: "1.2.840.113549.3.7", hsm.AlgHMAC: "1.2.840.113549.2.9",
}

// KeyView is what the service tells about a key: its attributes as the
// wire API names them, at one instant.
type KeyView struct {
	Label, UUID string
	// ID is the caller's own identifier given at creation.
	ID string
	// Algorithm is the wire family (HMAC keys as HMACSHA256…).
	Algorithm, AlgorithmOID string
	// CurveOID is empty and KeySize 0 when they do not apply or are unknown.
	CurveOID   string
	KeySize    int
	UsageCount int64
	CreateTime time.Time
	AttestTime time.Time
	// PublicKey is the DER SubjectPublicKeyInfo, nil for secret keys.
	PublicKey []byte
	Flags     hsm.Flags
	// Policy is the stored policy with keyStatus.blocked set, or JSON null.
	Policy   json.RawMessage
	Customer string
	// Origin is how the key came into the token (generated, imported, unwrapped…).
	Origin string
}

// view describes a key and its record at now.
func view(k *hsm.Key, r *record, now time.Time) KeyView {
	m := k.Meta
	alg := m.Algorithm
	if alg == hsm.AlgHMAC {
		alg = "HMAC" + m.HMACHash
	}
	return KeyView{
		Label: apiLabel(r.Customer, k.Label), UUID: m.UUID, ID: r.ID, Algorithm: alg, AlgorithmOID: algorithmOIDs[m.Algorithm],
		CurveOID: m.CurveOID, KeySize: m.KeySize, UsageCount: k.UsageCount(),
		CreateTime: m.CreateTime, AttestTime: now, PublicKey: k.PublicKey, Flags: k.Flags,
		Policy: policyWithStatus(r.Policy, r.Blocked), Customer: r.Customer, Origin: m.Origin,
	}
}

// Attestation is a key's description with the signed attestation document.
type Attestation struct {
	Key KeyView
	// Document is the XML attestation document; Signature is the
	// attestation key's DER ECDSA P-256 SHA-256 signature over it.
	Document, Signature []byte
	// KeyName labels the attestation key.
	KeyName string
}

// Attributes describes a key of the caller's customers and attests it.
func (s *Service) Attributes(ctx context.Context, p *roles.Principal, ref KeyRef) (*Attestation, error) {
	attester, err := capability[Attester](s.backend, "key attestation")
	if err != nil {
		return nil, err
	}
	// The gateway's own keys, the attestation key too, are nobody's: its
	// certificate is served by /v1/attestation/certificate.
	k, r, err := s.unlocked(ctx, p, ref)
	if err != nil {
		return nil, err
	}
	return s.attest(ctx, attester, k, r)
}

// attest describes a key and signs its attestation document.
func (s *Service) attest(ctx context.Context, attester Attester, k *hsm.Key, r *record) (*Attestation, error) {
	v := view(k, r, time.Now().UTC())
	doc, err := attestationXML(v)
	if err != nil {
		return nil, err
	}
	sig, err := attester.Attest(ctx, doc)
	if err != nil {
		return nil, err
	}
	return &Attestation{Key: v, Document: doc, Signature: sig, KeyName: s.attestationKey}, nil
}

// xmlKey is the attestation document; it mirrors the json member of the
// attributes response.
type xmlKey struct {
	XMLName    xml.Name  `xml:"private_key"`
	Creation   string    `xml:"creation,attr"`
	Label      string    `xml:"label"`
	UUID       string    `xml:"uuid"`
	ID         string    `xml:"id,omitempty"`
	Algorithm  string    `xml:"algorithm"`
	Oid        string    `xml:"algorithm_oid"`
	Curve      string    `xml:"curve_oid,omitempty"`
	KeySize    int       `xml:"key_size,omitempty"`
	CreateTime string    `xml:"create_time"`
	AttestTime string    `xml:"attest_time"`
	PublicKey  string    `xml:"public_key,omitempty"`
	Attributes []xmlAttr `xml:"attributes>attribute"`
	Policy     string    `xml:"policy"`
}

// xmlAttr is one boolean attribute in the attestation document.
type xmlAttr struct {
	Name  string `xml:"name,attr"`
	Value bool   `xml:",chardata"`
}

// attestationXML renders the attestation document of a key view.
func attestationXML(v KeyView) ([]byte, error) {
	f := v.Flags
	doc := xmlKey{
		Creation: v.Origin, Label: v.Label, UUID: v.UUID, ID: v.ID, Algorithm: v.Algorithm, Oid: v.AlgorithmOID,
		Curve: v.CurveOID, KeySize: v.KeySize,
		CreateTime: v.CreateTime.Format(time.RFC3339), AttestTime: v.AttestTime.Format(time.RFC3339), Policy: string(v.Policy),
		Attributes: []xmlAttr{{"encrypt", f.Encrypt}, {"decrypt", f.Decrypt}, {"verify", f.Verify}, {"sign", f.Sign},
			{"wrap", f.Wrap}, {"unwrap", f.Unwrap}, {"derive", f.Derive}, {"sensitive", f.Sensitive},
			{"always_sensitive", f.AlwaysSensitive}, {"extractable", f.Extractable}, {"never_extractable", f.NeverExtractable},
			{"modifiable", f.Modifiable}, {"copyable", f.Copyable}, {"destroyable", f.Destroyable}},
	}
	if v.PublicKey != nil {
		doc.PublicKey = base64.StdEncoding.EncodeToString(v.PublicKey)
	}
	body, err := xml.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("attestation document of %q: %w", v.Label, err)
	}
	return append([]byte(xml.Header[:len(xml.Header)-1]), body...), nil
}
