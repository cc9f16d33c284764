package storetest

import (
	"bufio"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
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

// server is a PostgreSQL server tests create databases in.
type server struct {
	dsn   string  // DSN of the maintenance database
	admin *sql.DB // connected to it
}

// shared is the server of Postgres, set up once per test binary.
var shared struct {
	once sync.Once
	srv  *server
	err  error
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
	skipIfOff(t)
	shared.once.Do(func() {
		dsn := os.Getenv(EnvPostgresDSN)
		if dsn == "" {
			var c *Cluster
			if c, shared.err = startCluster(); shared.err != nil {
				return
			}
			// The shared cluster lives as long as the binary: its control
			// pipe is never closed before exit.
			shared.srv = &c.server
			return
		}
		shared.srv, shared.err = connect(dsn)
	})
	if shared.err != nil {
		t.Fatalf("PostgreSQL for tests (set %s, or %s=off to skip): %v", EnvPostgresDSN, EnvPostgres, shared.err)
	}
	return shared.srv.database(t)
}

// skipIfOff skips t when HSMGATE_TEST_POSTGRES=off.
func skipIfOff(t testing.TB) {
	t.Helper()
	if os.Getenv(EnvPostgres) == "off" {
		t.Skipf("%s=off: PostgreSQL tests skipped", EnvPostgres)
	}
}

// connect opens the maintenance database named by dsn.
func connect(dsn string) (*server, error) {
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, err
	}
	return &server{dsn: dsn, admin: admin}, nil
}

// database creates a fresh database on s, dropped when t ends, and
// returns its DSN.
func (s *server) database(t testing.TB) string {
	t.Helper()
	raw := make([]byte, 8)
	_, _ = rand.Read(raw)
	name := "hsmgate_test_" + hex.EncodeToString(raw)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := s.admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := s.admin.ExecContext(ctx, "DROP DATABASE "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop test database: %v", err)
		}
	})
	dsn, err := withDatabase(s.dsn, name)
	if err != nil {
		t.Fatalf("%s: %v", EnvPostgresDSN, err)
	}
	return dsn
}

// Cluster is a throw-away PostgreSQL server of one test, which it may stop
// and start again (an outage) while clients hold connections to it.
type Cluster struct {
	server
	logFile string
	// mu serialises the commands to the shell that runs the server.
	mu sync.Mutex
	// control is the write end of the shell's command pipe: a line
	// "stop" or "start" is a command, and its closing (at the end of the
	// test, or when the binary exits however it exits) stops the server
	// and deletes the cluster. The shell answers each command on acks.
	control *os.File
	acks    *bufio.Reader
}

// NewCluster starts a cluster of t's own on a free loopback port, stopped
// and deleted when t ends. It needs the server binaries even when
// HSMGATE_TEST_POSTGRES_DSN names a server (that one cannot be stopped),
// and is skipped only when HSMGATE_TEST_POSTGRES=off.
func NewCluster(t testing.TB) *Cluster {
	t.Helper()
	skipIfOff(t)
	c, err := startCluster()
	if err != nil {
		t.Fatalf("PostgreSQL cluster for this test (or %s=off to skip): %v", EnvPostgres, err)
	}
	t.Cleanup(func() {
		c.admin.Close()
		c.control.Close()
		// The shell closes its end of the acks when it has stopped the
		// server and deleted the cluster.
		_, _ = io.Copy(io.Discard, c.acks)
	})
	return c
}

// Database returns the DSN of a fresh, empty database on c, dropped when
// t ends.
func (c *Cluster) Database(t testing.TB) string {
	t.Helper()
	return c.database(t)
}

// Stop shuts the server down the way an operator's restart does (fast
// shutdown: open connections are terminated with SQLSTATE 57P01) and
// returns once it has exited; its port refuses connections until Start.
func (c *Cluster) Stop(t testing.TB) {
	t.Helper()
	if err := c.command("stop"); err != nil {
		t.Fatalf("stop PostgreSQL: %v", err)
	}
}

