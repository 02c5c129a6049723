// goplugin - the baseline for sgxdevplugin's benchmarks: a minimal device plugin on grpc-go, the
// stack every other device plugin is built on (the kubelet's own client too), serving the same
// three resources from the same fake device tree: the same device IDs ("sgx-17"), the same
// health rules, the same Allocate answer. It is written the way Go device plugins are usually
// written: one grpc.Server per resource, a goroutine per ListAndWatch stream woken by a channel,
// Register as a blocking grpc-go call, and one log line per Allocate (as sgxdevplugin logs at its
// default level). Unlike many of them it watches with inotify instead of polling, so that the
// registration and hotplug numbers compare stacks, not polling periods.
//
//	goplugin --kubelet-dir DIR --dev-root DIR [--max-pods 110] [--domain sgx.k8s.io]
//
// Sockets are DIR/goplugin-{sgx,dcap,ias}.sock. Not a product: no legacy driver symlink
// resolution, no TLS, no labels.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	pb "sgxbench/v1beta1"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

const (
	kubeletSocket = "kubelet.sock"
	apiVersion    = "v1beta1"
)

type health int

const (
	healthNone health = iota // never seen since start: no devices
	healthHealthy
	healthUnhealthy // seen, gone now: max-pods Unhealthy devices
)

// devices is what a scan of the dev root found; paths are host paths ("/dev/...").
type devices struct {
	enclave   string // DCAP enclave device, "" if none
	legacy    bool   // the enclave is the legacy DCAP driver's /dev/sgx
	provision string
	isgx      string
}

func isCharDev(path string) bool {
	var st syscall.Stat_t
	return syscall.Stat(path, &st) == nil && st.Mode&syscall.S_IFMT == syscall.S_IFCHR
}

func scan(root string) devices {
	var d devices
	for _, name := range []string{"sgx_enclave", "sgx/enclave", "sgx/sgx_enclave", "sgx"} {
		if isCharDev(filepath.Join(root, name)) {
			d.enclave = "/dev/" + name
			d.legacy = name == "sgx"
			break
		}
	}
	for _, name := range []string{"sgx_provision", "sgx/provision", "sgx_prv"} {
		if isCharDev(filepath.Join(root, name)) {
			d.provision = "/dev/" + name
			break
		}
	}
	if isCharDev(filepath.Join(root, "isgx")) {
		d.isgx = "/dev/isgx"
	}
	return d
}

func spec(container, host string) *pb.DeviceSpec {
	return &pb.DeviceSpec{ContainerPath: container, HostPath: host, Permissions: "rw"}
}

// specs is what a container of |kind| gets; nil when the kind's device is absent.
func (d devices) specs(kind string) []*pb.DeviceSpec {
	dcap := func() []*pb.DeviceSpec {
		var s []*pb.DeviceSpec
		if d.legacy {
			s = append(s, spec("/dev/sgx", d.enclave))
			if d.provision != "" {
				s = append(s, spec("/dev/sgx_prv", d.provision))
			}
			return s
		}
		s = append(s, spec("/dev/sgx_enclave", d.enclave), spec("/dev/sgx/enclave", d.enclave))
		if d.provision != "" {
			s = append(s, spec("/dev/sgx_provision", d.provision),
				spec("/dev/sgx/provision", d.provision))
		}
		return s
	}
	switch kind {
	case "sgx":
		if d.enclave != "" {
			return dcap()
		}
		if d.isgx != "" {
			return []*pb.DeviceSpec{spec("/dev/isgx", d.isgx)}
		}
	case "dcap":
		if d.enclave != "" {
			return dcap()
		}
	case "ias":
		if d.isgx != "" {
			return []*pb.DeviceSpec{spec("/dev/isgx", d.isgx)}
		}
	}
	return nil
}

// resource is one extended resource: its socket, server, state and open streams.
type resource struct {
	kind     string // "sgx"
	name     string // "sgx.k8s.io/sgx"
	sock     string
	maxPods  int
	kubelet  string // DIR/kubelet.sock
	mu       sync.Mutex
	health   health
	seen     bool
	specs    []*pb.DeviceSpec
	watchers map[chan struct{}]struct{}
	srv      *grpc.Server
	regGen   int // bumped to cancel a registration loop in flight
}

