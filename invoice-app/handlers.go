package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/url"
	"path"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// maxBodyBytes bounds every request body; nothing this API accepts is larger.
const maxBodyBytes = 64 << 10

type PayRun struct {
	Replica     string
	Concurrency int
	Budget      time.Duration
}

// App wires the store, the payment client and the HTTP routes together.
type App struct {
	store    *Store
	payments *PaymentClient
	log      *slog.Logger
	run      PayRun
	// payLock allows one pay run at a time on this replica. A request that
	// finds a run in progress is answered 409 at once instead of queueing
	// behind it. Claims in the database keep replicas apart.
	payLock chan struct{}
	// stopping ends when the process shuts down; a pay run then stops
	// claiming and only finishes the payments in flight.
	stopping context.Context
}

func NewApp(store *Store, payments *PaymentClient, log *slog.Logger, run PayRun) *App {
	return &App{store: store, payments: payments, log: log, run: run,
		payLock: make(chan struct{}, 1), stopping: context.Background()}
}

func (a *App) Routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /invoices", a.listInvoices)
	mux.HandleFunc("POST /invoices", a.createInvoice)
	mux.HandleFunc("POST /invoices/pay", a.payInvoices)
	mux.HandleFunc("GET /healthz", a.healthz)
	mux.HandleFunc("GET /readyz", a.readyz)
	return logRequests(a.log, jsonErrors(mux))
}

func (a *App) listInvoices(w http.ResponseWriter, r *http.Request) {
	if !a.store.Ready() {
		writeNotReady(w)
		return
	}
	invoices, err := a.store.List(r.Context())
	if err != nil {
		a.writeDBError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, invoices)
}

func (a *App) createInvoice(w http.ResponseWriter, r *http.Request) {
	// The size is checked before the content: an oversized body is 413
	// whether or not its first bytes parse.
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		writeBodyError(w, err)
		return
	}
	value, currency, err := DecodeNewInvoice(body)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if !a.store.Ready() {
		writeNotReady(w)
		return
	}
	inv, err := a.store.Create(r.Context(), value, currency)
	if err != nil {
		a.writeDBError(w, r, err)
		return
	}
	a.log.InfoContext(r.Context(), "invoice created", "invoice", inv.InvoiceId, "value", inv.Value, "currency", inv.Currency)
	writeJSON(w, http.StatusCreated, inv)
}

type payFailure struct {
	Invoice Invoice `json:"invoice"`
	Error   string  `json:"error"`
}

type payResult struct {
	Error  string       `json:"error,omitempty"`
	Paid   []Invoice    `json:"paid"`
	Failed []payFailure `json:"failed"`
	// Remaining is left out when the database failed.
	Remaining *int `json:"remaining,omitempty"`
}

func (a *App) payInvoices(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
	if _, err := io.Copy(io.Discard, r.Body); err != nil {
		writeBodyError(w, err)
		return
	}

	select {
	case a.payLock <- struct{}{}:
		defer func() { <-a.payLock }()
	default:
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusConflict, "a payment run is already in progress; retry once it has finished")
		return
	}
	if !a.store.Ready() {
		writeNotReady(w)
		return
	}

	// A caller that hangs up does not cut a run short: its budget bounds it,
	// and every claim it took is settled before it ends.
	ctx := context.WithoutCancel(r.Context())
	res, attempted, dbErr := a.payAll(ctx)
	switch {
	case dbErr != nil:
		res.Error = "database unavailable during the pay run; retry later: " + dbErrorText(dbErr, a.store.timeout)
		w.Header().Set("Retry-After", "1")
		writeJSON(w, http.StatusServiceUnavailable, res)
	case len(res.Failed) > 0:
		res.Error = fmt.Sprintf("%d of %d payments failed", len(res.Failed), attempted)
		writeJSON(w, http.StatusBadGateway, res)
	default:
		writeJSON(w, http.StatusOK, res)
	}
}

