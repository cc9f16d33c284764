package hsm

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"encoding/json"
	"fmt"
	"math/big"

	"github.com/hsmgate/hsmgate/keycodec"
	"github.com/miekg/pkcs11"
)

// ImportKeyRequest describes key material to store in the token.
type ImportKeyRequest struct {
	Label       string
	Algorithm   string // AlgAES, AlgTDEA, AlgHMAC for SecretKey; optional for asymmetric (derived from the key, must match if given)
	HMACHash    string // for AlgHMAC: SHA256 (default), SHA384, SHA512
	PrivateKey  []byte // PKCS#8 DER (RSA, EC P-256/384/521/secp256k1, Ed25519)
	PublicKey   []byte // SPKI DER
	SecretKey   []byte // raw bytes
	Certificate []byte // X.509 DER
	Flags       Flags
	// App is the application's record stored with the key (see Meta.App).
	App json.RawMessage
}

// ImportKey stores key material in the token under a new label, following
// the same object, CKA_ID and metadata scheme as CreateKey (Meta.Origin is
// "imported"):
//
//   - a PKCS#8 private key needs its public key or certificate, and every
//     public part given must belong to it (ErrInvalidInput otherwise); the
//     private key object is stored with a public key object beside it;
//   - a public key or a certificate alone makes a public-only key whose
//     public flags (verify, encrypt, wrap) are taken from req.Flags as given;
//   - a certificate is stored as a CKO_CERTIFICATE object with the same label
//     and CKA_ID, together with the public key object derived from it;
//   - a secret key needs req.Algorithm: AES (16, 24 or 32 bytes), TDEA (24
//     bytes) or HMAC (any length: see planSecretImport), else ErrKeySize.
//
// An RSA key smaller than hsm.minRSAKeySize is refused with ErrKeySize, as
// CreateKey refuses to generate one. A label that exists is refused with ErrExists. On any failure nothing
// stays in the token. Private material that ImportKey copies is cleared
// before it returns; req itself is left untouched.
func (h *HSM) ImportKey(ctx context.Context, req *ImportKeyRequest) (*Key, error) {
	if req.Label == "" {
		return nil, fmt.Errorf("%w: import needs a label", ErrInvalidInput)
	}
	plan, err := planImport(req)
	if err != nil {
		return nil, err
	}
	defer plan.wipe()
	if minSize := h.minRSAKeySize(); plan.algorithm == AlgRSA && plan.keySize < minSize {
		return nil, fmt.Errorf("%w: an RSA key of %d bits is below the configured minimum of %d bits (hsm.minRSAKeySize; 1024 at the least)",
			ErrKeySize, plan.keySize, minSize)
	}
	if err := h.requireImport(plan); err != nil {
		return nil, err
	}
	return h.mutate(ctx, req.Label, func(s *session) (*Key, error) {
		return s.importKey(req, plan)
	})
}

// importPlan is the validated content of an ImportKeyRequest, ready to be
// turned into token objects.
type importPlan struct {
	algorithm, curveOID, hmacHash string
	keySize                       int
	keyType                       uint
	// secret, priv and pub hold the key-specific attributes (CKA_VALUE,
	// CKA_MODULUS, CKA_EC_PARAMS, ...) of the objects to create; nil when
	// there is no such object.
	secret, priv, pub []*pkcs11.Attribute
	// cert holds CKA_VALUE, CKA_SUBJECT, CKA_ISSUER and CKA_SERIAL_NUMBER.
	cert []*pkcs11.Attribute
	// secrets are the buffers holding private material, cleared by wipe.
	secrets [][]byte
}

// wipe clears every buffer of private material the plan built.
func (p *importPlan) wipe() {
	for _, b := range p.secrets {
		clear(b)
	}
	p.secrets = nil
}

// keep records a buffer of private material for wipe and returns it.
func (p *importPlan) keep(b []byte) []byte {
	p.secrets = append(p.secrets, b)
	return b
}

