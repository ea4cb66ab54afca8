package bolt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
)

// CheckFileSize refuses a bbolt file shorter than its own meta page says it
// is: a truncated copy (an interrupted backup download, a disk that filled
// up). bbolt reads pages through a memory map without checking, so opening
// such a file and reading past its end kills the process with a fault no
// recover catches. An empty or missing file passes (Open creates it).
func CheckFileSize(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || fi.Size() == 0 {
		return err
	}
	// The two meta pages are pages 0 and 1; page 0 says the page size.
	var best *fileMeta
	m0, err := readMeta(f, 0)
	if err == nil {
		best = m0
	}
	if pageSize := metaPageSize(f); pageSize > 0 {
		if m1, err := readMeta(f, int64(pageSize)); err == nil && (best == nil || m1.txid > best.txid) {
			best = m1
		}
	}
	if best == nil {
		return fmt.Errorf("%s: no valid bbolt meta page (not a Switchboard store, or damaged)", path)
	}
	if need := int64(best.pgid) * int64(best.pageSize); fi.Size() < need {
		return fmt.Errorf("%s is truncated: %d bytes, its meta page says %d", path, fi.Size(), need)
	}
	return nil
}

type fileMeta struct {
	pageSize   uint32
	pgid, txid uint64
}

// bbolt's meta page: a 16-byte page header, then magic, version, page
// size, flags (4 bytes each), root bucket (16), freelist, pgid, txid and
// an FNV-64a checksum of everything before it (8 bytes each), in the
// machine's byte order (little-endian here).
const (
	pageHeaderSize = 16
	metaMagic      = 0xED0CDAED
	metaSize       = 64
)

func readMeta(r io.ReaderAt, off int64) (*fileMeta, error) {
	b := make([]byte, pageHeaderSize+metaSize)
	if _, err := r.ReadAt(b, off); err != nil {
		return nil, err
	}
	m := b[pageHeaderSize:]
	le := binary.LittleEndian
	if le.Uint32(m[0:]) != metaMagic || le.Uint32(m[4:]) != 2 {
		return nil, errors.New("not a meta page")
	}
	h := fnv.New64a()
	h.Write(m[:56])
	if h.Sum64() != le.Uint64(m[56:]) {
		return nil, errors.New("meta checksum")
	}
	return &fileMeta{pageSize: le.Uint32(m[8:]), pgid: le.Uint64(m[40:]), txid: le.Uint64(m[48:])}, nil
}

// metaPageSize is the page size page 0 claims, valid checksum or not (a
// torn page 0 still tells where page 1 is); 0 when it makes no sense.
func metaPageSize(r io.ReaderAt) uint32 {
	b := make([]byte, pageHeaderSize+12)
	if _, err := r.ReadAt(b, 0); err != nil {
		return 0
	}
	ps := binary.LittleEndian.Uint32(b[pageHeaderSize+8:])
	if ps < 512 || ps > 1<<20 || ps&(ps-1) != 0 {
		return 0
	}
	return ps
}
