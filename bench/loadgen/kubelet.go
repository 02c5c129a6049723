// kubelet.go - the kubelet's device-manager half, in grpc-go: serves v1beta1.Registration on
// DIR/kubelet.sock, dials every registering plugin back and calls GetDevicePluginOptions before
// it answers Register (as the kubelet does from 1.24 on), then reads the plugin's ListAndWatch
// stream and keeps every update with its arrival time.
//
// Used by the smoke test and by the benchmark's registration, kubelet-restart and hotplug
// measurements. Times are taken where the kubelet would see the event: a registration is done
// when Register is answered, an update when its message has been received and decoded.
package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	pb "sgxbench/v1beta1"

	"google.golang.org/grpc"
)

const (
	kubeletSocket = "kubelet.sock"
	checkpoint    = "kubelet_internal_checkpoint"
	apiVersion    = "v1beta1"
	dialBackLimit = 10 * time.Second // the kubelet's own dial timeout
)

// update is one ListAndWatch message as the kubelet saw it.
type update struct {
	t       time.Time
	healthy int
	total   int
}

// registration is one successful Register: the dial-back connection and its ListAndWatch stream.
type registration struct {
	resource string
	endpoint string
	gen      int       // kubelet instance that accepted it
	arrived  time.Time // Register received
	done     time.Time // dial-back and GetDevicePluginOptions done, Register answered
	options  *pb.DevicePluginOptions
	conn     *grpc.ClientConn
	cancel   context.CancelFunc
	updates  []update // under kubelet.mu
	ended    error    // why the stream ended, under kubelet.mu
}

type kubelet struct {
	dir       string
	sock      string
	authority string // :authority of the dial-back, "localhost" by default

	// How stop() ends a kubelet: "graceful" (the server closes its listener, which unlinks
	// kubelet.sock, and its connections, then the streams end), "crash" (the same, but
	// kubelet.sock is left for the next kubelet to wipe) or "streams-first" (the plugins'
	// streams are ended first, as the device manager's server Stop() disconnects its clients
	// before it stops its gRPC server, then the server stops).
	mode string

	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every state change
	srv     *grpc.Server
	lis     *net.UnixListener
	gen     int       // kubelet instance, incremented by start()
	created time.Time // just before kubelet.sock was created, for the current instance
	current map[string]*registration
	errors  []string // protocol violations and failed dial-backs
	inodes  []uint64 // kubelet.sock's inode number, per instance (ext4 reuses them at once)
}

func newKubelet(dir, authority string) *kubelet {
	return &kubelet{dir: dir, sock: filepath.Join(dir, kubeletSocket), authority: authority,
		changed: make(chan struct{}), current: map[string]*registration{}}
}

// notify wakes every waiter. Needs k.mu.
func (k *kubelet) notify() {
	close(k.changed)
	k.changed = make(chan struct{})
}

// start creates DIR and kubelet.sock and serves Registration.
func (k *kubelet) start() error {
	if err := os.MkdirAll(k.dir, 0o755); err != nil {
		return err
	}
	srv := grpc.NewServer()
	pb.RegisterRegistrationServer(srv, k)
	t := time.Now()
	lis, err := net.Listen("unix", k.sock)
	if err != nil {
		return fmt.Errorf("kubelet: %v", err)
	}
	var st syscall.Stat_t
	_ = syscall.Stat(k.sock, &st)
	k.mu.Lock()
	k.gen++
	k.srv = srv
	k.lis, _ = lis.(*net.UnixListener)
	k.created = t
	k.inodes = append(k.inodes, st.Ino)
	k.notify()
	k.mu.Unlock()
	go func() { _ = srv.Serve(lis) }()
	return nil
}

