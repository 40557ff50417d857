package bench

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// rssInterval is the RSS sampling period during a pass.
const rssInterval = 10 * time.Millisecond

// serverWatch follows the target process over a load: its RSS at the
// start and end, its peak, and the CPU it spent. A nil *serverWatch (no
// pid) measures nothing.
type serverWatch struct {
	pid      int
	rssStart float64
	cpu0     time.Duration
}

// watchServer reads pid's RSS now; it returns nil for pid 0.
func watchServer(pid int) (*serverWatch, error) {
	if pid <= 0 {
		return nil, nil
	}
	rss, _, err := readRSS(pid)
	if err != nil {
		return nil, fmt.Errorf("bench: --pid %d: %w", pid, err)
	}
	return &serverWatch{pid: pid, rssStart: rss}, nil
}

// startCPU marks the start of the measured CPU time.
func (s *serverWatch) startCPU() {
	if s != nil {
		s.cpu0, _ = procCPU(s.pid)
	}
}

// cpu is the CPU time spent since startCPU (0 when it cannot be read).
func (s *serverWatch) cpu() time.Duration {
	if s == nil {
		return 0
	}
	c, err := procCPU(s.pid)
	if err != nil {
		return 0
	}
	return c - s.cpu0
}

// report reads the RSS at the end; nil when there is none to read.
func (s *serverWatch) report(cpu, elapsed time.Duration) *ServerReport {
	if s == nil {
		return nil
	}
	rss, hwm, err := readRSS(s.pid)
	if err != nil {
		return nil
	}
	return &ServerReport{PID: s.pid, RSSStartMB: s.rssStart, RSSEndMB: rss, RSSPeakMB: hwm,
		CPUCores: cpu.Seconds() / elapsed.Seconds()}
}

// rssSampler follows the server's RSS while a pass runs.
type rssSampler struct {
	pid    int
	mu     sync.Mutex
	peak   float64
	hwmOK  bool // VmHWM was reset, so it bounds the peak between samples
	stopCh chan struct{}
	done   chan struct{}
}

// startRSS resets the kernel's peak-RSS mark of pid where allowed and
// samples VmRSS until stopped. It returns nil for pid 0.
func startRSS(pid int) *rssSampler {
	if pid <= 0 {
		return nil
	}
	s := &rssSampler{pid: pid, stopCh: make(chan struct{}), done: make(chan struct{})}
	// "5" resets VmHWM to the current RSS (Linux clear_refs).
	s.hwmOK = os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", s.pid), []byte("5"), 0) == nil
	s.sample()
	go func() {
		defer close(s.done)
		t := time.NewTicker(rssInterval)
		defer t.Stop()
		for {
			select {
			case <-s.stopCh:
				return
			case <-t.C:
				s.sample()
			}
		}
	}()
	return s
}

func (s *rssSampler) sample() {
	rss, hwm, err := readRSS(s.pid)
	if err != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.peak = max(s.peak, rss)
	if s.hwmOK {
		s.peak = max(s.peak, hwm)
	}
}

// stop ends sampling and returns the peak RSS in MB.
func (s *rssSampler) stop() float64 {
	if s == nil {
		return 0
	}
	s.sample()
	close(s.stopCh)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peak
}

// rssNow is pid's RSS in MB, or 0 for pid 0 or when it cannot be read.
func rssNow(pid int) float64 {
	if pid <= 0 {
		return 0
	}
	rss, _, err := readRSS(pid)
	if err != nil {
		return 0
	}
	return rss
}

// readRSS returns a process's resident and peak resident set in MB.
func readRSS(pid int) (rss, hwm float64, err error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/%d/status: %s: %w", pid, k, err)
		}
		if k == "VmRSS" {
			rss = kb / 1024
		} else {
			hwm = kb / 1024
		}
	}
	return rss, hwm, nil
}

// procCPU returns a process's user+system CPU time from /proc/PID/stat
// (in clock ticks of 1/100 s, Linux's USER_HZ).
func procCPU(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; fields after it follow ")".
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	fields := strings.Fields(string(data[i+1:]))
	if len(fields) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	var ticks int64
	for _, f := range fields[11:13] { // utime, stime: fields 14 and 15
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * 10 * time.Millisecond, nil
}

// selfCPU is this process's user+system CPU time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// boxCPU is the machine's busy CPU time so far (all but idle and iowait in
// /proc/stat's first line), or 0 where there is no /proc.
func boxCPU() time.Duration {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(data), "\n")
	fields := strings.Fields(line)
	if len(fields) < 9 || fields[0] != "cpu" {
		return 0
	}
	var ticks int64
	for i, f := range fields[1:9] { // user nice system idle iowait irq softirq steal
		if i == 3 || i == 4 {
			continue
		}
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0
		}
		ticks += n
	}
	return time.Duration(ticks) * 10 * time.Millisecond
}
