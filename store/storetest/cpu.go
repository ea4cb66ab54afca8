package storetest

import "syscall"

// ProcessCPU is the user and system CPU time this process has used, in
// nanoseconds. Benchmarks report it per operation: on a shared machine it
// varies less than wall time.
func ProcessCPU() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