// stop is a kubelet process exiting, as k.mode says.
func (k *kubelet) stop() {
	k.mu.Lock()
	srv := k.srv
	k.srv = nil
	if k.mode == "crash" && k.lis != nil {
		k.lis.SetUnlinkOnClose(false)
	}
	regs := k.current
	k.current = map[string]*registration{}
	k.notify()
	k.mu.Unlock()
	if k.mode == "streams-first" {
		for _, r := range regs {
			r.cancel()
			r.conn.Close()
		}
	}
	if srv != nil {
		srv.Stop()
	}
	for _, r := range regs {
		r.cancel()
		r.conn.Close()
	}
	if k.mode != "crash" {
		_ = os.Remove(k.sock)
	}
}

// wipe removes every file of DIR but the checkpoint, as a starting kubelet does.
func (k *kubelet) wipe() error {
	ents, err := os.ReadDir(k.dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if e.Name() == checkpoint || e.IsDir() {
			continue
		}
		if err := os.Remove(filepath.Join(k.dir, e.Name())); err != nil &&
			!errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

// restart is a kubelet restart: stop, |gap| later wipe DIR and create kubelet.sock anew (a new
// kubelet process clears the dir just before it listens).
func (k *kubelet) restart(gap time.Duration) error {
	k.stop()
	time.Sleep(gap)
	if err := k.wipe(); err != nil {
		return err
	}
	return k.start()
}

// fail records a protocol violation or a failed dial-back of kubelet instance |gen|; failures
// while that instance is stopping are its own doing and are not recorded.
func (k *kubelet) fail(gen int, format string, args ...interface{}) error {
	msg := fmt.Sprintf(format, args...)
	k.mu.Lock()
	if k.srv != nil && k.gen == gen {
		k.errors = append(k.errors, msg)
		k.notify()
	}
	k.mu.Unlock()
	return errors.New(msg)
}

// Register implements v1beta1.Registration.
func (k *kubelet) Register(ctx context.Context, req *pb.RegisterRequest) (*pb.Empty, error) {
	arrived := time.Now()
	k.mu.Lock()
	gen := k.gen
	k.mu.Unlock()
	if req.Version != apiVersion {
		return nil, k.fail(gen, "%s: version %q, want %q", req.ResourceName, req.Version, apiVersion)
	}
	parts := strings.Split(req.ResourceName, "/")
	if len(parts) != 2 || parts[0] == "" || parts[1] == "" {
		return nil, k.fail(gen, "resource name %q is not an extended resource name",
			req.ResourceName)
	}
	if req.Endpoint == "" || strings.Contains(req.Endpoint, "/") {
		return nil, k.fail(gen, "%s: endpoint %q is not a file name", req.ResourceName, req.Endpoint)
	}
	path := filepath.Join(k.dir, req.Endpoint)
	conn, err := dialTimeout(path, k.authority, dialBackLimit)
	if err != nil {
		return nil, k.fail(gen, "%s: dial-back: %v", req.ResourceName, err)
	}
	octx, ocancel := context.WithTimeout(ctx, dialBackLimit)
	opts, err := pb.NewDevicePluginClient(conn).GetDevicePluginOptions(octx, &pb.Empty{})
	ocancel()
	if err != nil {
		conn.Close()
		return nil, k.fail(gen, "%s: GetDevicePluginOptions: %v", req.ResourceName, err)
	}
	sctx, cancel := context.WithCancel(context.Background())
	reg := &registration{resource: req.ResourceName, endpoint: req.Endpoint, gen: gen,
		arrived: arrived, options: opts, conn: conn, cancel: cancel}
	k.mu.Lock()
	if k.srv == nil || k.gen != gen {
		k.mu.Unlock()
		cancel()
		conn.Close()
		return nil, errors.New("kubelet is stopping")
	}
	old := k.current[req.ResourceName]
	k.current[req.ResourceName] = reg
	reg.done = time.Now()
	k.notify()
	k.mu.Unlock()
	if old != nil { // the kubelet drops the previous client of a resource
		old.cancel()
		old.conn.Close()
	}
	go k.watch(sctx, reg)
	return &pb.Empty{}, nil
}

// watch reads one registration's ListAndWatch stream until it ends.
func (k *kubelet) watch(ctx context.Context, reg *registration) {
	stream, err := pb.NewDevicePluginClient(reg.conn).ListAndWatch(ctx, &pb.Empty{})
	for err == nil {
		var resp *pb.ListAndWatchResponse
		resp, err = stream.Recv()
		if err != nil {
			break
		}
		u := update{t: time.Now(), total: len(resp.Devices)}
		for _, d := range resp.Devices {
			if d.Health == "Healthy" {
				u.healthy++
			}
		}
		k.mu.Lock()
		reg.updates = append(reg.updates, u)
		k.notify()
		k.mu.Unlock()
	}
	k.mu.Lock()
	reg.ended = err
	k.notify()
	k.mu.Unlock()
}

// waitFor waits until |pred| (called with k.mu held) holds, or |timeout| passes.
func (k *kubelet) waitFor(what string, timeout time.Duration, pred func() bool) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		k.mu.Lock()
		ok := pred()
		ch := k.changed
		errs := append([]string(nil), k.errors...)
		k.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-deadline.C:
			k.mu.Lock()
			inodes := append([]uint64(nil), k.inodes...)
			k.mu.Unlock()
			return fmt.Errorf("kubelet: timed out after %v waiting for %s (kubelet.sock "+
				"inode per instance: %v; errors: %v)", timeout, what, inodes, errs)
		}
	}
}

