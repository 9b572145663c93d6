package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func envFrom(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestLoadConfig(t *testing.T) {
	tests := []struct {
		name        string
		env         map[string]string
		wantErr     string
		wantAddr    string
		wantURL     string
		wantTimeout time.Duration
	}{
		{
			name:        "defaults",
			env:         map[string]string{"PAYMENT_PROVIDER_URL": "http://payment-provider:8082"},
			wantAddr:    ":8081",
			wantURL:     "http://payment-provider:8082",
			wantTimeout: 5 * time.Second,
		},
		{
			name: "everything set",
			env: map[string]string{
				"PAYMENT_PROVIDER_URL": "https://pay.example.com/api",
				"LISTEN_ADDR":          "127.0.0.1:9000",
				"PAYMENT_TIMEOUT":      "1500ms",
			},
			wantAddr:    "127.0.0.1:9000",
			wantURL:     "https://pay.example.com/api",
			wantTimeout: 1500 * time.Millisecond,
		},
		{name: "url missing", env: map[string]string{}, wantErr: "PAYMENT_PROVIDER_URL is required"},
		{name: "url relative", env: map[string]string{"PAYMENT_PROVIDER_URL": "payment-provider:8082"}, wantErr: "PAYMENT_PROVIDER_URL"},
		{name: "url path only", env: map[string]string{"PAYMENT_PROVIDER_URL": "/payments"}, wantErr: "PAYMENT_PROVIDER_URL"},
		{name: "url wrong scheme", env: map[string]string{"PAYMENT_PROVIDER_URL": "ftp://payment-provider"}, wantErr: "PAYMENT_PROVIDER_URL"},
		{name: "url without host", env: map[string]string{"PAYMENT_PROVIDER_URL": "http://"}, wantErr: "PAYMENT_PROVIDER_URL"},
		{name: "url port without host", env: map[string]string{"PAYMENT_PROVIDER_URL": "http://:8082"}, wantErr: "PAYMENT_PROVIDER_URL"},
		{name: "url unparsable", env: map[string]string{"PAYMENT_PROVIDER_URL": "http://[::1"}, wantErr: "PAYMENT_PROVIDER_URL"},
		{name: "url with credentials", env: map[string]string{"PAYMENT_PROVIDER_URL": "http://u:p@payment-provider"}, wantErr: "PAYMENT_PROVIDER_URL"},
		{name: "url with query", env: map[string]string{"PAYMENT_PROVIDER_URL": "http://payment-provider?x=1"}, wantErr: "PAYMENT_PROVIDER_URL"},
		{
			name:    "timeout not a duration",
			env:     map[string]string{"PAYMENT_PROVIDER_URL": "http://pp", "PAYMENT_TIMEOUT": "5"},
			wantErr: "PAYMENT_TIMEOUT",
		},
		{
			name:    "timeout zero",
			env:     map[string]string{"PAYMENT_PROVIDER_URL": "http://pp", "PAYMENT_TIMEOUT": "0s"},
			wantErr: "PAYMENT_TIMEOUT",
		},
		{
			name:    "timeout negative",
			env:     map[string]string{"PAYMENT_PROVIDER_URL": "http://pp", "PAYMENT_TIMEOUT": "-1s"},
			wantErr: "PAYMENT_TIMEOUT",
		},
		{
			name:    "listen address without port",
			env:     map[string]string{"PAYMENT_PROVIDER_URL": "http://pp", "LISTEN_ADDR": "8081"},
			wantErr: "LISTEN_ADDR",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := LoadConfig(envFrom(tt.env))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if cfg.ListenAddr != tt.wantAddr || cfg.PaymentProviderURL.String() != tt.wantURL || cfg.PaymentTimeout != tt.wantTimeout {
				t.Fatalf("got %q %q %s, want %q %q %s", cfg.ListenAddr, cfg.PaymentProviderURL, cfg.PaymentTimeout,
					tt.wantAddr, tt.wantURL, tt.wantTimeout)
			}
		})
	}
}

// TestMainRejectsBadConfig runs the real main in a child process: the
// process must exit non-zero with one log line naming the variable.
func TestMainRejectsBadConfig(t *testing.T) {
	if os.Getenv("INVOICE_APP_RUN_MAIN") == "1" {
		main()
		return
	}
	tests := []struct {
		name string
		env  []string
		want string
	}{
		{name: "missing url", env: nil, want: "PAYMENT_PROVIDER_URL is required"},
		{name: "malformed url", env: []string{"PAYMENT_PROVIDER_URL=not a url"}, want: "PAYMENT_PROVIDER_URL"},
		{name: "bad timeout", env: []string{"PAYMENT_PROVIDER_URL=http://pp", "PAYMENT_TIMEOUT=soon"}, want: "PAYMENT_TIMEOUT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestMainRejectsBadConfig$")
			cmd.Env = append([]string{"INVOICE_APP_RUN_MAIN=1", "LISTEN_ADDR=127.0.0.1:0"}, tt.env...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			var exitErr *exec.ExitError
			if !errors.As(err, &exitErr) || exitErr.ExitCode() == 0 {
				t.Fatalf("process ended with %v, want a non-zero exit", err)
			}
			out := strings.TrimSpace(stderr.String())
			if strings.Count(out, "\n") != 0 || !strings.Contains(out, tt.want) {
				t.Fatalf("stderr = %q, want one line containing %q", out, tt.want)
			}
		})
	}
}
