package main

import (
	"fmt"
	"net"
)

// Config is everything payment-provider reads from its environment.
type Config struct {
	ListenAddr string
}

const defaultListenAddr = ":8082"

// LoadConfig builds a Config from getenv (os.Getenv in production).
func LoadConfig(getenv func(string) string) (Config, error) {
	cfg := Config{ListenAddr: defaultListenAddr}
	if v := getenv("LISTEN_ADDR"); v != "" {
		if _, _, err := net.SplitHostPort(v); err != nil {
			return Config{}, fmt.Errorf("LISTEN_ADDR %q is not host:port or :port", v)
		}
		cfg.ListenAddr = v
	}
	return cfg, nil
}
