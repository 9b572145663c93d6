package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeProvider stands in for payment-provider. behave decides the answer
// for each invoice ID. Like the real one it books an id once: of the 2xx
// answers for an id, the first counts as accepted and any later one as a
// replay (what payment-provider answers with "duplicate":true).
type fakeProvider struct {
	t      *testing.T
	srv    *httptest.Server
	behave func(w http.ResponseWriter, r *http.Request, p paymentRequest)

	mu          sync.Mutex
	accepted    map[string]int
	replays     map[string]int
	calls       int
	inFlight    map[string]int
	overlaps    []string // ids sent again while a call for them was in flight
	maxInFlight int
	conns       atomic.Int32 // TCP connections opened to it
}

func newFakeProvider(t *testing.T, behave func(w http.ResponseWriter, r *http.Request, p paymentRequest)) *fakeProvider {
	t.Helper()
	fp := &fakeProvider{t: t, behave: behave, accepted: map[string]int{}, replays: map[string]int{}, inFlight: map[string]int{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /payments/pay", func(w http.ResponseWriter, r *http.Request) {
		var p paymentRequest
		dec := json.NewDecoder(r.Body)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&p); err != nil || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("provider got a malformed request: %v (Content-Type %q)", err, r.Header.Get("Content-Type"))
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		fp.mu.Lock()
		fp.calls++
		fp.inFlight[p.ID]++
		if fp.inFlight[p.ID] > 1 {
			fp.overlaps = append(fp.overlaps, p.ID)
		}
		total := 0
		for _, n := range fp.inFlight {
			total += n
		}
		fp.maxInFlight = max(fp.maxInFlight, total)
		fp.mu.Unlock()

		rec := httptest.NewRecorder()
		fp.behave(rec, r, p)

		fp.mu.Lock()
		fp.inFlight[p.ID]--
		if fp.inFlight[p.ID] == 0 {
			delete(fp.inFlight, p.ID)
		}
		if rec.Code/100 == 2 {
			if fp.accepted[p.ID] > 0 {
				fp.replays[p.ID]++
			} else {
				fp.accepted[p.ID]++
			}
		}
		fp.mu.Unlock()
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	})
	fp.srv = httptest.NewUnstartedServer(mux)
	fp.srv.Config.ConnState = func(_ net.Conn, state http.ConnState) {
		if state == http.StateNew {
			fp.conns.Add(1)
		}
	}
	fp.srv.Start()
	t.Cleanup(fp.srv.Close)
	return fp
}

func (fp *fakeProvider) url() *url.URL {
	u, err := url.Parse(fp.srv.URL)
	if err != nil {
		fp.t.Fatal(err)
	}
	return u
}

func (fp *fakeProvider) snapshot() (map[string]int, int) {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	m := map[string]int{}
	for k, v := range fp.accepted {
		m[k] = v
	}
	return m, fp.calls
}

func answerOK(w http.ResponseWriter, _ *http.Request, p paymentRequest) {
	writeJSON(w, http.StatusOK, map[string]string{"id": p.ID})
}

func answer500(w http.ResponseWriter, _ *http.Request, _ paymentRequest) {
	writeError(w, http.StatusInternalServerError, "ledger on fire")
}

// hang answers long after any timeout under test, or when the caller gives up.
func hang(w http.ResponseWriter, r *http.Request, p paymentRequest) {
	select {
	case <-r.Context().Done():
		w.WriteHeader(http.StatusServiceUnavailable) // not counted as accepted
	case <-time.After(3 * time.Second):
		answerOK(w, r, p)
	}
}

func quietLogger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(io.Discard, nil))
}

// testApp is an App on its own pool, as one replica would be.
type testApp struct {
	replica     string
	concurrency int
	budget      time.Duration
	dbTimeout   time.Duration
	payTimeout  time.Duration
}

func (o testApp) open(t *testing.T, conn string, provider *url.URL) *App {
	t.Helper()
	o.replica = cmpOr(o.replica, "replica-test")
	o.concurrency = cmpOr(o.concurrency, defaultPayConcurrency)
	o.budget = cmpOr(o.budget, 10*time.Second)
	o.dbTimeout = cmpOr(o.dbTimeout, 2*time.Second)
	o.payTimeout = cmpOr(o.payTimeout, time.Second)
	store := openStore(t, conn, o.dbTimeout)
	return NewApp(store, NewPaymentClient(provider, o.payTimeout, o.concurrency), quietLogger(),
		PayRun{Replica: o.replica, Concurrency: o.concurrency, Budget: o.budget})
}

func cmpOr[T comparable](v, fallback T) T {
	var zero T
	if v == zero {
		return fallback
	}
	return v
}

func newTestApp(t *testing.T, provider *url.URL, timeout time.Duration) (*App, http.Handler) {
	t.Helper()
	app := testApp{payTimeout: timeout}.open(t, newTestDB(t), provider)
	return app, app.Routes()
}

// downURL is an address where nothing listens.
func downURL(t *testing.T) *url.URL {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return &url.URL{Scheme: "http", Host: addr}
}

func do(t *testing.T, h http.Handler, method, target string, body io.Reader) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, target, body))
	return rec
}

func decodeBody[T any](t *testing.T, rec *httptest.ResponseRecorder) T {
	t.Helper()
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type = %q, want application/json (body %q)", ct, rec.Body.String())
	}
	var v T
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		t.Fatalf("body %q is not the expected JSON: %v", rec.Body.String(), err)
	}
	return v
}

// storedPaid lists the invoices the database holds paid.
func storedPaid(t *testing.T, app *App) []string {
	t.Helper()
	var ids []string
	for _, inv := range mustList(t, app.store) {
		if inv.IsPaid {
			ids = append(ids, inv.InvoiceId)
		}
	}
	return ids
}

