// loadgen - the kubelet's side of the device-plugin API in grpc-go, for sgxdevplugin's smoke test
// and benchmarks (bench/README.md). Built offline from Debian's Go packages in GOPATH mode by
// bench/build.sh; the v1beta1 stubs are generated from proto/api.proto at build time.
//
//	loadgen smoke --plugin BINARY [-- EXTRA-ARGS]   the `make check` smoke test (root: mknod)
//	loadgen smoke --socket PATH                     the same checks against a running plugin
//	loadgen alloc --socket PATH [--n 20000]         Allocate latency on one connection
//	loadgen throughput --socket PATH [--conns 8]    Allocate calls/s over several connections
//	loadgen law --socket PATH                       ListAndWatch first-answer latency
//	loadgen bench --ours BIN --goplugin BIN ...     the whole benchmark (bench/run.sh)
package main

import (
	"flag"
	"fmt"
	"os"
	"time"
)

func usage() {
	fmt.Fprintln(os.Stderr, `usage: loadgen smoke|alloc|throughput|law|bench [flags]
  smoke      --plugin BINARY | --socket PATH   check the plugin once (exit 0/1), no timing
  alloc      --socket PATH --id sgx-0 --n 20000
  throughput --socket PATH --conns 8 --duration 2s
  law        --socket PATH --n 50
  bench      see bench/run.sh`)
	os.Exit(2)
}

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	cmd, args := os.Args[1], os.Args[2:]
	switch cmd {
	case "smoke":
		os.Exit(runSmoke(args))
	case "alloc", "throughput", "law":
		os.Exit(runClient(cmd, args))
	case "bench":
		os.Exit(runBench(args))
	default:
		usage()
	}
}

// runClient runs one client measurement against a plugin already serving and prints it.
func runClient(cmd string, args []string) int {
	fs := flag.NewFlagSet(cmd, flag.ExitOnError)
	socket := fs.String("socket", "", "the plugin's unix socket")
	authority := fs.String("authority", "localhost", ":authority (kubelets < 1.26: the path)")
	id := fs.String("id", "sgx-0", "device ID to allocate")
	n := fs.Int("n", 20000, "calls (alloc) or streams after the first (law)")
	warmup := fs.Int("warmup", 500, "uncounted calls first (alloc)")
	conns := fs.Int("conns", 8, "connections (throughput)")
	dur := fs.Duration("duration", 2*time.Second, "measured time (throughput)")
	_ = fs.Parse(args)
	if *socket == "" {
		fmt.Fprintln(os.Stderr, "loadgen: --socket is needed")
		return 2
	}
	switch cmd {
	case "alloc":
		conn, err := dialTimeout(*socket, *authority, 10*time.Second)
		if err != nil {
			fmt.Fprintln(os.Stderr, "loadgen:", err)
			return 1
		}
		defer conn.Close()
		r, err := measureAllocate(conn, *id, *warmup, *n)
		if err != nil {
			fmt.Fprintln(os.Stderr, "loadgen:", err)
			return 1
		}
		fmt.Printf("Allocate x%d on one connection: p50 %s  p99 %s  max %s\n", r.N, us(r.P50),
			us(r.P99), us(r.Max))
	case "throughput":
		rate, err := measureThroughput(*socket, *authority, *id, *conns, 300*time.Millisecond,
			*dur)
		if err != nil {
			fmt.Fprintln(os.Stderr, "loadgen:", err)
			return 1
		}
		fmt.Printf("Allocate over %d connections: %.0f calls/s\n", *conns, rate)
	case "law":
		r, err := measureListAndWatch(*socket, *authority, *n)
		if err != nil {
			fmt.Fprintln(os.Stderr, "loadgen:", err)
			return 1
		}
		fmt.Printf("ListAndWatch first answer: %d devices, %d bytes; first stream %s, then "+
			"median %s; grpc-go decode %s\n", r.Devices, r.Bytes, us(r.Cold), us(r.Warm),
			us(r.Decode))
	}
	return 0
}

func us(d time.Duration) string {
	return fmt.Sprintf("%.1f µs", float64(d)/float64(time.Microsecond))
}
