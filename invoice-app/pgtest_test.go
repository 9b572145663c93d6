package main

// A real PostgreSQL for the tests. With DATABASE_URL set, every test gets a
// fresh database on that server (its user needs CREATEDB) and drops it when
// done. Without it, the first test that needs a database starts a throwaway
// server: initdb into a temporary directory, postgres listening on
// 127.0.0.1 and a free port with its socket in that directory. TestMain
// stops it and removes the directory.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

var pg struct {
	once   sync.Once
	err    error
	admin  string // connection string of a database to run CREATE DATABASE in
	server *pgServer
	n      atomic.Int64
}

func TestMain(m *testing.M) {
	code := m.Run()
	if pg.server != nil {
		if err := pg.server.stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping the test PostgreSQL:", err)
		}
		_ = os.RemoveAll(pg.server.dir)
	}
	os.Exit(code)
}

// newTestDB creates an empty database and returns its connection string.
func newTestDB(t *testing.T) string {
	t.Helper()
	pg.once.Do(func() {
		if u := os.Getenv("DATABASE_URL"); u != "" {
			pg.admin = u
			return
		}
		dir, err := os.MkdirTemp(fastTempDir(), "pgtest-")
		if err != nil {
			pg.err = err
			return
		}
		pg.server, pg.err = newPGServer(dir)
		if pg.err != nil {
			_ = os.RemoveAll(dir)
			return
		}
		pg.admin = pg.server.url("postgres")
	})
	if pg.err != nil {
		t.Fatal(pg.err)
	}
	name := fmt.Sprintf("test_%d_%d", os.Getpid(), pg.n.Add(1))
	adminExec(t, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	// Registered before any pool on it, so it runs after they close.
	t.Cleanup(func() { adminExec(t, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)") })
	return withDatabase(pg.admin, name)
}

// newThrowawayServer starts a PostgreSQL of the test's own, for tests that
// stop and start it.
func newThrowawayServer(t *testing.T) *pgServer {
	t.Helper()
	dir, err := os.MkdirTemp(fastTempDir(), "pgtest-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	srv, err := newPGServer(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.stop() })
	return srv
}

func adminExec(t *testing.T, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, pg.admin)
	if err != nil {
		t.Fatalf("connect to the test server: %v", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// withDatabase points a URL or a key=value connection string at database.
func withDatabase(conn, database string) string {
	if u, err := url.Parse(conn); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		u.Path = "/" + database
		u.RawPath = ""
		return u.String()
	}
	return conn + " dbname=" + database
}

// newTestPool opens a pool on conn that closes when the test ends.
func newTestPool(t *testing.T, conn string, timeout time.Duration) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(conn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = defaultDBMaxConns
	cfg.ConnConfig.ConnectTimeout = timeout
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// pgServer is a throwaway PostgreSQL cluster run by the tests.
type pgServer struct {
	bin    string // directory holding initdb and postgres
	dir    string // the cluster lives in dir/data; the socket and log in dir
	port   int
	cmd    *exec.Cmd
	exited chan struct{}
}

// newPGServer runs initdb in dir and starts postgres.
func newPGServer(dir string) (*pgServer, error) {
	const alternative = "or set DATABASE_URL to a PostgreSQL server whose user may create databases"
	if os.Geteuid() == 0 {
		return nil, errors.New("the tests start a throwaway PostgreSQL, and initdb and postgres refuse to run as root: " +
			"run go test as an ordinary user (for example runuser -u <user> -- go test ./...), " + alternative)
	}
	bin, err := findPostgresBin()
	if err != nil {
		return nil, fmt.Errorf("%v: install the PostgreSQL server (Debian and Ubuntu: apt-get install postgresql; "+
			"Fedora: dnf install postgresql-server; macOS: brew install postgresql), %s", err, alternative)
	}
	s := &pgServer{bin: bin, dir: dir}
	out, err := exec.Command(filepath.Join(bin, "initdb"), "-D", filepath.Join(dir, "data"), "-U", "postgres",
		"--auth=trust", "--no-sync", "--encoding=UTF8", "--locale=C").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	// A free port can be taken between choosing and binding it; try again.
	for attempt := 1; ; attempt++ {
		s.port, err = freePort()
		if err == nil {
			err = s.start()
		}
		if err == nil || attempt == 3 {
			return s, err
		}
	}
}

// findPostgresBin looks for initdb on PATH, then for the newest version
// under /usr/lib/postgresql (Debian and Ubuntu keep it there, off PATH).
func findPostgresBin() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int {
		va, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(a)), 64)
		vb, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(b)), 64)
		return cmp.Compare(vb, va)
	})
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", errors.New("initdb is neither on PATH nor in /usr/lib/postgresql/*/bin")
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func (s *pgServer) url(database string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.port, database)
}

// start runs postgres and waits until it accepts connections.
func (s *pgServer) start() error {
	logFile, err := os.OpenFile(filepath.Join(s.dir, "postgres.log"), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer logFile.Close()
	cmd := exec.Command(filepath.Join(s.bin, "postgres"), "-D", filepath.Join(s.dir, "data"),
		"-h", "127.0.0.1", "-p", strconv.Itoa(s.port), "-k", s.dir,
		// Durability is worth nothing to a throwaway server.
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=300")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	killWithParent(cmd)
	started := make(chan error, 1)
	exited := make(chan struct{})
	go func() {
		// The parent-death signal fires when the thread that started the
		// child ends, so this goroutine keeps its thread until postgres is
		// gone.
		runtime.LockOSThread()
		err := cmd.Start()
		started <- err
		if err == nil {
			_ = cmd.Wait()
		}
		close(exited)
	}()
	if err := <-started; err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	s.cmd, s.exited = cmd, exited

	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-exited:
			return fmt.Errorf("postgres exited at start:\n%s", s.logTail())
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		conn, err := pgx.Connect(ctx, s.url("postgres"))
		cancel()
		if err == nil {
			_ = conn.Close(context.Background())
			return nil
		}
		if time.Now().After(deadline) {
			_ = s.stop()
			return fmt.Errorf("postgres did not accept connections within 30s: %v\n%s", err, s.logTail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop shuts postgres down the fast way: sessions are ended, nothing is lost.
func (s *pgServer) stop() error {
	if s.cmd == nil {
		return nil
	}
	defer func() { s.cmd = nil }()
	_ = s.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-s.exited:
		return nil
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
		return errors.New("postgres did not stop within 30s and was killed")
	}
}

func (s *pgServer) logTail() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "postgres.log"))
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// dbProxy sits between the services and a real PostgreSQL, to take the
// database away without touching the server other tests use: "down" ends
// every connection and refuses new ones, as a stopped server does; "hang"
// accepts connections and drops every byte, as a paused server or a broken
// network does. Connections that lost bytes are ended when it changes back.
type dbProxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	mode  string
	conns map[net.Conn]struct{}
}

func newDBProxy(t *testing.T, target string) *dbProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &dbProxy{ln: ln, target: target, mode: "up", conns: map[net.Conn]struct{}{}}
	go p.serve()
	t.Cleanup(func() {
		ln.Close()
		p.set("down")
	})
	return p
}

// proxiedURL returns conn with its host and port replaced by the proxy's.
func (p *dbProxy) proxiedURL(t *testing.T, conn string) string {
	t.Helper()
	u, err := url.Parse(conn)
	if err != nil || u.Host == "" {
		t.Fatalf("the proxy tests need DATABASE_URL as a postgres:// URL with a host, not %q", conn)
	}
	u.Host = p.ln.Addr().String()
	return u.String()
}

func (p *dbProxy) set(mode string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mode == "hang" || mode == "down" {
		for c := range p.conns {
			c.Close()
		}
	}
	p.mode = mode
}

func (p *dbProxy) current() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mode
}

func (p *dbProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mode == "down" {
		c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *dbProxy) serve() {
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		if !p.track(client) {
			continue
		}
		go func() {
			server, err := net.Dial("tcp", p.target)
			if err != nil || !p.track(server) {
				client.Close()
				return
			}
			go p.pipe(server, client)
			p.pipe(client, server)
		}()
	}
}

func (p *dbProxy) pipe(dst, src net.Conn) {
	defer func() {
		dst.Close()
		src.Close()
		p.mu.Lock()
		delete(p.conns, dst)
		delete(p.conns, src)
		p.mu.Unlock()
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			switch p.current() {
			case "down":
				return
			case "up":
				if _, err := dst.Write(buf[:n]); err != nil {
					return
				}
			}
		}
		if err != nil {
			return
		}
	}
}

// hostPort is the address of the server conn points at.
func hostPort(t *testing.T, conn string) string {
	t.Helper()
	cfg, err := pgx.ParseConfig(conn)
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasPrefix(cfg.Host, "/") {
		t.Fatalf("the proxy tests need a TCP server, not the socket %s", cfg.Host)
	}
	return net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port)))
}
