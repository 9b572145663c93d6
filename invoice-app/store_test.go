package main

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"testing"
	"testing/fstest"
	"time"
)

// newTestStore opens a migrated store on a fresh database.
func newTestStore(t *testing.T) (*Store, string) {
	t.Helper()
	conn := newTestDB(t)
	return openStore(t, conn, 2*time.Second), conn
}

// openStore opens another store, with its own pool, on conn and migrates it.
func openStore(t *testing.T, conn string, timeout time.Duration) *Store {
	t.Helper()
	s := NewStore(newTestPool(t, conn, timeout), timeout, defaultClaimLease)
	if _, err := s.Migrate(context.Background()); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return s
}

func mustList(t *testing.T, s *Store) []Invoice {
	t.Helper()
	invoices, err := s.List(context.Background())
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	return invoices
}

func ids[T interface{ id() string }](items []T) []string {
	out := []string{}
	for _, it := range items {
		out = append(out, it.id())
	}
	return out
}

func (inv Invoice) id() string { return inv.InvoiceId }

var seeded = []Invoice{
	{InvoiceId: "I1", Value: "12.15", Currency: "EUR"},
	{InvoiceId: "I2", Value: "10.25", Currency: "GBP"},
	{InvoiceId: "I3", Value: "66.13", Currency: "DKK"},
}

func TestMigrateSeedsOnceAndIsIdempotent(t *testing.T) {
	s, _ := newTestStore(t)
	if got := mustList(t, s); !slices.Equal(got, seeded) {
		t.Fatalf("after the first migration: %+v, want %+v", got, seeded)
	}
	for range 2 {
		applied, err := s.Migrate(context.Background())
		if err != nil || len(applied) != 0 {
			t.Fatalf("migrating again applied %v, %v; want nothing", applied, err)
		}
	}
	if got := mustList(t, s); !slices.Equal(got, seeded) {
		t.Fatalf("after migrating again: %+v, want the three seeds once", got)
	}
	var versions []int
	rows, err := s.pool.Query(context.Background(), "SELECT version FROM schema_migrations ORDER BY version")
	if err == nil {
		for rows.Next() {
			var v int
			_ = rows.Scan(&v)
			versions = append(versions, v)
		}
		err = rows.Err()
	}
	if err != nil || !slices.Equal(versions, []int{1, 2}) {
		t.Fatalf("schema_migrations = %v, %v; want [1 2]", versions, err)
	}
}

// Replicas starting together: each with its own pool, all migrating at once.
func TestMigrateConcurrently(t *testing.T) {
	conn := newTestDB(t)
	const replicas = 8
	stores := make([]*Store, replicas)
	for i := range stores {
		stores[i] = NewStore(newTestPool(t, conn, 10*time.Second), 10*time.Second, defaultClaimLease)
	}
	var wg sync.WaitGroup
	applied := make([][]string, replicas)
	errs := make([]error, replicas)
	start := make(chan struct{})
	for i, s := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			applied[i], errs[i] = s.Migrate(context.Background())
		}()
	}
	close(start)
	wg.Wait()
	var total []string
	for i := range stores {
		if errs[i] != nil {
			t.Errorf("replica %d: %v", i, errs[i])
		}
		if !stores[i].Ready() {
			t.Errorf("replica %d is not ready after migrating", i)
		}
		total = append(total, applied[i]...)
	}
	if want := []string{"001_invoices.sql", "002_seed_invoices.sql"}; !slices.Equal(total, want) {
		t.Errorf("applied across replicas: %v, want %v once", total, want)
	}
	if got := mustList(t, stores[0]); !slices.Equal(got, seeded) {
		t.Errorf("invoices = %+v, want the seeds once", got)
	}
}

