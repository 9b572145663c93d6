package main

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"time"
)

// Config is everything invoice-app reads from its environment.
type Config struct {
	ListenAddr         string
	PaymentProviderURL *url.URL
	PaymentTimeout     time.Duration
}

const (
	defaultListenAddr     = ":8081"
	defaultPaymentTimeout = 5 * time.Second
)

// LoadConfig builds a Config from getenv (os.Getenv in production). Every
// error names the variable at fault, so a pod that cannot start says why in
// one log line.
func LoadConfig(getenv func(string) string) (Config, error) {
	cfg := Config{
		ListenAddr:     defaultListenAddr,
		PaymentTimeout: defaultPaymentTimeout,
	}
	if v := getenv("LISTEN_ADDR"); v != "" {
		if _, _, err := net.SplitHostPort(v); err != nil {
			return Config{}, fmt.Errorf("LISTEN_ADDR %q is not host:port or :port", v)
		}
		cfg.ListenAddr = v
	}

	raw := getenv("PAYMENT_PROVIDER_URL")
	if raw == "" {
		return Config{}, errors.New("PAYMENT_PROVIDER_URL is required (for example http://payment-provider:8082)")
	}
	u, err := parseProviderURL(raw)
	if err != nil {
		return Config{}, fmt.Errorf("PAYMENT_PROVIDER_URL %q is invalid: %w", raw, err)
	}
	cfg.PaymentProviderURL = u

	if v := getenv("PAYMENT_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return Config{}, fmt.Errorf("PAYMENT_TIMEOUT %q is not a Go duration such as 5s or 1500ms", v)
		}
		if d <= 0 {
			return Config{}, fmt.Errorf("PAYMENT_TIMEOUT %q must be greater than zero", v)
		}
		cfg.PaymentTimeout = d
	}
	return cfg, nil
}

func parseProviderURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New("not a URL")
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, errors.New("scheme must be http or https")
	case u.Host == "" || u.Hostname() == "":
		return nil, errors.New("host is missing")
	case u.User != nil:
		return nil, errors.New("credentials do not belong in the URL")
	case u.RawQuery != "" || u.Fragment != "":
		return nil, errors.New("query and fragment are not allowed")
	}
	return u, nil
}