// registered says whether every resource has a registration of the current instance and, with
// |listed|, its first ListAndWatch answer. Needs k.mu.
func (k *kubelet) registered(resources []string, listed bool) bool {
	for _, name := range resources {
		r := k.current[name]
		if r == nil || r.gen != k.gen || (listed && len(r.updates) == 0) {
			return false
		}
	}
	return true
}

// waitRegistered waits for every resource to register with the current instance and send its
// first list; returns the first and the last Register answered, as offsets from |since|.
func (k *kubelet) waitRegistered(resources []string, since time.Time,
	timeout time.Duration) (first, last time.Duration, err error) {
	err = k.waitFor("registration of "+strings.Join(resources, ", "), timeout, func() bool {
		return k.registered(resources, true)
	})
	if err != nil {
		return 0, 0, err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	first = time.Duration(1<<63 - 1)
	for _, name := range resources {
		d := k.current[name].done.Sub(since)
		if d < first {
			first = d
		}
		if d > last {
			last = d
		}
	}
	return first, last, nil
}

// createdAt is when the current kubelet.sock was about to be created.
func (k *kubelet) createdAt() time.Time {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.created
}

// waitUpdate waits until every resource's current stream got an update after |since| that
// satisfies |ok|, and returns the latest of those arrival times minus |since|.
func (k *kubelet) waitUpdate(resources []string, since time.Time, timeout time.Duration,
	ok func(update) bool) (time.Duration, error) {
	var worst time.Duration
	err := k.waitFor("ListAndWatch update of "+strings.Join(resources, ", "), timeout,
		func() bool {
			worst = 0
			for _, name := range resources {
				r := k.current[name]
				if r == nil {
					return false
				}
				found := false
				for _, u := range r.updates {
					if u.t.After(since) && ok(u) {
						if d := u.t.Sub(since); d > worst {
							worst = d
						}
						found = true
						break
					}
				}
				if !found {
					return false
				}
			}
			return true
		})
	return worst, err
}

// lastUpdate returns the latest update of |resource|'s current stream.
func (k *kubelet) lastUpdate(resource string) (update, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	r := k.current[resource]
	if r == nil || len(r.updates) == 0 {
		return update{}, false
	}
	return r.updates[len(r.updates)-1], true
}

// conn returns the dial-back connection of |resource|, on which the kubelet calls Allocate.
func (k *kubelet) conn(resource string) *grpc.ClientConn {
	k.mu.Lock()
	defer k.mu.Unlock()
	if r := k.current[resource]; r != nil {
		return r.conn
	}
	return nil
}

func (k *kubelet) errorList() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]string(nil), k.errors...)
}
