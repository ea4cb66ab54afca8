package main

import "testing"

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