// claimsHeld counts the invoices somebody holds a claim on.
func claimsHeld(t *testing.T, app *App) int {
	t.Helper()
	var n int
	if err := app.store.pool.QueryRow(context.Background(),
		"SELECT count(*) FROM invoices WHERE claimed_by IS NOT NULL").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestPayInvoices(t *testing.T) {
	tests := []struct {
		name        string
		behave      func(w http.ResponseWriter, r *http.Request, p paymentRequest)
		providerURL func(t *testing.T, fp *fakeProvider) *url.URL
		wantStatus  int
		wantPaid    []string
		wantFailed  map[string]string // invoice ID -> part of the reason
	}{
		{
			name:       "all payments succeed",
			behave:     answerOK,
			wantStatus: http.StatusOK,
			wantPaid:   []string{"I1", "I2", "I3"},
		},
		{
			name: "a replayed payment counts as paid",
			behave: func(w http.ResponseWriter, _ *http.Request, p paymentRequest) {
				writeJSON(w, 200, map[string]any{"id": p.ID, "duplicate": true})
			},
			wantStatus: http.StatusOK,
			wantPaid:   []string{"I1", "I2", "I3"},
		},
		{
			name:       "provider answers 500",
			behave:     answer500,
			wantStatus: http.StatusBadGateway,
			wantFailed: map[string]string{"I1": "answered 500", "I2": "answered 500", "I3": "ledger on fire"},
		},
		{
			name: "provider fails one invoice",
			behave: func(w http.ResponseWriter, r *http.Request, p paymentRequest) {
				if p.ID == "I2" {
					answer500(w, r, p)
					return
				}
				answerOK(w, r, p)
			},
			wantStatus: http.StatusBadGateway,
			wantPaid:   []string{"I1", "I3"},
			wantFailed: map[string]string{"I2": "answered 500"},
		},
		{
			name: "provider rejects with 400",
			behave: func(w http.ResponseWriter, _ *http.Request, _ paymentRequest) {
				writeError(w, http.StatusBadRequest, "bad currency")
			},
			wantStatus: http.StatusBadGateway,
			wantFailed: map[string]string{"I1": "answered 400", "I2": "bad currency", "I3": "answered 400"},
		},
		{
			name: "provider conflict 409 is not a payment",
			behave: func(w http.ResponseWriter, _ *http.Request, _ paymentRequest) {
				writeError(w, http.StatusConflict, "booked with another amount")
			},
			wantStatus: http.StatusBadGateway,
			wantFailed: map[string]string{"I1": "answered 409", "I2": "answered 409", "I3": "answered 409"},
		},
		{
			name:       "provider too slow",
			behave:     hang,
			wantStatus: http.StatusBadGateway,
			wantFailed: map[string]string{"I1": "did not answer within", "I2": "did not answer within", "I3": "did not answer within"},
		},
		{
			name:        "provider down",
			behave:      answerOK,
			providerURL: func(t *testing.T, _ *fakeProvider) *url.URL { return downURL(t) },
			wantStatus:  http.StatusBadGateway,
			wantFailed:  map[string]string{"I1": "unreachable", "I2": "unreachable", "I3": "unreachable"},
		},
		{
			name:   "provider under a path prefix",
			behave: answerOK,
			providerURL: func(t *testing.T, fp *fakeProvider) *url.URL {
				// The fake serves /payments/pay only, so a prefix must 404.
				return fp.url().JoinPath("api")
			},
			wantStatus: http.StatusBadGateway,
			wantFailed: map[string]string{"I1": "answered 404", "I2": "answered 404", "I3": "answered 404"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fp := newFakeProvider(t, tt.behave)
			u := fp.url()
			if tt.providerURL != nil {
				u = tt.providerURL(t, fp)
			}
			app, h := newTestApp(t, u, 200*time.Millisecond)

			rec := do(t, h, http.MethodPost, "/invoices/pay", nil)
			if rec.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d (body %s)", rec.Code, tt.wantStatus, rec.Body)
			}
			res := decodeBody[payResult](t, rec)

			var gotPaid []string
			for _, inv := range res.Paid {
				if !inv.IsPaid {
					t.Errorf("paid list shows %s as unpaid", inv.InvoiceId)
				}
				gotPaid = append(gotPaid, inv.InvoiceId)
			}
			if !slices.Equal(gotPaid, tt.wantPaid) {
				t.Errorf("paid = %v, want %v", gotPaid, tt.wantPaid)
			}
			if len(res.Failed) != len(tt.wantFailed) {
				t.Errorf("failed = %+v, want %d entries", res.Failed, len(tt.wantFailed))
			}
			for _, f := range res.Failed {
				want, ok := tt.wantFailed[f.Invoice.InvoiceId]
				if !ok || !strings.Contains(f.Error, want) || f.Invoice.IsPaid {
					t.Errorf("failure %s: %q, want one containing %q", f.Invoice.InvoiceId, f.Error, want)
				}
			}
			if len(tt.wantFailed) > 0 && !strings.Contains(res.Error, "payments failed") {
				t.Errorf("error = %q, want a summary", res.Error)
			}
			if res.Remaining == nil || *res.Remaining != 3-len(tt.wantPaid) {
				t.Errorf("remaining = %v, want %d", res.Remaining, 3-len(tt.wantPaid))
			}

			// The database agrees with the answer: only invoices the
			// provider accepted are paid, and no claim is left behind.
			if stored := storedPaid(t, app); !slices.Equal(stored, tt.wantPaid) {
				t.Errorf("database has %v paid, want %v", stored, tt.wantPaid)
			}
			if n := claimsHeld(t, app); n != 0 {
				t.Errorf("%d claims left after the run, want 0", n)
			}
		})
	}
}

