package api

import (
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/hsmgate/hsmgate/approval"
	"github.com/hsmgate/hsmgate/roles"
)

// route is one endpoint of the gateway, declared once: New registers it
// with gin, authenticate guards it with its access, and the served OpenAPI
// document takes its summary and required roles from it. Adding an
// endpoint is one line in routes plus its handler (and, for readers, its
// request and response in openapi.json).
type route struct {
	method, pattern string // pattern is gin's: ":name" is a path parameter
	access          access
	handler         gin.HandlerFunc
	summary         string
}

// access says who may call a route: anyone, or the authenticated callers
// that a roles.Rule admits. The zero access admits nobody, so a route
// declared without one is refused to every caller (deny by default).
type access struct {
	// public routes need no credential: probes, the API document and
	// page, the approver page, and the endpoints that issue credentials.
	public bool
	rule   roles.Rule
}

// The accesses of the route list besides role (see docs/credentials.md
// for the levels).
var (
	public = access{public: true}
	// self guards credential management: any role, but at session level
	// or above, so that an API-key-level caller can never mint or list
	// keys; the handlers check that callers manage their own credentials.
	self = access{rule: roles.Rule{AnyRole: true, MinLevel: roles.LevelSession}}
	// authenticated admits every caller with a valid credential.
	authenticated = access{rule: roles.Rule{AnyRole: true}}
)

// role admits the callers holding one of rs, at any level.
func role(rs ...roles.Role) access { return access{rule: roles.Rule{Roles: roles.Of(rs...)}} }

