package npm

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"time"
)

// Process is a Node.js harness process (a PLC directory, a D1 emulator):
// its output is watched for a ready line, and it stops when its stdin
// closes — on Stop, and when this process dies, however it dies.
type Process struct {
	cmd         *exec.Cmd
	stdin       io.WriteCloser
	out         *Output
	exited      chan struct{}
	waitErr     error
	stopTimeout time.Duration
	closeOnce   sync.Once
}

// ProcessSpec says what to run.
type ProcessSpec struct {
	Node, Dir, Script string         // node runs Dir/Script, in Dir
	Args, Env         []string       // Env is added to this process's environment
	Ready             *regexp.Regexp // its first capture group is returned by StartProcess
	ReadyTimeout      time.Duration
	StopTimeout       time.Duration // how long Stop waits after closing stdin before killing
}

// StartProcess starts the process and waits for its ready line, returning
// the line's first capture group. On failure the process is stopped and the
// error carries its output.
func StartProcess(s ProcessSpec) (*Process, string, error) {
	p := &Process{out: NewOutput(s.Ready), exited: make(chan struct{}), stopTimeout: s.StopTimeout}
	cmd := exec.Command(s.Node, append([]string{filepath.Join(s.Dir, s.Script)}, s.Args...)...)
	cmd.Dir = s.Dir
	cmd.Env = append(os.Environ(), s.Env...)
	cmd.Stdout, cmd.Stderr = p.out, p.out
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, "", err
	}
	if err := cmd.Start(); err != nil {
		return nil, "", fmt.Errorf("starting %s: %w", s.Node, err)
	}
	p.cmd, p.stdin = cmd, stdin
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	deadline := time.NewTimer(s.ReadyTimeout)
	defer deadline.Stop()
	select {
	case ready := <-p.out.Ready():
		return p, ready, nil
	case <-p.exited:
		return nil, "", fmt.Errorf("%s exited before it was ready (%v); its output:\n%s", s.Script, p.waitErr, p.out.String())
	case <-deadline.C:
		p.Stop()
		return nil, "", fmt.Errorf("%s not ready after %v; its output:\n%s", s.Script, s.ReadyTimeout, p.out.String())
	}
}

// Output is what the process printed (the first MiB).
func (p *Process) Output() string { return p.out.String() }

// Stop closes the process's stdin and kills it if it has not exited within
// its stop timeout. It returns the process's error other than a non-zero
// exit. Calling it again returns the same.
func (p *Process) Stop() error {
	p.closeOnce.Do(func() {
		p.stdin.Close()
		select {
		case <-p.exited:
			return
		case <-time.After(p.stopTimeout):
		}
		p.cmd.Process.Kill()
		<-p.exited
	})
	var ee *exec.ExitError
	if p.waitErr != nil && !errors.As(p.waitErr, &ee) {
		return p.waitErr
	}
	return nil
}
