package api

import (
	"bytes"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/hsmgate/hsmgate/approvers"
	"github.com/hsmgate/hsmgate/audit"
	"github.com/hsmgate/hsmgate/auth"
	"github.com/hsmgate/hsmgate/store"
)

// The audit log's routes (docs/api.md §13): TSB's GET /v1/hsm/log and
// hsmgate's own pages of entries and checkpoints, for the serviceToken.

// Limits of one page of the audit log.
const (
	defaultLogPage = 100
	maxLogPage     = 1000
)

// auditLog returns the log, or a 404 naming the setting when it is off.
func (s *server) auditLog() (*audit.Log, error) {
	if s.audit == nil {
		return nil, newError(http.StatusNotFound, 600, "route.not.found", "the audit log is not enabled (audit.enabled)")
	}
	return s.audit, nil
}

// hsmLog handles GET /v1/hsm/log: TSB's {"log": text}, here the newest
// entries (?limit, default 100) as JSON lines, oldest first.
func (s *server) hsmLog(c *gin.Context) error {
	if _, err := s.auditLog(); err != nil {
		return err
	}
	limit, err := pageLimit(c)
	if err != nil {
		return err
	}
	recs, err := s.store.AuditEntries(c.Request.Context(), store.AuditFilter{Newest: true, Limit: limit})
	if err != nil {
		return err
	}
	var b strings.Builder
	for i := len(recs) - 1; i >= 0; i-- {
		b.Write(recs[i].Line)
		b.WriteByte('\n')
	}
	c.JSON(http.StatusOK, gin.H{"log": b.String()})
	return nil
}

// logEntries handles GET /v1/hsm/log/entries: a page of entries, oldest
// first, after ?after (a seq) and within ?since/?until (RFC 3339), with
// the filters ?key, ?subject, ?action and ?outcome. next is the ?after of
// the following page, null at the end.
func (s *server) logEntries(c *gin.Context) error {
	if _, err := s.auditLog(); err != nil {
		return err
	}
	f := audit.Filter{Key: c.Query("key"), Subject: c.Query("subject"), Action: c.Query("action"), Outcome: c.Query("outcome")}
	var err error
	if f.Limit, err = pageLimit(c); err != nil {
		return err
	}
	if f.AfterSeq, err = querySeq(c, "after"); err != nil {
		return err
	}
	if f.Since, err = queryTime(c, "since"); err != nil {
		return err
	}
	if f.Until, err = queryTime(c, "until"); err != nil {
		return err
	}
	recs, err := audit.Entries(c.Request.Context(), s.store, f)
	if err != nil {
		return err
	}
	entries := make([]json.RawMessage, len(recs))
	for i, r := range recs {
		entries[i] = r.Line
	}
	var next any
	if len(recs) == f.Limit {
		next = recs[len(recs)-1].Seq
	}
	c.JSON(http.StatusOK, gin.H{"entries": entries, "next": next})
	return nil
}

// logCheckpoints handles GET /v1/hsm/log/checkpoints: the audit public
// key (PEM) and its id, and a page of checkpoints over entries after
// ?after.
func (s *server) logCheckpoints(c *gin.Context) error {
	l, err := s.auditLog()
	if err != nil {
		return err
	}
	limit, err := pageLimit(c)
	if err != nil {
		return err
	}
	after, err := querySeq(c, "after")
	if err != nil {
		return err
	}
	cps, err := s.store.AuditCheckpoints(c.Request.Context(), after, limit)
	if err != nil {
		return err
	}
	out := make([]json.RawMessage, len(cps))
	for i, cp := range cps {
		out[i] = cp.Line
	}
	pub := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: l.PublicKey()})
	c.JSON(http.StatusOK, gin.H{"publicKey": string(pub), "keyId": l.KeyID(), "checkpoints": out})
	return nil
}

// pageLimit reads ?limit (1 to maxLogPage, default defaultLogPage).
func pageLimit(c *gin.Context) (int, error) {
	v := c.Query("limit")
	if v == "" {
		return defaultLogPage, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > maxLogPage {
		return 0, errValidation("limit must be a number from 1 to %d", maxLogPage)
	}
	return n, nil
}

// querySeq reads a sequence number parameter (0 when absent).
func querySeq(c *gin.Context, name string) (int64, error) {
	v := c.Query(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, errValidation("%s must be a sequence number (0 or more)", name)
	}
	return n, nil
}

// queryTime reads an RFC 3339 time parameter (zero when absent).
func queryTime(c *gin.Context, name string) (time.Time, error) {
	v := c.Query(name)
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, errValidation("%s must be an RFC 3339 time such as 2026-01-02T15:04:05Z", name)
	}
	return t, nil
}

