// Package api is the HTTP face of hsmgate: the route list (routes.go, the
// one place a route is declared), the gin router and handlers, the TSB
// wire DTOs, the error envelope, the OpenAPI document and API page, and
// the access log.
package api

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/hsmgate/hsmgate/approval"
	"github.com/hsmgate/hsmgate/approvers"
	"github.com/hsmgate/hsmgate/audit"
	"github.com/hsmgate/hsmgate/auth"
	"github.com/hsmgate/hsmgate/certs"
	"github.com/hsmgate/hsmgate/hsm"
	"github.com/hsmgate/hsmgate/keys"
	"github.com/hsmgate/hsmgate/roles"
	"github.com/hsmgate/hsmgate/store"
	"github.com/hsmgate/hsmgate/tsa"
	"github.com/prometheus/client_golang/prometheus"
)

// Authenticator turns the credentials of a request into a Principal.
type Authenticator interface {
	Authenticate(r *http.Request) (*roles.Principal, error)
}

// Build describes the running binary for /v1/versionInfo.
type Build struct {
	Version, Commit, BuildTime string
}

// Options configures the router.
type Options struct {
	// HSM answers readiness, version and pool metrics.
	HSM *hsm.HSM
	// Keys runs every key use case.
	Keys *keys.Service
	Auth Authenticator
	Log  *slog.Logger
	// MaxBodyBytes bounds request bodies (default 1 MiB).
	MaxBodyBytes int64
	// MaxFileBytes bounds the files of the file routes (default 1 GiB),
	// whose bodies pass MaxBodyBytes once the caller is authenticated.
	MaxFileBytes int64
	// FileTimeout bounds reading and answering a file request (default 30 min).
	FileTimeout time.Duration
	// AccessLog receives one line per request (see NewAccessLog); nil:
	// only failed requests (5xx) are logged, through Log.
	AccessLog *AccessLog
	Build     Build
	// RequireBoth: when a request carries a client certificate and an
	// application credential, the certificate's roles must admit the
	// route too (tls.requireBoth).
	RequireBoth bool
	// Argus serves the Argus-style logins, sessions, API keys and
	// enrolled public keys (docs/credentials.md §9); nil: those routes answer 404.
	Argus *auth.Argus
	// AppTokens issues Actyx-style app tokens at POST /api/v2/auth
	// (docs/credentials.md §12); nil: the route answers 404.
	AppTokens AppTokenIssuer
	// Barong manages Barong-style API keys (docs/credentials.md §10); nil: off.
	Barong *auth.Barong
	// Armor manages Armor-style pre-shared keys (docs/credentials.md §11); nil: off.
	Armor *auth.Armor
	// Throttle limits guesses of login passwords and of the TOTP codes of
	// Barong key management; share the Authenticator's (nil: none).
	Throttle *auth.Throttle
	// Collectors are published at /metrics beside the request and HSM
	// metrics (for example the OCSP counters of the TLS listener).
	Collectors []prometheus.Collector
	// ConnectionCheck, when set, vets the connection of every request
	// before anything else reads it (the server re-checks the client
	// certificate's revocation status there). A refusal is answered as an
	// invalid credential, closes the connection, and goes through the
	// request id, the access log and the metrics like any other answer.
	ConnectionCheck func(*http.Request) *auth.Error
	// TrustedProxies may name the client in X-Forwarded-For
	// (server.trustedProxies); from anyone else the client is the TCP
	// peer. The access log, the throttles and the validSources of
	// credentials all take the client address resolved from it.
	TrustedProxies auth.Proxies
	// Approvers serves approver management and onboarding (docs/api.md
	// §9.10); nil: those routes answer 404.
	Approvers *approvers.Service
	// Store is the state store, which /readyz pings (nil: none to check).
	Store Pinger
	// Audit is the audit log the /v1/hsm/log routes read and credential
	// management records in (nil: off, the routes answer 404).
	Audit *audit.Log
	// AuditStore is what the /v1/hsm/log routes read.
	AuditStore store.AuditLog
	// ShuttingDown, when set, reports that a graceful shutdown has begun:
	// /readyz then answers 503.
	ShuttingDown func() bool
	// Timestamps issues RFC 3161 time-stamps (nil: none is configured,
	// /v1/createRfcTimestamp says so).
	Timestamps *tsa.Service
	// Approvals runs the multi-authorization workflow; nil: its routes
	// answer 404.
	Approvals *approval.Service
	// ApproverCredentialWaived: the approver routes take the approver's
	// timestamp signature alone, without an approverToken-role credential.
	ApproverCredentialWaived bool
}