func TestPaySendsInvoiceToProvider(t *testing.T) {
	var (
		mu  sync.Mutex
		got []paymentRequest
	)
	fp := newFakeProvider(t, func(w http.ResponseWriter, r *http.Request, p paymentRequest) {
		mu.Lock()
		got = append(got, p)
		mu.Unlock()
		answerOK(w, r, p)
	})
	_, h := newTestApp(t, fp.url(), time.Second)
	if rec := do(t, h, http.MethodPost, "/invoices", strings.NewReader(`{"value": 0.1, "currency": "SEK"}`)); rec.Code != http.StatusCreated {
		t.Fatalf("create: %d %s", rec.Code, rec.Body)
	}
	if rec := do(t, h, http.MethodPost, "/invoices/pay", nil); rec.Code != http.StatusOK {
		t.Fatalf("status = %d, body %s", rec.Code, rec.Body)
	}
	slices.SortFunc(got, func(a, b paymentRequest) int { return strings.Compare(a.ID, b.ID) })
	want := []paymentRequest{{"I1", "12.15", "EUR"}, {"I2", "10.25", "GBP"}, {"I3", "66.13", "DKK"}, {"I4", "0.1", "SEK"}}
	if !slices.Equal(got, want) {
		t.Fatalf("provider got %+v, want %+v", got, want)
	}
}

func TestPayAgainPaysNothing(t *testing.T) {
	fp := newFakeProvider(t, answerOK)
	_, h := newTestApp(t, fp.url(), time.Second)
	do(t, h, http.MethodPost, "/invoices/pay", nil)
	_, callsBefore := fp.snapshot()

	rec := do(t, h, http.MethodPost, "/invoices/pay", nil)
	if rec.Code != http.StatusOK {
		t.Fatalf("status = %d, want 200", rec.Code)
	}
	if got := strings.TrimSpace(rec.Body.String()); got != `{"paid":[],"failed":[],"remaining":0}` {
		t.Fatalf("second run = %s, want nothing paid or failed and nothing remaining", got)
	}
	if _, calls := fp.snapshot(); calls != callsBefore {
		t.Fatalf("provider called %d more times, want 0", calls-callsBefore)
	}
}

func TestFailedInvoiceIsPaidOnRetry(t *testing.T) {
	var (
		mu   sync.Mutex
		down = true
	)
	fp := newFakeProvider(t, func(w http.ResponseWriter, r *http.Request, p paymentRequest) {
		mu.Lock()
		defer mu.Unlock()
		if down {
			answer500(w, r, p)
			return
		}
		answerOK(w, r, p)
	})
	app, h := newTestApp(t, fp.url(), time.Second)
	if rec := do(t, h, http.MethodPost, "/invoices/pay", nil); rec.Code != http.StatusBadGateway {
		t.Fatalf("first run status = %d, want 502", rec.Code)
	}
	mu.Lock()
	down = false
	mu.Unlock()
	if rec := do(t, h, http.MethodPost, "/invoices/pay", nil); rec.Code != http.StatusOK {
		t.Fatalf("retry status = %d, want 200 (body %s)", rec.Code, rec.Body)
	}
	if got := storedPaid(t, app); len(got) != 3 {
		t.Fatalf("paid after retry = %v, want all three", got)
	}
}

// Concurrent pay requests to one replica: one runs, the others are told so.
func TestConcurrentPayPaysEachInvoiceOnce(t *testing.T) {
	fp := newFakeProvider(t, func(w http.ResponseWriter, r *http.Request, p paymentRequest) {
		time.Sleep(20 * time.Millisecond) // widen the window for overlap
		answerOK(w, r, p)
	})
	app, h := newTestApp(t, fp.url(), 5*time.Second)
	srv := httptest.NewServer(h)
	defer srv.Close()

	const workers = 16
	var wg sync.WaitGroup
	statuses := make([]int, workers)
	start := make(chan struct{})
	for i := range workers {
		wg.Add(2)
		go func() {
			defer wg.Done()
			<-start
			resp, err := http.Post(srv.URL+"/invoices/pay", "application/json", nil)
			if err != nil {
				t.Errorf("pay: %v", err)
				return
			}
			resp.Body.Close()
			statuses[i] = resp.StatusCode
		}()
		go func() {
			defer wg.Done()
			<-start
			resp, err := http.Get(srv.URL + "/invoices")
			if err != nil {
				t.Errorf("list: %v", err)
				return
			}
			resp.Body.Close()
		}()
	}
	close(start)
	wg.Wait()

	// One run pays; requests that overlap it are told so (409), never queued.
	paid := 0
	for i, s := range statuses {
		switch s {
		case http.StatusOK:
			paid++
		case http.StatusConflict:
		default:
			t.Errorf("request %d: status %d, want 200 or 409", i, s)
		}
	}
	if paid == 0 {
		t.Errorf("no request got 200")
	}
	accepted, calls := fp.snapshot()
	if calls != 3 {
		t.Errorf("provider called %d times, want 3", calls)
	}
	for _, id := range []string{"I1", "I2", "I3"} {
		if accepted[id] != 1 {
			t.Errorf("invoice %s paid %d times, want once", id, accepted[id])
		}
	}
	if got := storedPaid(t, app); len(got) != 3 {
		t.Errorf("paid = %v, want all three", got)
	}
}

// A pay request that finds a run in progress gets a JSON answer at once, not
// a connection closed at the write timeout after queueing behind the run.
func TestPayDuringARunIsAnswered409AtOnce(t *testing.T) {
	fp := newFakeProvider(t, answerOK)
	app, h := newTestApp(t, fp.url(), time.Second)
	app.payLock <- struct{}{} // another run holds the lock
	defer func() { <-app.payLock }()

	started := time.Now()
	rec := do(t, h, http.MethodPost, "/invoices/pay", nil)
	if elapsed := time.Since(started); elapsed > 500*time.Millisecond {
		t.Fatalf("answered after %s, want at once", elapsed)
	}
	if rec.Code != http.StatusConflict {
		t.Fatalf("status = %d, want 409", rec.Code)
	}
	if rec.Header().Get("Retry-After") == "" {
		t.Errorf("no Retry-After header")
	}
	if body := decodeBody[map[string]string](t, rec); !strings.Contains(body["error"], "in progress") {
		t.Fatalf("body %v does not say a run is in progress", body)
	}
	if _, calls := fp.snapshot(); calls != 0 {
		t.Fatalf("provider called %d times, want 0", calls)
	}
}

