//go:build linux || darwin

package bolt

import "syscall"

// freeSpace is how many bytes the file system holding dir has free for an
// unprivileged writer; ok is false when it cannot tell.
func freeSpace(dir string) (n uint64, ok bool) {
	var st syscall.Statfs_t
	if syscall.Statfs(dir, &st) != nil {
		return 0, false
	}
	return uint64(st.Bavail) * uint64(st.Bsize), true
}
