package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/switchboard/switchboard/store/bolt"
)

// backup is `switchboard backup --to FILE`: it asks the running server for
// a consistent copy of its bbolt store (one read transaction's snapshot,
// taken while writes go on), checks the copy, compacts it, and moves it
// into place.
func backup(args []string) error {
	fs := flag.NewFlagSet("switchboard backup", flag.ContinueOnError)
	to := fs.String("to", "", "file to write the backup to (required)")
	timeout := fs.Duration("timeout", 10*time.Minute, "give up after")
	compact := fs.Bool("compact", true, "keep only live data: the server's copy has its free pages too, "+
		"with the old bytes of erased threads (needs room for the copy twice)")
	var r remote
	r.flags(fs)
	if err := parseCommand(fs, args); err != nil {
		return err
	}
	if *to == "" {
		return errors.New("backup: --to FILE is required")
	}
	// Before asking for a snapshot: the folder must be there to write it.
	if dir := filepath.Dir(*to); !isDir(dir) {
		return fmt.Errorf("backup: folder %s does not exist (mkdir -p %s)", dir, dir)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	resp, err := r.patient(ctx, "GET", "/api/v1/backup", nil)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer resp.Body.Close()
	tmp := *to + ".partial"
	// A copy left by a run that was killed keeps its own mode: it goes,
	// and the new one is made readable only by its owner.
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("backup: %w", err)
	}
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	n, err := io.Copy(f, resp.Body)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = checkBackup(tmp)
	}
	if err == nil && *compact {
		err = compactBackup(tmp)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("backup: %w", err)
	}
	if err := os.Rename(tmp, *to); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if d, err := os.Open(filepath.Dir(*to)); err == nil {
		d.Sync()
		d.Close()
	}
	if fi, err := os.Stat(*to); err == nil {
		n = fi.Size()
	}
	fmt.Fprintf(os.Stderr, "switchboard: backup of %d bytes written to %s\n", n, *to)
	return nil
}

// compactBackup rewrites the checked copy at path with its live keys only
// (bbolt.Compact: buckets, keys, values and sequences), leaving free pages
// and their old bytes behind, and checks the result.
func compactBackup(path string) error {
	out := path + ".compact"
	defer os.Remove(out)
	src, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := bbolt.Open(out, 0o600, &bbolt.Options{Timeout: time.Second, NoSync: true})
	if err != nil {
		return err
	}
	err = bbolt.Compact(dst, src, 64<<20)
	if err == nil {
		err = dst.Sync()
	}
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = trimToPages(out)
	}
	if err != nil {
		return fmt.Errorf("compacting the copy: %w", err)
	}
	if err := checkBackup(out); err != nil {
		return err
	}
	return os.Rename(out, path)
}

// trimToPages cuts the file at path to the pages bbolt uses: bbolt grows
// its file in steps (16 MiB past the first ones), so a fresh file holds up
// to a step of zeros past its last page, which a backup need not keep.
func trimToPages(path string) error {
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return err
	}
	var size int64
	err = db.View(func(tx *bbolt.Tx) error { size = tx.Size(); return nil })
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Truncate(path, size); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// checkBackup opens the copy and walks every page: a truncated or damaged
// download is refused.
func checkBackup(path string) error {
	if err := bolt.CheckFileSize(path); err != nil {
		return fmt.Errorf("the copy is damaged: %w", err)
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return fmt.Errorf("the copy does not open: %w", err)
	}
	defer db.Close()
	return db.View(func(tx *bbolt.Tx) error {
		if tx.Bucket([]byte("meta")) == nil {
			return errors.New("the copy is not a Switchboard store")
		}
		for err := range tx.Check() {
			return fmt.Errorf("the copy is damaged: %w", err)
		}
		return nil
	})
}

func isDir(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}
