package main

import (
	"io"
	"log/slog"
	"strings"
	"testing"
)

// A mistyped --store must not print the Redis password it holds.
func TestOpenStore_ErrorsKeepThePasswordOut(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, u := range []string{
		"redis://:hunter2@localhost:63a79/0", // bad port: url.Parse quotes the URL
		"rediss://user:hunter2@[::1/0",       // bad host
		"reddis://:hunter2@localhost:6379/0", // unknown scheme
		"redis://:hunter2@localhost:6379/0?cluster=maybe",
	} {
		_, err := openStore(config{storeURL: u}, quiet)
		if err == nil {
			t.Fatalf("--store %s opened", u)
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("--store error shows the password: %v", err)
		}
	}
}
