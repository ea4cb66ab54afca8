//go:build !(linux || darwin)

package bolt

// freeSpace cannot tell on this system.
func freeSpace(string) (uint64, bool) { return 0, false }
