package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// closedAddr returns an address on loopback where nothing listens.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func fast() Options {
	return Options{Timeout: 2 * time.Second, Attempts: 1, Interval: 10 * time.Millisecond}
}

func TestProbeHTTPAnyResponseIsSuccess(t *testing.T) {
	for _, status := range []int{http.StatusOK, http.StatusNotFound, http.StatusBadGateway} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(status)
			io.WriteString(w, `{"status":"ok"}`)
		}))
		res, err := ProbeHTTP(context.Background(), fast(), "get", srv.URL+"/healthz", "")
		srv.Close()
		if err != nil {
			t.Fatal(err)
		}
		if !res.OK || res.Status != status || res.Body != `{"status":"ok"}` || res.Method != "GET" || res.Kind != "" {
			t.Errorf("status %d: got %+v", status, res)
		}
	}
}

func TestProbeHTTPPostsBody(t *testing.T) {
	var got, ctype string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got, ctype = r.Method+" "+string(b), r.Header.Get("Content-Type")
	}))
	defer srv.Close()
	body := `{"id":"probe","value":1,"currency":"EUR"}`
	res, err := ProbeHTTP(context.Background(), fast(), "POST", srv.URL+"/payments/pay", body)
	if err != nil || !res.OK {
		t.Fatalf("res %+v err %v", res, err)
	}
	if got != "POST "+body || ctype != "application/json" {
		t.Errorf("server saw %q with Content-Type %q", got, ctype)
	}
}

func TestProbeHTTPTruncatesBody(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, strings.Repeat("x", 10*maxBodyExcerpt))
	}))
	defer srv.Close()
	res, _ := ProbeHTTP(context.Background(), fast(), "GET", srv.URL, "")
	if len(res.Body) != maxBodyExcerpt {
		t.Errorf("body excerpt is %d bytes, want %d", len(res.Body), maxBodyExcerpt)
	}
}

func TestProbeHTTPFailures(t *testing.T) {
	hang := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-hang }))
	defer slow.Close()
	defer close(hang)

	tests := []struct {
		name string
		url  string
		kind string
	}{
		{"refused", "http://" + closedAddr(t) + "/", KindRefused},
		{"no answer in time", slow.URL, KindTimeout},
		{"unresolvable name", "http://no-such-host.invalid/", KindDNS},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := fast()
			opts.Timeout = 300 * time.Millisecond
			res, err := ProbeHTTP(context.Background(), opts, "GET", tt.url, "")
			if err != nil {
				t.Fatal(err)
			}
			if res.OK || res.Kind != tt.kind || res.Error == "" || res.Status != 0 {
				t.Errorf("got %+v, want a failure of kind %s", res, tt.kind)
			}
		})
	}
}

func TestProbeHTTPRetriesUntilAnswered(t *testing.T) {
	addr := closedAddr(t)
	go func() {
		time.Sleep(150 * time.Millisecond)
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return
		}
		http.Serve(ln, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	}()
	opts := Options{Timeout: time.Second, Attempts: 50, Interval: 20 * time.Millisecond}
	res, err := ProbeHTTP(context.Background(), opts, "GET", "http://"+addr+"/", "")
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK || res.Attempts < 2 || res.Kind != "" || res.Error != "" {
		t.Errorf("got %+v, want success after at least two attempts with no error left over", res)
	}
}

func TestProbeHTTPStopsAfterAttempts(t *testing.T) {
	opts := Options{Timeout: time.Second, Attempts: 3, Interval: 5 * time.Millisecond}
	res, _ := ProbeHTTP(context.Background(), opts, "GET", "http://"+closedAddr(t)+"/", "")
	if res.OK || res.Attempts != 3 {
		t.Errorf("got %+v, want 3 failed attempts", res)
	}
}

func TestProbeHTTPRejectsBadInput(t *testing.T) {
	for _, tt := range []struct{ method, url string }{
		{"GET", "ftp://example/"},
		{"GET", "/relative"},
		{"DELETE", "http://127.0.0.1/"},
	} {
		if _, err := ProbeHTTP(context.Background(), fast(), tt.method, tt.url, ""); err == nil {
			t.Errorf("%s %s: want an error", tt.method, tt.url)
		}
	}
}

