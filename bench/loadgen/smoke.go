// smoke.go - the smoke test `make check` runs on every commit: the kubelet's own gRPC stack
// (grpc-go: blocking dial, :authority localhost, waits for the server's SETTINGS) against the
// plugin, once. It checks answers, never times: every wait is only a guard against a hang.
//
// With --plugin it builds a simulated node (mknod, root), plays the kubelet's Registration
// server and starts the plugin on it; with --socket it only dials a plugin already serving.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	pb "sgxbench/v1beta1"

	"github.com/golang/protobuf/proto"
)

const smokeGuard = 30 * time.Second // hang guard only, never a timing assertion

type smokeT struct {
	failed bool
	nOK    int
	nFail  int
}

func (s *smokeT) ok(format string, args ...interface{}) {
	s.nOK++
	fmt.Printf("smoke: ok   "+format+"\n", args...)
}

func (s *smokeT) fail(format string, args ...interface{}) {
	s.failed = true
	s.nFail++
	fmt.Printf("smoke: FAIL "+format+"\n", args...)
}

// wantDCAP is what a container gets for sgx or dcap on the in-kernel driver's node.
var wantDCAP = []string{"/dev/sgx_enclave", "/dev/sgx/enclave", "/dev/sgx_provision",
	"/dev/sgx/provision"}

// checkPlugin dials |path| as a kubelet would (|authority|), asks for the options, reads the
// first ListAndWatch answer (|wantDevices| Healthy devices) and, when there are devices,
// allocates the first one and checks the DeviceSpecs against |wantPaths|.
func (s *smokeT) checkPlugin(resource, path, authority string, wantDevices int,
	wantPaths []string) {
	name := fmt.Sprintf("%s (%s, :authority %s)", resource, filepath.Base(path), authority)
	conn, err := dialTimeout(path, authority, smokeGuard)
	if err != nil {
		s.fail("%s: %v", name, err)
		return
	}
	defer conn.Close()
	client := pb.NewDevicePluginClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), smokeGuard)
	defer cancel()

	opts, err := client.GetDevicePluginOptions(ctx, &pb.Empty{})
	if err != nil {
		s.fail("%s: GetDevicePluginOptions: %v", name, err)
		return
	}
	s.ok("%s: GetDevicePluginOptions {%s}", name, proto.CompactTextString(opts))

	lctx, lcancel := context.WithCancel(ctx)
	stream, err := client.ListAndWatch(lctx, &pb.Empty{})
	var list *pb.ListAndWatchResponse
	if err == nil {
		list, err = stream.Recv()
	}
	lcancel()
	if err != nil {
		s.fail("%s: ListAndWatch first answer: %v", name, err)
		return
	}
	healthy := 0
	for _, d := range list.Devices {
		if d.Health == "Healthy" {
			healthy++
		}
	}
	if len(list.Devices) != wantDevices || healthy != wantDevices {
		s.fail("%s: ListAndWatch: %d devices, %d Healthy, want %d Healthy", name,
			len(list.Devices), healthy, wantDevices)
		return
	}
	s.ok("%s: ListAndWatch first answer, %d devices Healthy", name, healthy)
	if wantDevices == 0 {
		return
	}

	id := list.Devices[0].ID
	resp, err := client.Allocate(ctx, allocRequest(id))
	if err != nil {
		s.fail("%s: Allocate %s: %v", name, id, err)
		return
	}
	if err := checkAllocate(resp, wantPaths); err != nil {
		s.fail("%s: Allocate %s: %v", name, id, err)
		return
	}
	s.ok("%s: Allocate %s -> %s", name, id, describeSpecs(resp.ContainerResponses[0].Devices))

	if _, err := client.Allocate(ctx, allocRequest("no-such-device")); err == nil {
		s.fail("%s: Allocate of an unknown device ID succeeded", name)
	} else {
		s.ok("%s: Allocate of an unknown ID refused: %v", name, err)
	}
}

