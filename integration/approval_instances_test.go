package integration

import (
	"context"
	"database/sql"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hsmgate/hsmgate/store/storetest"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver, to edit rows by hand
)

// TestApprovalSurvivesRestart: a request made before a restart executes
// when it is approved after it.
func TestApprovalSurvivesRestart(t *testing.T) {
	t.Parallel()
	g := startGateway(t)
	alice := newApprover(t, "alice", "p256")
	label := g.policyKey(t, rule(0, 0, group(1, alice.approval())), "null", "null", "null")
	id := g.asyncSign(t, label, []byte("across a restart"))
	g.stop(t)
	g = startDev(t, g.root, g.state)
	t.Cleanup(func() { g.stop(t) })
	if st := g.requestStatus(t, id); st["status"] != "PENDING" {
		t.Fatalf("after the restart: %v", st)
	}
	alice.approveAll(t, g)
	g.waitStatus(t, id, "EXECUTED")
}

// executions sums hsmgate_approval_executions_total{status=EXECUTED} over
// the gateways' metrics.
func executions(t *testing.T, gateways ...*gateway) int {
	t.Helper()
	re := regexp.MustCompile(`(?m)^hsmgate_approval_executions_total\{operation="sign",status="EXECUTED"\} (\d+)`)
	n := 0
	for _, g := range gateways {
		r := g.mustStatus(t, http.StatusOK, http.MethodGet, "/metrics", "", nil)
		if m := re.FindSubmatch(r.Raw); m != nil {
			v, _ := strconv.Atoi(string(m[1]))
			n += v
		}
	}
	return n
}

// TestApprovalOnSharedPostgres runs two instances on one PostgreSQL
// database: a request made on A and approved on B executes once; eight
// approvals racing over both instances execute it exactly once; rows
// edited or forged in the database execute nothing.
func TestApprovalOnSharedPostgres(t *testing.T) {
	t.Parallel()
	dsn := storetest.Postgres(t)
	a := startGatewayWith(t, func(cfg map[string]any) {
		cfg["store"] = map[string]any{"driver": "postgres", "dsn": dsn}
	})
	b := a.postgresTwin(t)
	alice := newApprover(t, "alice", "p256")

	t.Run("made on A, approved on B", func(t *testing.T) {
		label := a.policyKey(t, rule(0, 0, group(1, alice.approval())), "null", "null", "null")
		id := a.asyncSign(t, label, []byte("A then B"))
		alice.approve(t, b, alice.only(t, b))
		a.waitStatus(t, id, "EXECUTED")
	})

	t.Run("eight racing approvals execute once", func(t *testing.T) {
		before := executions(t, a, b)
		var approvers []*approver
		var entries []string
		for i := range 8 {
			ap := newApprover(t, "racer"+strconv.Itoa(i), "p256")
			approvers, entries = append(approvers, ap), append(entries, ap.approval())
		}
		label := a.policyKey(t, rule(0, 0, group(1, entries...)), "null", "null", "null")
		id := a.asyncSign(t, label, []byte("race"))
		bodies := make([]map[string]any, len(approvers))
		for i, ap := range approvers {
			bodies[i] = ap.approvalBody(t, ap.only(t, a))
		}
		var wg sync.WaitGroup
		statuses := make([]int, len(approvers))
		for i := range approvers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				g := []*gateway{a, b}[i%2]
				statuses[i] = g.call(t, http.MethodPost, "/v1/approval", g.creds.Approver, bodies[i]).Status
			}()
		}
		wg.Wait()
		accepted := 0
		for _, s := range statuses {
			switch s {
			case http.StatusOK:
				accepted++
			case http.StatusNotFound: // the request left PENDING first
			default:
				t.Errorf("a racing approval answered %d", s)
			}
		}
		if accepted == 0 {
			t.Fatalf("no racing approval was accepted: %v", statuses)
		}
		a.waitStatus(t, id, "EXECUTED")
		if n := executions(t, a, b) - before; n != 1 {
			t.Errorf("%d executions for one request, want exactly 1", n)
		}
	})

	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	exec := func(t *testing.T, query string, args ...any) {
		t.Helper()
		res, err := db.ExecContext(context.Background(), query, args...)
		if err != nil {
			t.Fatal(err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			t.Fatalf("%s changed no row", query)
		}
	}

	t.Run("a forged approval row executes nothing", func(t *testing.T) {
		label := a.policyKey(t, rule(0, 0, group(1, alice.approval())), "null", "null", "null")
		id := a.asyncSign(t, label, []byte("forged approval"))
		exec(t, `UPDATE approval_tasks SET state = 'approved', signature = $1, digest_algorithm = 'SHA-256' WHERE request_id = $2`, []byte("not a signature"), id)
		exec(t, `UPDATE approval_requests SET status = 'APPROVED' WHERE id = $1`, id)
		st := b.waitStatus(t, id, "FAILED")
		if st["result"] != nil {
			t.Errorf("a forged approval produced a result: %v", st)
		}
	})

	t.Run("a request edited in the database executes nothing", func(t *testing.T) {
		label := a.policyKey(t, rule(0, 0, group(1, alice.approval())), "null", "null", "null")
		id := a.asyncSign(t, label, []byte("edited"))
		exec(t, `UPDATE approval_requests SET params = convert_to(replace(convert_from(params, 'UTF8'), 'SHA256_WITH_ECDSA', 'SHA512_WITH_ECDSA'), 'UTF8') WHERE id = $1`, id)
		alice.approve(t, a, alice.only(t, a))
		st := a.waitStatus(t, id, "FAILED")
		if st["result"] != nil {
			t.Errorf("an edited request produced a result: %v", st)
		}
		if f, _ := st["failure"].(string); !regexp.MustCompile(`seal`).MatchString(f) {
			t.Errorf("failure = %q, want the seal named", f)
		}
	})
}

// TestApproverCredentialWaived: with approval.approverCredential off, the
// approver's signed timestamp is its only credential, as TSB without API
// keys: an approver with nothing but its key fetches and approves.
func TestApproverCredentialWaived(t *testing.T) {
	t.Parallel()
	g := approvalGateway(t, func(cfg map[string]any) { section(cfg, "approval")["approverCredential"] = false })
	alice := newApprover(t, "alice", "ed25519")
	label := g.policyKey(t, rule(0, 0, group(1, alice.approval())), "null", "null", "null")
	id := g.asyncSign(t, label, []byte("key only"))
	r := g.mustStatus(t, http.StatusOK, http.MethodPost, "/v1/filteredAllApprovalTask", "", alice.proof(time.Now()))
	tasks, _ := r.JSON["tasks"].([]any)
	if len(tasks) != 1 {
		t.Fatalf("tasks without a credential: %s", r.Raw)
	}
	expectError(t, "a bad proof is still refused", g.call(t, http.MethodPost, "/v1/filteredAllApprovalTask", "", alice.proof(time.Now().Add(-time.Hour))),
		403, 404, "input.timestamp.off")
	g.mustStatus(t, http.StatusOK, http.MethodPost, "/v1/approval", "", alice.approvalBody(t, tasks[0].(map[string]any)))
	g.waitStatus(t, id, "EXECUTED")
}
