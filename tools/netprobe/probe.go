package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"
)

// maxBodyExcerpt bounds the response body quoted in the result line.
const maxBodyExcerpt = 256

// Options shape every probe.
type Options struct {
	Timeout  time.Duration
	Attempts int
	Interval time.Duration
	// Delay before the first attempt: a new pod's own policy rules reach
	// the policy engine a moment after the pod starts, and until then its
	// egress is not yet restricted.
	Delay time.Duration
}

func (o Options) validate() error {
	switch {
	case o.Timeout <= 0:
		return errors.New("-timeout must be greater than zero")
	case o.Attempts < 1:
		return errors.New("-attempts must be at least 1")
	case o.Interval < 0:
		return errors.New("-interval must not be negative")
	case o.Delay < 0:
		return errors.New("-delay must not be negative")
	}
	return nil
}

// Result is the one JSON line a probe prints. Kind classifies a failure so a
// caller can tell a blocked connection (timeout, refused) from a broken name
// lookup (dns).
type Result struct {
	Mode      string   `json:"mode"`
	Target    string   `json:"target"`
	Method    string   `json:"method,omitempty"`
	OK        bool     `json:"ok"`
	Status    int      `json:"status,omitempty"`
	Body      string   `json:"body,omitempty"`
	Addresses []string `json:"addresses,omitempty"`
	Kind      string   `json:"kind,omitempty"`
	Error     string   `json:"error,omitempty"`
	Attempts  int      `json:"attempts"`
	ElapsedMS int64    `json:"elapsed_ms"`
}

// Failure kinds.
const (
	KindTimeout = "timeout"
	KindRefused = "refused"
	KindReset   = "reset"
	KindUnreach = "unreachable"
	KindDNS     = "dns"
	KindOther   = "other"
)

// ProbeHTTP sends one request per attempt until any HTTP response arrives;
// the status code does not matter, only that a server answered. The error
// is for a malformed request, never for a network failure.
func ProbeHTTP(ctx context.Context, opts Options, method, rawURL, body string) (Result, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return Result{}, fmt.Errorf("URL %q must be an absolute http or https URL", rawURL)
	}
	method = strings.ToUpper(method)
	if method != http.MethodGet && method != http.MethodPost {
		return Result{}, fmt.Errorf("method %q is not GET or POST", method)
	}
	client := &http.Client{
		Timeout: opts.Timeout,
		// Keep-alive would let a later attempt reuse a connection made
		// before a policy changed.
		Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	res := Result{Mode: "http", Target: u.String(), Method: method}
	attempt := func(ctx context.Context) bool {
		req, err := http.NewRequestWithContext(ctx, method, u.String(), strings.NewReader(body))
		if err != nil {
			res.Kind, res.Error = KindOther, err.Error()
			return false
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := client.Do(req)
		if err != nil {
			res.Kind, res.Error = classify(err), err.Error()
			return false
		}
		defer resp.Body.Close()
		excerpt, _ := io.ReadAll(io.LimitReader(resp.Body, maxBodyExcerpt))
		res.OK, res.Status, res.Kind, res.Error = true, resp.StatusCode, "", ""
		res.Body = strings.TrimSpace(strings.ToValidUTF8(string(excerpt), string(utf8.RuneError)))
		return true
	}
	repeat(ctx, opts, &res, attempt)
	return res, nil
}

// ProbeDNS resolves name through the system resolver (in a pod, the cluster
// DNS named in /etc/resolv.conf).
func ProbeDNS(ctx context.Context, opts Options, name string) (Result, error) {
	if name == "" {
		return Result{}, errors.New("name must not be empty")
	}
	res := Result{Mode: "dns", Target: name}
	resolver := &net.Resolver{}
	attempt := func(ctx context.Context) bool {
		ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
		defer cancel()
		addrs, err := resolver.LookupHost(ctx, name)
		if err != nil {
			res.Kind, res.Error = KindDNS, err.Error()
			return false
		}
		res.OK, res.Addresses, res.Kind, res.Error = true, addrs, "", ""
		return true
	}
	repeat(ctx, opts, &res, attempt)
	return res, nil
}

// ProbeTCP opens one TCP connection per attempt to address (host:port) and
// closes it at once: success means something accepted the connection, for
// servers that do not speak HTTP, such as PostgreSQL.
func ProbeTCP(ctx context.Context, opts Options, address string) (Result, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil || host == "" || port == "" {
		return Result{}, fmt.Errorf("address %q must be host:port", address)
	}
	res := Result{Mode: "tcp", Target: address}
	dialer := &net.Dialer{Timeout: opts.Timeout}
	attempt := func(ctx context.Context) bool {
		conn, err := dialer.DialContext(ctx, "tcp", address)
		if err != nil {
			res.Kind, res.Error = classify(err), err.Error()
			return false
		}
		_ = conn.Close()
		res.OK, res.Kind, res.Error = true, "", ""
		return true
	}
	repeat(ctx, opts, &res, attempt)
	return res, nil
}

func repeat(ctx context.Context, opts Options, res *Result, attempt func(context.Context) bool) {
	if opts.Delay > 0 {
		select {
		case <-ctx.Done():
			return
		case <-time.After(opts.Delay):
		}
	}
	start := time.Now()
	defer func() { res.ElapsedMS = time.Since(start).Milliseconds() }()
	for i := 1; i <= opts.Attempts; i++ {
		res.Attempts = i
		if attempt(ctx) {
			return
		}
		if i == opts.Attempts {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(opts.Interval):
		}
	}
}

// classify names the reason a request got no response.
func classify(err error) string {
	var dnsErr *net.DNSError
	var netErr net.Error
	switch {
	case errors.As(err, &dnsErr):
		return KindDNS
	case errors.Is(err, syscall.ECONNREFUSED):
		return KindRefused
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return KindReset
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded),
		errors.As(err, &netErr) && netErr.Timeout():
		return KindTimeout
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		// What a REJECT with an ICMP unreachable answer looks like.
		return KindUnreach
	}
	return KindOther
}
