package main

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"
)

// newTestLedger opens a migrated ledger on a fresh database.
func newTestLedger(t *testing.T) (*Ledger, string) {
	t.Helper()
	conn := newTestDB(t)
	return openLedger(t, conn, 2*time.Second), conn
}

// openLedger opens another ledger, with its own pool, on conn and migrates it.
func openLedger(t *testing.T, conn string, timeout time.Duration) *Ledger {
	t.Helper()
	l := NewLedger(newTestPool(t, conn, timeout), timeout)
	if _, err := l.Migrate(context.Background()); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return l
}

func countPayments(t *testing.T, l *Ledger) int {
	t.Helper()
	var n int
	if err := l.pool.QueryRow(context.Background(), "SELECT count(*) FROM payments").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestMigrateIsIdempotent(t *testing.T) {
	l, _ := newTestLedger(t)
	for range 2 {
		applied, err := l.Migrate(context.Background())
		if err != nil || len(applied) != 0 {
			t.Fatalf("migrating again applied %v, %v; want nothing", applied, err)
		}
	}
	var versions []int
	rows, err := l.pool.Query(context.Background(), "SELECT version FROM schema_migrations ORDER BY version")
	if err == nil {
		for rows.Next() {
			var v int
			_ = rows.Scan(&v)
			versions = append(versions, v)
		}
		err = rows.Err()
	}
	if err != nil || !slices.Equal(versions, []int{1}) {
		t.Fatalf("schema_migrations = %v, %v; want [1]", versions, err)
	}
}

// Replicas starting together: each with its own pool, all migrating at once.
func TestMigrateConcurrently(t *testing.T) {
	conn := newTestDB(t)
	const replicas = 8
	var wg sync.WaitGroup
	applied := make([][]string, replicas)
	errs := make([]error, replicas)
	start := make(chan struct{})
	for i := range replicas {
		l := NewLedger(newTestPool(t, conn, 10*time.Second), 10*time.Second)
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			applied[i], errs[i] = l.Migrate(context.Background())
		}()
	}
	close(start)
	wg.Wait()
	var total []string
	for i := range replicas {
		if errs[i] != nil {
			t.Errorf("replica %d: %v", i, errs[i])
		}
		total = append(total, applied[i]...)
	}
	if want := []string{"001_payments.sql"}; !slices.Equal(total, want) {
		t.Errorf("applied across replicas: %v, want %v once", total, want)
	}
}