// routes lists every endpoint with its handler bound to s. It has no side
// effect, so the OpenAPI document and the tests read it from a zero server.
func (s *server) routes() []route {
	const get, post, patch, del = http.MethodGet, http.MethodPost, http.MethodPatch, http.MethodDelete
	km, op, sv := role(roles.KeyManagement), role(roles.KeyOperation), role(roles.Service)
	akm := role(roles.ApproverKeyManagement)
	am := func(h handlerFunc) gin.HandlerFunc {
		return s.handle(asKeyType, func(c *gin.Context) error { return s.audited(c, s.approverManagement(h)) })
	}
	ap := role(roles.Approver)
	wf := func(as unsupportedAs, h handlerFunc) gin.HandlerFunc { return s.handle(as, s.workflow(h)) }
	if s.approverCredentialWaived {
		// The approver's timestamp signature is the only credential.
		ap = public
	}
	return []route{
		{get, "/healthz", public, s.healthz, "Liveness probe"},
		{get, "/readyz", public, s.readyz, "Readiness probe"},
		{get, "/metrics", public, s.metrics.serve, "Prometheus metrics"},
		{get, "/openapi.json", public, serveOpenAPI, "This API document"},
		{get, "/docs", public, apiPage.serve, "This API document as a readable page"},
		{get, "/docs/:asset", public, apiPage.serveAsset, "A file of the API page"},
		// The approver page (docs/approvers.md §7) calls the approver routes below.
		{get, "/approver", public, approverPage.serve, "The approver web page"},
		{get, "/approver/:asset", public, approverPage.serveAsset, "A file of the approver page"},

		// Key management (docs/api.md).
		{post, "/v1/key", km, s.handle(asKeyType, s.createKey), "Create a key in the token"},
		{get, "/v1/key", km, s.handle(asKeyType, s.listKeys), "List key labels"},
		{get, "/v1/key/:label/attributes", km, s.handle(asKeyType, s.keyAttributesByPath), "Key attributes and attestation by label"},
		{post, "/v1/key/attributes", km, s.handle(asKeyType, s.keyAttributes), "Key attributes and attestation"},
		{del, "/v1/key/:label", km, s.handle(asKeyType, s.deleteKeyByPath), "Delete a key by label"},
		{post, "/v1/key/import/plain", km, s.handle(asKeyType, s.importPlain), "Import plain key material"},
		{post, "/v1/key/export/plain", km, s.handle(asKeyType, s.exportPlain), "Export plain key material"},
		{post, "/v1/key/deleteKey", km, s.handle(asKeyType, s.deleteKey), "Delete a key"},
		{post, "/v1/key/changePassword", km, s.handle(asKeyType, s.changePassword), "Change a key's password"},
		{post, "/v1/synchronousModify", km, s.handle(asKeyType, s.modify), "Replace a key's policy"},
		{post, "/v1/key/keyAttestation", km, s.handle(asKeyType, s.keyAttestationBundle), "A key's attestation as a zip bundle"},

		// Attestation (docs/api.md §12).
		{get, "/v1/attestation/certificate", km, s.handle(asKeyType, s.attestationCertificate), "The attestation key's certificate chain"},
		{post, "/v1/attestation/key", km, s.handle(asKeyType, s.attestKey), "A key's signed attestation document"},

		// Certificates (docs/api.md §10) and time-stamps (§11).
		{post, "/v1/certificate/synchronous/request", op, s.handle(asCipher, s.certificateSigningRequest), "A certificate signing request by a token key"},
		{post, "/v1/certificate/synchronous/request/download", op, s.handle(asCipher, s.certificateSigningRequestDownload), "A certificate signing request as a PEM file"},
		{post, "/v1/certificate/synchronous/selfsign", op, s.handle(asCipher, s.selfSignCertificate), "A self-signed certificate of a token key"},
		{post, "/v1/certificate/synchronous/sign", op, s.handle(asCipher, s.signCertificate), "Issue a certificate for a CSR with a CA key"},
		{post, "/v1/certificate/import/plain", op, s.handle(asKeyType, s.importCertificate), "Store a certificate with a key"},
		{get, "/v1/certificate/:keyName", op, s.handle(asKeyType, s.getCertificate), "The certificate stored with a key"},
		{del, "/v1/certificate/:keyName", op, s.handle(asKeyType, s.deleteCertificate), "Remove the certificate of a key"},
		{post, "/v1/createRfcTimestamp", op, s.handle(asKeyType, s.createTimestamp), "An RFC 3161 time-stamp of a digest"},

		// Data objects (docs/api.md §3.13).
		{post, "/v1/dataObject", km, s.handle(asKeyType, s.createDataObject), "Store a data object"},
		{get, "/v1/dataObject", km, s.handle(asKeyType, s.listDataObjects), "List data object names"},
		{get, "/v1/dataObject/:name", km, s.handle(asKeyType, s.getDataObject), "Read a data object"},
		{del, "/v1/dataObject/:name", km, s.handle(asKeyType, s.deleteDataObject), "Delete a data object"},

		// Seeded and derived keys (docs/api.md §3.14): refused unless the
		// token has a derivation mechanism.
		{post, "/v1/importedKey", km, s.handle(asKeyType, s.importSeededKey), "Create a master key from a seed"},
		{post, "/v1/derivedKey", km, s.handle(asKeyType, s.deriveKey), "Derive a child key"},

		// Key operations.
		{post, "/v1/synchronousSign", op, s.handle(asCipher, s.sign), "Sign a payload"},
		{post, "/v1/verify", op, s.handle(asCipher, s.verify), "Verify a signature or an HMAC"},
		{post, "/v1/verifyHmac", op, s.handle(asCipher, s.verify), "Verify an HMAC"},
		{post, "/v1/synchronousHmac", op, s.handle(asCipher, s.hmac), "Compute an HMAC"},
		{post, "/v1/encrypt", op, s.handle(asCipher, s.encrypt), "Encrypt a payload"},
		{post, "/v1/synchronousDecrypt", op, s.handle(asCipher, s.decrypt), "Decrypt a payload"},
		{post, "/v1/wrap", op, s.handle(asCipher, s.wrap), "Wrap a key"},
		{post, "/v1/synchronousUnwrap", op, s.handle(asCipher, s.unwrap), "Unwrap a key"},
		{post, "/v1/synchronousBlock", op, s.handle(asKeyType, s.block), "Block a key"},
		{post, "/v1/synchronousUnblock", op, s.handle(asKeyType, s.unblock), "Unblock a key"},
		{post, pathFileEncrypt, op, s.handle(asKeyType, s.fileHandler(encryptRoute, s.fileEncrypt)), "Encrypt a file for an EC key (multipart in, octet-stream out)"},
		{post, pathFileDecrypt, op, s.handle(asKeyType, s.fileHandler(decryptRoute, s.fileDecrypt)), "Decrypt a file with an EC key (multipart in, octet-stream out)"},
		// A widely used client asks for random bytes with its serviceToken.
		{get, "/v1/generateRandom/:n", role(roles.KeyOperation, roles.Service), s.handle(asKeyType, s.random), "Random bytes from the token"},

		// Multi-authorization (docs/api.md §9): asynchronous requests,
		// executed at once when the key's policy asks no approval.
		{post, "/v1/sign", op, wf(asCipher, s.asyncSign), "Request a signature"},
		{post, "/v1/decrypt", op, wf(asCipher, s.asyncDecrypt), "Request a decryption"},
		{post, "/v1/unwrap", op, wf(asCipher, s.asyncUnwrap), "Request an unwrap"},
		{post, "/v1/block", op, wf(asKeyType, s.asyncBlock), "Request to block a key"},
		{post, "/v1/unblock", op, wf(asKeyType, s.asyncUnblock), "Request to unblock a key"},
		{post, "/v1/modify", km, wf(asKeyType, s.asyncModify), "Request to replace a key's policy"},
		{get, "/v1/request/:id", op, wf(asKeyType, s.getRequest), "Status and result of a request"},
		{post, "/v1/request/:id", op, wf(asKeyType, s.getRequest), "Status and result of a request"},
		{del, "/v1/request/:id", op, wf(asKeyType, s.cancelRequest), "Cancel a request"},
		{post, "/v1/filteredRequests", op, wf(asKeyType, s.filteredRequests), "The caller's requests by status"},
		{post, "/v1/certificate/request", op, wf(asCipher, s.asyncCertificate(approval.OpCertificateRequest)), "Request a CSR signed by a key"},
		{post, "/v1/certificate/selfsign", op, wf(asCipher, s.asyncCertificate(approval.OpSelfSign)), "Request a self-signed certificate of a key"},
		{post, "/v1/certificate/sign", op, wf(asCipher, s.asyncCertificate(approval.OpIssue)), "Request a certificate a CA key issues for a CSR"},
		// Approvers: a signature over a recent timestamp, and by default an
		// approverToken-role credential too (approval.approverCredential).
		{post, "/v1/filteredSignApprovalTask", ap, wf(asKeyType, s.filteredTasks("Sign")), "An approver's sign tasks"},
		{post, "/v1/filteredDecryptApprovalTask", ap, wf(asKeyType, s.filteredTasks("Decrypt")), "An approver's decrypt tasks"},
		{post, "/v1/filteredUnwrapKeyApprovalTask", ap, wf(asKeyType, s.filteredTasks("UnwrapKey")), "An approver's unwrap tasks"},
		{post, "/v1/filteredBlockKeyApprovalTask", ap, wf(asKeyType, s.filteredTasks("BlockKey")), "An approver's block tasks"},
		{post, "/v1/filteredUnblockKeyApprovalTask", ap, wf(asKeyType, s.filteredTasks("UnblockKey")), "An approver's unblock tasks"},
		{post, "/v1/filteredModifyKeyApprovalTask", ap, wf(asKeyType, s.filteredTasks("ModifyKey")), "An approver's modify tasks"},
		{post, "/v1/filteredAllApprovalTask", ap, wf(asKeyType, s.filteredTasks("All")), "Every task of an approver"},
		{post, "/v1/approval", ap, wf(asKeyType, s.approve), "Approve a task's request"},
		{del, "/v1/task", ap, wf(asKeyType, s.rejectTask), "Reject a task's request"},
		{patch, "/v1/task", ap, wf(asKeyType, s.rejectTask), "Reject a task's request"},
		{post, "/v1/task", ap, wf(asKeyType, s.rejectTask), "Reject a task's request"},

		// Approver management (docs/api.md §9.10): TSB's examples create
		// with PUT, its text says POST; the onboarding's credential is
		// the one-time code.
		{http.MethodPut, "/v1/approverManagement/create", akm, am(s.createApprover), "Create an approver and its one-time code"},
		{post, "/v1/approverManagement/create", akm, am(s.createApprover), "Create an approver and its one-time code"},
		{get, "/v1/approverManagement/onboarding/status", akm, am(s.onboardingStatus), "Onboarded and pending approvers"},
		{post, "/v1/approverManagement/renewOneTimeCode", akm, am(s.renewApproverCode), "A new one-time code for a pending approver"},
		{del, "/v1/approverManagement/delete/:name", akm, am(s.deleteApprover), "Delete an approver"},
		{post, "/v1/approver/onboard", public, am(s.onboardApprover), "Onboard an approver with its one-time code"},
		{post, "/v1/approverManagement/onboard", public, am(s.onboardApprover), "Onboard an approver with its one-time code"},

		// Service.
		{get, "/v1/versionInfo", sv, s.versionInfo, "Version of the gateway and the token"},
		{get, "/v1/licenseInfo", sv, s.licenseInfo, "License flags"},
		{get, "/v1/keystore/statistics", sv, s.handle(asKeyType, s.statistics), "Keystore statistics"},
		{get, "/v1/hsm/log", sv, s.handle(asKeyType, s.hsmLog), "The newest audit log entries as text"},
		{get, "/v1/hsm/log/entries", sv, s.handle(asKeyType, s.logEntries), "A page of audit log entries"},
		{get, "/v1/hsm/log/checkpoints", sv, s.handle(asKeyType, s.logCheckpoints), "The audit key and a page of signed checkpoints"},

		// Argus-style credentials (docs/credentials.md): {user} is the
		// user's id or its username in the caller's domain.
		{post, "/authentication/v1/password/authenticate", public, s.manage(s.argusLogin), "Log in with a password (Argus-style session)"},
		{get, "/authentication/v1/session", authenticated, s.manage(s.describeArgusSession), "Describe the current session"},
		{del, "/authentication/v1/session", authenticated, s.manage(s.endArgusSessions), "Log out everywhere"},
		{get, "/authentication/v1/user/:user/apikey", self, s.manage(s.listArgusKeys), "List a user's Argus-style API keys"},
		{post, "/authentication/v1/user/:user/apikey", self, s.manage(s.createArgusKey), "Create an Argus-style API key"},
		{post, "/authentication/v1/user/:user/apikey/:userID/:keyID/renew", self, s.manage(s.renewArgusKey), "Renew an Argus-style API key"},
		{del, "/authentication/v1/user/:user/apikey/:userID/:keyID", self, s.manage(s.deleteArgusKey), "Delete an Argus-style API key"},
		{get, "/authentication/v1/user/:user/publickey", self, s.manage(s.listArgusPublicKeys), "List a user's enrolled public keys"},
		{post, "/authentication/v1/user/:user/publickey", self, s.manage(s.enrolArgusPublicKey), "Enrol a public key for per-request signatures"},
		{del, "/authentication/v1/user/:user/publickey/:idx", self, s.manage(s.deleteArgusPublicKey), "Remove an enrolled public key"},

		// Actyx-style app tokens: the manifest is the credential.
		{post, "/api/v2/auth", public, s.issueAppToken, "Exchange an app manifest for an app token (Actyx-style)"},

		// Barong-style API keys: each user manages its own, with a TOTP
		// code for every change.
		{get, "/api/v2/barong/resource/api_keys", self, s.manage(s.listBarongKeys), "List the caller's Barong-style API keys"},
		{post, "/api/v2/barong/resource/api_keys", self, s.manage(s.createBarongKey), "Create a Barong-style API key"},
		{patch, "/api/v2/barong/resource/api_keys/:kid", self, s.manage(s.updateBarongKey), "Change the scope or state of a Barong-style API key"},
		{del, "/api/v2/barong/resource/api_keys/:kid", self, s.manage(s.deleteBarongKey), "Delete a Barong-style API key"},

		// Armor-style pre-shared keys: a user manages its own, an
		// administrator anyone's.
		{get, "/users/:id/keys", self, s.manage(s.listArmorKeys), "List a user's Armor-style keys"},
		{post, "/users/:id/keys", self, s.manage(s.createArmorKey), "Create an Armor-style pre-shared key"},
		{del, "/users/:id/keys/:key", self, s.manage(s.deleteArmorKey), "Revoke an Armor-style key"},
	}
}

// workflow guards a route of the multi-authorization workflow: without
// one configured it answers 404 as an unknown route would.
func (s *server) workflow(h handlerFunc) handlerFunc {
	return func(c *gin.Context) error {
		if s.approvals == nil {
			return newError(http.StatusNotFound, 600, "route.not.found", "multi-authorization is not configured on this gateway")
		}
		return h(c)
	}
}

// routeList is the route list for readers that need no handler (the
// OpenAPI document, the tests): the handlers are bound to a zero server
// and never called.
func routeList() []route { return (&server{}).routes() }

// register adds every route of the list to r, the guarded ones behind
// authenticate with their own rule.
func (s *server) register(r *gin.Engine) {
	for _, rt := range s.routes() {
		if rt.access.public {
			r.Handle(rt.method, rt.pattern, rt.handler)
			continue
		}
		r.Handle(rt.method, rt.pattern, s.authenticate(rt.access.rule), rt.handler)
	}
}