func runSmoke(args []string) int {
	fs := flag.NewFlagSet("smoke", flag.ExitOnError)
	plugin := fs.String("plugin", "", "plugin binary to start on a simulated node (needs root)")
	socket := fs.String("socket", "", "or: the socket of a plugin already serving sgx")
	maxPods := fs.Int("max-pods", 110, "slots the plugin advertises per resource")
	tmp := fs.String("tmp", "", "parent dir for the simulated node (default: $TMPDIR)")
	keep := fs.Bool("keep", false, "keep the simulated node and the plugin's log")
	_ = fs.Parse(args)
	s := &smokeT{}
	domain := "sgx.k8s.io"

	if *socket != "" {
		for _, a := range []string{"localhost", *socket} {
			s.checkPlugin(domain+"/sgx", *socket, a, *maxPods, wantDCAP)
		}
		return s.result()
	}
	if *plugin == "" {
		fmt.Fprintln(os.Stderr, "smoke: --plugin BINARY or --socket PATH is needed")
		return 2
	}

	n, err := newNode(*tmp, "sgxsmoke-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "smoke: %v\n", err)
		return 1
	}
	if !*keep {
		defer n.remove()
	}
	k := newKubelet(n.kdir, "localhost")
	if err := k.start(); err != nil {
		fmt.Fprintf(os.Stderr, "smoke: %v\n", err)
		return 1
	}
	defer k.stop()
	argv := append([]string{*plugin, "--kubelet-dir", n.kdir, "--dev-root", n.dev,
		"--max-pods", fmt.Sprint(*maxPods)}, fs.Args()...)
	p, err := startProc(argv, nil, filepath.Join(n.root, "plugin.log"))
	if err != nil {
		fmt.Fprintf(os.Stderr, "smoke: %v\n", err)
		return 1
	}
	s.ok("started %s", strings.Join(argv, " "))

	resources := []string{domain + "/sgx", domain + "/dcap", domain + "/ias"}
	if _, _, err := k.waitRegistered(resources, p.start, smokeGuard); err != nil {
		s.fail("%v\nplugin log:\n%s", err, p.tail(20))
		_ = p.stop(10 * time.Second)
		return s.result()
	}
	s.ok("registered %s (the kubelet dialed back and called GetDevicePluginOptions first)",
		strings.Join(resources, ", "))

	want := map[string]int{resources[0]: *maxPods, resources[1]: *maxPods, resources[2]: 0}
	endpoints := map[string]string{}
	for _, res := range resources {
		k.mu.Lock()
		reg := k.current[res]
		first := reg.updates[0]
		k.mu.Unlock()
		endpoints[res] = reg.endpoint
		if first.total != want[res] || first.healthy != want[res] {
			s.fail("%s: the kubelet's ListAndWatch got %d devices, %d Healthy, want %d",
				res, first.total, first.healthy, want[res])
		}
		s.checkPlugin(res, filepath.Join(n.kdir, reg.endpoint), "localhost", want[res],
			wantDCAP)
	}
	// Kubelets before 1.26 send the socket path as :authority.
	sgxSock := filepath.Join(n.kdir, endpoints[resources[0]])
	s.checkPlugin(resources[0], sgxSock, sgxSock, *maxPods, wantDCAP)

	if errs := k.errorList(); len(errs) > 0 {
		s.fail("the kubelet saw protocol errors: %v", errs)
	}
	if err := p.stop(smokeGuard); err != nil {
		s.fail("%v\nplugin log:\n%s", err, p.tail(20))
	} else {
		s.ok("plugin exited 0 on SIGTERM")
	}
	for _, res := range resources {
		ep := filepath.Join(n.kdir, endpoints[res])
		if _, err := os.Lstat(ep); err == nil {
			s.fail("%s left behind after SIGTERM", ep)
		}
	}
	if s.failed && *keep {
		fmt.Printf("smoke: node and plugin log kept in %s\n", n.root)
	}
	return s.result()
}

// result prints the closing line, "smoke: N passed, N failed", and returns the exit code.
func (s *smokeT) result() int {
	fmt.Printf("smoke: %d passed, %d failed\n", s.nOK, s.nFail)
	if s.failed {
		return 1
	}
	return 0
}