// planImport validates the request and derives what to store.
func planImport(req *ImportKeyRequest) (*importPlan, error) {
	asym := len(req.PrivateKey) > 0 || len(req.PublicKey) > 0 || len(req.Certificate) > 0
	switch {
	case len(req.SecretKey) > 0 && asym:
		return nil, fmt.Errorf("%w: a secret key cannot be imported together with a private key, public key or certificate", ErrInvalidInput)
	case len(req.SecretKey) > 0:
		return planSecretImport(req)
	case !asym:
		return nil, fmt.Errorf("%w: nothing to import: give a private key, public key, certificate or secret key", ErrInvalidInput)
	}
	p := &importPlan{}
	var pub *keycodec.PublicKey
	var pubAlg string
	// merge checks that every public part given describes the same key.
	merge := func(what string, k keycodec.PublicKey, alg string) error {
		if pub == nil {
			pub, pubAlg = &k, alg
			return nil
		}
		same, err := samePublicKey(*pub, k)
		if err != nil {
			return err
		}
		if !same {
			return fmt.Errorf("%w: the %s does not match the other key material", ErrInvalidInput, what)
		}
		return nil
	}
	if len(req.PrivateKey) > 0 {
		k, alg, err := p.addPrivateKey(req.PrivateKey)
		if err != nil {
			p.wipe()
			return nil, err
		}
		pub, pubAlg = &k, alg
	}
	if len(req.PublicKey) > 0 {
		k, kt, err := keycodec.ParsePublicKey(req.PublicKey)
		if err == nil {
			err = merge("public key", k, keyAlgorithms[kt])
		}
		if err != nil {
			p.wipe()
			return nil, err
		}
	}
	if len(req.Certificate) > 0 {
		cert, err := keycodec.ParseCertificateParts(req.Certificate)
		var k keycodec.PublicKey
		var kt keycodec.KeyType
		if err == nil {
			k, kt, err = keycodec.ParsePublicKey(cert.SPKI)
		}
		if err == nil {
			err = merge("certificate", k, keyAlgorithms[kt])
		}
		if err != nil {
			p.wipe()
			return nil, err
		}
		p.cert = certificateAttrs(req.Certificate, cert)
	}
	if len(req.PrivateKey) > 0 && len(req.PublicKey) == 0 && len(req.Certificate) == 0 {
		p.wipe()
		return nil, fmt.Errorf("%w: a private key needs its public key or certificate", ErrInvalidInput)
	}
	if req.Algorithm != "" && req.Algorithm != pubAlg {
		p.wipe()
		return nil, fmt.Errorf("%w: algorithm %q given, but the key is %s", ErrInvalidInput, req.Algorithm, pubAlg)
	}
	if err := p.setPublic(*pub, pubAlg); err != nil {
		p.wipe()
		return nil, err
	}
	return p, nil
}

// planSecretImport validates a raw secret key against its algorithm.
func planSecretImport(req *ImportKeyRequest) (*importPlan, error) {
	n := len(req.SecretKey)
	p := &importPlan{algorithm: req.Algorithm, keySize: 8 * n}
	switch req.Algorithm {
	case AlgAES:
		if n != 16 && n != 24 && n != 32 {
			return nil, fmt.Errorf("%w: an AES key must be 16, 24 or 32 bytes, not %d", ErrKeySize, n)
		}
		p.keyType = pkcs11.CKK_AES
	case AlgTDEA:
		if n != 24 {
			return nil, fmt.Errorf("%w: a TDEA key must be 24 bytes, not %d", ErrKeySize, n)
		}
		p.keyType = pkcs11.CKK_DES3
	case AlgHMAC:
		p.hmacHash = req.HMACHash
		if p.hmacHash == "" {
			p.hmacHash = "SHA256"
		}
		if _, ok := hmacMechanisms[p.hmacHash]; !ok {
			return nil, fmt.Errorf("HMAC with %q is %w", p.hmacHash, ErrUnsupported)
		}
		p.keyType = pkcs11.CKK_GENERIC_SECRET
		// Tokens refuse HMAC keys shorter than the digest when they are
		// used (SoftHSM2: 32 bytes for HMAC-SHA256). RFC 2104 §2 pads a
		// key shorter than the hash's block with zeros before using it,
		// so K and K‖0…0 give the same MAC: a short key is stored padded
		// to the digest length and MACs exactly as the key given
		// (docs/api.md §3.6). Generated and unwrapped keys are never
		// padded: those too short are refused.
		if d, _ := keycodec.DigestByName(p.hmacHash); n < d.Size {
			padded := p.keep(make([]byte, d.Size))
			copy(padded, req.SecretKey)
			p.keySize = 8 * d.Size
			p.secret = []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_VALUE, padded)}
			return p, nil
		}
	case "":
		return nil, fmt.Errorf("%w: a secret key needs its algorithm (AES, TDEA or HMAC)", ErrInvalidInput)
	default:
		return nil, fmt.Errorf("secret key algorithm %q is %w", req.Algorithm, ErrUnsupported)
	}
	p.secret = []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_VALUE, req.SecretKey)}
	return p, nil
}

