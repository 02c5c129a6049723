// node.go - a simulated node for the smoke test and the benchmark: a fake /dev with the
// in-kernel SGX driver's nodes (real character devices made with mknod, so it needs root), a
// kubelet device-plugin dir, and a plugin process started on them.
package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const (
	enclaveNode   = "sgx_enclave"   // 10:125, the in-kernel driver's enclave device
	provisionNode = "sgx_provision" // 10:126
)

// mkdev makes character device |name| (major 10) under |dir|.
func mkdev(dir, name string, minor int) error {
	dev := (10 << 8) | minor // major 10, minor < 256: the old encoding is exact
	if err := syscall.Mknod(filepath.Join(dir, name), syscall.S_IFCHR|0o600, dev); err != nil {
		if errors.Is(err, syscall.EPERM) {
			return fmt.Errorf("mknod %s: %v (run as root)", name, err)
		}
		return fmt.Errorf("mknod %s: %v", name, err)
	}
	return nil
}

func mkEnclave(dev string) error   { return mkdev(dev, enclaveNode, 125) }
func mkProvision(dev string) error { return mkdev(dev, provisionNode, 126) }

// node is one simulated node under a fresh temp dir.
type node struct {
	root string
	dev  string     // --dev-root
	kdir string     // --kubelet-dir
	api  *apiServer // the test API server, for the labeling-on plugins; else nil
}

func newNode(parent, prefix string) (*node, error) {
	root, err := os.MkdirTemp(parent, prefix)
	if err != nil {
		return nil, err
	}
	n := &node{root: root, dev: filepath.Join(root, "dev"), kdir: filepath.Join(root, "kubelet")}
	for _, d := range []string{n.dev, n.kdir} {
		if err := os.Mkdir(d, 0o755); err != nil {
			n.remove()
			return nil, err
		}
	}
	if err := mkEnclave(n.dev); err != nil {
		n.remove()
		return nil, err
	}
	if err := mkProvision(n.dev); err != nil {
		n.remove()
		return nil, err
	}
	return n, nil
}

// keepNodes leaves every simulated node (and the plugin's log in it) behind, for debugging.
var keepNodes bool

func (n *node) remove() {
	if keepNodes {
		fmt.Fprintf(os.Stderr, "kept %s\n", n.root)
		return
	}
	_ = os.RemoveAll(n.root)
}

// proc is a plugin process.
type proc struct {
	cmd   *exec.Cmd
	start time.Time // just before exec
	log   string
	done  chan struct{}
	err   error // exit status, once done is closed
}

// startProc runs |argv| with stdout and stderr to |logPath|, |env| added to ours.
func startProc(argv []string, env []string, logPath string) (*proc, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.Env = append(os.Environ(), env...)
	p := &proc{cmd: cmd, log: logPath, done: make(chan struct{})}
	p.start = time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %v", argv[0], err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM and waits up to |grace|, then kills. Returns an error unless the process
// exited 0 on SIGTERM.
func (p *proc) stop(grace time.Duration) error {
	if p.exited() {
		return fmt.Errorf("%s had exited already: %v", p.cmd.Path, p.err)
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s did not exit within %v of SIGTERM", p.cmd.Path, grace)
	}
	if p.err != nil {
		return fmt.Errorf("%s on SIGTERM: %v", p.cmd.Path, p.err)
	}
	return nil
}

// tail returns the last |n| lines of the process's log, for error messages.
func (p *proc) tail(n int) string {
	data, err := os.ReadFile(p.log)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "  " + strings.Join(lines, "\n  ")
}

// memory is what /proc/PID/status says, in KiB.
type memory struct {
	RSS int64 // VmRSS
	HWM int64 // VmHWM
}

func (p *proc) memory() (memory, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return memory{}, err
	}
	defer f.Close()
	var m memory
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		v, _ := strconv.ParseInt(fields[1], 10, 64)
		switch fields[0] {
		case "VmRSS:":
			m.RSS = v
		case "VmHWM:":
			m.HWM = v
		}
	}
	if m.RSS == 0 {
		return m, fmt.Errorf("no VmRSS in /proc/%d/status", p.cmd.Process.Pid)
	}
	return m, nil
}

// waitPath waits until |path| exists (a plugin's socket) or the process exits.
func waitPath(p *proc, path string, timeout time.Duration) error {
	end := time.Now().Add(timeout)
	for time.Now().Before(end) {
		if _, err := os.Lstat(path); err == nil {
			return nil
		}
		if p != nil && p.exited() {
			return fmt.Errorf("%s exited (%v) before creating %s:\n%s", p.cmd.Path, p.err,
				path, p.tail(10))
		}
		time.Sleep(2 * time.Millisecond)
	}
	return fmt.Errorf("%s did not appear within %v", path, timeout)
}
