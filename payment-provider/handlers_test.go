package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestDecodePayment(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		want    Payment
		wantErr string
	}{
		{name: "valid", body: `{"id":"I1","value":12.15,"currency":"EUR"}`, want: Payment{"I1", "12.15", "EUR"}},
		{name: "valid with whitespace", body: " \n{\"currency\":\"DKK\", \"value\":66.13, \"id\":\"I3\"}\n ", want: Payment{"I3", "66.13", "DKK"}},
		{name: "integer value", body: `{"id":"I1","value":12,"currency":"EUR"}`, want: Payment{"I1", "12", "EUR"}},
		{name: "exact text kept", body: `{"id":"I1","value":12.150,"currency":"EUR"}`, want: Payment{"I1", "12.150", "EUR"}},
		{name: "exponent", body: `{"id":"I1","value":1.215e1,"currency":"EUR"}`, want: Payment{"I1", "1.215e1", "EUR"}},
		{name: "largest", body: `{"id":"I1","value":999999999999.99,"currency":"EUR"}`, want: Payment{"I1", "999999999999.99", "EUR"}},
		{name: "empty body", body: ``, wantErr: "request body is empty"},
		{name: "whitespace only", body: "  \n", wantErr: "request body is empty"},
		{name: "malformed", body: `{"id":"I1",}`, wantErr: "malformed JSON"},
		{name: "truncated", body: `{"id":"I1"`, wantErr: "truncated"},
		{name: "not an object", body: `[1,2]`, wantErr: "must be a JSON object"},
		{name: "string body", body: `"pay me"`, wantErr: "must be a JSON object"},
		{name: "null", body: `null`, wantErr: `"id" is required`},
		{name: "two objects", body: `{"id":"I1","value":1,"currency":"EUR"}{"id":"I2","value":1,"currency":"EUR"}`, wantErr: "single JSON object"},
		{name: "trailing garbage", body: `{"id":"I1","value":1,"currency":"EUR"} x`, wantErr: "single JSON object"},
		{name: "missing id", body: `{"value":1,"currency":"EUR"}`, wantErr: `"id" is required`},
		{name: "empty id", body: `{"id":"","value":1,"currency":"EUR"}`, wantErr: `"id" is required`},
		{name: "long id", body: `{"id":"` + strings.Repeat("x", 129) + `","value":1,"currency":"EUR"}`, wantErr: `"id" is longer`},
		{name: "missing value", body: `{"id":"I1","currency":"EUR"}`, wantErr: `"value" is required`},
		{name: "zero value", body: `{"id":"I1","value":0,"currency":"EUR"}`, wantErr: `"value" is required`},
		{name: "negative value", body: `{"id":"I1","value":-5,"currency":"EUR"}`, wantErr: `"value" must be a positive`},
		{name: "huge value", body: `{"id":"I1","value":1e400,"currency":"EUR"}`, wantErr: `"value" is out of range`},
		{name: "too large for the ledger", body: `{"id":"I1","value":1e12,"currency":"EUR"}`, wantErr: `"value" must be less than 1000000000000`},
		{name: "three decimals", body: `{"id":"I1","value":12.155,"currency":"EUR"}`, wantErr: `at most two decimal places`},
		{name: "tiny", body: `{"id":"I1","value":1e-300,"currency":"EUR"}`, wantErr: `at most two decimal places`},
		{name: "value as string", body: `{"id":"I1","value":"12.15","currency":"EUR"}`, wantErr: `field "value" must be a number, not string`},
		{name: "id as number", body: `{"id":1,"value":1,"currency":"EUR"}`, wantErr: `field "id" must be a string, not number`},
		{name: "currency as bool", body: `{"id":"I1","value":1,"currency":true}`, wantErr: `field "currency" must be a string, not bool`},
		{name: "missing currency", body: `{"id":"I1","value":1}`, wantErr: `"currency" is required`},
		{name: "lowercase currency", body: `{"id":"I1","value":1,"currency":"eur"}`, wantErr: `"currency" must be a three-letter`},
		{name: "long currency", body: `{"id":"I1","value":1,"currency":"EURO"}`, wantErr: `"currency" must be a three-letter`},
		{name: "unknown field", body: `{"id":"I1","value":1,"currency":"EUR","note":"x"}`, wantErr: `unknown field "note"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodePayment(strings.NewReader(tt.body))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

// FuzzDecodePayment: no input may panic the decoder, and whatever it
// accepts must be a valid payment that survives a round trip. The seed
// corpus below runs as part of go test.
func FuzzDecodePayment(f *testing.F) {
	for _, seed := range []string{
		`{"id":"I1","value":12.15,"currency":"EUR"}`,
		`{"id":"I2","value":1e-300,"currency":"GBP"}`,
		`{"id":"I2","value":0.5e1,"currency":"GBP"}`,
		`{"id":"I1","value":1.7976931348623157e308,"currency":"DKK"}`,
		`{"id":"I1","value":999999999999.995,"currency":"DKK"}`,
		`{"id":"\u00e9\ud83d\ude00","value":3,"currency":"SEK"}`,
		`{"id":"I1","value":1,"currency":"EUR","id":"I2"}`,
		`{"ID":"I1","VALUE":1,"Currency":"EUR"}`,
		`{"id":"I1","value":-0,"currency":"EUR"}`,
		`{"id":null,"value":null,"currency":null}`,
		`{"id":"I1","value":1,"currency":"EUR"}garbage`,
		`[{"id":"I1"}]`,
		`{`, ``, `null`, `"\xff"`, "\x00",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := DecodePayment(strings.NewReader(string(body)))
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		if p.ID == "" || len(p.ID) > 128 {
			t.Fatalf("accepted bad id %q", p.ID)
		}
		if f, err := p.Value.Float64(); err != nil || !(f > 0) || math.IsInf(f, 0) || checkAmount(p.Value) != nil {
			t.Fatalf("accepted bad value %v", p.Value)
		}
		if !isCurrencyCode(p.Currency) {
			t.Fatalf("accepted bad currency %q", p.Currency)
		}
		again, err := json.Marshal(p)
		if err != nil {
			t.Fatalf("re-encode %+v: %v", p, err)
		}
		back, err := DecodePayment(strings.NewReader(string(again)))
		if err != nil || back != p {
			t.Fatalf("round trip of %+v gave %+v, %v", p, back, err)
		}
	})
}

func quietLogger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(io.Discard, nil))
}

func TestHTTPSurface(t *testing.T) {
	tests := []struct {
		name         string
		method       string
		target       string
		body         string
		wantStatus   int
		wantBody     string // exact, when set
		wantError    string // part of the "error" field, when set
		wantAllow    string
		wantLocation string
	}{
		{name: "pay", method: "POST", target: "/payments/pay", body: `{"id":"I1","value":12.15,"currency":"EUR"}`,
			wantStatus: 200, wantBody: `{"id":"I1","duplicate":false}`},
		{name: "missing field", method: "POST", target: "/payments/pay", body: `{"id":"I1","currency":"EUR"}`,
			wantStatus: 400, wantError: `"value" is required`},
		{name: "wrong type", method: "POST", target: "/payments/pay", body: `{"id":"I1","value":"1","currency":"EUR"}`,
			wantStatus: 400, wantError: `must be a number`},
		{name: "malformed", method: "POST", target: "/payments/pay", body: `{"id":`,
			wantStatus: 400, wantError: `truncated`},
		{name: "unknown field", method: "POST", target: "/payments/pay", body: `{"id":"I1","value":1,"currency":"EUR","x":1}`,
			wantStatus: 400, wantError: `unknown field "x"`},
		{name: "body too large", method: "POST", target: "/payments/pay",
			body:       `{"id":"` + strings.Repeat("x", maxBodyBytes) + `","value":1,"currency":"EUR"}`,
			wantStatus: 413, wantBody: `{"error":"request body is larger than 65536 bytes"}`},
		{name: "padding too large", method: "POST", target: "/payments/pay",
			body:       `{"id":"I1","value":1,"currency":"EUR"}` + strings.Repeat(" ", maxBodyBytes),
			wantStatus: 413, wantBody: `{"error":"request body is larger than 65536 bytes"}`},
		{name: "too large and malformed", method: "POST", target: "/payments/pay",
			body:       `{"id":` + strings.Repeat("]", maxBodyBytes),
			wantStatus: 413, wantBody: `{"error":"request body is larger than 65536 bytes"}`},
		{name: "request target star", method: "OPTIONS", target: "*", wantStatus: 400,
			wantBody: `{"error":"request target \"*\" is not supported"}`},
		{name: "unclean path is redirected in JSON", method: "POST", target: "/x/../payments/pay", wantStatus: 307,
			wantBody: `{"error":"moved to /payments/pay"}`, wantLocation: "/payments/pay"},
		{name: "wrong method", method: "PUT", target: "/payments/pay", wantStatus: 405,
			wantBody: `{"error":"method PUT is not allowed on /payments/pay"}`, wantAllow: "GET, HEAD, POST"},
		{name: "wrong method on a payment", method: "DELETE", target: "/payments/I1", wantStatus: 405,
			wantBody: `{"error":"method DELETE is not allowed on /payments/I1"}`, wantAllow: "GET, HEAD"},
		{name: "get unknown payment", method: "GET", target: "/payments/I9", wantStatus: 404,
			wantBody: `{"error":"no payment with id \"I9\""}`},
		{name: "get payment id too long", method: "GET", target: "/payments/" + strings.Repeat("x", 129), wantStatus: 404,
			wantError: "no payment with id"},
		{name: "get without id", method: "GET", target: "/payments/", wantStatus: 404,
			wantBody: `{"error":"no such path: /payments/"}`},
		{name: "unknown path", method: "POST", target: "/payments", wantStatus: 404,
			wantBody: `{"error":"no such path: /payments"}`},
		{name: "liveness", method: "GET", target: "/healthz", wantStatus: 200, wantBody: `{"status":"ok"}`},
		{name: "readiness", method: "GET", target: "/readyz", wantStatus: 200, wantBody: `{"status":"ready"}`},
	}
	_, h := newTestApp(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.target, strings.NewReader(tt.body)))
			if rec.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d (body %s)", rec.Code, tt.wantStatus, rec.Body)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", ct)
			}
			got := strings.TrimSpace(rec.Body.String())
			if tt.wantBody != "" && got != tt.wantBody {
				t.Errorf("body = %s, want %s", got, tt.wantBody)
			}
			if tt.wantError != "" {
				var e struct{ Error string }
				if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || !strings.Contains(e.Error, tt.wantError) {
					t.Errorf("body = %s, want an error containing %q", got, tt.wantError)
				}
			}
			if a := rec.Header().Get("Allow"); a != tt.wantAllow {
				t.Errorf("Allow = %q, want %q", a, tt.wantAllow)
			}
			if l := rec.Header().Get("Location"); l != tt.wantLocation {
				t.Errorf("Location = %q, want %q", l, tt.wantLocation)
			}
		})
	}
}

func TestPayTwiceIsFlaggedDuplicate(t *testing.T) {
	_, h := newTestApp(t)
	body := `{"id":"I1","value":12.15,"currency":"EUR"}`
	for i, want := range []string{`{"id":"I1","duplicate":false}`, `{"id":"I1","duplicate":true}`} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("POST", "/payments/pay", strings.NewReader(body)))
		if got := strings.TrimSpace(rec.Body.String()); rec.Code != 200 || got != want {
			t.Fatalf("call %d: %d %s, want 200 %s", i+1, rec.Code, got, want)
		}
	}
}

func newTestApp(t *testing.T) (*App, http.Handler) {
	t.Helper()
	l, _ := newTestLedger(t)
	app := NewApp(l, quietLogger())
	return app, app.Routes()
}

func do(t *testing.T, h http.Handler, method, target, body string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, target, strings.NewReader(body)))
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s %s: Content-Type = %q, want application/json (body %q)", method, target, ct, rec.Body)
	}
	return rec
}

// The id is an idempotency key for one payment: the same id with another
// amount or currency is refused, and nothing changes in the ledger.
func TestPayWithAnotherAmountIsAConflict(t *testing.T) {
	app, h := newTestApp(t)
	if rec := do(t, h, "POST", "/payments/pay", `{"id":"I1","value":12.15,"currency":"EUR"}`); rec.Code != 200 {
		t.Fatalf("first payment: %d %s", rec.Code, rec.Body)
	}
	for _, body := range []string{
		`{"id":"I1","value":12.16,"currency":"EUR"}`,
		`{"id":"I1","value":12.15,"currency":"GBP"}`,
	} {
		rec := do(t, h, "POST", "/payments/pay", body)
		var e struct{ Error string }
		_ = json.Unmarshal(rec.Body.Bytes(), &e)
		if rec.Code != http.StatusConflict || !strings.Contains(e.Error, "already booked as 12.15 EUR") {
			t.Fatalf("%s: %d %s; want 409 naming the booked amount", body, rec.Code, rec.Body)
		}
	}
	// Written differently, the same amount is a replay.
	if rec := do(t, h, "POST", "/payments/pay", `{"id":"I1","value":12.150,"currency":"EUR"}`); rec.Code != 200 ||
		strings.TrimSpace(rec.Body.String()) != `{"id":"I1","duplicate":true}` {
		t.Fatalf("replay as 12.150: %d %s", rec.Code, rec.Body)
	}
	if n := countPayments(t, app.ledger); n != 1 {
		t.Fatalf("%d payments booked, want 1", n)
	}
}

func TestGetPayment(t *testing.T) {
	_, h := newTestApp(t)
	before := time.Now().Add(-time.Minute)
	if rec := do(t, h, "POST", "/payments/pay", `{"id":"I 1/x","value":10.5,"currency":"GBP"}`); rec.Code != 200 {
		t.Fatalf("pay: %d %s", rec.Code, rec.Body)
	}
	rec := do(t, h, "GET", "/payments/I%201%2Fx", "")
	var got struct {
		ID       string          `json:"id"`
		Value    json.RawMessage `json:"value"`
		Currency string          `json:"currency"`
		BookedAt time.Time       `json:"booked_at"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || rec.Code != 200 {
		t.Fatalf("get: %d %s", rec.Code, rec.Body)
	}
	if got.ID != "I 1/x" || string(got.Value) != "10.5" || got.Currency != "GBP" || got.BookedAt.Before(before) {
		t.Fatalf("get = %s", rec.Body)
	}
	if rec := do(t, h, "GET", "/payments/I2", ""); rec.Code != 404 {
		t.Fatalf("unknown id: %d %s", rec.Code, rec.Body)
	}
}

// Replicas, each with its own pool, receiving the same payment at once:
// one books it, every other answer is a duplicate.
func TestReplicasBookAPaymentOnce(t *testing.T) {
	l, conn := newTestLedger(t)
	handlers := []http.Handler{NewApp(l, quietLogger()).Routes()}
	for range 2 {
		handlers = append(handlers, NewApp(openLedger(t, conn, 5*time.Second), quietLogger()).Routes())
	}
	var fresh, dups atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			rec := do(t, handlers[i%len(handlers)], "POST", "/payments/pay", `{"id":"I7","value":3.5,"currency":"SEK"}`)
			var res payResponse
			if err := json.Unmarshal(rec.Body.Bytes(), &res); err != nil || rec.Code != 200 {
				t.Errorf("%d %s", rec.Code, rec.Body)
				return
			}
			if res.Duplicate {
				dups.Add(1)
			} else {
				fresh.Add(1)
			}
		}()
	}
	close(start)
	wg.Wait()
	if fresh.Load() != 1 || dups.Load() != 29 {
		t.Fatalf("%d new, %d duplicates; want 1 and 29", fresh.Load(), dups.Load())
	}
}

// endpointsAnswer503 asks every endpoint that needs the database, and
// wants a JSON 503 from each within bound.
func endpointsAnswer503(t *testing.T, h http.Handler, bound time.Duration) {
	t.Helper()
	for _, req := range [][3]string{
		{"POST", "/payments/pay", `{"id":"I2","value":1.5,"currency":"EUR"}`},
		{"GET", "/payments/I1", ""},
		{"GET", "/readyz", ""},
	} {
		started := time.Now()
		rec := do(t, h, req[0], req[1], req[2])
		elapsed := time.Since(started)
		var e struct{ Error string }
		if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || rec.Code != http.StatusServiceUnavailable || e.Error == "" {
			t.Errorf("%s %s: %d %s; want 503 with an error", req[0], req[1], rec.Code, rec.Body)
		}
		if elapsed > bound {
			t.Errorf("%s %s: answered after %s, want within %s", req[0], req[1], elapsed, bound)
		}
	}
	if rec := do(t, h, "GET", "/healthz", ""); rec.Code != http.StatusOK {
		t.Errorf("/healthz = %d during the outage, want 200: the process is alive", rec.Code)
	}
}

// endpointsRecover waits until every endpoint works again, on the same App.
func endpointsRecover(t *testing.T, h http.Handler) {
	t.Helper()
	for _, req := range [][3]string{
		{"GET", "/readyz", ""},
		{"GET", "/payments/I1", ""},
		{"POST", "/payments/pay", `{"id":"I3","value":2.5,"currency":"EUR"}`},
	} {
		waitFor(t, 15*time.Second, func() bool { return do(t, h, req[0], req[1], req[2]).Code == http.StatusOK })
	}
}

func waitFor(t *testing.T, limit time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("still failing after %s", limit)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// The database goes away under a running App, as a stopped server ("down")
// or a paused one ("hang"); every answer is a JSON 503 within the bound,
// and the same App recovers when it is back. The payment refused during
// the outage was not booked.
func TestDatabaseOutage(t *testing.T) {
	for _, mode := range []string{"down", "hang"} {
		t.Run(mode, func(t *testing.T) {
			conn := newTestDB(t)
			proxy := newDBProxy(t, hostPort(t, conn))
			const dbTimeout = 300 * time.Millisecond
			l := openLedger(t, proxy.proxiedURL(t, conn), dbTimeout)
			h := NewApp(l, quietLogger()).Routes()
			if rec := do(t, h, "POST", "/payments/pay", `{"id":"I1","value":1,"currency":"EUR"}`); rec.Code != 200 {
				t.Fatalf("before the outage: %d", rec.Code)
			}

			proxy.set(mode)
			endpointsAnswer503(t, h, dbTimeout+time.Second)
			proxy.set("up")
			endpointsRecover(t, h)

			if _, ok, err := l.Get(context.Background(), "I2"); ok || err != nil {
				t.Fatalf("I2, refused during the outage: booked %v, %v", ok, err)
			}
			if n := countPayments(t, l); n != 2 {
				t.Fatalf("%d payments booked, want I1 and I3", n)
			}
		})
	}
}

// The real thing: PostgreSQL itself stops and starts again.
func TestDatabaseRestart(t *testing.T) {
	if os.Getenv("DATABASE_URL") != "" {
		t.Skip("DATABASE_URL names a server this test may not stop; TestDatabaseOutage covers outages there")
	}
	srv := newThrowawayServer(t)
	const dbTimeout = 500 * time.Millisecond
	h := NewApp(openLedger(t, srv.url("postgres"), dbTimeout), quietLogger()).Routes()
	if rec := do(t, h, "POST", "/payments/pay", `{"id":"I1","value":1,"currency":"EUR"}`); rec.Code != 200 {
		t.Fatalf("before the restart: %d", rec.Code)
	}
	if err := srv.stop(); err != nil {
		t.Fatal(err)
	}
	endpointsAnswer503(t, h, dbTimeout+time.Second)
	if err := srv.start(); err != nil {
		t.Fatal(err)
	}
	endpointsRecover(t, h)
}

// The database is unreachable when the process starts: it serves /healthz,
// answers 503 elsewhere, retries the migration with backoff and logs each
// failure, and becomes ready once the database is there.
func TestStartWhileTheDatabaseIsDown(t *testing.T) {
	conn := newTestDB(t)
	proxy := newDBProxy(t, hostPort(t, conn))
	proxy.set("down")
	var logs syncBuffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	l := NewLedger(newTestPool(t, proxy.proxiedURL(t, conn), time.Second), time.Second)
	h := NewApp(l, log).Routes()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- l.MigrateUntilReady(ctx, log) }()

	waitFor(t, 10*time.Second, func() bool { return strings.Count(logs.String(), "database not ready, retrying") >= 2 })
	if rec := do(t, h, "GET", "/healthz", ""); rec.Code != 200 {
		t.Fatalf("/healthz = %d before the database is there, want 200", rec.Code)
	}
	for _, req := range [][3]string{
		{"POST", "/payments/pay", `{"id":"I1","value":1,"currency":"EUR"}`},
		{"GET", "/payments/I1", ""},
		{"GET", "/readyz", ""},
	} {
		if rec := do(t, h, req[0], req[1], req[2]); rec.Code != 503 || !strings.Contains(rec.Body.String(), "not ready") {
			t.Fatalf("%s %s = %d %s, want 503 not ready", req[0], req[1], rec.Code, rec.Body)
		}
	}

	proxy.set("up")
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("not ready 20s after the database came up")
	}
	if rec := do(t, h, "POST", "/payments/pay", `{"id":"I1","value":1,"currency":"EUR"}`); rec.Code != 200 {
		t.Fatalf("pay once ready: %d %s", rec.Code, rec.Body)
	}
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestServeDrainsInFlightRequests(t *testing.T) {
	started := make(chan struct{})
	release := make(chan struct{})
	handler := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		close(started)
		<-release
		writeJSON(w, http.StatusOK, map[string]string{"status": "done"})
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- serve(ctx, ln, handler, 5*time.Second, quietLogger()) }()

	got := make(chan error, 1)
	go func() {
		resp, err := http.Get("http://" + ln.Addr().String() + "/slow")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				err = errors.New(resp.Status)
			}
		}
		got <- err
	}()
	<-started
	cancel() // as SIGTERM would

	select {
	case err := <-served:
		t.Fatalf("serve returned %v before the in-flight request finished", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	if err := <-got; err != nil {
		t.Fatalf("in-flight request failed: %v", err)
	}
	if err := <-served; err != nil {
		t.Fatalf("serve returned %v, want nil", err)
	}
}
