package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseFlags_RetentionDays(t *testing.T) {
	c, err := parseFlags(nil)
	if err != nil || c.retentionDays != 0 {
		t.Fatalf("default: %v days, %v; want 0 (keep everything)", c.retentionDays, err)
	}
	t.Setenv("SWITCHBOARD_RETENTION_DAYS", "30")
	if c, err = parseFlags(nil); err != nil || c.retentionDays != 30 {
		t.Fatalf("from the environment: %v days, %v; want 30", c.retentionDays, err)
	}
	if c, err = parseFlags([]string{"--retention-days", "730"}); err != nil || c.retentionDays != 730 {
		t.Fatalf("--retention-days 730: %v days, %v", c.retentionDays, err)
	}
	for _, bad := range []string{"-1", "36501", "x"} {
		if _, err := parseFlags([]string{"--retention-days", bad}); err == nil {
			t.Fatalf("--retention-days %s accepted", bad)
		}
	}
}

// TestParseFlags_TheEnvironmentIsParsedLikeFlags: every setting with an
// environment variable reads it with the flag's own parser, so yes/no
// settings take what Go's flags take ("1", "true", "TRUE"...), a bad
// value stops the start naming the variable (it is not ignored, leaving
// the default), and a flag given wins. Values no setting may take are
// refused whichever way they come.
func TestParseFlags_TheEnvironmentIsParsedLikeFlags(t *testing.T) {
	t.Setenv("SWITCHBOARD_SECURE_COOKIES", "1")
	t.Setenv("SWITCHBOARD_WEBHOOK_DENY_PRIVATE", "TRUE")
	t.Setenv("SWITCHBOARD_LOCK_TTL", "45s")
	t.Setenv("SWITCHBOARD_RATE_LIMIT", "7.5")
	t.Setenv("SWITCHBOARD_DEFAULT_TEAM", "inbox")
	t.Setenv("SWITCHBOARD_SHUTDOWN_TIMEOUT", "25s")
	c, err := parseFlags(nil)
	if err != nil || !c.secureCookies || !c.webhookDenyPrivate || c.lockTTL != 45*time.Second || c.rateLimit != 7.5 || c.defaultTeam != "inbox" ||
		c.shutdownWait != 25*time.Second {
		t.Fatalf("from the environment: %+v, %v", c, err)
	}
	if c, err = parseFlags([]string{"--secure-cookies=false", "--lock-ttl", "1m"}); err != nil || c.secureCookies || c.lockTTL != time.Minute {
		t.Fatalf("flags over the environment: %+v, %v", c, err)
	}
	t.Setenv("SWITCHBOARD_SECURE_COOKIES", "")
	t.Setenv("SWITCHBOARD_WEBHOOK_DENY_PRIVATE", "")
	t.Setenv("SWITCHBOARD_LOCK_TTL", "")
	t.Setenv("SWITCHBOARD_RATE_LIMIT", "")
	t.Setenv("SWITCHBOARD_DEFAULT_TEAM", "")
	t.Setenv("SWITCHBOARD_SHUTDOWN_TIMEOUT", "")

	for env, bad := range map[string]string{
		"SWITCHBOARD_SECURE_COOKIES":       "yes",
		"SWITCHBOARD_WEBHOOK_DENY_PRIVATE": "on",
		"SWITCHBOARD_RETENTION_DAYS":       "365d",
		"SWITCHBOARD_LOCK_TTL":             "2 minutes",
		"SWITCHBOARD_RATE_LIMIT":           "fast",
		"SWITCHBOARD_WEBHOOK_GIVE_UP":      "1 day",
	} {
		t.Run(env, func(t *testing.T) {
			t.Setenv(env, bad)
			if _, err := parseFlags(nil); err == nil || !strings.Contains(err.Error(), env) || !strings.Contains(err.Error(), "(want ") {
				t.Fatalf("%s=%q: %v, want an error naming it and what it takes", env, bad, err)
			}
		})
	}
	// A flag given wins and its variable is not read, bad or not; a value
	// refused after parsing names where it came from.
	t.Setenv("SWITCHBOARD_LOCK_TTL", "5")
	if c, err := parseFlags([]string{"--lock-ttl", "10s"}); err != nil || c.lockTTL != 10*time.Second {
		t.Fatalf("a bad variable under a good flag: %+v, %v", c, err)
	}
	t.Setenv("SWITCHBOARD_LOCK_TTL", "")
	t.Setenv("SWITCHBOARD_LOG_LEVEL", "verbose")
	if _, err := parseFlags(nil); err == nil || !strings.HasPrefix(err.Error(), "SWITCHBOARD_LOG_LEVEL ") {
		t.Fatalf("a log level from the environment: %v, want an error naming the variable", err)
	}
	t.Setenv("SWITCHBOARD_LOG_LEVEL", "")
	// A mistyped store URL is where a password shows: none is in the error.
	for _, bad := range []string{"postgres://u:secret@db/x", "redis//:secret@10.0.0.5:6379/0", "redis:/:secret@h/0", "secret"} {
		t.Setenv("SWITCHBOARD_STORE", bad)
		if _, err := parseFlags(nil); err == nil || !strings.HasPrefix(err.Error(), "SWITCHBOARD_STORE: ") || strings.Contains(err.Error(), "secret") {
			t.Fatalf("SWITCHBOARD_STORE=%q: %v, want an error naming the variable, without the password", bad, err)
		}
	}
	if _, err := parseFlags([]string{"--store", "postgres://db/x"}); err == nil || !strings.HasPrefix(err.Error(), "--store: ") {
		t.Fatalf("a store flag: %v, want an error naming the flag", err)
	}
	for _, good := range []string{"REDIS://127.0.0.1:6379/0", "rediss://h:6380/1", "Bolt"} {
		if c, err := parseFlags([]string{"--store", good}); err != nil || c.storeURL != good {
			t.Fatalf("--store %q: %+v, %v", good, c, err)
		}
	}
	t.Setenv("SWITCHBOARD_STORE", "")
	t.Setenv("SWITCHBOARD_CONFIG", "/etc/sb.yaml")
	if c, err := parseFlags(nil); err != nil || c.configName != "SWITCHBOARD_CONFIG" {
		t.Fatalf("a configuration file from the environment: %+v, %v, want it named by its variable", c, err)
	}
	if c, err := parseFlags([]string{"--config", "/etc/sb.yaml"}); err != nil || c.configName != "--config" {
		t.Fatalf("a configuration file flag: %+v, %v, want it named by the flag", c, err)
	}
	t.Setenv("SWITCHBOARD_CONFIG", "")
	if _, err := parseFlags([]string{"--lock-ttl", "5"}); err == nil || !strings.Contains(err.Error(), "want a duration") {
		t.Fatalf("--lock-ttl 5: %v, want a hint at the unit", err)
	}
	for _, args := range [][]string{
		{"--rate-limit", "-1"}, {"--ingest-rate-limit", "-0.5"}, {"--ip-rate-limit", "-3"},
		{"--ip-rate-limit", "NaN"}, {"--rate-limit", "+Inf"}, {"--retention-days", "NaN"},
		{"--webhook-give-up", "-1s"}, {"--webhook-give-up", "0s"}, {"--shutdown-timeout", "-1s"},
		{"--trust-proxy", "127.0.0.1/33"}, {"--trust-proxy", "10.0.0.1,proxy.local"},
		{"--default-team", "Bad Team/x"}, {"--default-team", "UPPER"},
	} {
		if _, err := parseFlags(args); err == nil {
			t.Fatalf("%v accepted", args)
		}
	}
	if c, err := parseFlags([]string{"--trust-proxy", "10.0.0.1, 192.168.0.0/16,::1", "--rate-limit", "0"}); err != nil || c.rateLimit != 0 {
		t.Fatalf("good proxies and a rate limit of 0 (off): %+v, %v", c, err)
	}
}