// Only a 2xx from the payment endpoint itself pays: a redirect to an
// endpoint that answers 200 is a failure, and the redirect is not followed.
func TestRedirectFromProviderIsNotAPayment(t *testing.T) {
	var elsewhere int
	var mu sync.Mutex
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		elsewhere++
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"id":"whatever"}`)
	}))
	defer other.Close()
	fp := newFakeProvider(t, func(w http.ResponseWriter, r *http.Request, _ paymentRequest) {
		http.Redirect(w, r, other.URL+"/payments/pay", http.StatusTemporaryRedirect)
	})
	app, h := newTestApp(t, fp.url(), time.Second)

	rec := do(t, h, http.MethodPost, "/invoices/pay", nil)
	if rec.Code != http.StatusBadGateway {
		t.Fatalf("status = %d, want 502 (body %s)", rec.Code, rec.Body)
	}
	res := decodeBody[payResult](t, rec)
	if len(res.Paid) != 0 || len(res.Failed) != 3 || !strings.Contains(res.Failed[0].Error, "answered 307") {
		t.Fatalf("result = %+v, want three failures naming the 307", res)
	}
	if got := storedPaid(t, app); len(got) != 0 {
		t.Fatalf("paid = %v, want none", got)
	}
	if n := claimsHeld(t, app); n != 0 {
		t.Fatalf("%d claims left, want every claim released", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if elsewhere != 0 {
		t.Fatalf("the redirect target was called %d times, want 0", elsewhere)
	}
}

func TestHTTPSurface(t *testing.T) {
	// The provider is down: nothing here may depend on it.
	_, h := newTestApp(t, downURL(t), 100*time.Millisecond)
	tests := []struct {
		name         string
		method       string
		target       string
		body         string
		wantStatus   int
		wantBody     string
		wantAllow    string
		wantLocation string
	}{
		{name: "list invoices", method: "GET", target: "/invoices", wantStatus: 200,
			wantBody: `[{"InvoiceId":"I1","Value":12.15,"Currency":"EUR","IsPaid":false},` +
				`{"InvoiceId":"I2","Value":10.25,"Currency":"GBP","IsPaid":false},` +
				`{"InvoiceId":"I3","Value":66.13,"Currency":"DKK","IsPaid":false}]`},
		{name: "liveness", method: "GET", target: "/healthz", wantStatus: 200, wantBody: `{"status":"ok"}`},
		{name: "readiness ignores the provider", method: "GET", target: "/readyz", wantStatus: 200, wantBody: `{"status":"ready"}`},
		{name: "unknown path", method: "GET", target: "/nope", wantStatus: 404, wantBody: `{"error":"no such path: /nope"}`},
		{name: "root", method: "GET", target: "/", wantStatus: 404, wantBody: `{"error":"no such path: /"}`},
		{name: "wrong method on list", method: "DELETE", target: "/invoices", wantStatus: 405,
			wantBody: `{"error":"method DELETE is not allowed on /invoices"}`, wantAllow: "GET, HEAD, POST"},
		{name: "wrong method on pay", method: "GET", target: "/invoices/pay", wantStatus: 405,
			wantBody: `{"error":"method GET is not allowed on /invoices/pay"}`, wantAllow: "POST"},
		{name: "body too large", method: "POST", target: "/invoices/pay", body: strings.Repeat("x", maxBodyBytes+1),
			wantStatus: 413, wantBody: `{"error":"request body is larger than 65536 bytes"}`},
		{name: "request target star", method: "OPTIONS", target: "*", wantStatus: 400,
			wantBody: `{"error":"request target \"*\" is not supported"}`},
		{name: "unclean path is redirected in JSON", method: "GET", target: "/x/../invoices", wantStatus: 307,
			wantBody: `{"error":"moved to /invoices"}`, wantLocation: "/invoices"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := do(t, h, tt.method, tt.target, strings.NewReader(tt.body))
			if rec.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d (body %s)", rec.Code, tt.wantStatus, rec.Body)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", ct)
			}
			if got := strings.TrimSpace(rec.Body.String()); got != tt.wantBody {
				t.Errorf("body = %s, want %s", got, tt.wantBody)
			}
			if got := rec.Header().Get("Allow"); got != tt.wantAllow {
				t.Errorf("Allow = %q, want %q", got, tt.wantAllow)
			}
			if got := rec.Header().Get("Location"); got != tt.wantLocation {
				t.Errorf("Location = %q, want %q", got, tt.wantLocation)
			}
		})
	}
}

func TestCreateInvoice(t *testing.T) {
	app, h := newTestApp(t, downURL(t), 100*time.Millisecond)
	tests := []struct {
		name       string
		body       string
		wantStatus int
		wantBody   string // exact, when set
		wantError  string // part of the "error" field, when set
	}{
		{name: "valid", body: `{"value": 12.5, "currency": "EUR"}`, wantStatus: 201,
			wantBody: `{"InvoiceId":"I4","Value":12.5,"Currency":"EUR","IsPaid":false}`},
		{name: "integer", body: `{"currency":"GBP","value":7}`, wantStatus: 201,
			wantBody: `{"InvoiceId":"I5","Value":7,"Currency":"GBP","IsPaid":false}`},
		{name: "exponent and trailing zero", body: `{"value": 1.230e1, "currency": "DKK"}`, wantStatus: 201,
			wantBody: `{"InvoiceId":"I6","Value":12.3,"Currency":"DKK","IsPaid":false}`},
		{name: "largest", body: `{"value": 999999999999.99, "currency": "EUR"}`, wantStatus: 201,
			wantBody: `{"InvoiceId":"I7","Value":999999999999.99,"Currency":"EUR","IsPaid":false}`},
		{name: "empty", body: ``, wantStatus: 400, wantError: "request body is empty"},
		{name: "malformed", body: `{"value":`, wantStatus: 400, wantError: "truncated"},
		{name: "syntax", body: `{"value":1,}`, wantStatus: 400, wantError: "malformed JSON"},
		{name: "not an object", body: `[1]`, wantStatus: 400, wantError: "must be a JSON object"},
		{name: "null", body: `null`, wantStatus: 400, wantError: `"value" is required`},
		{name: "two objects", body: `{"value":1,"currency":"EUR"}{}`, wantStatus: 400, wantError: "single JSON object"},
		{name: "missing value", body: `{"currency":"EUR"}`, wantStatus: 400, wantError: `"value" is required`},
		{name: "null value", body: `{"value":null,"currency":"EUR"}`, wantStatus: 400, wantError: `"value" is required`},
		{name: "missing currency", body: `{"value":1}`, wantStatus: 400, wantError: `"currency" is required`},
		{name: "zero", body: `{"value":0,"currency":"EUR"}`, wantStatus: 400, wantError: `greater than zero`},
		{name: "negative", body: `{"value":-1.5,"currency":"EUR"}`, wantStatus: 400, wantError: `greater than zero`},
		{name: "tiny", body: `{"value":1e-400,"currency":"EUR"}`, wantStatus: 400, wantError: `greater than zero`},
		{name: "three decimals", body: `{"value":12.155,"currency":"EUR"}`, wantStatus: 400, wantError: `at most two decimal places`},
		{name: "too large", body: `{"value":1e12,"currency":"EUR"}`, wantStatus: 400, wantError: `less than 1000000000000`},
		{name: "out of range", body: `{"value":1e400,"currency":"EUR"}`, wantStatus: 400, wantError: `out of range`},
		{name: "value as string", body: `{"value":"12.5","currency":"EUR"}`, wantStatus: 400, wantError: `"value" must be a number, not string`},
		{name: "currency as number", body: `{"value":1,"currency":978}`, wantStatus: 400, wantError: `"currency" must be a string, not number`},
		{name: "lowercase currency", body: `{"value":1,"currency":"eur"}`, wantStatus: 400, wantError: `three-letter`},
		{name: "long currency", body: `{"value":1,"currency":"EURO"}`, wantStatus: 400, wantError: `three-letter`},
		{name: "unknown field", body: `{"value":1,"currency":"EUR","IsPaid":true}`, wantStatus: 400, wantError: `unknown field "IsPaid"`},
		{name: "too large and malformed", body: `{"value":` + strings.Repeat("]", maxBodyBytes), wantStatus: 413,
			wantBody: `{"error":"request body is larger than 65536 bytes"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := do(t, h, http.MethodPost, "/invoices", strings.NewReader(tt.body))
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
		})
	}
	if got := ids(mustList(t, app.store)); !slices.Equal(got, []string{"I1", "I2", "I3", "I4", "I5", "I6", "I7"}) {
		t.Fatalf("invoices = %v, want the seeds and the four valid ones", got)
	}
}

