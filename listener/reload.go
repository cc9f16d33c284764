package listener

import (
	"context"
	"errors"
	"maps"
	"os"
	"time"
)

// fileStamp is what Run compares to notice a changed file.
type fileStamp struct {
	modNanos int64
	size     int64
	missing  bool
}

// stampFiles stats the certificate, key and client CA files.
func (s *Server) stampFiles() map[string]fileStamp {
	out := make(map[string]fileStamp, 2+len(s.opts.ClientCAFiles))
	for _, f := range append([]string{s.opts.CertFile, s.opts.KeyFile}, s.opts.ClientCAFiles...) {
		info, err := os.Stat(f)
		if err != nil {
			out[f] = fileStamp{missing: true}
			continue
		}
		out[f] = fileStamp{modNanos: info.ModTime().UnixNano(), size: info.Size()}
	}
	return out
}

// Reload re-reads the server certificate and key and the client CA files
// and makes them the ones new handshakes use; established connections are
// not touched. A part that fails to load (a broken or half-written file)
// is rejected, logged, and its current material stays in use; the error
// names the files.
func (s *Server) Reload() (err error) {
	if s.opts.OnReload != nil {
		defer func() { s.opts.OnReload(err) }() // after the unlock below
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	if err := s.cert.load(s.opts.CertFile, s.opts.KeyFile); err != nil {
		errs = append(errs, err)
	}
	if s.clientCAs != nil {
		if pool, err := LoadCertPool(s.opts.ClientCAFiles...); err != nil {
			errs = append(errs, err)
		} else {
			s.clientCAs = pool
			s.installLocked()
		}
	}
	err = errors.Join(errs...)
	if err != nil {
		s.log.Warn("tls: reload rejected, the previous certificate or client CAs stay in use", "error", err.Error())
	} else {
		s.log.Info("tls: server certificate and client CAs reloaded", "certFile", s.opts.CertFile, "clientCAFiles", s.opts.ClientCAFiles)
	}
	return err
}

// Run rotates the session ticket keys every SessionTicketRotation and
// reloads the certificate, key and client CA files when one of them
// changes (polled every ReloadInterval), until ctx ends.
func (s *Server) Run(ctx context.Context) {
	rotate := time.NewTicker(s.opts.SessionTicketRotation)
	defer rotate.Stop()
	poll := time.NewTicker(s.opts.ReloadInterval)
	defer poll.Stop()
	seen := s.stamps
	for {
		select {
		case <-ctx.Done():
			return
		case <-rotate.C:
			if err := s.RotateTicketKeys(); err != nil {
				s.log.Error("tls: session ticket key rotation failed", "error", err.Error())
			}
		case <-poll.C:
			now := s.stampFiles()
			if maps.Equal(now, seen) {
				continue
			}
			// A failed reload is retried at the next change only, so a
			// broken file is logged once, not every interval.
			seen = now
			_ = s.Reload()
		}
	}
}
