package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
)

// Environment of Postgres.
const (
	// EnvPostgresDSN names an existing server to create test databases in
	// (a superuser or a role with CREATEDB).
	EnvPostgresDSN = "HSMGATE_TEST_POSTGRES_DSN"
	// EnvPostgres set to "off" skips the PostgreSQL tests; nothing else does.
	EnvPostgres = "HSMGATE_TEST_POSTGRES"
)

// cluster is the PostgreSQL server of this test binary.
var cluster struct {
	once  sync.Once
	admin *sql.DB // connected to the maintenance database
	dsn   string  // DSN of the maintenance database
	err   error
	// keepAlive is the write end of the pipe whose closing at exit stops
	// the cluster started by this binary.
	keepAlive *os.File
}

// Postgres returns the DSN of a fresh, empty PostgreSQL database that is
// dropped when t ends. The server is the one named by
// HSMGATE_TEST_POSTGRES_DSN or, without it, a throw-away cluster this test
// binary starts once (initdb + postgres from /usr/lib/postgresql/*/bin on a
// free loopback port, as user postgres when running as root) and that
// stops and deletes itself when the binary exits, however it exits. The
// test fails when no server can be had; it is skipped only when
// HSMGATE_TEST_POSTGRES=off.
func Postgres(t testing.TB) string {
	t.Helper()
	if os.Getenv(EnvPostgres) == "off" {
		t.Skipf("%s=off: PostgreSQL tests skipped", EnvPostgres)
	}
	cluster.once.Do(func() {
		cluster.dsn = os.Getenv(EnvPostgresDSN)
		if cluster.dsn == "" {
			cluster.dsn, cluster.err = startCluster()
			if cluster.err != nil {
				return
			}
		}
		cluster.admin, cluster.err = sql.Open("pgx", cluster.dsn)
	})
	if cluster.err != nil {
		t.Fatalf("PostgreSQL for tests (set %s, or %s=off to skip): %v", EnvPostgresDSN, EnvPostgres, cluster.err)
	}
	raw := make([]byte, 8)
	_, _ = rand.Read(raw)
	name := "hsmgate_test_" + hex.EncodeToString(raw)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := cluster.admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := cluster.admin.ExecContext(ctx, "DROP DATABASE "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop test database: %v", err)
		}
	})
	dsn, err := withDatabase(cluster.dsn, name)
	if err != nil {
		t.Fatalf("%s: %v", EnvPostgresDSN, err)
	}
	return dsn
}

// withDatabase returns dsn naming database name instead.
func withDatabase(dsn, name string) (string, error) {
	if !strings.HasPrefix(dsn, "postgres://") && !strings.HasPrefix(dsn, "postgresql://") {
		return dsn + " dbname=" + name, nil // key=value form: the last value wins
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return "", errors.New("the DSN URL does not parse")
	}
	u.Path = "/" + name
	return u.String(), nil
}

// startCluster creates and starts a throw-away cluster and returns the DSN
// of its maintenance database.
func startCluster() (string, error) {
	bin, err := postgresBin()
	if err != nil {
		return "", err
	}
	// initdb and postgres refuse to run as root: then they run as the
	// postgres user, in a directory it owns.
	var cred *syscall.Credential
	if os.Getuid() == 0 {
		if cred, err = unprivileged(); err != nil {
			return "", err
		}
	}
	dir, err := os.MkdirTemp("", "hsmgate-pg-")
	if err != nil {
		return "", err
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			os.RemoveAll(dir)
			return "", err
		}
	}
	data := filepath.Join(dir, "data")
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "-A", "trust",
		"-E", "UTF8", "--no-locale", "--no-sync")
	initdb.Dir = dir
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("initdb: %w: %s", err, lastLines(string(out)))
	}
	port, err := freePort()
	if err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	if err := runServer(bin, dir, port, cred); err != nil {
		return "", err
	}
	dsn := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	return dsn, waitReady(dsn, filepath.Join(dir, "postgres.log"))
}

// runServer starts postgres under a shell that waits on a pipe this
// process holds: when the test binary exits, normally or killed, the pipe
// closes and the shell stops the server and deletes the cluster. The
// shell has its own process group and no terminal output, so neither
// Ctrl-C nor `go test` waiting on output streams is involved.
func runServer(bin, dir string, port int, cred *syscall.Credential) error {
	const script = `"$1/postgres" -D "$2/data" -p "$3" -k "$2" -c listen_addresses=127.0.0.1 \
	-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200 >"$2/postgres.log" 2>&1 &
pid=$!
read -r _
kill -INT "$pid"
wait "$pid"
rm -rf "$2"`
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	sh := exec.Command("/bin/sh", "-c", script, "sh", bin, dir, strconv.Itoa(port))
	sh.Dir = dir
	sh.Stdin = r
	sh.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Setpgid: true}
	if err := sh.Start(); err != nil {
		r.Close()
		w.Close()
		os.RemoveAll(dir)
		return fmt.Errorf("start postgres: %w", err)
	}
	r.Close()
	// w stays open for the life of this process; the shell is not waited for.
	cluster.keepAlive = w
	return nil
}

// waitReady waits until the server accepts connections.
func waitReady(dsn, logFile string) error {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err = db.PingContext(ctx)
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(logFile)
			return fmt.Errorf("postgres did not start: %w: %s", err, lastLines(string(log)))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// postgresBin finds the directory of initdb and postgres: the newest
// /usr/lib/postgresql/N/bin (Debian), else the PATH.
func postgresBin() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", errors.New("no PostgreSQL server binaries (initdb): run scripts/install-deps.sh (Debian package postgresql)")
}

// version is N of /usr/lib/postgresql/N/bin.
func version(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

// unprivileged returns the credential of the postgres user (or nobody).
func unprivileged() (*syscall.Credential, error) {
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
		gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
		if err1 == nil && err2 == nil {
			return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
		}
	}
	return nil, errors.New("running as root and there is no postgres or nobody user to run PostgreSQL as")
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// lastLines is the end of a log, for an error message.
func lastLines(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-8):], "\n")
}
