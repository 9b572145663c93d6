package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
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
	dup := a.ledger.Record(p)
	a.log.InfoContext(r.Context(), "payment accepted", "id", p.ID, "value", p.Value, "currency", p.Currency, "duplicate", dup)
	writeJSON(w, http.StatusOK, payResponse{ID: p.ID, Duplicate: dup})
}

func (a *App) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (a *App) readyz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// DecodePayment reads exactly one JSON object with the fields id, value and
// currency, and checks each. Errors are written for the client to read.
func DecodePayment(r io.Reader) (Payment, error) {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	var p Payment
	if err := dec.Decode(&p); err != nil {
		return Payment{}, decodeError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return Payment{}, err
		}
		return Payment{}, errors.New("request body must hold a single JSON object")
	}
	if err := p.validate(); err != nil {
		return Payment{}, err
	}
	return p, nil
}

func (p Payment) validate() error {
	switch {
	case p.ID == "":
		return errors.New(`field "id" is required`)
	case len(p.ID) > 128:
		return errors.New(`field "id" is longer than 128 bytes`)
	case p.Value == 0:
		return errors.New(`field "value" is required and must not be zero`)
	case p.Value < 0 || math.IsInf(p.Value, 0) || math.IsNaN(p.Value):
		return errors.New(`field "value" must be a positive amount`)
	case p.Currency == "":
		return errors.New(`field "currency" is required`)
	case !isCurrencyCode(p.Currency):
		return errors.New(`field "currency" must be a three-letter ISO 4217 code such as EUR`)
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
		tooBig    *http.MaxBytesError
	)
	switch {
	case errors.As(err, &tooBig):
		return err
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
