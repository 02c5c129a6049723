// client.go - the kubelet's client side of the device-plugin API, and the measurements made
// with it: Allocate latency on one connection, Allocate throughput over several connections,
// ListAndWatch first-answer latency.
//
// The connection is made the way the kubelet's device manager makes it: grpc-go, a blocking dial
// on the plugin's unix socket (grpc-go only reports the connection ready once the server's
// SETTINGS arrived), :authority "localhost" (kubelets from 1.26 on; older ones sent the socket
// path, see --authority), and the kubelet's 4 MiB receive limit.
package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	pb "sgxbench/v1beta1"

	"github.com/golang/protobuf/proto"
	"google.golang.org/grpc"
)

const maxRecvMsg = 4 * 1024 * 1024 // the kubelet's gRPC receive limit

// dialPlugin dials unix socket |path| and blocks until the HTTP/2 connection is ready.
func dialPlugin(ctx context.Context, path, authority string) (*grpc.ClientConn, error) {
	if authority == "" {
		authority = "localhost"
	}
	return grpc.DialContext(ctx, path,
		grpc.WithInsecure(),
		grpc.WithBlock(),
		grpc.WithAuthority(authority),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", addr)
		}),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxRecvMsg)))
}

func dialTimeout(path, authority string, d time.Duration) (*grpc.ClientConn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	conn, err := dialPlugin(ctx, path, authority)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %v", path, err)
	}
	return conn, nil
}

// allocRequest is what the kubelet sends for a pod with one container asking for one device.
func allocRequest(id string) *pb.AllocateRequest {
	return &pb.AllocateRequest{ContainerRequests: []*pb.ContainerAllocateRequest{
		{DevicesIds: []string{id}},
	}}
}

// checkAllocate checks one AllocateResponse for a one-container request: one container answer,
// at least one DeviceSpec, every host path an absolute /dev path, permissions "rw" or "rwm",
// container paths unique. |want| lists container paths that must be present (may be empty).
func checkAllocate(resp *pb.AllocateResponse, want []string) error {
	if len(resp.ContainerResponses) != 1 {
		return fmt.Errorf("%d container responses for 1 container request",
			len(resp.ContainerResponses))
	}
	c := resp.ContainerResponses[0]
	if len(c.Devices) == 0 {
		return errors.New("no DeviceSpecs in the answer")
	}
	seen := map[string]bool{}
	for _, d := range c.Devices {
		if !strings.HasPrefix(d.HostPath, "/dev/") {
			return fmt.Errorf("host path %q is not under /dev", d.HostPath)
		}
		if !strings.HasPrefix(d.ContainerPath, "/dev/") {
			return fmt.Errorf("container path %q is not under /dev", d.ContainerPath)
		}
		if d.Permissions != "rw" && d.Permissions != "rwm" {
			return fmt.Errorf("permissions %q for %s, want rw", d.Permissions, d.ContainerPath)
		}
		if seen[d.ContainerPath] {
			return fmt.Errorf("container path %s mapped twice", d.ContainerPath)
		}
		seen[d.ContainerPath] = true
	}
	for _, p := range want {
		if !seen[p] {
			return fmt.Errorf("container path %s missing from %s", p, describeSpecs(c.Devices))
		}
	}
	return nil
}