// requireImport checks that the token knows the planned key type where a
// token may lack it (Ed25519); other types fail at C_CreateObject if need be.
func (h *HSM) requireImport(p *importPlan) error {
	if p.algorithm == AlgED {
		return h.require(ckmEDDSA, "Ed25519")
	}
	return nil
}

// keyAlgorithms maps the key type of a parsed public key to its algorithm.
var keyAlgorithms = map[keycodec.KeyType]string{
	keycodec.KeyRSA: AlgRSA, keycodec.KeyEC: AlgEC, keycodec.KeyEd25519: AlgED,
}

// setPublic records the algorithm of the key and the attributes of its
// public key object.
func (p *importPlan) setPublic(k keycodec.PublicKey, alg string) error {
	p.algorithm = alg
	switch alg {
	case AlgRSA:
		p.keyType = pkcs11.CKK_RSA
		p.keySize = k.RSA.N.BitLen()
		p.pub = []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_MODULUS, k.RSA.N.Bytes()),
			pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, big.NewInt(int64(k.RSA.E)).Bytes()),
		}
		return nil
	case AlgEC, AlgED:
		p.keyType = pkcs11.CKK_EC
		if alg == AlgED {
			p.keyType = ckkECEdwards
		}
		if _, _, ok := keycodec.CurveOrder(k.CurveOID); !ok && alg == AlgEC {
			return fmt.Errorf("EC curve %s is %w", k.CurveOID, ErrUnsupported)
		}
		p.curveOID = k.CurveOID
		params, err := keycodec.MarshalOID(k.CurveOID)
		if err != nil {
			return err
		}
		point, err := asn1.Marshal(k.Point())
		if err != nil {
			return fmt.Errorf("encode EC point: %w", err)
		}
		p.pub = []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, params),
			pkcs11.NewAttribute(pkcs11.CKA_EC_POINT, point),
		}
		return nil
	}
	return fmt.Errorf("public key algorithm %q is %w", alg, ErrUnsupported)
}

// samePublicKey reports whether two public keys are the same key.
func samePublicKey(a, b keycodec.PublicKey) (bool, error) {
	da, err := a.MarshalSPKI()
	if err != nil {
		return false, fmt.Errorf("%w: %v", ErrInvalidInput, err)
	}
	db, err := b.MarshalSPKI()
	if err != nil {
		return false, fmt.Errorf("%w: %v", ErrInvalidInput, err)
	}
	return string(da) == string(db), nil
}

// addPrivateKey parses a PKCS#8 private key, records the attributes of its
// private key object and returns its public key and algorithm. secp256k1
// keys are parsed here because crypto/x509 does not know the curve.
func (p *importPlan) addPrivateKey(der []byte) (keycodec.PublicKey, string, error) {
	inner, k1, err := keycodec.PKCS8Secp256k1(der)
	if err != nil {
		return keycodec.PublicKey{}, "", err
	}
	if k1 {
		return p.addSecp256k1(inner)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return keycodec.PublicKey{}, "", fmt.Errorf("%w: private key: %v", ErrInvalidInput, err)
	}
	switch k := parsed.(type) {
	case *rsa.PrivateKey:
		return p.addRSA(k)
	case *ecdsa.PrivateKey:
		return p.addECDSA(k)
	case ed25519.PrivateKey:
		return p.addEd25519(k)
	}
	return keycodec.PublicKey{}, "", fmt.Errorf("private key type %T is %w", parsed, ErrUnsupported)
}

// addSecp256k1 records an RFC 5915 ECPrivateKey on secp256k1.
func (p *importPlan) addSecp256k1(inner []byte) (keycodec.PublicKey, string, error) {
	scalar, pub, err := keycodec.ParseSecp256k1PrivateKey(inner)
	if err != nil {
		return keycodec.PublicKey{}, "", err
	}
	if err := p.setECPrivate(OIDSecp256k1, p.keep(scalar)); err != nil {
		return keycodec.PublicKey{}, "", err
	}
	return pub, AlgEC, nil
}