// TestParseFlags_MetaBodyLimit: API.md's 1 MiB by default; up to 4 MiB when
// the operator raises it (Meta batches large deliveries at busy times).
func TestParseFlags_MetaBodyLimit(t *testing.T) {
	c, err := parseFlags(nil)
	if err != nil || c.metaBodyMiB != 1 {
		t.Fatalf("default: %d MiB, %v; want 1", c.metaBodyMiB, err)
	}
	t.Setenv("SWITCHBOARD_META_BODY_LIMIT_MIB", "4")
	if c, err = parseFlags(nil); err != nil || c.metaBodyMiB != 4 {
		t.Fatalf("from the environment: %d MiB, %v; want 4", c.metaBodyMiB, err)
	}
	for _, bad := range []string{"0", "5", "x"} {
		if _, err := parseFlags([]string{"--meta-body-limit-mib", bad}); err == nil {
			t.Fatalf("--meta-body-limit-mib %s accepted", bad)
		}
	}
}

// TestSubcommands_RefuseWordsAfterTheFlags: a word after the flags would
// stop flag parsing there, and the flags after it (--url, --prune, --to)
// would be dropped silently; each subcommand refuses it before it talks
// to any server or writes anything.
func TestSubcommands_RefuseWordsAfterTheFlags(t *testing.T) {
	dir := t.TempDir()
	to := filepath.Join(dir, "copy.db")
	for name, run := range map[string]func() error{
		"apply": func() error {
			return apply([]string{"-f", filepath.Join(dir, "a.yaml"), "stray", "--url", "http://127.0.0.1:1"})
		},
		"backup": func() error { return backup([]string{"--to", to, "stray", "--url", "http://127.0.0.1:1"}) },
		"forget": func() error { return forget([]string{"--author", "@ana", "stray", "--url", "http://127.0.0.1:1"}) },
	} {
		err := run()
		if err == nil || !strings.Contains(err.Error(), `unexpected argument "stray"`) {
			t.Errorf("%s with a stray word: %v, want it refused", name, err)
		}
	}
	if _, err := os.Stat(to); !os.IsNotExist(err) {
		t.Fatalf("backup with a stray word wrote %s: %v", to, err)
	}
}