// Several replicas, each with its own pool and name, paying the same
// invoices at once: every invoice is paid, and payment-provider books each
// id once and never sees one id twice at the same time.
func TestReplicasPayEachInvoiceOnce(t *testing.T) {
	conn := newTestDB(t)
	fp := newFakeProvider(t, func(w http.ResponseWriter, r *http.Request, p paymentRequest) {
		time.Sleep(time.Millisecond)
		answerOK(w, r, p)
	})
	const replicas, extra = 3, 300
	apps := make([]*App, replicas)
	for i := range apps {
		apps[i] = testApp{replica: fmt.Sprintf("replica-%d", i), concurrency: 4}.open(t, conn, fp.url())
	}
	insertInvoices(t, apps[0].store, extra)

	paidBy := make([][]string, replicas)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, app := range apps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			h := app.Routes()
			for range 5 {
				rec := do(t, h, http.MethodPost, "/invoices/pay", nil)
				if rec.Code != http.StatusOK {
					t.Errorf("replica %d: %d %s", i, rec.Code, rec.Body)
					return
				}
				res := decodeBody[payResult](t, rec)
				for _, inv := range res.Paid {
					paidBy[i] = append(paidBy[i], inv.InvoiceId)
				}
				if *res.Remaining == 0 {
					return
				}
			}
		}()
	}
	close(start)
	wg.Wait()

	reported := map[string]int{}
	busy := 0
	for _, ids := range paidBy {
		if len(ids) > 0 {
			busy++
		}
		for _, id := range ids {
			reported[id]++
		}
	}
	fp.mu.Lock()
	defer fp.mu.Unlock()
	if len(fp.accepted) != 3+extra || len(reported) != 3+extra {
		t.Errorf("provider accepted %d ids, replicas reported %d paid; want %d", len(fp.accepted), len(reported), 3+extra)
	}
	for id, n := range fp.accepted {
		if n != 1 || reported[id] != 1 {
			t.Errorf("%s: accepted %d times, reported paid %d times; want once", id, n, reported[id])
		}
	}
	replays := 0
	for _, n := range fp.replays {
		replays += n
	}
	if replays != 0 || len(fp.overlaps) != 0 {
		t.Errorf("%d replays, ids sent twice at once: %v; want none without failures", replays, fp.overlaps)
	}
	if paid := storedPaid(t, apps[1]); len(paid) != 3+extra {
		t.Errorf("database has %d paid, want %d", len(paid), 3+extra)
	}
	if busy < 2 {
		t.Logf("only %d replica(s) paid anything; the race was not exercised this time", busy)
	}
}

