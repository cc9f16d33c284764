// Package server assembles the whole gateway from a validated
// configuration (token, store, replay store, credential schemes, TLS
// listener, authenticator, router and HTTP server) for `hsmgate serve`,
// `hsmgate dev` and the benchmark alike.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/hsmgate/hsmgate/api"
	"github.com/hsmgate/hsmgate/approval"
	"github.com/hsmgate/hsmgate/auth"
	"github.com/hsmgate/hsmgate/hsm"
	"github.com/hsmgate/hsmgate/internal/config"
	"github.com/hsmgate/hsmgate/keys"
	"github.com/hsmgate/hsmgate/listener"
)

// Timeouts and limits of the HTTP server. WriteTimeout bounds a whole
// request including the token's work; IdleTimeout lets keep-alive
// clients reuse their connection between bursts.
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 60 * time.Second
	writeTimeout      = 60 * time.Second
	idleTimeout       = 120 * time.Second
	maxHeaderBytes    = 64 << 10
)

// softHSM2ConfEnv is where SoftHSM2 reads its configuration file from
// (hsm.softhsm2Conf sets it); named here so that the server does not link
// package softhsm, which is for development and tests only.
const softHSM2ConfEnv = "SOFTHSM2_CONF"

// Options are what Run takes besides the configuration.
type Options struct {
	// Log receives the server's log (default slog.Default()).
	Log *slog.Logger
	// LogOutput is where Log writes (default os.Stderr): the access log
	// writes there too, in the format the log: section names.
	LogOutput io.Writer
	// Build is what /v1/versionInfo and the startup line report.
	Build api.Build
	// Ready, when set, receives the bound address once the listener is up.
	Ready func(addr string)
	// HSM, when set, is an open token used instead of opening cfg.HSM; Run
	// leaves it open. The benchmark's in-process mode profiles the server
	// on the token it measures raw.
	HSM *hsm.HSM
}