// payAll claims unpaid invoices in batches and pays them with
// run.Concurrency workers until none is left or the budget is spent; then
// it finishes the payments in flight and gives back the claims it did not
// get to. It walks the invoices once, in order, so an invoice that fails is
// not retried within the same run.
func (a *App) payAll(ctx context.Context) (res payResult, attempted int, dbErr error) {
	budget, cancel := context.WithTimeout(a.stopping, a.run.Budget)
	defer cancel()

	var (
		mu     sync.Mutex
		paid   []claimedInvoice
		failed []claimedInvoice
		why    = map[string]string{}
	)
	noteDBError := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if err != nil && dbErr == nil {
			dbErr = err
		}
	}
	settle := func(c claimedInvoice, ok bool, reason string, err error) {
		noteDBError(err)
		mu.Lock()
		defer mu.Unlock()
		attempted++
		if ok {
			paid = append(paid, c)
		} else if reason != "" {
			failed = append(failed, c)
			why[c.InvoiceId] = reason
		}
	}

	jobs := make(chan claimedInvoice)
	var wg sync.WaitGroup
	for range a.run.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range jobs {
				settle(a.payOne(ctx, c))
			}
		}()
	}

	var after int64
claiming:
	for budget.Err() == nil {
		batch, err := a.store.Claim(ctx, a.run.Replica, after, a.run.Concurrency)
		if err != nil {
			a.log.WarnContext(ctx, "claiming invoices failed", "error", err.Error())
			noteDBError(err)
			break
		}
		if len(batch) == 0 {
			break
		}
		after = batch[len(batch)-1].number
		for i, c := range batch {
			select {
			case jobs <- c:
			case <-budget.Done():
				a.release(ctx, batch[i:])
				break claiming
			}
		}
	}
	close(jobs)
	wg.Wait()

	byNumber := func(x, y claimedInvoice) int { return cmp.Compare(x.number, y.number) }
	slices.SortFunc(paid, byNumber)
	slices.SortFunc(failed, byNumber)
	res = payResult{Paid: []Invoice{}, Failed: []payFailure{}}
	for _, c := range paid {
		res.Paid = append(res.Paid, c.Invoice)
	}
	for _, c := range failed {
		res.Failed = append(res.Failed, payFailure{Invoice: c.Invoice, Error: why[c.InvoiceId]})
	}
	if dbErr == nil {
		n, err := a.store.CountUnpaid(ctx)
		if err != nil {
			return res, attempted, err
		}
		res.Remaining = &n
	}
	return res, attempted, dbErr
}

// payOne sends one claimed invoice to payment-provider with its id as the
// idempotency key. Only a 2xx marks it paid; any failure gives the claim
// back. When recording a payment fails, the claim stays and expires: the
// invoice is then sent again with the same id, which payment-provider
// recognises as a duplicate.
func (a *App) payOne(ctx context.Context, c claimedInvoice) (claimedInvoice, bool, string, error) {
	if err := a.payments.Pay(ctx, c.Invoice); err != nil {
		a.log.WarnContext(ctx, "payment failed", "invoice", c.InvoiceId, "error", err.Error())
		reason := err.Error()
		rerr := a.store.Release(ctx, a.run.Replica, c.InvoiceId)
		if rerr != nil {
			a.log.WarnContext(ctx, "releasing the claim failed", "invoice", c.InvoiceId, "error", rerr.Error())
			reason += "; releasing the claim failed, it expires after the lease"
		}
		return c, false, reason, rerr
	}
	inv, ok, err := a.store.MarkPaid(ctx, c.InvoiceId)
	switch {
	case err != nil:
		a.log.WarnContext(ctx, "recording a payment failed", "invoice", c.InvoiceId, "error", err.Error())
		return c, false, "payment-provider accepted the payment but recording it failed; it is sent again with the same id once the claim lease expires", err
	case !ok:
		a.log.InfoContext(ctx, "invoice was already paid by another replica", "invoice", c.InvoiceId)
		return c, false, "", nil
	}
	a.log.InfoContext(ctx, "invoice paid", "invoice", inv.InvoiceId)
	c.Invoice = inv
	return c, true, "", nil
}