// A replica died holding claims. Until the lease is over nobody sends those
// invoices; then the next run sends them, with the same ids.
func TestExpiredClaimIsPaidByAnotherReplica(t *testing.T) {
	fp := newFakeProvider(t, answerOK)
	app, h := newTestApp(t, fp.url(), time.Second)
	if _, err := app.store.Claim(context.Background(), "dead-replica", 0, 2); err != nil {
		t.Fatal(err)
	}
	rec := do(t, h, http.MethodPost, "/invoices/pay", nil)
	if got := strings.TrimSpace(rec.Body.String()); rec.Code != 200 ||
		got != `{"paid":[{"InvoiceId":"I3","Value":66.13,"Currency":"DKK","IsPaid":true}],"failed":[],"remaining":2}` {
		t.Fatalf("within the lease: %d %s; want I3 paid and 2 remaining", rec.Code, got)
	}
	ageClaims(t, app.store, "dead-replica", defaultClaimLease+time.Second)
	rec = do(t, h, http.MethodPost, "/invoices/pay", nil)
	if res := decodeBody[payResult](t, rec); rec.Code != 200 || len(res.Paid) != 2 || *res.Remaining != 0 {
		t.Fatalf("after the lease: %d %s; want I1 and I2 paid", rec.Code, rec.Body)
	}
	accepted, calls := fp.snapshot()
	if calls != 3 || accepted["I1"] != 1 || accepted["I2"] != 1 || accepted["I3"] != 1 {
		t.Fatalf("provider: %d calls, accepted %v; want each invoice once", calls, accepted)
	}
}

// payment-provider accepted a payment, then the database went away before
// it was recorded. The invoice stays claimed; after the lease it is sent
// again with the same id, payment-provider answers with a replay, and that
// answer marks it paid. Nothing is booked twice.
func TestPaymentRecordedAfterAnOutageIsAReplay(t *testing.T) {
	conn := newTestDB(t)
	proxy := newDBProxy(t, hostPort(t, conn))
	var cut atomic.Bool
	fp := newFakeProvider(t, func(w http.ResponseWriter, r *http.Request, p paymentRequest) {
		if p.ID == "I2" && cut.CompareAndSwap(false, true) {
			proxy.set("down")
		}
		answerOK(w, r, p)
	})
	app := testApp{concurrency: 1, dbTimeout: 500 * time.Millisecond}.open(t, proxy.proxiedURL(t, conn), fp.url())
	h := app.Routes()

	rec := do(t, h, http.MethodPost, "/invoices/pay", nil)
	res := decodeBody[payResult](t, rec)
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(res.Error, "database unavailable") || res.Remaining != nil {
		t.Fatalf("run during the outage: %d %s; want 503 without a remaining count", rec.Code, rec.Body)
	}
	// I2, and I3 if it was claimed before the database went, were accepted
	// but not recorded.
	var unrecorded []string
	for _, f := range res.Failed {
		if !strings.Contains(f.Error, "same id") {
			t.Errorf("%s: %q, want it to say the payment is sent again with the same id", f.Invoice.InvoiceId, f.Error)
		}
		unrecorded = append(unrecorded, f.Invoice.InvoiceId)
	}
	if len(unrecorded) == 0 || unrecorded[0] != "I2" {
		t.Fatalf("failed = %+v, want I2 first", res.Failed)
	}

	proxy.set("up")
	waitFor(t, 10*time.Second, func() bool { return do(t, h, http.MethodGet, "/readyz", nil).Code == 200 })
	if got := storedPaid(t, app); !slices.Equal(got, []string{"I1"}) {
		t.Fatalf("paid after the outage = %v, want only I1", got)
	}
	// A claim whose answer was lost to the outage stays too; the lease ends it.
	if n := claimsHeld(t, app); n < len(unrecorded) {
		t.Fatalf("%d claims held, want at least %d: an unrecorded payment keeps its claim until the lease ends", n, len(unrecorded))
	}
	ageClaims(t, app.store, "replica-test", defaultClaimLease+time.Second)
	rec = do(t, h, http.MethodPost, "/invoices/pay", nil)
	if rec.Code != http.StatusOK {
		t.Fatalf("run after the lease: %d %s", rec.Code, rec.Body)
	}
	if got := storedPaid(t, app); len(got) != 3 {
		t.Fatalf("paid = %v, want all three", got)
	}
	fp.mu.Lock()
	defer fp.mu.Unlock()
	for _, id := range []string{"I1", "I2", "I3"} {
		wantReplays := 0
		if slices.Contains(unrecorded, id) {
			wantReplays = 1
		}
		if fp.accepted[id] != 1 || fp.replays[id] != wantReplays {
			t.Errorf("%s: accepted %d, replayed %d; want accepted once, replayed %d", id, fp.accepted[id], fp.replays[id], wantReplays)
		}
	}
}

// A run stops claiming when its budget is spent, finishes what is in
// flight, and says how many invoices remain; the caller calls again.
func TestPayRunStopsAtItsBudget(t *testing.T) {
	fp := newFakeProvider(t, func(w http.ResponseWriter, r *http.Request, p paymentRequest) {
		time.Sleep(50 * time.Millisecond)
		answerOK(w, r, p)
	})
	const budget = 300 * time.Millisecond
	app := testApp{concurrency: 2, budget: budget}.open(t, newTestDB(t), fp.url())
	insertInvoices(t, app.store, 37)
	h := app.Routes()

	var rounds []int
	for range 20 {
		started := time.Now()
		rec := do(t, h, http.MethodPost, "/invoices/pay", nil)
		elapsed := time.Since(started)
		res := decodeBody[payResult](t, rec)
		if rec.Code != 200 || res.Remaining == nil {
			t.Fatalf("%d %s", rec.Code, rec.Body)
		}
		// The budget, the payments in flight, and a little slack.
		if elapsed > budget+time.Second {
			t.Fatalf("run took %s with a budget of %s", elapsed, budget)
		}
		rounds = append(rounds, len(res.Paid))
		if *res.Remaining == 0 {
			break
		}
		if n := claimsHeld(t, app); n != 0 {
			t.Fatalf("%d claims left between runs, want 0", n)
		}
	}
	total := 0
	for _, n := range rounds {
		total += n
	}
	if len(rounds) < 2 || total != 40 {
		t.Fatalf("paid per run %v; want 40 over several runs", rounds)
	}
	if accepted, calls := fp.snapshot(); calls != 40 || len(accepted) != 40 {
		t.Fatalf("provider: %d calls for %d ids, want 40 each", calls, len(accepted))
	}
}

