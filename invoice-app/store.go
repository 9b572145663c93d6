package main

import (
	"cmp"
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

// Invoice keeps the field names of the original API, which clients already
// parse. Value is the exact decimal text the database holds, written to JSON
// as a number.
type Invoice struct {
	InvoiceId string
	Value     json.Number
	Currency  string
	IsPaid    bool
}

// claimedInvoice carries its place in creation order.
type claimedInvoice struct {
	number int64
	Invoice
}

// Store keeps invoices in PostgreSQL. Every call is bounded by timeout, so a
// database that is down or slow costs a caller that long at most.
type Store struct {
	pool    *pgxpool.Pool
	timeout time.Duration
	lease   time.Duration
	ready   atomic.Bool
}

func NewStore(pool *pgxpool.Pool, timeout, lease time.Duration) *Store {
	return &Store{pool: pool, timeout: timeout, lease: lease}
}

func (s *Store) Ready() bool { return s.ready.Load() }

func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	return s.pool.Ping(ctx)
}

const invoiceColumns = "id, value::text, currency, paid_at IS NOT NULL"

func scanInvoice(row pgx.Row) (Invoice, error) {
	var inv Invoice
	var value string
	err := row.Scan(&inv.InvoiceId, &value, &inv.Currency, &inv.IsPaid)
	inv.Value = trimAmount(value)
	return inv, err
}

func (s *Store) List(ctx context.Context) ([]Invoice, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	rows, err := s.pool.Query(ctx, "SELECT "+invoiceColumns+" FROM invoices ORDER BY number")
	if err != nil {
		return nil, err
	}
	invoices, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Invoice, error) { return scanInvoice(row) })
	if invoices == nil {
		invoices = []Invoice{}
	}
	return invoices, err
}

// Create adds an unpaid invoice; value is a validated decimal such as 12.50.
func (s *Store) Create(ctx context.Context, value, currency string) (Invoice, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	return scanInvoice(s.pool.QueryRow(ctx,
		"INSERT INTO invoices (value, currency) VALUES ($1::numeric, $2) RETURNING "+invoiceColumns, value, currency))
}

// Claim takes up to n unpaid invoices numbered above after for replica, in
// one statement: rows another replica is claiming at this moment are
// skipped (SKIP LOCKED), and a claim older than the lease is taken over.
func (s *Store) Claim(ctx context.Context, replica string, after int64, n int) ([]claimedInvoice, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	rows, err := s.pool.Query(ctx, `
		WITH next AS (
			SELECT number FROM invoices
			WHERE paid_at IS NULL AND number > $2
			  AND (claimed_by IS NULL OR claimed_at < now() - $4::bigint * interval '1 millisecond')
			ORDER BY number
			LIMIT $3
			FOR UPDATE SKIP LOCKED
		)
		UPDATE invoices i SET claimed_by = $1, claimed_at = now()
		FROM next WHERE i.number = next.number
		RETURNING i.number, i.id, i.value::text, i.currency`,
		replica, after, n, s.lease.Milliseconds())
	if err != nil {
		return nil, err
	}
	claimed, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (claimedInvoice, error) {
		var c claimedInvoice
		var value string
		err := row.Scan(&c.number, &c.InvoiceId, &value, &c.Currency)
		c.Value = trimAmount(value)
		return c, err
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(claimed, func(a, b claimedInvoice) int { return cmp.Compare(a.number, b.number) })
	return claimed, nil
}

// MarkPaid records a payment and drops the claim. It reports false when the
// invoice was paid already, by a replica that took over an expired claim.
func (s *Store) MarkPaid(ctx context.Context, id string) (Invoice, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	inv, err := scanInvoice(s.pool.QueryRow(ctx, `
		UPDATE invoices SET paid_at = now(), claimed_by = NULL, claimed_at = NULL
		WHERE id = $1 AND paid_at IS NULL
		RETURNING `+invoiceColumns, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Invoice{}, false, nil
	}
	return inv, err == nil, err
}

// Release drops replica's claims on ids, so the next run retries them.
func (s *Store) Release(ctx context.Context, replica string, ids ...string) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	_, err := s.pool.Exec(ctx, `
		UPDATE invoices SET claimed_by = NULL, claimed_at = NULL
		WHERE id = ANY($1) AND claimed_by = $2 AND paid_at IS NULL`, ids, replica)
	return err
}

func (s *Store) CountUnpaid(ctx context.Context) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	var n int
	err := s.pool.QueryRow(ctx, "SELECT count(*) FROM invoices WHERE paid_at IS NULL").Scan(&n)
	return n, err
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
const migrationLock int64 = 0x696e766f69636573 // "invoices"

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
func (s *Store) Migrate(ctx context.Context) ([]string, error) {
	migrations, err := loadMigrations(migrationFiles)
	if err != nil {
		return nil, err
	}
	tx, err := s.pool.Begin(ctx)
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
	s.ready.Store(true)
	return applied, nil
}

// MigrateUntilReady retries Migrate with backoff until it succeeds or ctx
// is done, logging every failure, while the server answers 503.
func (s *Store) MigrateUntilReady(ctx context.Context, log *slog.Logger) error {
	const maxDelay = 15 * time.Second
	delay := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		// Waiting for another replica's migration takes longer than one call.
		actx, cancel := context.WithTimeout(ctx, max(30*time.Second, 5*s.timeout))
		applied, err := s.Migrate(actx)
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
