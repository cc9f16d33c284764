package api

import (
	"net/http"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/hsmgate/hsmgate/hsm"
)

// versionInfo handles GET /v1/versionInfo.
func (s *server) versionInfo(c *gin.Context) {
	info := s.hsm.Info()
	c.JSON(http.StatusOK, gin.H{
		"version": s.build.Version, "commit": s.build.Commit, "buildTime": s.build.BuildTime,
		"hsm": gin.H{"library": info.Library, "manufacturer": info.Manufacturer, "model": info.Model, "firmware": info.Firmware},
	})
}

// licenseInfo handles GET /v1/licenseInfo.
func (s *server) licenseInfo(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"clientFlags": []string{"KEY_AUTH", "REST_API", "TSB_ENGINE"}})
}

// statsTTL bounds how stale the cached statistics may be; clients use the
// endpoint as a health check, so it must not walk the token every time.
const statsTTL = 10 * time.Second

// statsCache holds the last statistics and when they were taken.
type statsCache struct {
	mu    sync.Mutex
	at    time.Time
	stats *hsm.Statistics
}

// statistics handles GET /v1/keystore/statistics.
func (s *server) statistics(c *gin.Context) error {
	// The lock guards the cached value only: a slow token walk must not
	// hold up callers that can be answered from the cache.
	s.stats.mu.Lock()
	st, at := s.stats.stats, s.stats.at
	s.stats.mu.Unlock()
	if st == nil || time.Since(at) > statsTTL {
		fresh, err := s.keys.Statistics(c)
		if err != nil {
			return err
		}
		s.stats.mu.Lock()
		s.stats.stats, s.stats.at = fresh, time.Now()
		s.stats.mu.Unlock()
		st = fresh
	}
	c.JSON(http.StatusOK, st)
	return nil
}

// healthz answers liveness: the process serves HTTP.
func (s *server) healthz(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
}