func (r *resource) setDevices(d devices) {
	specs := d.specs(r.kind)
	r.mu.Lock()
	defer r.mu.Unlock()
	h := healthNone
	if specs != nil {
		h = healthHealthy
		r.seen = true
	} else if r.seen {
		h = healthUnhealthy
	}
	r.specs = specs
	if h == r.health {
		return
	}
	r.health = h
	log.Printf("resource=%s health %d, notifying %d stream(s)", r.name, h, len(r.watchers))
	for ch := range r.watchers {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// list builds the ListAndWatch answer, as Go plugins do on every send.
func (r *resource) list() *pb.ListAndWatchResponse {
	r.mu.Lock()
	h := r.health
	r.mu.Unlock()
	resp := &pb.ListAndWatchResponse{}
	if h == healthNone {
		return resp
	}
	state := "Healthy"
	if h == healthUnhealthy {
		state = "Unhealthy"
	}
	resp.Devices = make([]*pb.Device, r.maxPods)
	for i := range resp.Devices {
		resp.Devices[i] = &pb.Device{ID: r.kind + "-" + strconv.Itoa(i), Health: state}
	}
	return resp
}

func (r *resource) GetDevicePluginOptions(context.Context, *pb.Empty) (*pb.DevicePluginOptions,
	error) {
	return &pb.DevicePluginOptions{}, nil
}

func (r *resource) ListAndWatch(_ *pb.Empty, stream pb.DevicePlugin_ListAndWatchServer) error {
	ch := make(chan struct{}, 1)
	r.mu.Lock()
	r.watchers[ch] = struct{}{}
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.watchers, ch)
		r.mu.Unlock()
	}()
	for {
		if err := stream.Send(r.list()); err != nil {
			return err
		}
		select {
		case <-ch:
		case <-stream.Context().Done():
			return nil
		}
	}
}

func (r *resource) validID(id string) bool {
	prefix := r.kind + "-"
	if !strings.HasPrefix(id, prefix) {
		return false
	}
	digits := id[len(prefix):]
	n, err := strconv.Atoi(digits)
	return err == nil && n >= 0 && n < r.maxPods && strconv.Itoa(n) == digits
}

func (r *resource) Allocate(_ context.Context, req *pb.AllocateRequest) (*pb.AllocateResponse,
	error) {
	if len(req.ContainerRequests) == 0 {
		return nil, status.Error(codes.InvalidArgument, "AllocateRequest has no container requests")
	}
	r.mu.Lock()
	specs := r.specs
	r.mu.Unlock()
	resp := &pb.AllocateResponse{}
	ids := 0
	for i, c := range req.ContainerRequests {
		if len(c.DevicesIds) == 0 {
			return nil, status.Error(codes.InvalidArgument, fmt.Sprintf("container request %d lists no device IDs", i))
		}
		for _, id := range c.DevicesIds {
			if !r.validID(id) {
				return nil, status.Error(codes.InvalidArgument, fmt.Sprintf("unknown device ID %q for resource %s",
					id, r.name))
			}
		}
		ids += len(c.DevicesIds)
		if specs == nil {
			return nil, status.Error(codes.FailedPrecondition, "no SGX device present on this node for resource "+r.name)
		}
		resp.ContainerResponses = append(resp.ContainerResponses,
			&pb.ContainerAllocateResponse{Devices: specs})
	}
	log.Printf("resource=%s Allocate: %d device ID(s) in %d container(s), mapped %s", r.name,
		ids, len(req.ContainerRequests), specs[0].HostPath)
	return resp, nil
}

func (r *resource) GetPreferredAllocation(context.Context, *pb.PreferredAllocationRequest) (
	*pb.PreferredAllocationResponse, error) {
	return &pb.PreferredAllocationResponse{}, nil
}

func (r *resource) PreStartContainer(context.Context, *pb.PreStartContainerRequest) (
	*pb.PreStartContainerResponse, error) {
	return &pb.PreStartContainerResponse{}, nil
}

// serve (re)creates the socket and its grpc.Server.
func (r *resource) serve() error {
	r.mu.Lock()
	old := r.srv
	r.srv = nil
	r.mu.Unlock()
	if old != nil {
		old.Stop()
	}
	_ = os.Remove(r.sock)
	lis, err := net.Listen("unix", r.sock)
	if err != nil {
		return err
	}
	srv := grpc.NewServer()
	pb.RegisterDevicePluginServer(srv, r)
	r.mu.Lock()
	r.srv = srv
	r.mu.Unlock()
	go func() { _ = srv.Serve(lis) }()
	return nil
}

// register calls Register until it succeeds (backoff 100 ms doubling to 10 s), unless a newer
// registration starts.
func (r *resource) register() {
	r.mu.Lock()
	r.regGen++
	gen := r.regGen
	r.mu.Unlock()
	backoff := 100 * time.Millisecond
	for {
		err := r.registerOnce()
		if err == nil {
			log.Printf("resource=%s registered with the kubelet", r.name)
			return
		}
		log.Printf("resource=%s register failed: %v, retrying in %v", r.name, err, backoff)
		time.Sleep(backoff)
		r.mu.Lock()
		stale := r.regGen != gen
		r.mu.Unlock()
		if stale {
			return
		}
		if backoff *= 2; backoff > 10*time.Second {
			backoff = 10 * time.Second
		}
	}
}