func TestProbeDNS(t *testing.T) {
	res, err := ProbeDNS(context.Background(), fast(), "localhost")
	if err != nil || !res.OK || len(res.Addresses) == 0 {
		t.Errorf("localhost: got %+v, %v", res, err)
	}
	res, err = ProbeDNS(context.Background(), fast(), "no-such-host.invalid")
	if err != nil || res.OK || res.Kind != KindDNS {
		t.Errorf("no-such-host.invalid: got %+v, %v", res, err)
	}
}

func TestRunExitCodesAndOutput(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()

	tests := []struct {
		name   string
		args   []string
		code   int
		wantOK bool
	}{
		{"answered", []string{"http", "GET", srv.URL}, exitOK, true},
		{"answered post", []string{"-timeout", "1s", "http", "POST", srv.URL, "{}"}, exitOK, true},
		{"refused", []string{"-attempts", "2", "-interval", "1ms", "http", "GET", "http://" + closedAddr(t)}, exitFailed, false},
		{"resolves", []string{"dns", "localhost"}, exitOK, true},
		{"does not resolve", []string{"dns", "no-such-host.invalid"}, exitFailed, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := run(context.Background(), tt.args, &out, &errOut)
			if code != tt.code {
				t.Fatalf("exit %d, want %d (stderr %q)", code, tt.code, errOut.String())
			}
			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			if len(lines) != 1 {
				t.Fatalf("want exactly one output line, got %q", out.String())
			}
			var res Result
			if err := json.Unmarshal([]byte(lines[0]), &res); err != nil {
				t.Fatalf("output is not JSON: %v", err)
			}
			if res.OK != tt.wantOK {
				t.Errorf("ok = %v, want %v: %s", res.OK, tt.wantOK, lines[0])
			}
		})
	}
}

func TestRunUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		nil,
		{"http"},
		{"http", "GET"},
		{"http", "GET", "http://x/", "body", "extra"},
		{"dns"},
		{"ping", "x"},
		{"-attempts", "0", "dns", "localhost"},
		{"-timeout", "0s", "dns", "localhost"},
		{"-bogus", "dns", "localhost"},
		{"http", "PUT", "http://127.0.0.1/"},
	} {
		var out, errOut bytes.Buffer
		if code := run(context.Background(), args, &out, &errOut); code != exitUsage || out.Len() != 0 {
			t.Errorf("%q: exit %d with stdout %q, want %d and no output", args, code, out.String(), exitUsage)
		}
	}
}

func TestProbeTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan struct{}, 1)
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Close()
			accepted <- struct{}{}
		}
	}()
	res, err := ProbeTCP(context.Background(), fast(), ln.Addr().String())
	if err != nil || !res.OK || res.Mode != "tcp" || res.Attempts != 1 {
		t.Fatalf("got %+v, %v; want one successful connection", res, err)
	}
	select {
	case <-accepted:
	case <-time.After(2 * time.Second):
		t.Fatal("the listener never saw the connection")
	}

	res, err = ProbeTCP(context.Background(), fast(), closedAddr(t))
	if err != nil || res.OK || res.Kind != KindRefused {
		t.Fatalf("got %+v, %v; want a refused connection", res, err)
	}
	for _, bad := range []string{"", "no-port", ":5432", "host:"} {
		if _, err := ProbeTCP(context.Background(), fast(), bad); err == nil {
			t.Errorf("address %q: want an error", bad)
		}
	}
}

func TestDelayComesBeforeTheFirstAttempt(t *testing.T) {
	opts := fast()
	opts.Delay = 300 * time.Millisecond
	start := time.Now()
	res, err := ProbeTCP(context.Background(), opts, closedAddr(t))
	if err != nil || res.OK {
		t.Fatalf("got %+v, %v", res, err)
	}
	if waited := time.Since(start); waited < opts.Delay {
		t.Fatalf("first attempt after %s, want at least %s", waited, opts.Delay)
	}
	opts.Delay = -time.Second
	if opts.validate() == nil {
		t.Fatal("a negative delay must be refused")
	}
}