// Run builds the gateway from cfg, which must pass cfg.Validate (as
// config.Load makes sure), and serves until ctx ends or SIGINT or SIGTERM
// arrives; then clients are told to close their connections for up to
// cfg.Server.DrainDelay (drain.go), and in-flight requests get
// cfg.Server.ShutdownTimeout to finish.
func Run(ctx context.Context, cfg *config.Config, o Options) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	log := o.Log
	if log == nil {
		log = slog.Default()
	}
	for _, w := range cfg.Warnings {
		log.Warn(w)
	}
	tuneRuntime(cfg.Server, log)
	h := o.HSM
	if h == nil {
		var err error
		if h, err = OpenHSM(cfg.HSM, log); err != nil {
			return err
		}
		defer h.Close()
	}
	st, err := OpenStore(ctx, cfg.Store, log)
	if err != nil {
		return err
	}
	defer st.Close()
	auditLog, err := OpenAudit(ctx, cfg.Audit, h, st, log)
	if err != nil {
		return err
	}
	if auditLog != nil {
		// Closed after the shutdown below: in-flight requests record too.
		defer auditLog.Close(context.Background())
	}
	replay, err := newReplay(cfg, st, log)
	if err != nil {
		return err
	}
	schemes, err := buildSchemes(&schemeDeps{cfg: cfg, hsm: h, log: log, store: st, replay: replay})
	if err != nil {
		return err
	}
	lopts := listenerOptions(&cfg.TLS, log)
	lopts.OnReload = reloadRecorder(auditLog)
	tlsSrv, err := listener.NewServer(lopts)
	if err != nil {
		return err
	}
	// The router's connection check (revalidate) re-checks the
	// certificate's OCSP status on every request, so the identifier needs
	// no revalidator.
	certs, err := buildCertIdentifier(cfg, nil)
	if err != nil {
		return err
	}
	proxies, err := cfg.TrustedProxies()
	if err != nil {
		return err
	}
	tc := cfg.Auth.Throttle
	throttle := auth.NewThrottle(auth.ThrottleOptions{SourceFailures: tc.SourceFailures, Window: tc.Window,
		CredentialFailures: tc.CredentialFailures, Backoff: tc.Backoff, MaxBackoff: tc.MaxBackoff,
		PasswordFailures: tc.PasswordFailures, CredentialWindow: tc.CredentialWindow})
	authn := auth.New(auth.Options{Schemes: schemes, Certificates: certs, Throttle: throttle, Audit: recorder(auditLog)})
	var accessLog *api.AccessLog
	if cfg.Server.AccessLog {
		out := o.LogOutput
		if out == nil {
			out = os.Stderr
		}
		accessLog = api.NewAccessLog(out, func(w io.Writer) slog.Handler { return NewLogger(cfg.Log, w).Handler() })
		// Closed when Run returns, after the shutdown below has let the
		// in-flight requests finish: their lines are written out too.
		defer accessLog.Close()
	}
	// The workflow executes through the keys service, and the keys
	// service tells it about deleted keys: one refers to the other.
	var approvals *approval.Service
	ks := keys.New(h, keys.Options{Passwords: throttle.Passwords("key-password"), Audit: recorder(auditLog),
		Approvers: approverResolver{st},
		Deleted: func(ctx context.Context, customer, label string) {
			if err := approvals.CancelKey(ctx, customer, label); err != nil {
				log.Warn("cancel the requests of a deleted key", "key", label, "error", err)
			}
		}})
	if approvals, err = newApprovals(cfg.Approval, h, st, ks, recorder(auditLog), log); err != nil {
		return err
	}
	// Before the store closes: the requests executed at once are recorded
	// after their answer.
	defer func() {
		dctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := approvals.Drain(dctx); err != nil {
			log.Warn("shutdown", "error", err)
		}
	}()
	timestamps, err := certifyGatewayKeys(ctx, cfg.Timestamp, ks)
	if err != nil {
		return err
	}
	var drain drain
	router := api.New(api.Options{
		HSM: h, Keys: ks, Auth: authn, Throttle: throttle, Timestamps: timestamps,
		Approvals: approvals, ApproverCredentialWaived: !cfg.Approval.ApproverCredential,
		RequireBoth: cfg.TLS.RequireBoth, Log: log, MaxBodyBytes: cfg.Server.MaxBodyBytes,
		MaxFileBytes: cfg.Server.MaxFileBytes, FileTimeout: cfg.Server.FileTimeout,
		AccessLog: accessLog, Build: o.Build,
		AppTokens:       appTokenIssuer(schemes),
		Argus:           findScheme[*auth.Argus](schemes),
		Collectors:      append(append(ocspCollectors(tlsSrv), approvals.Collectors()...), auditCollectors(auditLog)...),
		Audit:           auditLog,
		AuditStore:      st,
		Barong:          findScheme[*auth.Barong](schemes),
		Armor:           findScheme[*auth.Armor](schemes),
		ConnectionCheck: revalidate(tlsSrv),
		TrustedProxies:  proxies,
		Store:           st,
		ShuttingDown:    drain.shuttingDown,
		Approvers:       newApprovers(st, h, ks),
	})
	srv := &http.Server{
		Handler:           drain.handler(router),
		ConnState:         drain.trackConn,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	tcp, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	ln := &closeOnce{Listener: tcp}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	runTLS(ctx, tlsSrv, log)
	go approvals.Run(ctx)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(tls.NewListener(ln, tlsSrv.TLSConfig())) }()
	log.Info("hsmgate listening", "addr", ln.Addr().String(), "token", h.Info().Label, "version", o.Build.Version)
	if o.Ready != nil {
		o.Ready(ln.Addr().String())
	}
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down: answers close their connections, /readyz answers 503", "drainDelay", cfg.Server.DrainDelay.String())
	open := drain.run(cfg.Server.DrainDelay, ln)
	log.Info("shutting down, finishing in-flight requests", "timeout", cfg.Server.ShutdownTimeout.String(), "openConnections", open)
	sctx, cancel := context.WithTimeout(context.Background(), cfg.Server.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	// Serve ends with ErrServerClosed, or net.ErrClosed when the drain
	// closed the listener first.
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
		return err
	}
	log.Info("stopped")
	return nil
}

// NewLogger builds the slog logger the log: section asks for, writing to w.
func NewLogger(c config.LogConfig, w io.Writer) *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.Level)); err != nil {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// OpenHSM loads the token the hsm: section names. HSMGATE_HSM_PIN, when
// set, overrides the PIN of the URI.
func OpenHSM(c config.HSMConfig, log *slog.Logger) (*hsm.HSM, error) {
	if c.SoftHSM2Conf != "" {
		if err := os.Setenv(softHSM2ConfEnv, c.SoftHSM2Conf); err != nil {
			return nil, fmt.Errorf("set %s: %w", softHSM2ConfEnv, err)
		}
	}
	hcfg, err := hsm.ParseURI(c.URI)
	if err != nil {
		return nil, fmt.Errorf("hsm.uri: %w", err)
	}
	if pin := os.Getenv("HSMGATE_HSM_PIN"); pin != "" {
		hcfg.PIN = pin
	}
	hcfg.HealthInterval, hcfg.CleanupLeftovers = c.HealthInterval, c.CleanupLeftovers
	hcfg.MinRSAKeySize = c.MinRSAKeySize
	if c.PoolSize != config.Auto {
		hcfg.PoolSize = int(c.PoolSize)
	}
	return hsm.Open(hcfg, log)
}
