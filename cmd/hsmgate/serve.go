package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/hsmgate/hsmgate/api"
	"github.com/hsmgate/hsmgate/auth"
	"github.com/hsmgate/hsmgate/hsm"
	"github.com/hsmgate/hsmgate/keys"
	"github.com/hsmgate/hsmgate/listener"
	"github.com/hsmgate/hsmgate/softhsm"
	"gopkg.in/yaml.v3"
)

// serveCommand runs `hsmgate serve --config FILE`.
func serveCommand(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	path := fs.String("config", "hsmgate.yaml", "configuration file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		return err
	}
	return serve(context.Background(), cfg, newLogger(cfg.Log, os.Stderr), nil)
}

// newLogger builds the slog logger the configuration asks for.
func newLogger(c LogConfig, w io.Writer) *slog.Logger {
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

// openHSM loads the token named by the configuration.
func openHSM(cfg *Config, log *slog.Logger) (*hsm.HSM, error) {
	if cfg.HSM.SoftHSM2Conf != "" {
		if err := os.Setenv(softhsm.ConfEnv, cfg.HSM.SoftHSM2Conf); err != nil {
			return nil, err
		}
	}
	hcfg, err := hsm.ParseURI(cfg.HSM.URI)
	if err != nil {
		return nil, fmt.Errorf("hsm.uri: %w", err)
	}
	if pin := os.Getenv("HSMGATE_HSM_PIN"); pin != "" {
		hcfg.PIN = pin
	}
	if cfg.HSM.PoolSize > 0 {
		hcfg.PoolSize = cfg.HSM.PoolSize
	}
	return hsm.Open(hcfg, log)
}

// serve runs the HTTPS server until ctx ends or SIGINT/SIGTERM arrives,
// then lets in-flight requests finish. ready, when set, receives the bound
// address once the listener is up.
func serve(ctx context.Context, cfg *Config, log *slog.Logger, ready func(addr string)) error {
	tuneRuntime(cfg.Server, log)
	h, err := openHSM(cfg, log)
	if err != nil {
		return err
	}
	defer h.Close()
	st, err := openStore(ctx, cfg.Store, log)
	if err != nil {
		return err
	}
	defer st.Close()
	replay, err := newReplay(cfg, st, log)
	if err != nil {
		return err
	}
	schemes, err := buildSchemes(&schemeDeps{cfg: cfg, hsm: h, log: log, store: st, replay: replay})
	if err != nil {
		return err
	}
	tlsSrv, err := listener.NewServer(cfg.TLS.serverOptions(log))
	if err != nil {
		return err
	}
	// The revalidating handler below re-checks the certificate's OCSP
	// status on every request, so the identifier needs no revalidator.
	certs, err := buildCertIdentifier(cfg, nil)
	if err != nil {
		return err
	}
	throttle := auth.NewThrottle(cfg.Auth.Throttle.SourceFailures, cfg.Auth.Throttle.CredentialFailures, cfg.Auth.Throttle.Window)
	authn := auth.New(auth.Options{Schemes: schemes, Certificates: certs, Throttle: throttle})
	router := api.New(api.Options{
		HSM: h, Keys: keys.New(h, keys.Options{}), Auth: authn, Throttle: throttle, RequireBoth: cfg.TLS.RequireBoth, Log: log, MaxBodyBytes: cfg.Server.MaxBodyBytes,
		AccessLog: *cfg.Server.AccessLog, Build: api.Build{Version: version, Commit: commit, BuildTime: buildTime},
		AppTokens:  appTokenIssuer(schemes),
		Argus:      findScheme[*auth.Argus](schemes),
		Collectors: ocspCollectors(tlsSrv),
		Barong:     findScheme[*auth.Barong](schemes),
		Armor:      findScheme[*auth.Armor](schemes),
	})
	srv := &http.Server{
		Handler:           revalidating(tlsSrv, router),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	runTLS(ctx, tlsSrv, log)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(tls.NewListener(ln, tlsSrv.TLSConfig())) }()
	log.Info("hsmgate listening", "addr", ln.Addr().String(), "token", h.Info().Label, "version", version)
	if ready != nil {
		ready(ln.Addr().String())
	}
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down, finishing in-flight requests", "timeout", cfg.Server.ShutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), cfg.Server.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	log.Info("stopped")
	return nil
}

// tokenCommand runs `hsmgate token verifier --config FILE`: it reads a
// static token from standard input and prints the verifier to configure.
func tokenCommand(args []string) error {
	if len(args) == 0 || args[0] != "verifier" {
		return fmt.Errorf("usage: hsmgate token verifier --config FILE < token")
	}
	fs := flag.NewFlagSet("token verifier", flag.ContinueOnError)
	path := fs.String("config", "hsmgate.yaml", "configuration file")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	raw, err := os.ReadFile(*path)
	if err != nil {
		return err
	}
	var cfg Config
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		return err
	}
	if err := cfg.applyEnv(os.Getenv); err != nil {
		return err
	}
	h, err := openHSM(&cfg, slog.New(slog.NewTextHandler(os.Stderr, nil)))
	if err != nil {
		return err
	}
	defer h.Close()
	tok, err := io.ReadAll(io.LimitReader(os.Stdin, 4096))
	if err != nil {
		return err
	}
	v, err := auth.Verifier(context.Background(), h, strings.TrimSpace(string(tok)))
	if err != nil {
		return err
	}
	fmt.Println(v)
	return nil
}
