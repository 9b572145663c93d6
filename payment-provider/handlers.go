package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/big"
	"net/http"
	"path"
	"reflect"
	"strings"
	"time"
)

// maxBodyBytes bounds every request body; a payment is a few dozen bytes.
const maxBodyBytes = 64 << 10

// App serves the payment API.
type App struct {
	ledger *Ledger
	log    *slog.Logger
}

func NewApp(ledger *Ledger, log *slog.Logger) *App {
	return &App{ledger: ledger, log: log}
}

func (a *App) Routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /payments/pay", a.pay)
	mux.HandleFunc("GET /payments/{id}", a.getPayment)
	mux.HandleFunc("GET /healthz", a.healthz)
	mux.HandleFunc("GET /readyz", a.readyz)
	return logRequests(a.log, jsonErrors(mux))
}

type payResponse struct {
	ID        string `json:"id"`
	Duplicate bool   `json:"duplicate"`
}

func (a *App) pay(w http.ResponseWriter, r *http.Request) {
	// The size is checked before the content: an oversized body is 413
	// whether or not its first bytes parse.
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body is larger than %d bytes", tooBig.Limit))
			return
		}
		writeError(w, http.StatusBadRequest, "could not read request body")
		return
	}
	p, err := DecodePayment(bytes.NewReader(body))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if !a.ledger.Ready() {
		writeNotReady(w)
		return
	}
	dup, err := a.ledger.Record(r.Context(), p)
	var conflict *ConflictError
	switch {
	case errors.As(err, &conflict):
		a.log.WarnContext(r.Context(), "payment refused", "id", p.ID, "value", p.Value, "currency", p.Currency,
			"booked_value", conflict.Booked.Value, "booked_currency", conflict.Booked.Currency)
		writeError(w, http.StatusConflict, fmt.Sprintf("%s; this payment says %s %s, so it is not booked",
			conflict.Error(), p.Value, p.Currency))
		return
	case err != nil:
		a.writeDBError(w, r, err)
		return
	}
	a.log.InfoContext(r.Context(), "payment accepted", "id", p.ID, "value", p.Value, "currency", p.Currency, "duplicate", dup)
	writeJSON(w, http.StatusOK, payResponse{ID: p.ID, Duplicate: dup})
}

func (a *App) getPayment(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if len(id) > maxIDBytes {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no payment with id %q", id))
		return
	}
	if !a.ledger.Ready() {
		writeNotReady(w)
		return
	}
	b, ok, err := a.ledger.Get(r.Context(), id)
	switch {
	case err != nil:
		a.writeDBError(w, r, err)
	case !ok:
		writeError(w, http.StatusNotFound, fmt.Sprintf("no payment with id %q", id))
	default:
		writeJSON(w, http.StatusOK, b)
	}
}

func (a *App) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz is 200 only while this replica's database answers.
func (a *App) readyz(w http.ResponseWriter, r *http.Request) {
	if !a.ledger.Ready() {
		writeNotReady(w)
		return
	}
	if err := a.ledger.Ping(r.Context()); err != nil {
		writeError(w, http.StatusServiceUnavailable, "database unavailable: "+dbErrorText(err, a.ledger.timeout))
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
	writeError(w, http.StatusServiceUnavailable, "database unavailable; retry later: "+dbErrorText(err, a.ledger.timeout))
}

func dbErrorText(err error, timeout time.Duration) string {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Sprintf("no answer within %s", timeout)
	}
	return "the database could not be reached or refused the request"
}

const maxIDBytes = 128

// DecodePayment reads exactly one JSON object with the fields id, value and
// currency, and checks each. Errors are written for the client to read.
func DecodePayment(r io.Reader) (Payment, error) {
	body, err := io.ReadAll(r)
	if err != nil {
		return Payment{}, err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var in struct {
		ID       string  `json:"id"`
		Value    float64 `json:"value"`
		Currency string  `json:"currency"`
	}
	if err := dec.Decode(&in); err != nil {
		return Payment{}, decodeError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Payment{}, errors.New("request body must hold a single JSON object")
	}
	switch {
	case in.ID == "":
		return Payment{}, errors.New(`field "id" is required`)
	case len(in.ID) > maxIDBytes:
		return Payment{}, fmt.Errorf(`field "id" is longer than %d bytes`, maxIDBytes)
	case in.Value == 0:
		return Payment{}, errors.New(`field "value" is required and must not be zero`)
	case in.Value < 0 || math.IsInf(in.Value, 0) || math.IsNaN(in.Value):
		return Payment{}, errors.New(`field "value" must be a positive amount`)
	case in.Currency == "":
		return Payment{}, errors.New(`field "currency" is required`)
	case !isCurrencyCode(in.Currency):
		return Payment{}, errors.New(`field "currency" must be a three-letter ISO 4217 code such as EUR`)
	}
	// The float above checked the type and sign; the amount itself is the
	// number's text, so nothing is lost to binary floating point.
	var exact struct {
		Value json.Number `json:"value"`
	}
	if err := json.Unmarshal(body, &exact); err != nil {
		return Payment{}, decodeError(err)
	}
	if err := checkAmount(exact.Value); err != nil {
		return Payment{}, err
	}
	return Payment{ID: in.ID, Value: exact.Value, Currency: in.Currency}, nil
}

// maxAmount is the first value numeric(14,2) cannot hold.
var maxAmount = big.NewRat(1_000_000_000_000, 1)

// checkAmount wants a positive n with at most two decimal places that fits
// the ledger's numeric(14,2).
func checkAmount(n json.Number) error {
	r, ok := new(big.Rat).SetString(string(n))
	switch {
	case !ok || r.Sign() <= 0:
		return errors.New(`field "value" must be a positive amount`)
	case r.Cmp(maxAmount) >= 0:
		return fmt.Errorf(`field "value" must be less than %s`, maxAmount.RatString())
	case !new(big.Rat).Mul(r, big.NewRat(100, 1)).IsInt():
		return errors.New(`field "value" must have at most two decimal places`)
	}
	return nil
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
		return fmt.Errorf("field %q must be a %s, not %s", typeErr.Field, jsonKind(typeErr.Type.Kind().String()), typeErr.Value)
	}
	// encoding/json has no typed error for unknown fields.
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return fmt.Errorf("unknown field %s", name)
	}
	return fmt.Errorf("request body is not a valid payment: %v", err)
}

func jsonKind(goKind string) string {
	switch goKind {
	case "float64":
		return "number"
	case "string":
		return "string"
	}
	return goKind
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
