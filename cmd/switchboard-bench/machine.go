package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Machine describes where the bench ran.
type Machine struct {
	CPUModel   string `json:"cpu_model"`
	Cores      int    `json:"cores"`        // logical CPUs online (runtime.NumCPU)
	MemTotalMB int64  `json:"mem_total_mb"` // /proc/meminfo MemTotal
	Kernel     string `json:"kernel"`
	GoVersion  string `json:"go_version"`
	WorkDir    string `json:"work_dir"`
	WorkFS     string `json:"work_fs"` // file system type of the work directory
	LoadAvg    string `json:"load_avg_at_start"`
}

func readMachine(workDir string) Machine {
	m := Machine{Cores: runtime.NumCPU(), GoVersion: runtime.Version(), WorkDir: workDir}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if kb := procField("/proc/meminfo", "MemTotal"); kb > 0 {
		m.MemTotalMB = kb / 1024
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		f := strings.Fields(string(b))
		if len(f) >= 3 {
			m.LoadAvg = strings.Join(f[:3], " ")
		}
	}
	var st syscall.Statfs_t
	if syscall.Statfs(workDir, &st) == nil {
		m.WorkFS = fsName(st.Type)
	}
	return m
}

func (m Machine) String() string {
	return fmt.Sprintf("%s, %d logical CPUs, %.1f GiB RAM, Linux %s, %s; data in %s (%s); load average at start %s",
		m.CPUModel, m.Cores, float64(m.MemTotalMB)/1024, m.Kernel, m.GoVersion, m.WorkDir, m.WorkFS, m.LoadAvg)
}

func fsName(magic int64) string {
	switch magic {
	case 0xEF53:
		return "ext4"
	case 0x01021994:
		return "tmpfs (fsync is free: not a durable figure)"
	case 0x58465342:
		return "xfs"
	case 0x9123683E:
		return "btrfs"
	case 0x794c7630:
		return "overlayfs"
	}
	return fmt.Sprintf("fs 0x%x", magic)
}

// procField reads a "Name:   123 kB" field of a /proc status-like file, in
// kB (0 when missing).
func procField(path, name string) int64 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || k != name {
			continue
		}
		fields := strings.Fields(v)
		if len(fields) == 0 {
			return 0
		}
		n, _ := strconv.ParseInt(fields[0], 10, 64)
		return n
	}
	return 0
}

// memInfo is a process's resident memory in MiB: VmRSS, its peak VmHWM,
// and RssAnon (heap and stacks; the rest of VmRSS is mostly the bbolt file
// mapped in, which the kernel can drop).
type memInfo struct{ RSS, HWM, Anon float64 }

func procMem(pid int) memInfo {
	p := fmt.Sprintf("/proc/%d/status", pid)
	mib := func(name string) float64 { return float64(procField(p, name)) / 1024 }
	return memInfo{RSS: mib("VmRSS"), HWM: mib("VmHWM"), Anon: mib("RssAnon")}
}

// procCPU returns the user plus system CPU time a process has used
// (/proc/<pid>/stat, clock ticks of 10 ms).
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name may hold spaces; the fields after it are plain.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// cpuMeter measures the CPU a process used during a load window.
type cpuMeter struct {
	pid        int
	start, end time.Duration
	selfStart  time.Duration
	selfEnd    time.Duration
}

func (m *cpuMeter) window(start bool) {
	if start {
		m.start, m.selfStart = procCPU(m.pid), procCPU(os.Getpid())
	} else {
		m.end, m.selfEnd = procCPU(m.pid), procCPU(os.Getpid())
	}
}

// perUnit returns the server's CPU per work unit in microseconds and the
// cores it and the generator kept busy on average.
func (m *cpuMeter) add(row *Row, units int64, elapsed time.Duration) {
	if row.Extra == nil {
		row.Extra = map[string]float64{}
	}
	cpu := m.end - m.start
	if units > 0 {
		row.Extra["server_cpu_us_per_unit"] = float64(cpu.Microseconds()) / float64(units)
	}
	if elapsed > 0 {
		row.Extra["server_cores"] = cpu.Seconds() / elapsed.Seconds()
		row.Extra["bench_cores"] = (m.selfEnd - m.selfStart).Seconds() / elapsed.Seconds()
	}
}

// Probe is the time a fixed piece of single-threaded CPU work took at one
// point of the run. This machine's speed moves between runs and within one
// (the same server code has cost 101, 120 and 136 µs per message in three
// runs), and the ratios to the ceilings do not show it for CPU-bound
// figures; comparing probes does.
type Probe struct {
	At string  `json:"at"`
	Ms float64 `json:"ms"`
}

// probeWork is the fixed work: JSON-encoding a message-shaped record and
// hashing the result, the kind of work a request costs the server.
func probeWork() {
	rec := map[string]any{"id": "0193b2c4-aaaa-7bbb-8ccc-123456789abc", "network": "instagram",
		"external_id": "ig-1789000123", "kind": "dm", "text": strings.Repeat("my order arrived broken ", 8),
		"author": map[string]any{"id": "u-991", "handle": "@maria", "followers": 120}}
	h := sha256.New()
	for range 20000 {
		b, _ := json.Marshal(rec)
		h.Write(b)
	}
	probeSink = h.Sum(probeSink[:0])
}

var probeSink []byte

// probeCPU runs the fixed work three times and returns the median, in ms.
func probeCPU(at string) Probe {
	var ms [3]float64
	for i := range ms {
		start := time.Now()
		probeWork()
		ms[i] = float64(time.Since(start).Microseconds()) / 1000
	}
	slices.Sort(ms[:])
	return Probe{At: at, Ms: ms[1]}
}