func describeSpecs(specs []*pb.DeviceSpec) string {
	var parts []string
	for _, d := range specs {
		parts = append(parts, fmt.Sprintf("%s->%s(%s)", d.HostPath, d.ContainerPath,
			d.Permissions))
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// latencies holds one measurement's samples.
type latencies []time.Duration

func (l latencies) sorted() latencies {
	s := append(latencies(nil), l...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s
}

// pct returns the |p|-th percentile (nearest rank) of sorted samples.
func (l latencies) pct(p float64) time.Duration {
	if len(l) == 0 {
		return 0
	}
	rank := int(p/100*float64(len(l))+0.999999) - 1
	if rank < 0 {
		rank = 0
	}
	if rank >= len(l) {
		rank = len(l) - 1
	}
	return l[rank]
}

// allocResult is one Allocate latency run.
type allocResult struct {
	N   int
	P50 time.Duration
	P99 time.Duration
	Max time.Duration
}

// measureAllocate makes |warmup| then |n| sequential Allocate calls on |conn| and returns the
// latency percentiles of the |n|. The first answer is checked.
func measureAllocate(conn *grpc.ClientConn, id string, warmup, n int) (allocResult, error) {
	client := pb.NewDevicePluginClient(conn)
	req := allocRequest(id)
	ctx := context.Background()
	resp, err := client.Allocate(ctx, req)
	if err != nil {
		return allocResult{}, fmt.Errorf("Allocate %s: %v", id, err)
	}
	if err := checkAllocate(resp, nil); err != nil {
		return allocResult{}, fmt.Errorf("Allocate %s: %v", id, err)
	}
	for i := 0; i < warmup; i++ {
		if _, err := client.Allocate(ctx, req); err != nil {
			return allocResult{}, fmt.Errorf("Allocate %s: %v", id, err)
		}
	}
	lat := make(latencies, n)
	for i := 0; i < n; i++ {
		t := time.Now()
		if _, err := client.Allocate(ctx, req); err != nil {
			return allocResult{}, fmt.Errorf("Allocate %s (call %d): %v", id, i, err)
		}
		lat[i] = time.Since(t)
	}
	s := lat.sorted()
	return allocResult{N: n, P50: s.pct(50), P99: s.pct(99), Max: s[len(s)-1]}, nil
}

// measureThroughput runs |nconn| connections, one goroutine each calling Allocate back to back,
// for |warm| (not counted) and then |dur|, and returns completed calls per second.
func measureThroughput(path, authority, id string, nconn int, warm, dur time.Duration) (float64,
	error) {
	conns := make([]*grpc.ClientConn, nconn)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	for i := range conns {
		c, err := dialTimeout(path, authority, 10*time.Second)
		if err != nil {
			return 0, err
		}
		conns[i] = c
	}
	var counting int32
	var count int64
	var stop int32
	var wg sync.WaitGroup
	errs := make(chan error, nconn)
	req := allocRequest(id)
	for _, c := range conns {
		wg.Add(1)
		go func(c *grpc.ClientConn) {
			defer wg.Done()
			client := pb.NewDevicePluginClient(c)
			for atomic.LoadInt32(&stop) == 0 {
				if _, err := client.Allocate(context.Background(), req); err != nil {
					errs <- err
					return
				}
				if atomic.LoadInt32(&counting) == 1 {
					atomic.AddInt64(&count, 1)
				}
			}
		}(c)
	}
	time.Sleep(warm)
	atomic.StoreInt32(&counting, 1)
	t := time.Now()
	time.Sleep(dur)
	atomic.StoreInt32(&counting, 0)
	n := atomic.LoadInt64(&count)
	elapsed := time.Since(t)
	atomic.StoreInt32(&stop, 1)
	wg.Wait()
	select {
	case err := <-errs:
		return 0, fmt.Errorf("Allocate under load: %v", err)
	default:
	}
	return float64(n) / elapsed.Seconds(), nil
}

// rawCodec hands the message bytes over undecoded, so that a ListAndWatch latency measures the
// plugin and the transport, not the client's protobuf decoding.
type rawCodec struct{}

func (rawCodec) Marshal(v interface{}) ([]byte, error) {
	switch m := v.(type) {
	case *[]byte:
		return *m, nil
	case *pb.Empty:
		return nil, nil
	}
	return nil, fmt.Errorf("rawCodec: cannot marshal %T", v)
}

func (rawCodec) Unmarshal(data []byte, v interface{}) error {
	p, ok := v.(*[]byte)
	if !ok {
		return fmt.Errorf("rawCodec: cannot unmarshal into %T", v)
	}
	*p = append((*p)[:0], data...)
	return nil
}

func (rawCodec) Name() string { return "proto" } // content-type stays application/grpc+proto

var listAndWatchDesc = &grpc.StreamDesc{StreamName: "ListAndWatch", ServerStreams: true}

// firstList opens one ListAndWatch stream on |conn|, waits for the first answer and cancels the
// stream. Returns the time from opening the stream to the whole first message received, and the
// message (undecoded).
func firstList(conn *grpc.ClientConn) (time.Duration, []byte, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	t := time.Now()
	stream, err := conn.NewStream(ctx, listAndWatchDesc, "/v1beta1.DevicePlugin/ListAndWatch",
		grpc.ForceCodec(rawCodec{}))
	if err != nil {
		return 0, nil, fmt.Errorf("ListAndWatch: %v", err)
	}
	if err := stream.SendMsg(&pb.Empty{}); err != nil {
		return 0, nil, fmt.Errorf("ListAndWatch: send: %v", err)
	}
	if err := stream.CloseSend(); err != nil {
		return 0, nil, fmt.Errorf("ListAndWatch: close send: %v", err)
	}
	var msg []byte
	if err := stream.RecvMsg(&msg); err != nil {
		return 0, nil, fmt.Errorf("ListAndWatch: first answer: %v", err)
	}
	return time.Since(t), msg, nil
}

// lawResult is one ListAndWatch run on a fresh plugin process.
type lawResult struct {
	Cold    time.Duration // the first stream the process ever served
	Warm    time.Duration // median of the following streams
	Devices int           // devices in the answer
	Bytes   int           // size of the answer
	Decode  time.Duration // one protobuf decode of the answer by grpc-go's codec, for reference
}

// measureListAndWatch opens |n|+1 streams one after the other on one connection.
func measureListAndWatch(path, authority string, n int) (lawResult, error) {
	conn, err := dialTimeout(path, authority, 10*time.Second)
	if err != nil {
		return lawResult{}, err
	}
	defer conn.Close()
	cold, msg, err := firstList(conn)
	if err != nil {
		return lawResult{}, err
	}
	var list pb.ListAndWatchResponse
	t := time.Now()
	if err := proto.Unmarshal(msg, &list); err != nil {
		return lawResult{}, fmt.Errorf("ListAndWatch: undecodable answer: %v", err)
	}
	decode := time.Since(t)
	warm := make(latencies, n)
	for i := range warm {
		if warm[i], _, err = firstList(conn); err != nil {
			return lawResult{}, err
		}
	}
	return lawResult{Cold: cold, Warm: warm.sorted().pct(50), Devices: len(list.Devices),
		Bytes: len(msg), Decode: decode}, nil
}
