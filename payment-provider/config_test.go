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

const testDatabaseURL = "postgres://payments@payments-db.payments.svc.cluster.local:5432/payments?sslmode=disable"

func TestLoadConfig(t *testing.T) {
	tests := []struct {
		name        string
		env         map[string]string
		wantAddr    string
		wantTimeout time.Duration
		wantConns   int32
		wantErr     string
	}{
		{name: "default", env: map[string]string{}, wantAddr: ":8082", wantTimeout: 2 * time.Second, wantConns: 10},
		{name: "explicit", env: map[string]string{"LISTEN_ADDR": "127.0.0.1:9000", "DB_TIMEOUT": "750ms", "DB_MAX_CONNS": "3"},
			wantAddr: "127.0.0.1:9000", wantTimeout: 750 * time.Millisecond, wantConns: 3},
		{name: "port only", env: map[string]string{"LISTEN_ADDR": ":9000"}, wantAddr: ":9000", wantTimeout: 2 * time.Second, wantConns: 10},
		{name: "no port", env: map[string]string{"LISTEN_ADDR": "9000"}, wantErr: "LISTEN_ADDR"},
		{name: "no database", env: map[string]string{"DATABASE_URL": ""}, wantErr: "DATABASE_URL is required"},
		{name: "bad database url", env: map[string]string{"DATABASE_URL": "postgres://payments@db:port/payments"}, wantErr: "DATABASE_URL is not a valid"},
		{name: "bad database option", env: map[string]string{"DATABASE_URL": "postgres://payments@db/payments?sslmode=maybe"}, wantErr: "DATABASE_URL"},
		{name: "db timeout not a duration", env: map[string]string{"DB_TIMEOUT": "2"}, wantErr: "DB_TIMEOUT"},
		{name: "db timeout negative", env: map[string]string{"DB_TIMEOUT": "-2s"}, wantErr: "DB_TIMEOUT"},
		{name: "db max conns zero", env: map[string]string{"DB_MAX_CONNS": "0"}, wantErr: "DB_MAX_CONNS"},
		{name: "db max conns word", env: map[string]string{"DB_MAX_CONNS": "many"}, wantErr: "DB_MAX_CONNS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"DATABASE_URL": testDatabaseURL}
			for k, v := range tt.env {
				env[k] = v
			}
			cfg, err := LoadConfig(func(k string) string { return env[k] })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || strings.Contains(err.Error(), "\n") {
					t.Fatalf("error = %v, want one line containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || cfg.ListenAddr != tt.wantAddr || cfg.DBTimeout != tt.wantTimeout || cfg.DB.MaxConns != tt.wantConns {
				t.Fatalf("got %q %s %d, %v; want %q %s %d", cfg.ListenAddr, cfg.DBTimeout, cfg.DB.MaxConns, err,
					tt.wantAddr, tt.wantTimeout, tt.wantConns)
			}
			if cc := cfg.DB.ConnConfig; cc.Database != "payments" || cc.ConnectTimeout != tt.wantTimeout {
				t.Fatalf("database %q, connect timeout %s", cc.Database, cc.ConnectTimeout)
			}
		})
	}
}

// A password in DATABASE_URL (it belongs in PGPASSWORD) never shows up in
// an error, which would end up in the log.
func TestLoadConfigHidesTheDatabasePassword(t *testing.T) {
	for _, raw := range []string{
		"postgres://payments:s3cret-pw@db:port/payments",
		"postgres://payments:s3cret-pw@db/payments?sslmode=maybe",
		"host=db user=payments password=s3cret-pw sslmode=maybe",
	} {
		_, err := LoadConfig(func(k string) string { return map[string]string{"DATABASE_URL": raw}[k] })
		if err == nil || !strings.Contains(err.Error(), "DATABASE_URL") || strings.Contains(err.Error(), "s3cret-pw") {
			t.Errorf("%s: error = %v, want one naming DATABASE_URL without the password", raw, err)
		}
	}
}

// TestMainRejectsBadConfig runs the real main in a child process: it must
// exit non-zero with one log line naming the variable.
func TestMainRejectsBadConfig(t *testing.T) {
	if os.Getenv("PAYMENT_PROVIDER_RUN_MAIN") == "1" {
		main()
		return
	}
	for _, tt := range []struct {
		env  []string
		want string
	}{
		{env: []string{"LISTEN_ADDR=nonsense", "DATABASE_URL=" + testDatabaseURL}, want: "LISTEN_ADDR"},
		{env: []string{"LISTEN_ADDR=127.0.0.1:0"}, want: "DATABASE_URL is required"},
	} {
		t.Run(tt.want, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestMainRejectsBadConfig$")
			// A coverage build warns on stderr when GOCOVERDIR is unset;
			// give the child a directory so that stderr holds the log alone.
			cmd.Env = append([]string{"PAYMENT_PROVIDER_RUN_MAIN=1", "GOCOVERDIR=" + t.TempDir()}, tt.env...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			var exitErr *exec.ExitError
			if !errors.As(err, &exitErr) || exitErr.ExitCode() == 0 {
				t.Fatalf("process ended with %v, want a non-zero exit", err)
			}
			out := strings.TrimSpace(stderr.String())
			if strings.Contains(out, "\n") || !strings.Contains(out, tt.want) {
				t.Fatalf("stderr = %q, want one line naming %s", out, tt.want)
			}
		})
	}
}
