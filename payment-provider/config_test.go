package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
)

func TestLoadConfig(t *testing.T) {
	tests := []struct {
		name     string
		env      map[string]string
		wantAddr string
		wantErr  string
	}{
		{name: "default", env: map[string]string{}, wantAddr: ":8082"},
		{name: "explicit", env: map[string]string{"LISTEN_ADDR": "127.0.0.1:9000"}, wantAddr: "127.0.0.1:9000"},
		{name: "port only", env: map[string]string{"LISTEN_ADDR": ":9000"}, wantAddr: ":9000"},
		{name: "no port", env: map[string]string{"LISTEN_ADDR": "9000"}, wantErr: "LISTEN_ADDR"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := LoadConfig(func(k string) string { return tt.env[k] })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || cfg.ListenAddr != tt.wantAddr {
				t.Fatalf("got %q, %v; want %q", cfg.ListenAddr, err, tt.wantAddr)
			}
		})
	}
}

// TestMainRejectsBadConfig runs the real main in a child process.
func TestMainRejectsBadConfig(t *testing.T) {
	if os.Getenv("PAYMENT_PROVIDER_RUN_MAIN") == "1" {
		main()
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestMainRejectsBadConfig$")
	cmd.Env = []string{"PAYMENT_PROVIDER_RUN_MAIN=1", "LISTEN_ADDR=nonsense"}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || exitErr.ExitCode() == 0 {
		t.Fatalf("process ended with %v, want a non-zero exit", err)
	}
	out := strings.TrimSpace(stderr.String())
	if strings.Contains(out, "\n") || !strings.Contains(out, "LISTEN_ADDR") {
		t.Fatalf("stderr = %q, want one line naming LISTEN_ADDR", out)
	}
}