func (a *App) release(ctx context.Context, batch []claimedInvoice) {
	ids := make([]string, len(batch))
	for i, c := range batch {
		ids[i] = c.InvoiceId
	}
	if err := a.store.Release(ctx, a.run.Replica, ids...); err != nil {
		a.log.WarnContext(ctx, "releasing unsent claims failed; they expire after the lease", "invoices", ids, "error", err.Error())
	}
}

func (a *App) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz asks this replica's own database only. It deliberately ignores
// payment-provider: an outage there must not take the invoice list out of
// rotation too.
func (a *App) readyz(w http.ResponseWriter, r *http.Request) {
	if !a.store.Ready() {
		writeNotReady(w)
		return
	}
	if err := a.store.Ping(r.Context()); err != nil {
		writeError(w, http.StatusServiceUnavailable, "database unavailable: "+dbErrorText(err, a.store.timeout))
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func writeNotReady(w http.ResponseWriter) {
	w.Header().Set("Retry-After", "1")
	writeError(w, http.StatusServiceUnavailable, "database schema is not ready yet; retry later")
}

// writeDBError logs the details; the client learns only what failed.
func (a *App) writeDBError(w http.ResponseWriter, r *http.Request, err error) {
	a.log.WarnContext(r.Context(), "database call failed", "path", r.URL.Path, "error", err.Error())
	w.Header().Set("Retry-After", "1")
	writeError(w, http.StatusServiceUnavailable, "database unavailable; retry later: "+dbErrorText(err, a.store.timeout))
}

func dbErrorText(err error, timeout time.Duration) string {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Sprintf("no answer within %s", timeout)
	}
	return "the database could not be reached or refused the request"
}

// DecodeNewInvoice reads exactly one JSON object {"value": 12.5,
// "currency": "EUR"} and returns the amount as exact decimal text (12.50).
// Errors are written for the client to read.
func DecodeNewInvoice(body []byte) (value, currency string, err error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var in struct {
		Value    *float64 `json:"value"`
		Currency *string  `json:"currency"`
	}
	if err := dec.Decode(&in); err != nil {
		return "", "", decodeError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return "", "", errors.New("request body must hold a single JSON object")
	}
	switch {
	case in.Value == nil:
		return "", "", errors.New(`field "value" is required`)
	case in.Currency == nil || *in.Currency == "":
		return "", "", errors.New(`field "currency" is required`)
	case !isCurrencyCode(*in.Currency):
		return "", "", errors.New(`field "currency" must be a three-letter ISO 4217 code such as EUR`)
	}
	// The float above checked the type; the amount itself is taken from
	// the number's text, so nothing is lost to binary floating point.
	var exact struct {
		Value json.Number `json:"value"`
	}
	if err := json.Unmarshal(body, &exact); err != nil {
		return "", "", decodeError(err)
	}
	value, err = exactAmount(exact.Value)
	if err != nil {
		return "", "", err
	}
	return value, *in.Currency, nil
}

// maxAmount is the first value numeric(14,2) cannot hold.
var maxAmount = big.NewRat(1_000_000_000_000, 1)

// exactAmount checks that n is greater than zero, has at most two decimal
// places and fits numeric(14,2), and returns it with two decimals.
func exactAmount(n json.Number) (string, error) {
	// ParseFloat first keeps big.Rat away from absurd exponents.
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil || f <= 0 {
		return "", errors.New(`field "value" must be a number greater than zero`)
	}
	r, ok := new(big.Rat).SetString(string(n))
	switch {
	case !ok || r.Sign() <= 0:
		return "", errors.New(`field "value" must be a number greater than zero`)
	case r.Cmp(maxAmount) >= 0:
		return "", fmt.Errorf(`field "value" must be less than %s`, maxAmount.RatString())
	case !new(big.Rat).Mul(r, big.NewRat(100, 1)).IsInt():
		return "", errors.New(`field "value" must have at most two decimal places`)
	}
	return r.FloatString(2), nil
}

func isCurrencyCode(s string) bool {
	if len(s) != 3 {
		return false
	}
	for _, c := range []byte(s) {
		if c < 'A' || c > 'Z' {
			return false
		}
	}
	return true
}

func decodeError(err error) error {
	var (
		syntaxErr *json.SyntaxError
		typeErr   *json.UnmarshalTypeError
	)
	switch {
	case errors.Is(err, io.EOF):
		return errors.New("request body is empty; expected a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errors.New("request body is truncated JSON")
	case errors.As(err, &syntaxErr):
		return fmt.Errorf("request body is malformed JSON at byte %d", syntaxErr.Offset)
	case errors.As(err, &typeErr):
		if typeErr.Type.Kind() == reflect.Float64 && strings.HasPrefix(typeErr.Value, "number") {
			return fmt.Errorf("field %q is out of range", typeErr.Field)
		}
		if typeErr.Field == "" {
			return fmt.Errorf("request body must be a JSON object, not %s", typeErr.Value)
		}
		return fmt.Errorf("field %q must be a %s, not %s", typeErr.Field, jsonKind(typeErr.Type.Kind()), typeErr.Value)
	}
	// encoding/json has no typed error for unknown fields.
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return fmt.Errorf("unknown field %s", name)
	}
	return fmt.Errorf("request body is not a valid invoice: %v", err)
}

func jsonKind(k reflect.Kind) string {
	switch k {
	case reflect.Float64:
		return "number"
	case reflect.String:
		return "string"
	}
	return k.String()
}

// PaymentClient calls payment-provider's POST /payments/pay.
type PaymentClient struct {
	endpoint string
	timeout  time.Duration
	http     *http.Client
}

// NewPaymentClient keeps up to maxConns connections to payment-provider
// open, one per pay worker, so a long run reuses them instead of opening a
// new one for every invoice.
func NewPaymentClient(base *url.URL, timeout time.Duration, maxConns int) *PaymentClient {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxConnsPerHost = maxConns
	transport.MaxIdleConnsPerHost = maxConns
	return &PaymentClient{
		endpoint: base.JoinPath("payments", "pay").String(),
		timeout:  timeout,
		// Only the payment endpoint's own 2xx counts: a redirect is an
		// answer of its own, never followed to some other endpoint's 200.
		http: &http.Client{Transport: transport, CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		}},
	}
}

