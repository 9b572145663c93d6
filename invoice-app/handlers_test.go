package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeProvider stands in for payment-provider. behave decides the answer
// for each invoice ID; it records every payment it accepted.
type fakeProvider struct {
	t      *testing.T
	srv    *httptest.Server
	behave func(w http.ResponseWriter, r *http.Request, p paymentRequest)

	mu       sync.Mutex
	accepted map[string]int
	calls    int
}

func newFakeProvider(t *testing.T, behave func(w http.ResponseWriter, r *http.Request, p paymentRequest)) *fakeProvider {
	t.Helper()
	fp := &fakeProvider{t: t, behave: behave, accepted: map[string]int{}}
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
		fp.mu.Unlock()
		rec := httptest.NewRecorder()
		fp.behave(rec, r, p)
		if rec.Code/100 == 2 {
			fp.mu.Lock()
			fp.accepted[p.ID]++
			fp.mu.Unlock()
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	})
	fp.srv = httptest.NewServer(mux)
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

func newTestApp(t *testing.T, provider *url.URL, timeout time.Duration) (*App, http.Handler) {
	t.Helper()
	app := NewApp(NewStore(seedInvoices()), NewPaymentClient(provider, timeout), quietLogger())
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

func paidIDs(invoices []Invoice) []string {
	var ids []string
	for _, inv := range invoices {
		if inv.IsPaid {
			ids = append(ids, inv.InvoiceId)
		}
	}
	return ids
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
			slices.Sort(gotPaid)
			if !slices.Equal(gotPaid, tt.wantPaid) {
				t.Errorf("paid = %v, want %v", gotPaid, tt.wantPaid)
			}
			if len(res.Failed) != len(tt.wantFailed) {
				t.Errorf("failed = %+v, want %d entries", res.Failed, len(tt.wantFailed))
			}
			for _, f := range res.Failed {
				want, ok := tt.wantFailed[f.Invoice.InvoiceId]
				if !ok || !strings.Contains(f.Error, want) {
					t.Errorf("failure %s: %q, want one containing %q", f.Invoice.InvoiceId, f.Error, want)
				}
			}
			if len(tt.wantFailed) > 0 && !strings.Contains(res.Error, "payments failed") {
				t.Errorf("error = %q, want a summary", res.Error)
			}

			// The store agrees with the answer: only invoices the provider
			// accepted are paid.
			stored := paidIDs(app.store.List())
			if !slices.Equal(stored, tt.wantPaid) {
				t.Errorf("store has %v paid, want %v", stored, tt.wantPaid)
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
	if rec := do(t, h, http.MethodPost, "/invoices/pay", nil); rec.Code != http.StatusOK {
		t.Fatalf("status = %d, body %s", rec.Code, rec.Body)
	}
	slices.SortFunc(got, func(a, b paymentRequest) int { return strings.Compare(a.ID, b.ID) })
	want := []paymentRequest{{"I1", 12.15, "EUR"}, {"I2", 10.25, "GBP"}, {"I3", 66.13, "DKK"}}
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
	res := decodeBody[payResult](t, rec)
	if len(res.Paid) != 0 || len(res.Failed) != 0 {
		t.Fatalf("second run = %+v, want nothing paid or failed", res)
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
	if got := paidIDs(app.store.List()); len(got) != 3 {
		t.Fatalf("paid after retry = %v, want all three", got)
	}
}

// Concurrent pay requests must never pay an invoice twice. Run with -race.
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
	if got := paidIDs(app.store.List()); len(got) != 3 {
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
	if got := paidIDs(app.store.List()); len(got) != 0 {
		t.Fatalf("paid = %v, want none", got)
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
			wantBody: `{"error":"method DELETE is not allowed on /invoices"}`, wantAllow: "GET, HEAD"},
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
