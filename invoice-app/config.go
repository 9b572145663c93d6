package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Config is everything invoice-app reads from its environment.
type Config struct {
	ListenAddr         string
	PaymentProviderURL *url.URL
	PaymentTimeout     time.Duration

	// DB is parsed from DATABASE_URL; pgx adds PGPASSWORD and the other
	// libpq variables itself.
	DB        *pgxpool.Config
	DBTimeout time.Duration

	ReplicaID      string
	ClaimLease     time.Duration
	PayConcurrency int
	PayBudget      time.Duration
}

const (
	defaultListenAddr     = ":8081"
	defaultPaymentTimeout = 5 * time.Second
	defaultDBTimeout      = 2 * time.Second
	defaultDBMaxConns     = 10
	defaultClaimLease     = 60 * time.Second
	defaultPayConcurrency = 8
	defaultPayBudget      = 20 * time.Second
)

// LoadConfig builds a Config from getenv (os.Getenv in production). Every
// error names the variable at fault, so a pod that cannot start says why in
// one log line.
func LoadConfig(getenv func(string) string) (Config, error) {
	cfg := Config{
		ListenAddr:     defaultListenAddr,
		PaymentTimeout: defaultPaymentTimeout,
		DBTimeout:      defaultDBTimeout,
		ClaimLease:     defaultClaimLease,
		PayConcurrency: defaultPayConcurrency,
		PayBudget:      defaultPayBudget,
	}
	if v := getenv("LISTEN_ADDR"); v != "" {
		if _, _, err := net.SplitHostPort(v); err != nil {
			return Config{}, fmt.Errorf("LISTEN_ADDR %q is not host:port or :port", v)
		}
		cfg.ListenAddr = v
	}

	raw := getenv("PAYMENT_PROVIDER_URL")
	if raw == "" {
		return Config{}, errors.New("PAYMENT_PROVIDER_URL is required (for example http://payment-provider:8082)")
	}
	u, err := parseProviderURL(raw)
	if err != nil {
		return Config{}, fmt.Errorf("PAYMENT_PROVIDER_URL %q is invalid: %w", raw, err)
	}
	cfg.PaymentProviderURL = u

	durations := []struct {
		name string
		dst  *time.Duration
	}{
		{"PAYMENT_TIMEOUT", &cfg.PaymentTimeout},
		{"DB_TIMEOUT", &cfg.DBTimeout},
		{"CLAIM_LEASE", &cfg.ClaimLease},
		{"PAY_BUDGET", &cfg.PayBudget},
	}
	for _, d := range durations {
		if err := positiveDuration(getenv, d.name, d.dst); err != nil {
			return Config{}, err
		}
	}
	// A live replica's claim must outlast the wait for a free worker and the
	// payment itself, or another replica could send the same invoice at once.
	if minLease := 2*cfg.PaymentTimeout + 4*cfg.DBTimeout; cfg.ClaimLease <= minLease {
		return Config{}, fmt.Errorf("CLAIM_LEASE %s must be longer than 2×PAYMENT_TIMEOUT + 4×DB_TIMEOUT (%s)", cfg.ClaimLease, minLease)
	}
	if err := positiveInt(getenv, "PAY_CONCURRENCY", &cfg.PayConcurrency); err != nil {
		return Config{}, err
	}

	cfg.DB, err = loadDBConfig(getenv, "invoices", cfg.DBTimeout)
	if err != nil {
		return Config{}, err
	}

	cfg.ReplicaID = getenv("HOSTNAME")
	if cfg.ReplicaID == "" {
		b := make([]byte, 8)
		_, _ = rand.Read(b)
		cfg.ReplicaID = "replica-" + hex.EncodeToString(b)
	}
	return cfg, nil
}

// WriteTimeout bounds a whole answer. A pay run spends PAY_BUDGET claiming
// and paying, then lets the payments in flight finish (PAYMENT_TIMEOUT plus
// a few database calls) before it answers.
func (c Config) WriteTimeout() time.Duration {
	return c.PayBudget + c.PaymentTimeout + 4*c.DBTimeout + 5*time.Second
}

func positiveDuration(getenv func(string) string, name string, dst *time.Duration) error {
	v := getenv(name)
	if v == "" {
		return nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return fmt.Errorf("%s %q is not a Go duration such as 5s or 1500ms", name, v)
	}
	if d <= 0 {
		return fmt.Errorf("%s %q must be greater than zero", name, v)
	}
	*dst = d
	return nil
}

func positiveInt(getenv func(string) string, name string, dst *int) error {
	v := getenv(name)
	if v == "" {
		return nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 1000 {
		return fmt.Errorf("%s %q must be a whole number from 1 to 1000", name, v)
	}
	*dst = n
	return nil
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
		return nil, fmt.Errorf("DATABASE_URL is not a valid PostgreSQL URL: %s", oneLine(msg))
	}
	maxConns := defaultDBMaxConns
	if err := positiveInt(getenv, "DB_MAX_CONNS", &maxConns); err != nil {
		return nil, err
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

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func parseProviderURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New("not a URL")
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, errors.New("scheme must be http or https")
	case u.Host == "" || u.Hostname() == "":
		return nil, errors.New("host is missing")
	case u.User != nil:
		return nil, errors.New("credentials do not belong in the URL")
	case u.RawQuery != "" || u.Fragment != "":
		return nil, errors.New("query and fragment are not allowed")
	}
	return u, nil
}
