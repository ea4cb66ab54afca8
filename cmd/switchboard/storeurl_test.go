package main

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/store/bolt"
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

// A backup cut short (the server failed after its 200) is refused, not
// opened: reading it through bbolt's memory map faulted the process.
func TestCheckBackup_RefusesATruncatedCopy(t *testing.T) {
	path := filepath.Join(t.TempDir(), "full.db")
	st, err := bolt.Open(path, bolt.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if err := checkBackup(path); err != nil {
		t.Fatalf("intact copy: %v", err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(t.TempDir(), "cut.db")
	if err := os.WriteFile(cut, data[:3*4096], 0o600); err != nil {
		t.Fatal(err)
	}
	if err := checkBackup(cut); err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Fatalf("truncated copy: %v, want refused as truncated", err)
	}
}
