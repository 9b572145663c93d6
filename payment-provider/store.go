package main

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Payment is one payment as a caller sends it. Value is the exact text of
// the JSON number, so no amount passes through binary floating point.
type Payment struct {
	ID       string      `json:"id"`
	Value    json.Number `json:"value"`
	Currency string      `json:"currency"`
}

// Booking is a payment in the ledger.
type Booking struct {
	ID       string      `json:"id"`
	Value    json.Number `json:"value"`
	Currency string      `json:"currency"`
	BookedAt time.Time   `json:"booked_at"`
}

// ConflictError says a payment's id was booked with another amount or
// currency.
type ConflictError struct {
	Booked Booking
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("payment %q is already booked as %s %s", e.Booked.ID, e.Booked.Value, e.Booked.Currency)
}

// Ledger books payments in PostgreSQL, once per id, shared by every
// replica. Every call is bounded by timeout, so a database that is down or
// slow costs a caller that long at most.
type Ledger struct {
	pool    *pgxpool.Pool
	timeout time.Duration
	ready   atomic.Bool
}

func NewLedger(pool *pgxpool.Pool, timeout time.Duration) *Ledger {
	return &Ledger{pool: pool, timeout: timeout}
}

func (l *Ledger) Ready() bool { return l.ready.Load() }

func (l *Ledger) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	return l.pool.Ping(ctx)
}

// Record books p and reports whether its id had been booked before with the
// same amount and currency, in which case nothing is booked. The same id
// with another amount or currency is a *ConflictError. Amounts compare as
// decimals in SQL: 12.15, 12.150 and 1.215e1 are one amount.
func (l *Ledger) Record(ctx context.Context, p Payment) (duplicate bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	tag, err := l.pool.Exec(ctx,
		"INSERT INTO payments (id, value, currency) VALUES ($1, $2::numeric, $3) ON CONFLICT (id) DO NOTHING",
		p.ID, string(p.Value), p.Currency)
	if err != nil {
		return false, err
	}
	if tag.RowsAffected() == 1 {
		return false, nil
	}
	// Booked before, perhaps a moment ago by another replica: ON CONFLICT
	// waited for that insert to commit, so this statement sees its row.
	var same bool
	var b Booking
	var value string
	err = l.pool.QueryRow(ctx, `
		SELECT value = $2::numeric AND currency = $3, id, value::text, currency, booked_at
		FROM payments WHERE id = $1`, p.ID, string(p.Value), p.Currency).Scan(&same, &b.ID, &value, &b.Currency, &b.BookedAt)
	if err != nil {
		return false, err
	}
	b.Value = trimAmount(value)
	if !same {
		return false, &ConflictError{Booked: b}
	}
	return true, nil
}

func (l *Ledger) Get(ctx context.Context, id string) (Booking, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	var b Booking
	var value string
	err := l.pool.QueryRow(ctx, "SELECT id, value::text, currency, booked_at FROM payments WHERE id = $1", id).
		Scan(&b.ID, &value, &b.Currency, &b.BookedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return Booking{}, false, nil
	}
	b.Value = trimAmount(value)
	b.BookedAt = b.BookedAt.UTC()
	return b, err == nil, err
}

// trimAmount writes numeric(14,2) text the way a JSON number usually looks:
// 12.50 becomes 12.5 and 10.00 becomes 10.
func trimAmount(s string) json.Number {
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return json.Number(s)
}

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrationLock is the advisory lock key under which one replica at a time
// migrates; the others wait, then find nothing left to do.
const migrationLock int64 = 0x7061796d656e7473 // "payments"

type migration struct {
	version int
	name    string
	sql     string
}

// loadMigrations reads migrations/NNN_name.sql in version order.
func loadMigrations(fsys fs.FS) ([]migration, error) {
	names, err := fs.Glob(fsys, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, name := range names {
		base := path.Base(name)
		prefix, _, ok := strings.Cut(base, "_")
		version, err := strconv.Atoi(prefix)
		if !ok || err != nil || version < 1 {
			return nil, fmt.Errorf("migration %s: name must be NNN_description.sql", base)
		}
		if i := slices.IndexFunc(out, func(m migration) bool { return m.version == version }); i >= 0 {
			return nil, fmt.Errorf("migrations %s and %s share version %d", out[i].name, base, version)
		}
		body, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: version, name: base, sql: string(body)})
	}
	slices.SortFunc(out, func(a, b migration) int { return a.version - b.version })
	return out, nil
}

// Migrate applies the migrations this database lacks, all in one
// transaction under an advisory lock, and returns their names.
func (l *Ledger) Migrate(ctx context.Context) ([]string, error) {
	migrations, err := loadMigrations(migrationFiles)
	if err != nil {
		return nil, err
	}
	tx, err := l.pool.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", migrationLock); err != nil {
		return nil, err
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    integer PRIMARY KEY,
		name       text NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return nil, err
	}
	rows, err := tx.Query(ctx, "SELECT version FROM schema_migrations")
	if err != nil {
		return nil, err
	}
	done, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		return nil, err
	}
	applied := []string{}
	for _, m := range migrations {
		if slices.Contains(done, m.version) {
			continue
		}
		if _, err := tx.Exec(ctx, m.sql); err != nil {
			return nil, fmt.Errorf("migration %s: %w", m.name, err)
		}
		if _, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", m.version, m.name); err != nil {
			return nil, err
		}
		applied = append(applied, m.name)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, err
	}
	l.ready.Store(true)
	return applied, nil
}

// MigrateUntilReady retries Migrate with backoff until it succeeds or ctx
// is done, logging every failure, while the server answers 503.
func (l *Ledger) MigrateUntilReady(ctx context.Context, log *slog.Logger) error {
	const maxDelay = 15 * time.Second
	delay := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		// Waiting for another replica's migration takes longer than one call.
		actx, cancel := context.WithTimeout(ctx, max(30*time.Second, 5*l.timeout))
		applied, err := l.Migrate(actx)
		cancel()
		if err == nil {
			log.Info("database schema ready", "applied", applied)
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		log.Warn("database not ready, retrying", "attempt", attempt, "retry_in", delay.String(), "error", err.Error())
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		delay = min(2*delay, maxDelay)
	}
}