// Shutting down stops a run from claiming more.
func TestPayRunStopsClaimingOnShutdown(t *testing.T) {
	fp := newFakeProvider(t, answerOK)
	app, h := newTestApp(t, fp.url(), time.Second)
	stopped, cancel := context.WithCancel(context.Background())
	cancel()
	app.stopping = stopped
	rec := do(t, h, http.MethodPost, "/invoices/pay", nil)
	if got := strings.TrimSpace(rec.Body.String()); rec.Code != 200 || got != `{"paid":[],"failed":[],"remaining":3}` {
		t.Fatalf("%d %s; want nothing paid, 3 remaining", rec.Code, got)
	}
}

// Ten thousand unpaid invoices, paid through a real HTTP server: every
// answer comes within the write timeout, payment-provider never sees more
// than PAY_CONCURRENCY calls or connections, and the pool stays in bounds.
func TestTenThousandInvoices(t *testing.T) {
	if testing.Short() {
		t.Skip("pays 10,000 invoices")
	}
	fp := newFakeProvider(t, answerOK)
	cfg := Config{PayBudget: time.Second, PaymentTimeout: time.Second, DBTimeout: 2 * time.Second}
	app := testApp{budget: cfg.PayBudget, payTimeout: cfg.PaymentTimeout, dbTimeout: cfg.DBTimeout}.open(t, newTestDB(t), fp.url())
	insertInvoices(t, app.store, 10_000-3)

	srv := httptest.NewUnstartedServer(app.Routes())
	srv.Config.WriteTimeout = cfg.WriteTimeout()
	srv.Start()
	defer srv.Close()

	var maxConns atomic.Int32
	sampling, stopSampling := context.WithCancel(context.Background())
	defer stopSampling()
	go func() {
		for sampling.Err() == nil {
			if n := app.store.pool.Stat().TotalConns(); n > maxConns.Load() {
				maxConns.Store(n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()

	paid, runs := 0, 0
	for remaining := -1; remaining != 0; runs++ {
		if runs == 60 {
			t.Fatalf("%d invoices still unpaid after %d runs", remaining, runs)
		}
		started := time.Now()
		resp, err := http.Post(srv.URL+"/invoices/pay", "application/json", nil)
		if err != nil {
			t.Fatalf("run %d: %v", runs, err)
		}
		var res payResult
		err = json.NewDecoder(resp.Body).Decode(&res)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || res.Remaining == nil {
			t.Fatalf("run %d: %d, %v", runs, resp.StatusCode, err)
		}
		if elapsed := time.Since(started); elapsed > cfg.PayBudget+cfg.PaymentTimeout+time.Second {
			t.Errorf("run %d took %s", runs, elapsed)
		}
		paid += len(res.Paid)
		remaining = *res.Remaining
	}
	stopSampling()
	fp.mu.Lock()
	defer fp.mu.Unlock()
	if paid != 10_000 || len(fp.accepted) != 10_000 || fp.calls != 10_000 {
		t.Errorf("paid %d, provider accepted %d ids in %d calls; want 10000", paid, len(fp.accepted), fp.calls)
	}
	if fp.maxInFlight > defaultPayConcurrency || fp.conns.Load() > defaultPayConcurrency {
		t.Errorf("provider saw %d calls at once over %d connections; want at most %d", fp.maxInFlight, fp.conns.Load(), defaultPayConcurrency)
	}
	if n := maxConns.Load(); n > defaultDBMaxConns {
		t.Errorf("pool opened %d connections, want at most %d", n, defaultDBMaxConns)
	}
	t.Logf("10000 invoices paid in %d runs; provider: %d calls at once at most, %d connections; pool: %d connections at most",
		runs, fp.maxInFlight, fp.conns.Load(), maxConns.Load())
}

// endpointsAnswer503 asks every endpoint that needs the database, and
// wants a JSON 503 from each within bound.
func endpointsAnswer503(t *testing.T, h http.Handler, bound time.Duration) {
	t.Helper()
	for _, req := range []struct{ method, target, body string }{
		{"GET", "/invoices", ""},
		{"POST", "/invoices", `{"value": 1.5, "currency": "EUR"}`},
		{"POST", "/invoices/pay", ""},
		{"GET", "/readyz", ""},
	} {
		started := time.Now()
		rec := do(t, h, req.method, req.target, strings.NewReader(req.body))
		elapsed := time.Since(started)
		body := decodeBody[map[string]any](t, rec)
		if rec.Code != http.StatusServiceUnavailable || body["error"] == nil || body["error"] == "" {
			t.Errorf("%s %s: %d %s; want 503 with an error", req.method, req.target, rec.Code, rec.Body)
		}
		if elapsed > bound {
			t.Errorf("%s %s: answered after %s, want within %s", req.method, req.target, elapsed, bound)
		}
	}
	if rec := do(t, h, "GET", "/healthz", nil); rec.Code != http.StatusOK {
		t.Errorf("/healthz = %d during the outage, want 200: the process is alive", rec.Code)
	}
}

// endpointsRecover waits until every endpoint works again, on the same App.
func endpointsRecover(t *testing.T, h http.Handler) {
	t.Helper()
	waitFor(t, 15*time.Second, func() bool { return do(t, h, "GET", "/readyz", nil).Code == http.StatusOK })
	for _, req := range []struct {
		method, target, body string
		want                 int
	}{
		{"GET", "/invoices", "", 200},
		{"POST", "/invoices", `{"value": 2.5, "currency": "EUR"}`, 201},
		{"POST", "/invoices/pay", "", 200},
	} {
		var rec *httptest.ResponseRecorder
		waitFor(t, 15*time.Second, func() bool {
			rec = do(t, h, req.method, req.target, strings.NewReader(req.body))
			return rec.Code == req.want
		})
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
// nothing is half-written, and the same App recovers when it is back.
func TestDatabaseOutage(t *testing.T) {
	for _, mode := range []string{"down", "hang"} {
		t.Run(mode, func(t *testing.T) {
			conn := newTestDB(t)
			proxy := newDBProxy(t, hostPort(t, conn))
			fp := newFakeProvider(t, answerOK)
			const dbTimeout = 300 * time.Millisecond
			app := testApp{dbTimeout: dbTimeout}.open(t, proxy.proxiedURL(t, conn), fp.url())
			h := app.Routes()
			if rec := do(t, h, "GET", "/invoices", nil); rec.Code != 200 {
				t.Fatalf("before the outage: %d", rec.Code)
			}

			proxy.set(mode)
			endpointsAnswer503(t, h, dbTimeout+time.Second)
			proxy.set("up")
			endpointsRecover(t, h)

			// The invoice refused during the outage was not written.
			list := mustList(t, app.store)
			if got := ids(list); !slices.Equal(got, []string{"I1", "I2", "I3", "I4"}) {
				t.Fatalf("invoices = %v, want the seeds and the one created after the outage", got)
			}
			if accepted, _ := fp.snapshot(); len(accepted) != 4 {
				t.Fatalf("provider accepted %v, want the four invoices once", accepted)
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
	fp := newFakeProvider(t, answerOK)
	const dbTimeout = 500 * time.Millisecond
	app := testApp{dbTimeout: dbTimeout}.open(t, srv.url("postgres"), fp.url())
	h := app.Routes()
	if rec := do(t, h, "GET", "/invoices", nil); rec.Code != 200 {
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
	store := NewStore(newTestPool(t, proxy.proxiedURL(t, conn), time.Second), time.Second, defaultClaimLease)
	app := NewApp(store, NewPaymentClient(downURL(t), time.Second, 1), log, PayRun{Replica: "r", Concurrency: 1, Budget: time.Second})
	h := app.Routes()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- store.MigrateUntilReady(ctx, log) }()

	waitFor(t, 10*time.Second, func() bool { return strings.Count(logs.String(), "database not ready, retrying") >= 2 })
	if rec := do(t, h, "GET", "/healthz", nil); rec.Code != 200 {
		t.Fatalf("/healthz = %d before the database is there, want 200", rec.Code)
	}
	for _, target := range []string{"/invoices", "/readyz"} {
		rec := do(t, h, "GET", target, nil)
		if body := decodeBody[map[string]string](t, rec); rec.Code != 503 || !strings.Contains(body["error"], "not ready") {
			t.Fatalf("GET %s = %d %v, want 503 not ready", target, rec.Code, body)
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
	if rec := do(t, h, "GET", "/invoices", nil); rec.Code != 200 {
		t.Fatalf("GET /invoices = %d once ready", rec.Code)
	}
	if !strings.Contains(logs.String(), "database schema ready") {
		t.Fatalf("no readiness in the log:\n%s", logs.String())
	}

	// Shutting down while the database is still away ends the retries.
	proxy.set("down")
	ctx2, cancel2 := context.WithCancel(context.Background())
	other := NewStore(newTestPool(t, proxy.proxiedURL(t, conn), time.Second), time.Second, defaultClaimLease)
	go func() { done <- other.MigrateUntilReady(ctx2, log) }()
	time.Sleep(100 * time.Millisecond)
	cancel2()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("MigrateUntilReady succeeded with the database down")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("MigrateUntilReady kept going after its context ended")
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

	type result struct {
		status int
		err    error
	}
	got := make(chan result, 1)
	go func() {
		resp, err := http.Get("http://" + ln.Addr().String() + "/slow")
		if err != nil {
			got <- result{err: err}
			return
		}
		resp.Body.Close()
		got <- result{status: resp.StatusCode}
	}()
	<-started
	cancel() // as SIGTERM would

	select {
	case err := <-served:
		t.Fatalf("serve returned %v before the in-flight request finished", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	if r := <-got; r.err != nil || r.status != http.StatusOK {
		t.Fatalf("in-flight request: status %d, error %v; want 200", r.status, r.err)
	}
	if err := <-served; err != nil {
		t.Fatalf("serve returned %v, want nil", err)
	}
	if _, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		t.Fatal("server still accepts connections after shutdown")
	}
}

// A refused connection sent nothing: Pay tries again until payment-provider
// listens, within its timeout, and the payment is booked once.
func TestPayRetriesARefusedConnectionUntilTheProviderListens(t *testing.T) {
	u := downURL(t)
	var booked atomic.Int32
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		booked.Add(1)
		writeJSON(w, http.StatusOK, map[string]string{"id": "I1"})
	})}
	go func() {
		time.Sleep(300 * time.Millisecond)
		ln, err := net.Listen("tcp", u.Host)
		if err != nil {
			t.Errorf("listen on %s: %v", u.Host, err)
			return
		}
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() { _ = srv.Close() })

	c := NewPaymentClient(u, 5*time.Second, 1)
	if err := c.Pay(context.Background(), Invoice{InvoiceId: "I1", Value: "12.15", Currency: "EUR"}); err != nil {
		t.Fatalf("Pay = %v, want nil once the provider listens", err)
	}
	if n := booked.Load(); n != 1 {
		t.Fatalf("provider saw %d requests, want 1", n)
	}
}