// server holds what the handlers need.
type server struct {
	hsm  *hsm.HSM
	keys *keys.Service
	// approvals runs the multi-authorization workflow (nil: off).
	approvals *approval.Service
	// approverCredentialWaived: see Options.ApproverCredentialWaived.
	approverCredentialWaived bool
	auth                     Authenticator
	log                      *slog.Logger
	build                    Build
	stats                    statsCache
	metrics                  *metrics
	// requireBoth: a client certificate's roles must also admit the route.
	requireBoth bool
	// logins and totpCodes throttle guesses of login passwords and of the
	// TOTP codes of Barong key management (the Authenticator throttles the
	// credentials of requests, the keys service key passwords).
	logins, totpCodes *auth.PasswordThrottle
	// argus manages the Argus-style credentials; nil: off.
	argus *auth.Argus
	// appTokens issues app tokens (POST /api/v2/auth); nil: off.
	appTokens AppTokenIssuer
	// barongKeys and armorKeys manage the HMAC keys of docs/credentials.md §10–§11.
	barongKeys *auth.Barong
	armorKeys  *auth.Armor
	// ready answers /readyz.
	ready readiness
	// certs builds certificates with the keys of keys.
	certs *certs.Service
	// timestamps issues time-stamps.
	timestamps *tsa.Service
	// files are the limits of the file routes.
	files fileLimits
	// audit is the audit log, and store where its routes read it; nil: off.
	audit *audit.Log
	store store.AuditLog
	// approvers manages approvers (nil: off); approverCodes throttles
	// guesses of their one-time codes.
	approvers     *approvers.Service
	approverCodes *auth.PasswordThrottle
}

// principalKey is where authenticate stores the Principal in the gin context.
const principalKey = "hsmgate.principal"

// New returns the gin engine serving the whole API.
func New(opts Options) *gin.Engine {
	gin.SetMode(gin.ReleaseMode)
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 1 << 20
	}
	if opts.MaxFileBytes <= 0 {
		opts.MaxFileBytes = 1 << 30
	}
	if opts.FileTimeout <= 0 {
		opts.FileTimeout = 30 * time.Minute
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	s := &server{hsm: opts.HSM, keys: opts.Keys, auth: opts.Auth, log: opts.Log, build: opts.Build, requireBoth: opts.RequireBoth,
		logins: opts.Throttle.Passwords("login"), totpCodes: opts.Throttle.Passwords("totp")}
	s.approvals, s.approverCredentialWaived = opts.Approvals, opts.ApproverCredentialWaived
	s.appTokens = opts.AppTokens
	s.argus = opts.Argus
	s.barongKeys, s.armorKeys = opts.Barong, opts.Armor
	s.ready = newReadiness(opts)
	s.certs, s.timestamps = certs.New(opts.Keys), opts.Timestamps
	s.files = fileLimits{maxFile: opts.MaxFileBytes, maxRequest: opts.MaxBodyBytes, timeout: opts.FileTimeout}
	s.audit, s.store = opts.Audit, opts.AuditStore
	s.approvers, s.approverCodes = opts.Approvers, opts.Throttle.Passwords("approver-code")
	r := gin.New()
	r.HandleMethodNotAllowed = true
	r.ContextWithFallback = true
	// A path with a trailing slash or a wrong case is no route: 404 with
	// the envelope, not a redirect without one to a path the client did
	// not ask for.
	r.RedirectTrailingSlash, r.RedirectFixedPath = false, false
	// The client address is auth.RequestSource's; gin's own ClientIP
	// would trust X-Forwarded-For and X-Real-IP from anyone, so it is
	// kept to the TCP peer in case anything ever calls it.
	r.ForwardedByClientIP = false
	collectors := opts.Collectors
	if opts.AccessLog != nil {
		collectors = append(slices.Clip(collectors), opts.AccessLog.waits)
	}
	s.metrics = newMetrics(opts.HSM, collectors)
	r.Use(recovery(opts.Log))
	if len(opts.TrustedProxies) > 0 {
		// Without proxies the client is the TCP peer, which
		// auth.RequestSource reads itself: no copy of the request.
		r.Use(clientSource(opts.TrustedProxies))
	}
	r.Use(requestID(), accessLog(opts.Log, opts.AccessLog), s.metrics.observe())
	if opts.ConnectionCheck != nil {
		r.Use(connectionCheck(opts.ConnectionCheck))
	}
	r.Use(bodyLimit(opts.MaxBodyBytes, opts.MaxFileBytes))
	r.NoRoute(func(c *gin.Context) {
		abortWith(c, newError(http.StatusNotFound, 600, "route.not.found", "no route %s %s", c.Request.Method, c.Request.URL.Path))
	})
	r.NoMethod(func(c *gin.Context) {
		abortWith(c, newError(http.StatusMethodNotAllowed, 600, "method.not.allowed", "method %s not allowed on %s", c.Request.Method, c.Request.URL.Path))
	})
	s.register(r)
	return r
}