func TestLoadMigrations(t *testing.T) {
	ms, err := loadMigrations(fstest.MapFS{
		"migrations/002_b.sql": {Data: []byte("B")},
		"migrations/010_c.sql": {Data: []byte("C")},
		"migrations/001_a.sql": {Data: []byte("A")},
	})
	if err != nil || len(ms) != 3 || ms[0].version != 1 || ms[1].version != 2 || ms[2].version != 10 {
		t.Fatalf("loadMigrations = %+v, %v; want versions 1, 2, 10", ms, err)
	}
	for name, fsys := range map[string]fstest.MapFS{
		"no number":  {"migrations/init.sql": {}},
		"zero":       {"migrations/0_init.sql": {}},
		"duplicates": {"migrations/001_a.sql": {}, "migrations/01_b.sql": {}},
	} {
		if _, err := loadMigrations(fsys); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestLedgerRecord(t *testing.T) {
	l, _ := newTestLedger(t)
	ctx := context.Background()
	record := func(id, value, currency string) (bool, error) {
		return l.Record(ctx, Payment{ID: id, Value: json.Number(value), Currency: currency})
	}
	if dup, err := record("I1", "12.15", "EUR"); dup || err != nil {
		t.Fatalf("first booking: duplicate %v, %v", dup, err)
	}
	// The same amount however it is written: a replay, booked once.
	for _, v := range []string{"12.15", "12.150", "1.215e1", "1215E-2"} {
		if dup, err := record("I1", v, "EUR"); !dup || err != nil {
			t.Fatalf("replay with %s: duplicate %v, %v; want a duplicate", v, dup, err)
		}
	}
	// Another amount, however close, or another currency: refused.
	for _, p := range [][2]string{{"12.16", "EUR"}, {"12.14", "EUR"}, {"12.15", "GBP"}} {
		dup, err := record("I1", p[0], p[1])
		var conflict *ConflictError
		if dup || !errors.As(err, &conflict) || conflict.Booked.Value != "12.15" || conflict.Booked.Currency != "EUR" {
			t.Fatalf("I1 as %s %s: duplicate %v, %v; want a conflict naming 12.15 EUR", p[0], p[1], dup, err)
		}
	}
	if dup, err := record("I2", "0.3", "EUR"); dup || err != nil {
		t.Fatalf("I2: %v, %v", dup, err)
	}
	if dup, err := record("I2", "0.30", "EUR"); !dup || err != nil {
		t.Fatalf("I2 again as 0.30: %v, %v; want a duplicate", dup, err)
	}
	if n := countPayments(t, l); n != 2 {
		t.Fatalf("%d payments booked, want 2", n)
	}
	// The ledger holds the amount exactly.
	var sum string
	if err := l.pool.QueryRow(ctx, "SELECT sum(value)::text FROM payments").Scan(&sum); err != nil || sum != "12.45" {
		t.Fatalf("sum = %q, %v; want 12.45", sum, err)
	}
}

func TestLedgerGet(t *testing.T) {
	l, _ := newTestLedger(t)
	ctx := context.Background()
	before := time.Now().Add(-time.Minute)
	if _, err := l.Record(ctx, Payment{ID: "I1", Value: "12.50", Currency: "EUR"}); err != nil {
		t.Fatal(err)
	}
	b, ok, err := l.Get(ctx, "I1")
	if err != nil || !ok || b.ID != "I1" || b.Value != "12.5" || b.Currency != "EUR" || b.BookedAt.Before(before) {
		t.Fatalf("Get(I1) = %+v, %v, %v", b, ok, err)
	}
	if _, ok, err := l.Get(ctx, "I2"); ok || err != nil {
		t.Fatalf("Get(I2) = %v, %v; want not found", ok, err)
	}
}

// Replicas booking one id at once, each with its own pool: exactly one
// booking is new, the rest are duplicates; with another amount, conflicts.
func TestLedgerConcurrentRecord(t *testing.T) {
	l, conn := newTestLedger(t)
	ledgers := []*Ledger{l, openLedger(t, conn, 5*time.Second), openLedger(t, conn, 5*time.Second)}
	var fresh, dups, conflicts atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range 60 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			value := "1.00"
			if i%10 == 9 {
				value = "2.00"
			}
			dup, err := ledgers[i%len(ledgers)].Record(context.Background(), Payment{ID: "I1", Value: json.Number(value), Currency: "EUR"})
			var conflict *ConflictError
			switch {
			case errors.As(err, &conflict):
				conflicts.Add(1)
			case err != nil:
				t.Error(err)
			case dup:
				dups.Add(1)
			default:
				fresh.Add(1)
			}
		}()
	}
	close(start)
	wg.Wait()
	if fresh.Load() != 1 || fresh.Load()+dups.Load()+conflicts.Load() != 60 {
		t.Fatalf("%d new, %d duplicates, %d conflicts; want exactly one new", fresh.Load(), dups.Load(), conflicts.Load())
	}
	b, _, _ := l.Get(context.Background(), "I1")
	wantConflicts := int32(6)
	if b.Value == "2" {
		wantConflicts = 54
	}
	if conflicts.Load() != wantConflicts {
		t.Fatalf("booked %s, %d conflicts; want %d", b.Value, conflicts.Load(), wantConflicts)
	}
	if n := countPayments(t, l); n != 1 {
		t.Fatalf("%d payments booked, want 1", n)
	}
}

func TestTrimAmount(t *testing.T) {
	for in, want := range map[string]string{"12.15": "12.15", "12.50": "12.5", "10.00": "10", "100": "100"} {
		if got := trimAmount(in); string(got) != want {
			t.Errorf("trimAmount(%s) = %s, want %s", in, got, want)
		}
	}
}