// credentialKinds name the credential families of the management routes,
// by the route pattern's prefix.
var credentialKinds = []struct{ prefix, kind string }{
	{"/authentication/v1/password/", string(store.KindArgusSession)},
	{"/authentication/v1/session", string(store.KindArgusSession)},
	{"/authentication/v1/user/:user/apikey", string(store.KindArgusAPIKey)},
	{"/authentication/v1/user/:user/publickey", string(store.KindArgusPublicKey)},
	{"/api/v2/barong/", string(store.KindBarong)},
	{"/users/:id/keys", string(store.KindArmor)},
	// Approvers (docs/api.md §9.10): their one-time codes and
	// certificates are credentials too; the id is the approver's name
	// when the path has it.
	{"/v1/approverManagement/", approverKind},
	{"/v1/approver/", approverKind},
}

// approverKind is the credential kind of approver management events.
const approverKind = "approver"

// onboardRoutes use a one-time code: their failures are authentication
// failures, as a refused login is.
var onboardRoutes = map[string]bool{"/v1/approver/onboard": true, "/v1/approverManagement/onboard": true}

// loginRoute issues sessions: its failures are authentication failures.
const loginRoute = "/authentication/v1/password/authenticate"

// audited runs h, a credential management handler, and records what it
// did when it changes credentials (every method but GET): created by
// POST, revoked by DELETE, changed by PATCH; a refused login is an
// authentication failure. The answer is held until the event is stored:
// fail-closed, a log that cannot record refuses the request before it
// runs, or withholds its answer (503), so that no credential's secret
// leaves unrecorded (docs/audit.md §5).
func (s *server) audited(c *gin.Context, h handlerFunc) error {
	if s.audit == nil || c.Request.Method == http.MethodGet {
		return h(c)
	}
	if err := s.audit.Ready(); err != nil {
		return err
	}
	held := &heldWriter{ResponseWriter: c.Writer}
	c.Writer = held
	err := h(c)
	c.Writer = held.ResponseWriter
	ev := credentialEvent(c, err)
	if rerr := s.audit.Record(c.Request.Context(), ev); rerr != nil {
		return rerr
	}
	if err != nil {
		return err // answered by the caller; the handler wrote nothing
	}
	held.release()
	return nil
}

// credentialEvent is the event of a credential management request.
func credentialEvent(c *gin.Context, err error) audit.Event {
	route := c.FullPath()
	ev := audit.Event{Action: audit.ActionCredentialCreate, Outcome: audit.Success, RequestID: audit.RequestID(c.Request.Context()),
		Credential: &audit.Credential{ID: c.Param("keyID") + c.Param("kid") + c.Param("key") + c.Param("idx") + c.Param("name"),
			User: c.Param("user") + c.Param("id")}, Detail: c.Request.Method + " " + route}
	if p := principal(c); p != nil {
		ev.Principal = audit.NewPrincipal(p.Subject, p.Scheme, p.Customers, p.Source)
	}
	for _, k := range credentialKinds {
		if strings.HasPrefix(route, k.prefix) {
			ev.Credential.Kind = k.kind
			break
		}
	}
	switch {
	case (route == loginRoute || onboardRoutes[route]) && err != nil:
		ev.Action = audit.ActionAuthFailure
	case c.Request.Method == http.MethodDelete:
		ev.Action = audit.ActionCredentialRevoke
	case c.Request.Method == http.MethodPatch:
		ev.Action = audit.ActionCredentialUpdate
	}
	if err != nil {
		ev.Outcome, ev.Error = audit.Failure, auth.FailureKind(err)
		if errors.Is(err, approvers.ErrCode) {
			ev.Error = "invalid"
		}
	}
	return ev
}

// heldWriter keeps a handler's answer until release: gin sends the
// status with the first byte of the body, so nothing reaches the client
// before then.
type heldWriter struct {
	gin.ResponseWriter
	body bytes.Buffer
}

// Write holds b.
func (w *heldWriter) Write(b []byte) (int, error) { return w.body.Write(b) }

// WriteString holds s.
func (w *heldWriter) WriteString(s string) (int, error) { return w.body.WriteString(s) }

// WriteHeaderNow waits for release.
func (w *heldWriter) WriteHeaderNow() {}

// release sends what was held.
func (w *heldWriter) release() {
	if w.body.Len() == 0 {
		w.ResponseWriter.WriteHeaderNow()
		return
	}
	_, _ = w.ResponseWriter.Write(w.body.Bytes())
}
