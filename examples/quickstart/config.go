package main

import (
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/kommo-go/kommo/examples/internal/demo"
	"github.com/kommo-go/kommo/kommotest"
)

// config says which account to use (an empty ChannelID means embedded mode).
type config struct {
	demo.Account
	contactID, talkID int
	replyTimeout      time.Duration

	// server is the embedded fake to use in embedded mode; run starts one
	// when it is nil (tests pass their own to inspect it afterwards).
	server *kommotest.Server
}

// configFromEnv reads the variables listed in the package comment.
func configFromEnv() (config, error) {
	cfg := config{Account: demo.FromEnv()}
	if cfg.ChannelID != "" {
		if err := demo.RequireEnv("KOMMO_CHANNEL_ID", "KOMMO_CHANNEL_SECRET", "KOMMO_BASE_DOMAIN", "KOMMO_ACCESS_TOKEN"); err != nil {
			return cfg, err
		}
	}
	var err error
	if cfg.contactID, err = envInt("KOMMO_CONTACT_ID"); err != nil {
		return cfg, err
	}
	if cfg.talkID, err = envInt("KOMMO_TALK_ID"); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// envInt reads an optional positive number (0 when unset).
func envInt(name string) (int, error) {
	v := os.Getenv(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%s: %q is not a positive number", name, v)
	}
	return n, nil
}