func TestLoadMigrations(t *testing.T) {
	good := fstest.MapFS{
		"migrations/002_b.sql":  {Data: []byte("B")},
		"migrations/010_c.sql":  {Data: []byte("C")},
		"migrations/001_a.sql":  {Data: []byte("A")},
		"migrations/readme.txt": {Data: []byte("not a migration")},
	}
	ms, err := loadMigrations(good)
	if err != nil {
		t.Fatal(err)
	}
	var order []int
	for _, m := range ms {
		order = append(order, m.version)
	}
	if !slices.Equal(order, []int{1, 2, 10}) {
		t.Fatalf("order = %v, want [1 2 10]", order)
	}
	for name, fsys := range map[string]fstest.MapFS{
		"no number":  {"migrations/init.sql": {}},
		"zero":       {"migrations/000_init.sql": {}},
		"duplicates": {"migrations/001_a.sql": {}, "migrations/1_b.sql": {}},
	} {
		if _, err := loadMigrations(fsys); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := loadMigrations(migrationFiles); err != nil {
		t.Errorf("the embedded migrations: %v", err)
	}
}

func TestCreateNumbersAfterTheSeeds(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	for i, tt := range []struct{ value, want string }{
		{"12.50", "12.5"},
		{"999999999999.99", "999999999999.99"},
		{"0.10", "0.1"},
		{"7.00", "7"},
	} {
		inv, err := s.Create(ctx, tt.value, "SEK")
		want := Invoice{InvoiceId: "I" + string(rune('4'+i)), Value: json.Number(tt.want), Currency: "SEK"}
		if err != nil || inv != want {
			t.Fatalf("Create(%s) = %+v, %v; want %+v", tt.value, inv, err, want)
		}
	}
	if got := ids(mustList(t, s)); !slices.Equal(got, []string{"I1", "I2", "I3", "I4", "I5", "I6", "I7"}) {
		t.Fatalf("list order = %v", got)
	}
	// Exact decimals: 0.10 + 0.20 is 0.30 in the database, not 0.30000000000000004.
	if _, err := s.Create(ctx, "0.20", "SEK"); err != nil {
		t.Fatal(err)
	}
	var sum string
	if err := s.pool.QueryRow(ctx, "SELECT sum(value)::text FROM invoices WHERE id IN ('I6', 'I8')").Scan(&sum); err != nil || sum != "0.30" {
		t.Fatalf("sum = %q, %v; want 0.30", sum, err)
	}
	// The schema refuses what the handler would refuse.
	for _, bad := range [][2]string{{"0", "EUR"}, {"-1", "EUR"}, {"1", "eur"}, {"1000000000000", "EUR"}} {
		if _, err := s.Create(ctx, bad[0], bad[1]); err == nil {
			t.Errorf("Create(%s, %s) succeeded", bad[0], bad[1])
		}
	}
}

func TestClaimMarkRelease(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()

	a, err := s.Claim(ctx, "replica-a", 0, 2)
	if err != nil || !slices.Equal(ids(a), []string{"I1", "I2"}) {
		t.Fatalf("a claims %v, %v; want I1 I2", ids(a), err)
	}
	b, err := s.Claim(ctx, "replica-b", 0, 10)
	if err != nil || !slices.Equal(ids(b), []string{"I3"}) {
		t.Fatalf("b claims %v, %v; want only I3", ids(b), err)
	}
	if again, _ := s.Claim(ctx, "replica-c", 0, 10); len(again) != 0 {
		t.Fatalf("c claims %v, want nothing while a and b hold every invoice", ids(again))
	}

	inv, ok, err := s.MarkPaid(ctx, "I1")
	if err != nil || !ok || inv != (Invoice{InvoiceId: "I1", Value: "12.15", Currency: "EUR", IsPaid: true}) {
		t.Fatalf("MarkPaid(I1) = %+v, %v, %v", inv, ok, err)
	}
	if _, ok, err := s.MarkPaid(ctx, "I1"); ok || err != nil {
		t.Fatalf("MarkPaid(I1) again = %v, %v; want false, nil", ok, err)
	}

	// Only the holder's release counts; a paid invoice stays paid.
	if err := s.Release(ctx, "replica-b", "I2"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Claim(ctx, "replica-c", 0, 10); len(got) != 0 {
		t.Fatalf("after a foreign release c claims %v, want nothing", ids(got))
	}
	if err := s.Release(ctx, "replica-a", "I1", "I2"); err != nil {
		t.Fatal(err)
	}
	got, err := s.Claim(ctx, "replica-c", 0, 10)
	if err != nil || !slices.Equal(ids(got), []string{"I2"}) {
		t.Fatalf("after a's release c claims %v, %v; want I2", ids(got), err)
	}
	if n, err := s.CountUnpaid(ctx); err != nil || n != 2 {
		t.Fatalf("CountUnpaid = %d, %v; want 2", n, err)
	}
	var claimedBy *string
	if err := s.pool.QueryRow(ctx, "SELECT claimed_by FROM invoices WHERE id = 'I1'").Scan(&claimedBy); err != nil || claimedBy != nil {
		t.Fatalf("paid I1 claimed_by = %v, %v; want NULL", claimedBy, err)
	}
}

func TestClaimStartsAfterTheCursor(t *testing.T) {
	s, _ := newTestStore(t)
	got, err := s.Claim(context.Background(), "r", 1, 10)
	if err != nil || !slices.Equal(ids(got), []string{"I2", "I3"}) {
		t.Fatalf("Claim after 1 = %v, %v; want I2 I3", ids(got), err)
	}
	if got[0].number != 2 || got[1].number != 3 {
		t.Fatalf("numbers = %d %d, want 2 3", got[0].number, got[1].number)
	}
}

// A replica that died holding claims: they are claimable again once the
// lease is over, not before.
func TestClaimTakesOverAnExpiredLease(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	if _, err := s.Claim(ctx, "dead-replica", 0, 2); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Claim(ctx, "live-replica", 0, 10); !slices.Equal(ids(got), []string{"I3"}) {
		t.Fatalf("within the lease: claimed %v, want only I3", ids(got))
	}
	ageClaims(t, s, "dead-replica", defaultClaimLease+time.Second)
	got, err := s.Claim(ctx, "live-replica", 0, 10)
	if err != nil || !slices.Equal(ids(got), []string{"I1", "I2"}) {
		t.Fatalf("after the lease: claimed %v, %v; want I1 I2", ids(got), err)
	}
}

// ageClaims moves replica's claims into the past, as if it had died then.
func ageClaims(t *testing.T, s *Store, replica string, by time.Duration) {
	t.Helper()
	if _, err := s.pool.Exec(context.Background(),
		"UPDATE invoices SET claimed_at = claimed_at - $2::bigint * interval '1 millisecond' WHERE claimed_by = $1",
		replica, by.Milliseconds()); err != nil {
		t.Fatal(err)
	}
}

// Replicas claiming at once never get the same invoice.
func TestConcurrentClaimsAreDisjoint(t *testing.T) {
	s, conn := newTestStore(t)
	insertInvoices(t, s, 400)
	const replicas = 4
	claimed := make([][]string, replicas)
	var wg sync.WaitGroup
	for i := range replicas {
		other := openStore(t, conn, 5*time.Second)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				batch, err := other.Claim(context.Background(), "replica-"+string(rune('a'+i)), 0, 7)
				if err != nil {
					t.Error(err)
					return
				}
				if len(batch) == 0 {
					return
				}
				claimed[i] = append(claimed[i], ids(batch)...)
			}
		}()
	}
	wg.Wait()
	seen := map[string]int{}
	busy := 0
	for _, c := range claimed {
		if len(c) > 0 {
			busy++
		}
		for _, id := range c {
			seen[id]++
		}
	}
	if len(seen) != 403 {
		t.Errorf("%d invoices claimed, want 403", len(seen))
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("%s claimed %d times", id, n)
		}
	}
	if busy < 2 {
		t.Logf("only %d replica(s) got invoices; the race was not exercised this time", busy)
	}
}

// insertInvoices adds n unpaid invoices of 1.01 EUR after the seeds.
func insertInvoices(t *testing.T, s *Store, n int) {
	t.Helper()
	if _, err := s.pool.Exec(context.Background(),
		"INSERT INTO invoices (value, currency) SELECT 1.01, 'EUR' FROM generate_series(1, $1)", n); err != nil {
		t.Fatal(err)
	}
}

func TestTrimAmount(t *testing.T) {
	for in, want := range map[string]string{"12.15": "12.15", "12.50": "12.5", "10.00": "10", "100": "100", "0.05": "0.05"} {
		if got := trimAmount(in); string(got) != want {
			t.Errorf("trimAmount(%s) = %s, want %s", in, got, want)
		}
	}
}