// Start starts the stopped server again on the same port and data and
// returns once it accepts connections.
func (c *Cluster) Start(t testing.TB) {
	t.Helper()
	if err := c.command("start"); err != nil {
		t.Fatalf("start PostgreSQL: %v", err)
	}
	if err := waitReady(c.dsn, c.logFile); err != nil {
		t.Fatal(err)
	}
}

// command sends one command to the shell and waits for its answer.
func (c *Cluster) command(cmd string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, err := fmt.Fprintln(c.control, cmd); err != nil {
		return err
	}
	ack, err := c.acks.ReadString('\n')
	if err != nil {
		return fmt.Errorf("no answer from the shell running the server: %w", err)
	}
	if strings.TrimSpace(ack) != cmd {
		return fmt.Errorf("the shell running the server answered %q to %q", ack, cmd)
	}
	return nil
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

// startCluster creates and starts a throw-away cluster; c.dsn names its
// maintenance database.
func startCluster() (*Cluster, error) {
	bin, err := postgresBin()
	if err != nil {
		return nil, err
	}
	// initdb and postgres refuse to run as root: then they run as the
	// postgres user, in a directory it owns.
	var cred *syscall.Credential
	if os.Getuid() == 0 {
		if cred, err = unprivileged(); err != nil {
			return nil, err
		}
	}
	dir, err := os.MkdirTemp("", "hsmgate-pg-")
	if err != nil {
		return nil, err
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	data := filepath.Join(dir, "data")
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "-A", "trust",
		"-E", "UTF8", "--no-locale", "--no-sync")
	initdb.Dir = dir
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %w: %s", err, lastLines(string(out)))
	}
	port, err := freePort()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	c := &Cluster{logFile: filepath.Join(dir, "postgres.log")}
	if err := c.runServer(bin, dir, port, cred); err != nil {
		return nil, err
	}
	dsn := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	if err := waitReady(dsn, c.logFile); err != nil {
		c.control.Close()
		return nil, err
	}
	srv, err := connect(dsn)
	if err != nil {
		c.control.Close()
		return nil, err
	}
	c.server = *srv
	return c, nil
}

// runServer starts postgres under a shell that reads commands from a pipe
// this process holds (Cluster.control) and answers each on another: when
// the pipe closes, because the test ended or the binary exited, normally
// or killed, the shell stops the server and deletes the cluster. The shell
// has its own process group and no terminal output, so neither Ctrl-C nor
// `go test` waiting on output streams is involved; it ignores SIGPIPE, so
// that an answer nobody reads any more cannot kill it before it cleans up.
func (c *Cluster) runServer(bin, dir string, port int, cred *syscall.Credential) error {
	const script = `trap '' PIPE
bin=$1 dir=$2 port=$3 pid=
start() {
	"$bin/postgres" -D "$dir/data" -p "$port" -k "$dir" -c listen_addresses=127.0.0.1 \
		-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200 >>"$dir/postgres.log" 2>&1 &
	pid=$!
}
stop() {
	[ -z "$pid" ] || { kill -INT "$pid"; wait "$pid"; }
	pid=
}
start
while read -r cmd; do
	case $cmd in
	start) [ -n "$pid" ] || start ;;
	stop) stop ;;
	esac
	echo "$cmd"
done
stop
rm -rf "$dir"`
	cr, cw, err := os.Pipe()
	if err != nil {
		return err
	}
	ar, aw, err := os.Pipe()
	if err != nil {
		cr.Close()
		cw.Close()
		return err
	}
	sh := exec.Command("/bin/sh", "-c", script, "sh", bin, dir, strconv.Itoa(port))
	sh.Dir = dir
	sh.Stdin, sh.Stdout = cr, aw
	sh.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Setpgid: true}
	err = sh.Start()
	cr.Close()
	aw.Close()
	if err != nil {
		cw.Close()
		ar.Close()
		os.RemoveAll(dir)
		return fmt.Errorf("start postgres: %w", err)
	}
	// The shell is not waited for: it outlives this process by the time
	// it takes to clean up.
	c.control, c.acks = cw, bufio.NewReader(ar)
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