// addECDSA records a NIST-curve private key.
func (p *importPlan) addECDSA(k *ecdsa.PrivateKey) (keycodec.PublicKey, string, error) {
	defer func() {
		if k.D != nil {
			clear(k.D.Bits())
		}
	}()
	var oid string
	switch k.Curve {
	case elliptic.P256():
		oid = OIDP256
	case elliptic.P384():
		oid = OIDP384
	case elliptic.P521():
		oid = OIDP521
	default:
		return keycodec.PublicKey{}, "", fmt.Errorf("EC curve %s is %w", k.Curve.Params().Name, ErrUnsupported)
	}
	scalar, err := k.Bytes()
	if err != nil {
		return keycodec.PublicKey{}, "", fmt.Errorf("%w: EC private key: %v", ErrInvalidInput, err)
	}
	p.keep(scalar)
	point, err := k.PublicKey.Bytes()
	if err != nil {
		return keycodec.PublicKey{}, "", fmt.Errorf("%w: EC public key: %v", ErrInvalidInput, err)
	}
	pub, err := keycodec.PublicKeyFromPoint(oid, point)
	if err != nil {
		return keycodec.PublicKey{}, "", err
	}
	if err := p.setECPrivate(oid, scalar); err != nil {
		return keycodec.PublicKey{}, "", err
	}
	return pub, AlgEC, nil
}

// setECPrivate records the attributes of an EC private key object.
func (p *importPlan) setECPrivate(curveOID string, scalar []byte) error {
	params, err := keycodec.MarshalOID(curveOID)
	if err != nil {
		return err
	}
	p.priv = []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, params),
		pkcs11.NewAttribute(pkcs11.CKA_VALUE, scalar),
	}
	return nil
}

// addEd25519 records an Ed25519 private key (CKA_VALUE is the 32-byte seed).
func (p *importPlan) addEd25519(k ed25519.PrivateKey) (keycodec.PublicKey, string, error) {
	p.keep(k)
	seed := p.keep(k.Seed())
	pub, err := keycodec.PublicKeyFromPoint(OIDEd25519, k.Public().(ed25519.PublicKey))
	if err != nil {
		return keycodec.PublicKey{}, "", err
	}
	params, err := keycodec.MarshalOID(OIDEd25519)
	if err != nil {
		return keycodec.PublicKey{}, "", err
	}
	p.priv = []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, params),
		pkcs11.NewAttribute(pkcs11.CKA_VALUE, seed),
	}
	return pub, AlgED, nil
}

// addRSA records a two-prime RSA private key with its CRT values.
func (p *importPlan) addRSA(k *rsa.PrivateKey) (keycodec.PublicKey, string, error) {
	defer func() {
		for _, v := range append([]*big.Int{k.D, k.Precomputed.Dp, k.Precomputed.Dq, k.Precomputed.Qinv}, k.Primes...) {
			if v != nil {
				clear(v.Bits())
			}
		}
	}()
	if len(k.Primes) != 2 {
		return keycodec.PublicKey{}, "", fmt.Errorf("multi-prime RSA keys are %w", ErrUnsupported)
	}
	if k.Precomputed.Dp == nil || k.Precomputed.Dq == nil || k.Precomputed.Qinv == nil {
		k.Precompute()
	}
	if k.Precomputed.Dp == nil || k.Precomputed.Dq == nil || k.Precomputed.Qinv == nil {
		return keycodec.PublicKey{}, "", fmt.Errorf("%w: RSA private key lacks its CRT values", ErrInvalidInput)
	}
	if k.E < 3 {
		return keycodec.PublicKey{}, "", fmt.Errorf("%w: RSA public exponent below 3", ErrInvalidInput)
	}
	pub := keycodec.PublicKey{RSA: &rsa.PublicKey{N: new(big.Int).Set(k.N), E: k.E}}
	p.priv = []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_MODULUS, k.N.Bytes()),
		pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, big.NewInt(int64(k.E)).Bytes()),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE_EXPONENT, p.keep(k.D.Bytes())),
		pkcs11.NewAttribute(pkcs11.CKA_PRIME_1, p.keep(k.Primes[0].Bytes())),
		pkcs11.NewAttribute(pkcs11.CKA_PRIME_2, p.keep(k.Primes[1].Bytes())),
		pkcs11.NewAttribute(pkcs11.CKA_EXPONENT_1, p.keep(k.Precomputed.Dp.Bytes())),
		pkcs11.NewAttribute(pkcs11.CKA_EXPONENT_2, p.keep(k.Precomputed.Dq.Bytes())),
		pkcs11.NewAttribute(pkcs11.CKA_COEFFICIENT, p.keep(k.Precomputed.Qinv.Bytes())),
	}
	return pub, AlgRSA, nil
}