// paymentRequest carries the invoice id as the idempotency key: sending the
// same invoice again is booked once.
type paymentRequest struct {
	ID       string      `json:"id"`
	Value    json.Number `json:"value"`
	Currency string      `json:"currency"`
}

// Pay returns nil only when payment-provider answered 2xx.
func (c *PaymentClient) Pay(ctx context.Context, inv Invoice) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()

	body, err := json.Marshal(paymentRequest{ID: inv.InvoiceId, Value: inv.Value, Currency: inv.Currency})
	if err != nil {
		return fmt.Errorf("encode payment: %w", err)
	}
	// A refused connection sent nothing, so it is tried again until the
	// timeout: on a cluster, a new pod's traffic and its Service endpoints
	// reach every node's network policy a moment after the pod is Ready.
	var resp *http.Response
	for delay := 50 * time.Millisecond; ; delay = min(2*delay, time.Second) {
		req, rerr := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint, bytes.NewReader(body))
		if rerr != nil {
			return fmt.Errorf("build request: %w", rerr)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err = c.http.Do(req)
		if err == nil || !errors.Is(err, syscall.ECONNREFUSED) {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(delay):
			continue
		}
		break
	}
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) {
			return fmt.Errorf("payment-provider unreachable, refused until the %s timeout: %w", c.timeout, err)
		}
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("payment-provider did not answer within %s", c.timeout)
		}
		return fmt.Errorf("payment-provider unreachable: %w", err)
	}
	defer resp.Body.Close()
	detail, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	// Read what is left of a short answer, so the connection is reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
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