func (r *resource) registerOnce() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := grpc.DialContext(ctx, r.kubelet, grpc.WithInsecure(), grpc.WithBlock(),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", addr)
		}))
	if err != nil {
		return err
	}
	defer conn.Close()
	_, err = pb.NewRegistrationClient(conn).Register(ctx, &pb.RegisterRequest{
		Version: apiVersion, Endpoint: filepath.Base(r.sock), ResourceName: r.name,
		Options: &pb.DevicePluginOptions{}})
	return err
}

// inotify watches the dev root, its sgx/ subdir and the kubelet dir.
type watcher struct {
	fd      int
	devRoot string
	kdir    string
	wdSgx   int
}

const watchMask = syscall.IN_CREATE | syscall.IN_DELETE | syscall.IN_MOVED_FROM |
	syscall.IN_MOVED_TO | syscall.IN_ONLYDIR

func newWatcher(devRoot, kdir string) (*watcher, error) {
	fd, err := syscall.InotifyInit1(syscall.IN_CLOEXEC)
	if err != nil {
		return nil, err
	}
	w := &watcher{fd: fd, devRoot: devRoot, kdir: kdir, wdSgx: -1}
	for _, d := range []string{devRoot, kdir} {
		if _, err := syscall.InotifyAddWatch(fd, d, watchMask); err != nil {
			return nil, fmt.Errorf("inotify %s: %v", d, err)
		}
	}
	w.watchSgx()
	return w, nil
}

func (w *watcher) watchSgx() {
	if w.wdSgx >= 0 {
		return
	}
	if wd, err := syscall.InotifyAddWatch(w.fd, filepath.Join(w.devRoot, "sgx"),
		watchMask); err == nil {
		w.wdSgx = wd
	}
}

// run reads events; devChanged for anything under the dev root, kubeletUp when kubelet.sock is
// created.
func (w *watcher) run(devChanged, kubeletUp func()) {
	buf := make([]byte, 4096)
	for {
		n, err := syscall.Read(w.fd, buf)
		if err != nil {
			if err == syscall.EINTR {
				continue
			}
			log.Fatalf("inotify: %v", err)
		}
		dev, kube := false, false
		for off := 0; off+syscall.SizeofInotifyEvent <= n; {
			ev := (*syscall.InotifyEvent)(unsafe.Pointer(&buf[off]))
			name := ""
			if ev.Len > 0 {
				raw := buf[off+syscall.SizeofInotifyEvent : off+syscall.SizeofInotifyEvent+
					int(ev.Len)]
				name = strings.TrimRight(string(raw), "\x00")
			}
			off += syscall.SizeofInotifyEvent + int(ev.Len)
			if name == kubeletSocket && ev.Mask&(syscall.IN_CREATE|syscall.IN_MOVED_TO) != 0 {
				kube = true
			} else if !strings.HasSuffix(name, ".sock") {
				dev = true
			}
		}
		if dev {
			w.watchSgx()
			devChanged()
		}
		if kube {
			kubeletUp()
		}
	}
}

func main() {
	kdir := flag.String("kubelet-dir", "/var/lib/kubelet/device-plugins", "kubelet dir")
	devRoot := flag.String("dev-root", "/dev", "where the host's /dev is visible")
	maxPods := flag.Int("max-pods", 110, "slots per resource")
	domain := flag.String("domain", "sgx.k8s.io", "resource domain")
	flag.Parse()
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)

	d := scan(*devRoot)
	var res []*resource
	for _, kind := range []string{"sgx", "dcap", "ias"} {
		r := &resource{kind: kind, name: *domain + "/" + kind, maxPods: *maxPods,
			sock:     filepath.Join(*kdir, "goplugin-"+kind+".sock"),
			kubelet:  filepath.Join(*kdir, kubeletSocket),
			watchers: map[chan struct{}]struct{}{}}
		r.setDevices(d)
		if err := r.serve(); err != nil {
			log.Fatalf("resource=%s serve %s: %v", r.name, r.sock, err)
		}
		res = append(res, r)
	}
	w, err := newWatcher(*devRoot, *kdir)
	if err != nil {
		log.Fatal(err)
	}
	registerAll := func(restart bool) {
		for _, r := range res {
			go func(r *resource) {
				if restart {
					if err := r.serve(); err != nil {
						log.Printf("resource=%s serve %s: %v", r.name, r.sock, err)
						return
					}
				}
				r.register()
			}(r)
		}
	}
	go w.run(func() {
		d := scan(*devRoot)
		for _, r := range res {
			r.setDevices(d)
		}
	}, func() { registerAll(true) })
	if _, err := os.Stat(filepath.Join(*kdir, kubeletSocket)); err == nil {
		registerAll(false)
	}

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	for _, r := range res {
		r.mu.Lock()
		srv := r.srv
		r.mu.Unlock()
		if srv != nil {
			srv.Stop()
		}
		_ = os.Remove(r.sock)
	}
}