// authenticate returns the guard of a route: it resolves the Principal
// and checks it against the route's rule.
func (s *server) authenticate(required roles.Rule) gin.HandlerFunc {
	return func(c *gin.Context) {
		if required == (roles.Rule{}) {
			// A route declared without access is a programming error: deny.
			abortWith(c, errNotAllowed("route is not in the role table"))
			return
		}
		p, err := s.auth.Authenticate(c.Request)
		if err != nil {
			abortAuth(c, err)
			return
		}
		if !required.Admits(p) {
			abortWith(c, errNotAllowed("%s", refusal(required, p)))
			return
		}
		if s.requireBoth && p.Certificate != nil && !required.Admits(p.Certificate) {
			abortWith(c, errNotAllowed("the client certificate does not grant %s", required.Roles))
			return
		}
		c.Set(principalKey, p)
		c.Next()
	}
}

// refusal says why rule does not admit p.
func refusal(rule roles.Rule, p *roles.Principal) string {
	if !rule.AnyRole && !p.Roles.Intersects(rule.Roles) {
		return fmt.Sprintf("this route needs %s", rule.Roles)
	}
	return "this route needs a session or a per-request signature: an API-key-level credential cannot manage credentials"
}

// principal returns the authenticated caller.
func principal(c *gin.Context) *roles.Principal {
	p, _ := c.Get(principalKey)
	pr, _ := p.(*roles.Principal)
	return pr
}

// recovery turns a panic into a 500 envelope and a log line.
func recovery(log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				log.Error("panic in handler", "path", c.FullPath(), "panic", fmt.Sprint(v), "requestId", c.GetString(requestIDKey))
				abortWith(c, newError(http.StatusInternalServerError, 701, "in.hsm", "internal error"))
			}
		}()
		c.Next()
	}
}

// clientSource records the client address of every request
// (auth.Proxies.Resolve) before anything reads it.
func clientSource(proxies auth.Proxies) gin.HandlerFunc {
	return func(c *gin.Context) {
		c.Request = proxies.Resolve(c.Request)
		c.Next()
	}
}

// headerRequestID carries the request id: the answer's is always the
// gateway's own; a client may send one of its own (docs/api.md).
const headerRequestID = "X-Request-Id"

// Keys of the request ids in the gin context.
const (
	requestIDKey       = "requestId"
	clientRequestIDKey = "clientRequestId"
)

// maxClientRequestID is the longest request id a client may send.
const maxClientRequestID = 64

// requestIDs seeds request ids: a random prefix per process and a counter.
var (
	requestIDPrefix = func() string {
		b := make([]byte, 4)
		_, _ = rand.Read(b)
		return hex.EncodeToString(b)
	}()
	requestCounter atomic.Uint64
)

// requestID gives every request an id of the gateway's own, answered in
// X-Request-Id, so that an id in the log always names one request and
// one only. A client's X-Request-Id is kept beside it, for the log, when
// it is a valid client id (validClientRequestID); otherwise it is ignored.
func requestID() gin.HandlerFunc {
	return func(c *gin.Context) {
		id := requestIDPrefix + "-" + strconv.FormatUint(requestCounter.Add(1), 10)
		c.Set(requestIDKey, id)
		// The services record the id in audit events (docs/audit.md §2).
		c.Request = c.Request.WithContext(audit.WithRequestID(c.Request.Context(), id))
		if own := c.GetHeader(headerRequestID); validClientRequestID(own) {
			c.Set(clientRequestIDKey, own)
		}
		c.Header(headerRequestID, id)
		c.Next()
	}
}

// validClientRequestID reports whether id is 1 to 64 characters of
// [A-Za-z0-9._-]: enough for UUIDs and trace ids, nothing that could
// split or forge a log line or look like another field.
func validClientRequestID(id string) bool {
	if id == "" || len(id) > maxClientRequestID {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch b := id[i]; {
		case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9', b == '.', b == '_', b == '-':
		default:
			return false
		}
	}
	return true
}

// bodyLimit bounds every request body; a file route's, fileBodyLimit.
func bodyLimit(max, maxFile int64) gin.HandlerFunc {
	return func(c *gin.Context) {
		if fileRoutes[c.FullPath()] {
			fileBodyLimit(c, max, maxFile)
			return
		}
		if c.Request.ContentLength > max {
			abortWith(c, errTooLarge(max))
			return
		}
		c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, max)
		c.Next()
	}
}