// keyObjectAttrs returns the attributes every object of a key carries, as
// s.createKey sets them.
func keyObjectAttrs(class uint, private bool, label string, id []byte, f Flags) []*pkcs11.Attribute {
	return []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, class),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, private),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
		pkcs11.NewAttribute(pkcs11.CKA_ID, id),
		pkcs11.NewAttribute(pkcs11.CKA_MODIFIABLE, f.Modifiable),
		pkcs11.NewAttribute(pkcs11.CKA_DESTROYABLE, f.Destroyable),
		pkcs11.NewAttribute(pkcs11.CKA_COPYABLE, f.Copyable),
	}
}

// publicUsageAttrs returns the usage attributes of a public key object, as
// s.createKey derives them.
func publicUsageAttrs(f Flags) []*pkcs11.Attribute {
	return []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_VERIFY, f.Verify || f.Sign),
		pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, f.Encrypt || f.Decrypt),
		pkcs11.NewAttribute(pkcs11.CKA_WRAP, f.Wrap || f.Unwrap),
	}
}

// secretKeyAttrs returns the usage and protection attributes of a secret
// key object, as s.createKey sets them.
func secretKeyAttrs(f Flags) []*pkcs11.Attribute {
	return append(secretFlags(f), publicUsageAttrs(f)...)
}

// createObject runs C_CreateObject; what names the object in errors.
func (s *session) createObject(what string, tmpl []*pkcs11.Attribute) (pkcs11.ObjectHandle, error) {
	o, err := s.h.ctx.CreateObject(s.s, tmpl)
	if err != nil {
		return 0, fmt.Errorf("store %s: %w", what, err)
	}
	return o, nil
}

// importKey creates the planned objects and their metadata on one session;
// on failure nothing stays behind.
func (s *session) importKey(req *ImportKeyRequest, p *importPlan) (*Key, error) {
	meta := newMeta(&CreateKeyRequest{
		Label: req.Label, Algorithm: p.algorithm, KeySize: p.keySize, CurveOID: p.curveOID, HMACHash: p.hmacHash,
		Flags: req.Flags, App: req.App,
	}, OriginImported)
	if len(req.Certificate) > 0 {
		meta.Cert = certificateHash(req.Certificate)
	}
	id := uuidBytes(meta.UUID)
	f := req.Flags
	var created []pkcs11.ObjectHandle
	ok := false
	defer func() {
		if !ok {
			s.destroyAll(created)
		}
	}()
	if err := s.beginKey(req.Label, meta, &created); err != nil {
		return nil, err
	}
	add := func(what string, tmpl []*pkcs11.Attribute) error {
		o, err := s.createObject(what, tmpl)
		if err != nil {
			return err
		}
		created = append(created, o)
		return nil
	}
	keyType := pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, p.keyType)
	if p.secret != nil {
		tmpl := append(keyObjectAttrs(pkcs11.CKO_SECRET_KEY, true, req.Label, id, f), keyType)
		if err := add("secret key", append(append(tmpl, secretKeyAttrs(f)...), p.secret...)); err != nil {
			return nil, err
		}
	}
	if p.priv != nil {
		tmpl := append(keyObjectAttrs(pkcs11.CKO_PRIVATE_KEY, true, req.Label, id, f), keyType)
		if err := add("private key", append(append(tmpl, secretFlags(f)...), p.priv...)); err != nil {
			return nil, err
		}
	}
	if p.pub != nil {
		tmpl := append(keyObjectAttrs(pkcs11.CKO_PUBLIC_KEY, false, req.Label, id, f), keyType)
		if err := add("public key", append(append(tmpl, publicUsageAttrs(f)...), p.pub...)); err != nil {
			return nil, err
		}
	}
	if p.cert != nil {
		tmpl := keyObjectAttrs(pkcs11.CKO_CERTIFICATE, false, req.Label, id, f)
		if err := add("certificate", append(tmpl, p.cert...)); err != nil {
			return nil, err
		}
	}
	k, err := s.finishKey(req.Label, meta, &created)
	if err != nil {
		return nil, err
	}
	ok = true
	return k, nil
}
