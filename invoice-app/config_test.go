package main

import (
	"bytes"
	"errors"
	"maps"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func envFrom(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

const testDatabaseURL = "postgres://invoices@invoices-db.invoices.svc.cluster.local:5432/invoices?sslmode=disable"

// withBase adds the two required variables to env, unless env sets them.
func withBase(env map[string]string) map[string]string {
	out := map[string]string{"PAYMENT_PROVIDER_URL": "http://pp", "DATABASE_URL": testDatabaseURL}
	maps.Copy(out, env)
	return out
}

func TestLoadConfig(t *testing.T) {
	cfg, err := LoadConfig(envFrom(withBase(map[string]string{"HOSTNAME": "invoice-app-7d9f-abcde"})))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ListenAddr != ":8081" || cfg.PaymentProviderURL.String() != "http://pp" || cfg.PaymentTimeout != 5*time.Second ||
		cfg.DBTimeout != 2*time.Second || cfg.DB.MaxConns != 10 || cfg.ClaimLease != time.Minute ||
		cfg.PayConcurrency != 8 || cfg.PayBudget != 20*time.Second || cfg.ReplicaID != "invoice-app-7d9f-abcde" {
		t.Fatalf("defaults: %+v", cfg)
	}
	if cc := cfg.DB.ConnConfig; cc.Host != "invoices-db.invoices.svc.cluster.local" || cc.Port != 5432 ||
		cc.User != "invoices" || cc.Database != "invoices" || cc.ConnectTimeout != 2*time.Second {
		t.Fatalf("database: %s@%s:%d/%s, connect timeout %s", cc.User, cc.Host, cc.Port, cc.Database, cc.ConnectTimeout)
	}
	if w := cfg.WriteTimeout(); w <= cfg.PayBudget+cfg.PaymentTimeout {
		t.Fatalf("WriteTimeout %s leaves a run no time to finish its payments after the budget", w)
	}

	cfg, err = LoadConfig(envFrom(withBase(map[string]string{
		"PAYMENT_PROVIDER_URL": "https://pay.example.com/api",
		"LISTEN_ADDR":          "127.0.0.1:9000",
		"PAYMENT_TIMEOUT":      "1500ms",
		"DB_TIMEOUT":           "500ms",
		"DB_MAX_CONNS":         "4",
		"CLAIM_LEASE":          "2m",
		"PAY_CONCURRENCY":      "3",
		"PAY_BUDGET":           "45s",
	})))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ListenAddr != "127.0.0.1:9000" || cfg.PaymentProviderURL.String() != "https://pay.example.com/api" ||
		cfg.PaymentTimeout != 1500*time.Millisecond || cfg.DBTimeout != 500*time.Millisecond || cfg.DB.MaxConns != 4 ||
		cfg.ClaimLease != 2*time.Minute || cfg.PayConcurrency != 3 || cfg.PayBudget != 45*time.Second {
		t.Fatalf("everything set: %+v", cfg)
	}

	// Without HOSTNAME every process still gets a name of its own.
	a, _ := LoadConfig(envFrom(withBase(nil)))
	b, _ := LoadConfig(envFrom(withBase(nil)))
	if a.ReplicaID == "" || a.ReplicaID == b.ReplicaID {
		t.Fatalf("replica ids %q and %q, want two different ones", a.ReplicaID, b.ReplicaID)
	}
}

func TestLoadConfigErrors(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		wantErr string
	}{
		{name: "url missing", env: map[string]string{"PAYMENT_PROVIDER_URL": ""}, wantErr: "PAYMENT_PROVIDER_URL is required"},
		{name: "url relative", env: map[string]string{"PAYMENT_PROVIDER_URL": "payment-provider:8082"}, wantErr: "PAYMENT_PROVIDER_URL"},
		{name: "url path only", env: map[string]string{"PAYMENT_PROVIDER_URL": "/payments"}, wantErr: "PAYMENT_PROVIDER_URL"},
		{name: "url wrong scheme", env: map[string]string{"PAYMENT_PROVIDER_URL": "ftp://payment-provider"}, wantErr: "PAYMENT_PROVIDER_URL"},
		{name: "url without host", env: map[string]string{"PAYMENT_PROVIDER_URL": "http://"}, wantErr: "PAYMENT_PROVIDER_URL"},
		{name: "url port without host", env: map[string]string{"PAYMENT_PROVIDER_URL": "http://:8082"}, wantErr: "PAYMENT_PROVIDER_URL"},
		{name: "url unparsable", env: map[string]string{"PAYMENT_PROVIDER_URL": "http://[::1"}, wantErr: "PAYMENT_PROVIDER_URL"},
		{name: "url with credentials", env: map[string]string{"PAYMENT_PROVIDER_URL": "http://u:p@payment-provider"}, wantErr: "PAYMENT_PROVIDER_URL"},
		{name: "url with query", env: map[string]string{"PAYMENT_PROVIDER_URL": "http://payment-provider?x=1"}, wantErr: "PAYMENT_PROVIDER_URL"},
		{name: "timeout not a duration", env: map[string]string{"PAYMENT_TIMEOUT": "5"}, wantErr: "PAYMENT_TIMEOUT"},
		{name: "timeout zero", env: map[string]string{"PAYMENT_TIMEOUT": "0s"}, wantErr: "PAYMENT_TIMEOUT"},
		{name: "timeout negative", env: map[string]string{"PAYMENT_TIMEOUT": "-1s"}, wantErr: "PAYMENT_TIMEOUT"},
		{name: "listen address without port", env: map[string]string{"LISTEN_ADDR": "8081"}, wantErr: "LISTEN_ADDR"},
		{name: "database url missing", env: map[string]string{"DATABASE_URL": ""}, wantErr: "DATABASE_URL is required"},
		{name: "database url unparsable", env: map[string]string{"DATABASE_URL": "postgres://invoices@db:notaport/invoices"}, wantErr: "DATABASE_URL is not a valid"},
		{name: "database url bad option", env: map[string]string{"DATABASE_URL": "postgres://invoices@db/invoices?sslmode=sometimes"}, wantErr: "DATABASE_URL"},
		{name: "db timeout", env: map[string]string{"DB_TIMEOUT": "2"}, wantErr: "DB_TIMEOUT"},
		{name: "db timeout zero", env: map[string]string{"DB_TIMEOUT": "0s"}, wantErr: "DB_TIMEOUT"},
		{name: "db max conns zero", env: map[string]string{"DB_MAX_CONNS": "0"}, wantErr: "DB_MAX_CONNS"},
		{name: "db max conns word", env: map[string]string{"DB_MAX_CONNS": "ten"}, wantErr: "DB_MAX_CONNS"},
		{name: "claim lease", env: map[string]string{"CLAIM_LEASE": "soon"}, wantErr: "CLAIM_LEASE"},
		{name: "claim lease shorter than a payment", env: map[string]string{"CLAIM_LEASE": "10s"}, wantErr: "CLAIM_LEASE 10s must be longer"},
		{name: "pay concurrency zero", env: map[string]string{"PAY_CONCURRENCY": "0"}, wantErr: "PAY_CONCURRENCY"},
		{name: "pay concurrency huge", env: map[string]string{"PAY_CONCURRENCY": "100000"}, wantErr: "PAY_CONCURRENCY"},
		{name: "pay budget", env: map[string]string{"PAY_BUDGET": "-20s"}, wantErr: "PAY_BUDGET"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadConfig(envFrom(withBase(tt.env)))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error = %v, want one line containing %q", err, tt.wantErr)
			}
		})
	}
}

