package main

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Config is everything payment-provider reads from its environment.
type Config struct {
	ListenAddr string
	// DB is parsed from DATABASE_URL; pgx adds PGPASSWORD and the other
	// libpq variables itself.
	DB        *pgxpool.Config
	DBTimeout time.Duration
}

const (
	defaultListenAddr = ":8082"
	defaultDBTimeout  = 2 * time.Second
	defaultDBMaxConns = 10
)

// LoadConfig builds a Config from getenv (os.Getenv in production). Every
// error names the variable at fault.
func LoadConfig(getenv func(string) string) (Config, error) {
	cfg := Config{ListenAddr: defaultListenAddr, DBTimeout: defaultDBTimeout}
	if v := getenv("LISTEN_ADDR"); v != "" {
		if _, _, err := net.SplitHostPort(v); err != nil {
			return Config{}, fmt.Errorf("LISTEN_ADDR %q is not host:port or :port", v)
		}
		cfg.ListenAddr = v
	}
	if v := getenv("DB_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return Config{}, fmt.Errorf("DB_TIMEOUT %q is not a Go duration such as 2s or 1500ms", v)
		}
		if d <= 0 {
			return Config{}, fmt.Errorf("DB_TIMEOUT %q must be greater than zero", v)
		}
		cfg.DBTimeout = d
	}
	db, err := loadDBConfig(getenv, "payments", cfg.DBTimeout)
	if err != nil {
		return Config{}, err
	}
	cfg.DB = db
	return cfg, nil
}

// loadDBConfig reads DATABASE_URL and DB_MAX_CONNS. The password belongs in
// PGPASSWORD; should the URL carry one anyway, no error repeats it.
func loadDBConfig(getenv func(string) string, example string, timeout time.Duration) (*pgxpool.Config, error) {
	raw := getenv("DATABASE_URL")
	if raw == "" {
		return nil, fmt.Errorf("DATABASE_URL is required (for example postgres://%[1]s@%[1]s-db:5432/%[1]s?sslmode=disable, with the password in PGPASSWORD)", example)
	}
	db, err := pgxpool.ParseConfig(raw)
	if err != nil {
		msg := err.Error()
		if pw := urlPassword(raw); pw != "" {
			msg = strings.ReplaceAll(msg, pw, "xxxxx")
		}
		return nil, fmt.Errorf("DATABASE_URL is not a valid PostgreSQL URL: %s", strings.Join(strings.Fields(msg), " "))
	}
	maxConns := defaultDBMaxConns
	if v := getenv("DB_MAX_CONNS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return nil, fmt.Errorf("DB_MAX_CONNS %q must be a whole number from 1 to 1000", v)
		}
		maxConns = n
	}
	db.MaxConns = int32(maxConns)
	db.ConnConfig.ConnectTimeout = timeout
	return db, nil
}

// urlPassword finds the password in a postgres:// URL the way pgx does,
// without needing the rest of the URL to be valid.
func urlPassword(raw string) string {
	_, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return ""
	}
	if i := strings.IndexAny(rest, "@/"); i >= 0 && rest[i] == '@' {
		_, pw, _ := strings.Cut(rest[:i], ":")
		return pw
	}
	return ""
}
