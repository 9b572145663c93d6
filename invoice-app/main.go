// Command invoice-app serves invoices and pays them through payment-provider.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// shutdownTimeout stays below Kubernetes' default 30 s grace period.
const shutdownTimeout = 20 * time.Second

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	cfg, err := LoadConfig(os.Getenv)
	if err != nil {
		log.Error("invalid configuration: " + err.Error())
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := run(ctx, cfg, log); err != nil {
		log.Error("server failed", "error", err.Error())
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg Config, log *slog.Logger) error {
	ln, err := net.Listen("tcp", cfg.ListenAddr)
	if err != nil {
		return err
	}
	// The pool connects lazily and reconnects by itself once the database
	// is back, so a database outage never needs a restart.
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg.DB)
	if err != nil {
		return err
	}
	defer pool.Close()
	store := NewStore(pool, cfg.DBTimeout, cfg.ClaimLease)
	app := NewApp(store, NewPaymentClient(cfg.PaymentProviderURL, cfg.PaymentTimeout, cfg.PayConcurrency), log, PayRun{
		Replica:     cfg.ReplicaID,
		Concurrency: cfg.PayConcurrency,
		Budget:      cfg.PayBudget,
	})
	app.stopping = ctx
	go func() { _ = store.MigrateUntilReady(ctx, log) }()

	log.Info("listening", "addr", ln.Addr().String(), "replica", cfg.ReplicaID,
		"database", dbTarget(cfg.DB), "db_timeout", cfg.DBTimeout.String(), "db_max_conns", cfg.DB.MaxConns,
		"payment_provider_url", cfg.PaymentProviderURL.String(), "payment_timeout", cfg.PaymentTimeout.String(),
		"pay_concurrency", cfg.PayConcurrency, "pay_budget", cfg.PayBudget.String(), "claim_lease", cfg.ClaimLease.String())
	return serve(ctx, ln, app.Routes(), cfg.WriteTimeout(), log)
}

// dbTarget names the database for the log, never with its password.
func dbTarget(c *pgxpool.Config) string {
	cc := c.ConnConfig
	return fmt.Sprintf("%s@%s/%s", cc.User, net.JoinHostPort(cc.Host, strconv.Itoa(int(cc.Port))), cc.Database)
}

// serve runs handler on ln until ctx is done, then drains in-flight requests
// for at most shutdownTimeout.
func serve(ctx context.Context, ln net.Listener, handler http.Handler, writeTimeout time.Duration, log *slog.Logger) error {
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down, draining in-flight requests", "timeout", shutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	log.Info("stopped")
	return nil
}