// A password in DATABASE_URL (it belongs in PGPASSWORD) never shows up in
// an error, which would end up in the log.
func TestLoadConfigHidesTheDatabasePassword(t *testing.T) {
	for _, raw := range []string{
		"postgres://invoices:s3cret-pw@db:notaport/invoices",
		"postgres://invoices:s3cret-pw@db/invoices?sslmode=sometimes",
		"postgres://invoices:s3cret-pw@db/invoices?connect_timeout=x",
		"host=db user=invoices password=s3cret-pw sslmode=sometimes",
	} {
		_, err := LoadConfig(envFrom(withBase(map[string]string{"DATABASE_URL": raw})))
		if err == nil || !strings.Contains(err.Error(), "DATABASE_URL") || strings.Contains(err.Error(), "s3cret-pw") {
			t.Errorf("%s: error = %v, want one naming DATABASE_URL without the password", raw, err)
		}
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
		{name: "missing url", env: []string{"DATABASE_URL=" + testDatabaseURL}, want: "PAYMENT_PROVIDER_URL is required"},
		{name: "malformed url", env: []string{"DATABASE_URL=" + testDatabaseURL, "PAYMENT_PROVIDER_URL=not a url"}, want: "PAYMENT_PROVIDER_URL"},
		{name: "bad timeout", env: []string{"DATABASE_URL=" + testDatabaseURL, "PAYMENT_PROVIDER_URL=http://pp", "PAYMENT_TIMEOUT=soon"}, want: "PAYMENT_TIMEOUT"},
		{name: "missing database", env: []string{"PAYMENT_PROVIDER_URL=http://pp"}, want: "DATABASE_URL is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestMainRejectsBadConfig$")
			// A coverage build warns on stderr when GOCOVERDIR is unset;
			// give the child a directory so that stderr holds the log alone.
			cmd.Env = append([]string{"INVOICE_APP_RUN_MAIN=1", "LISTEN_ADDR=127.0.0.1:0", "GOCOVERDIR=" + t.TempDir()}, tt.env...)
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
