package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
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
		{name: "valid", body: `{"id":"I1","value":12.15,"currency":"EUR"}`, want: Payment{"I1", 12.15, "EUR"}},
		{name: "valid with whitespace", body: " \n{\"currency\":\"DKK\", \"value\":66.13, \"id\":\"I3\"}\n ", want: Payment{"I3", 66.13, "DKK"}},
		{name: "integer value", body: `{"id":"I1","value":12,"currency":"EUR"}`, want: Payment{"I1", 12, "EUR"}},
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
		`{"id":"I1","value":1.7976931348623157e308,"currency":"DKK"}`,
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
		if !(p.Value > 0) || math.IsInf(p.Value, 0) {
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
		{name: "wrong method", method: "GET", target: "/payments/pay", wantStatus: 405,
			wantBody: `{"error":"method GET is not allowed on /payments/pay"}`, wantAllow: "POST"},
		{name: "unknown path", method: "POST", target: "/payments", wantStatus: 404,
			wantBody: `{"error":"no such path: /payments"}`},
		{name: "liveness", method: "GET", target: "/healthz", wantStatus: 200, wantBody: `{"status":"ok"}`},
		{name: "readiness", method: "GET", target: "/readyz", wantStatus: 200, wantBody: `{"status":"ready"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := NewApp(NewLedger(), quietLogger()).Routes()
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
	h := NewApp(NewLedger(), quietLogger()).Routes()
	body := `{"id":"I1","value":12.15,"currency":"EUR"}`
	for i, want := range []string{`{"id":"I1","duplicate":false}`, `{"id":"I1","duplicate":true}`} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("POST", "/payments/pay", strings.NewReader(body)))
		if got := strings.TrimSpace(rec.Body.String()); rec.Code != 200 || got != want {
			t.Fatalf("call %d: %d %s, want 200 %s", i+1, rec.Code, got, want)
		}
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
