package api

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/hsmgate/hsmgate/hsm"
	"github.com/hsmgate/hsmgate/roles"
)

// vendor answers "Vendor" in /v1/versionInfo.
const vendor = "hsmgate"

// versionInfo handles GET /v1/versionInfo: TSB's capitalised "Version" and
// "Vendor" (docs/api.md §5.1) beside hsmgate's own members.
func (s *server) versionInfo(c *gin.Context) {
	info := s.hsm.Info()
	c.JSON(http.StatusOK, gin.H{
		"Version": s.build.Version, "Vendor": vendor,
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

// statsCache holds the last statistics of each audience (the customers a
// caller counts, or every key for administrators) and when they were taken.
type statsCache struct {
	mu      sync.Mutex
	entries map[string]statsEntry
}

// statsEntry is one audience's statistics.
type statsEntry struct {
	at    time.Time
	stats *hsm.Statistics
}

// statsAudience names what a caller's statistics count.
func statsAudience(p *roles.Principal) string {
	if p == nil {
		return ""
	}
	if p.Admin {
		return "*all"
	}
	customers := slices.Clone(p.Customers)
	slices.Sort(customers)
	return strings.Join(customers, "\x00")
}

// statistics handles GET /v1/keystore/statistics: the keys of the caller's
// customers.
func (s *server) statistics(c *gin.Context) error {
	p := principal(c)
	audience := statsAudience(p)
	// The lock guards the cached values only: a slow token walk must not
	// hold up callers that can be answered from the cache.
	s.stats.mu.Lock()
	e := s.stats.entries[audience]
	s.stats.mu.Unlock()
	if e.stats == nil || time.Since(e.at) > statsTTL {
		fresh, err := s.keys.Statistics(c.Request.Context(), p)
		if err != nil {
			return err
		}
		e = statsEntry{at: time.Now(), stats: fresh}
		s.stats.mu.Lock()
		if s.stats.entries == nil || len(s.stats.entries) > maxStatsAudiences {
			s.stats.entries = map[string]statsEntry{}
		}
		s.stats.entries[audience] = e
		s.stats.mu.Unlock()
	}
	c.JSON(http.StatusOK, statisticsResponse{Statistics: e.stats, KeyStoreStatistics: summary(e.stats)})
	return nil
}

// statisticsResponse is hsmgate's statistics with TSB's one member, a
// string (docs/api.md §5.3).
type statisticsResponse struct {
	*hsm.Statistics
	KeyStoreStatistics string `json:"keyStoreStatistics"`
}

// summary renders statistics as one line: "3 keys (EC 2, RSA 1)".
func summary(st *hsm.Statistics) string {
	algs := slices.Sorted(maps.Keys(st.ByAlgorithm))
	parts := make([]string, len(algs))
	for i, a := range algs {
		parts[i] = fmt.Sprintf("%s %d", a, st.ByAlgorithm[a])
	}
	if len(parts) == 0 {
		return fmt.Sprintf("%d keys", st.Keys)
	}
	return fmt.Sprintf("%d keys (%s)", st.Keys, strings.Join(parts, ", "))
}

// maxStatsAudiences bounds the cache; past it, it starts afresh.
const maxStatsAudiences = 1024

// healthz answers liveness: the process serves HTTP.
func (s *server) healthz(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
}
