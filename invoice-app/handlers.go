package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"strings"
	"sync"
	"time"
)

// maxBodyBytes bounds every request body; nothing this API accepts is larger.
const maxBodyBytes = 64 << 10

// App wires the store, the payment client and the HTTP routes together.
type App struct {
	store    *Store
	payments *PaymentClient
	log      *slog.Logger
	// payLock serialises payment runs, so two concurrent POST /invoices/pay
	// never pay the same invoice twice. A request that finds a run in
	// progress is answered 409 at once instead of queueing behind it.
	payLock chan struct{}
}

func NewApp(store *Store, payments *PaymentClient, log *slog.Logger) *App {
	return &App{store: store, payments: payments, log: log, payLock: make(chan struct{}, 1)}
}

func (a *App) Routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /invoices", a.listInvoices)
	mux.HandleFunc("POST /invoices/pay", a.payInvoices)
	mux.HandleFunc("GET /healthz", a.healthz)
	mux.HandleFunc("GET /readyz", a.readyz)
	return logRequests(a.log, jsonErrors(mux))
}

func (a *App) listInvoices(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, a.store.List())
}

type payFailure struct {
	Invoice Invoice `json:"invoice"`
	Error   string  `json:"error"`
}

type payResult struct {
	Error  string       `json:"error,omitempty"`
	Paid   []Invoice    `json:"paid"`
	Failed []payFailure `json:"failed"`
}

func (a *App) payInvoices(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
	if _, err := io.Copy(io.Discard, r.Body); err != nil {
		writeBodyError(w, err)
		return
	}

	ctx := r.Context()
	select {
	case a.payLock <- struct{}{}:
		defer func() { <-a.payLock }()
	default:
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusConflict, "a payment run is already in progress; retry once it has finished")
		return
	}

	unpaid := a.store.Unpaid()
	errs := make([]error, len(unpaid))
	var wg sync.WaitGroup
	for i, inv := range unpaid {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = a.payments.Pay(ctx, inv)
		}()
	}
	wg.Wait()

	res := payResult{Paid: []Invoice{}, Failed: []payFailure{}}
	for i, inv := range unpaid {
		if errs[i] != nil {
			a.log.WarnContext(ctx, "payment failed", "invoice", inv.InvoiceId, "error", errs[i].Error())
			res.Failed = append(res.Failed, payFailure{Invoice: inv, Error: errs[i].Error()})
			continue
		}
		if a.store.MarkPaid(inv.InvoiceId) {
			inv.IsPaid = true
			res.Paid = append(res.Paid, inv)
			a.log.InfoContext(ctx, "invoice paid", "invoice", inv.InvoiceId)
		}
	}
	if len(res.Failed) > 0 {
		res.Error = fmt.Sprintf("%d of %d payments failed", len(res.Failed), len(unpaid))
		writeJSON(w, http.StatusBadGateway, res)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (a *App) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz deliberately ignores payment-provider: an outage there must not take
// the invoice list out of rotation too.
func (a *App) readyz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// PaymentClient calls payment-provider's POST /payments/pay.
type PaymentClient struct {
	endpoint string
	timeout  time.Duration
	http     *http.Client
}

func NewPaymentClient(base *url.URL, timeout time.Duration) *PaymentClient {
	return &PaymentClient{
		endpoint: base.JoinPath("payments", "pay").String(),
		timeout:  timeout,
		// Only the payment endpoint's own 2xx counts: a redirect is an
		// answer of its own, never followed to some other endpoint's 200.
		http: &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		}},
	}
}

type paymentRequest struct {
	ID       string  `json:"id"`
	Value    float64 `json:"value"`
	Currency string  `json:"currency"`
}

// Pay returns nil only when payment-provider answered 2xx.
func (c *PaymentClient) Pay(ctx context.Context, inv Invoice) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()

	body, err := json.Marshal(paymentRequest{ID: inv.InvoiceId, Value: inv.Value, Currency: inv.Currency})
	if err != nil {
		return fmt.Errorf("encode payment: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("payment-provider did not answer within %s", c.timeout)
		}
		return fmt.Errorf("payment-provider unreachable: %w", err)
	}
	defer resp.Body.Close()
	detail, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("payment-provider answered %d: %s", resp.StatusCode, bytes.TrimSpace(detail))
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

func writeBodyError(w http.ResponseWriter, err error) {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body is larger than %d bytes", tooBig.Limit))
		return
	}
	writeError(w, http.StatusBadRequest, "could not read request body")
}

// jsonErrors makes every answer of ServeMux's own JSON: unknown paths
// (404), wrong methods (405, keeping the Allow header it computes), its
// redirects to a cleaned path (keeping Location) and the 400 it gives the
// request target "*", all of which it would otherwise write as plain text.
func jsonErrors(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.RequestURI == "*" {
			writeError(w, http.StatusBadRequest, `request target "*" is not supported`)
			return
		}
		h, pattern := mux.Handler(r)
		// A matched, canonical path goes to its handler; anything else is
		// one of ServeMux's own answers, which have no side effects.
		if pattern != "" && r.URL.Path == canonicalPath(r.URL.Path) {
			mux.ServeHTTP(w, r)
			return
		}
		probe := &statusProbe{header: http.Header{}}
		h.ServeHTTP(probe, r)
		switch {
		case probe.status == http.StatusMethodNotAllowed:
			w.Header().Set("Allow", probe.header.Get("Allow"))
			writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s is not allowed on %s", r.Method, r.URL.Path))
		case probe.status == http.StatusNotFound:
			writeError(w, http.StatusNotFound, fmt.Sprintf("no such path: %s", r.URL.Path))
		case probe.status >= 300 && probe.status < 400 && probe.header.Get("Location") != "":
			w.Header().Set("Location", probe.header.Get("Location"))
			writeError(w, probe.status, fmt.Sprintf("moved to %s", probe.header.Get("Location")))
		default:
			mux.ServeHTTP(w, r)
		}
	})
}

// canonicalPath is the path ServeMux redirects to: cleaned, with a trailing
// slash kept.
func canonicalPath(p string) string {
	if p == "" {
		return "/"
	}
	clean := path.Clean(p)
	if strings.HasSuffix(p, "/") && clean != "/" {
		clean += "/"
	}
	return clean
}

// statusProbe records what a ServeMux fallback handler would answer.
type statusProbe struct {
	header http.Header
	status int
}

func (p *statusProbe) Header() http.Header { return p.header }
func (p *statusProbe) Write(b []byte) (int, error) {
	if p.status == 0 {
		p.status = http.StatusOK
	}
	return len(b), nil
}
func (p *statusProbe) WriteHeader(status int) {
	if p.status == 0 {
		p.status = status
	}
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(status int) {
	s.status = status
	s.ResponseWriter.WriteHeader(status)
}

func logRequests(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		log.InfoContext(r.Context(), "request",
			"method", r.Method, "path", r.URL.Path, "status", rec.status,
			"duration_ms", time.Since(start).Milliseconds())
	})
}
