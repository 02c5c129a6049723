// bench.go - the whole benchmark (what `make bench` runs through bench/run.sh): every
// measurement of issue 5 section 1, for sgxdevplugin ("ours"), the grpc-go baseline plugin and
// the nghttp2 floor, repeated --runs times with the plugins interleaved inside each run, so that
// machine noise falls on all of them alike. Medians over the runs are printed with the ratios
// and PASS/MISS per target (report.go).
//
// Each measurement starts a fresh plugin process on a fresh simulated node (node.go):
//   - lifecycle: the kubelet (kubelet.go) is up, the plugin starts; process start -> first and
//     all registrations; idle memory; Allocate latency (20,000 sequential calls on one
//     connection); throughput (8 connections); memory after the load; kubelet restarts (stop,
//     wipe the dir, new kubelet.sock) -> all re-registered; hotplug: the enclave node removed ->
//     both affected streams saw it Unhealthy, created again -> Healthy.
//   - late kubelet: the plugin serves first, then kubelet.sock appears -> all registered.
//   - ListAndWatch: --max-pods 110 and 10,000, no kubelet; the first stream the process serves
//     ("cold") and the median of the next ones ("warm").
//   - server time: 20,000 Allocates again with the srvtime.so probe preloaded (C servers only).
//
// ours-labels and ours-static-labels are ours with labeling on: --label-node against the test
// API server (apiserver.go, TLS + HTTP/2) with --label-interval 1, so that the labeler's thread
// makes a real PATCH every second throughout the load (the worst case); lifecycle only. Their
// hotplug cycles also wait for the label PATCHes the change implies (labels removed, then back).
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

const (
	pOurs       = "ours"
	pOursStatic = "ours-static" // the static build, as the release image ships it
	pGo         = "grpc-go"
	pFloor      = "floor"

	pOursLabels       = "ours-labels"        // ours with --label-node, --label-interval 1
	pOursStaticLabels = "ours-static-labels" // the static build with the same

	labelInterval = 1 // seconds: a PATCH every second during the load, the worst case
)

var benchResources = []string{"sgx.k8s.io/sgx", "sgx.k8s.io/dcap", "sgx.k8s.io/ias"}

type benchConfig struct {
	ours, oursStatic, goplugin, floor, shim string
	work                                    string
	runs, allocN, warmup, conns             int
	tputDur                                 time.Duration
	restarts, hotplugs, lawStreams          int
	restartGap                              time.Duration
	restartMode                             string
	only                                    string
}

// pluginSpec says how to run one of the three servers.
type pluginSpec struct {
	name      string
	bin       string
	registers bool // a device plugin (registers, watches); the floor only answers
	probe     bool // a C server the srvtime.so probe can time
	lifeOnly  bool // only the lifecycle measurement (start, memory, load, restarts, hotplug)
	labels    bool // started with the labeling flags against the node's test API server
	argv      func(n *node, maxPods int) []string
	sgxSock   func(n *node) string
}

// results holds every sample: metric -> plugin -> values (one per run, or one per event for
// restarts and hotplugs, which are pooled).
type results struct {
	Samples map[string]map[string][]float64
	Notes   []string
	Retries []retries // Register retries the plugins logged, per phase and reason
	Errors  []string
}

func (r *results) add(metric, plugin string, v float64) {
	if r.Samples[metric] == nil {
		r.Samples[metric] = map[string][]float64{}
	}
	r.Samples[metric][plugin] = append(r.Samples[metric][plugin], v)
}

func (r *results) fail(format string, args ...interface{}) {
	msg := fmt.Sprintf(format, args...)
	r.Errors = append(r.Errors, msg)
	fmt.Fprintln(os.Stderr, "bench: ERROR "+msg)
}

// retries is what one phase of one run logged: |n| retries for the reason in |what|.
type retries struct {
	What string
	N    int
}

// max of the samples; ok false when there are none.
func (r *results) max(metric, plugin string) (float64, bool) {
	v := r.Samples[metric][plugin]
	if len(v) == 0 {
		return 0, false
	}
	m := v[0]
	for _, x := range v {
		if x > m {
			m = x
		}
	}
	return m, true
}

// median of the samples; ok false when there are none.
func (r *results) median(metric, plugin string) (float64, bool) {
	v := append([]float64(nil), r.Samples[metric][plugin]...)
	if len(v) == 0 {
		return 0, false
	}
	sort.Float64s(v)
	if len(v)%2 == 1 {
		return v[len(v)/2], true
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2, true
}

func ms(d time.Duration) float64   { return float64(d) / float64(time.Millisecond) }
func usec(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

func progress(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}

func runBench(args []string) int {
	fs := flag.NewFlagSet("bench", flag.ExitOnError)
	c := benchConfig{}
	fs.StringVar(&c.ours, "ours", "build/sgxdevplugin", "sgxdevplugin (dynamic build)")
	fs.StringVar(&c.oursStatic, "ours-static", "build-static/sgxdevplugin", "static build")
	fs.StringVar(&c.goplugin, "goplugin", "build-bench/goplugin", "grpc-go baseline plugin")
	fs.StringVar(&c.floor, "floor", "build-bench/floor", "nghttp2 floor")
	fs.StringVar(&c.shim, "srvtime", "build-bench/srvtime.so", "server-time LD_PRELOAD probe")
	fs.StringVar(&c.work, "work", "", "parent dir for the simulated nodes (default $TMPDIR)")
	fs.IntVar(&c.runs, "runs", 5, "repetitions; medians are over these")
	fs.IntVar(&c.allocN, "n", 20000, "sequential Allocate calls per latency run")
	fs.IntVar(&c.warmup, "warmup", 500, "uncounted Allocate calls before each latency run")
	fs.IntVar(&c.conns, "conns", 8, "connections for the throughput run")
	fs.DurationVar(&c.tputDur, "duration", 2*time.Second, "measured time per throughput run")
	fs.IntVar(&c.restarts, "restarts", 5, "kubelet restarts per run")
	fs.DurationVar(&c.restartGap, "restart-gap", 100*time.Millisecond,
		"time between the old kubelet's exit and the new one's start")
	fs.StringVar(&c.restartMode, "restart-mode", "graceful", "how the old kubelet ends: "+
		"graceful, crash (kubelet.sock left behind) or streams-first (streams ended first)")
	fs.IntVar(&c.hotplugs, "hotplugs", 5, "enclave node remove+create cycles per run")
	fs.IntVar(&c.lawStreams, "law-streams", 50, "ListAndWatch streams after the first")
	fs.StringVar(&c.only, "only", "",
		"comma-separated plugins to run (ours,ours-static,ours-labels,ours-static-labels,"+
			"grpc-go,floor)")
	fs.BoolVar(&keepNodes, "keep", false, "keep the simulated nodes and plugin logs")
	jsonOut := fs.String("json", "", "write every sample here as JSON")
	mdOut := fs.String("md", "", "write the table here as Markdown")
	_ = fs.Parse(args)

	oursArgv := func(bin string, labels bool) func(n *node, maxPods int) []string {
		return func(n *node, maxPods int) []string {
			argv := []string{bin, "--kubelet-dir", n.kdir, "--dev-root", n.dev,
				"--max-pods", strconv.Itoa(maxPods)}
			if labels {
				argv = append(argv, n.api.flags(labelInterval)...)
			}
			return argv
		}
	}
	oursSock := func(n *node) string { return filepath.Join(n.kdir, "sgxdevplugin-sgx.sock") }
	plugins := []pluginSpec{
		{name: pOurs, bin: c.ours, registers: true, probe: true,
			argv: oursArgv(c.ours, false), sgxSock: oursSock},
		{name: pOursStatic, bin: c.oursStatic, registers: true, lifeOnly: true,
			argv: oursArgv(c.oursStatic, false), sgxSock: oursSock},
		{name: pOursLabels, bin: c.ours, registers: true, lifeOnly: true, labels: true,
			argv: oursArgv(c.ours, true), sgxSock: oursSock},
		{name: pOursStaticLabels, bin: c.oursStatic, registers: true, lifeOnly: true,
			labels: true, argv: oursArgv(c.oursStatic, true), sgxSock: oursSock},
		{name: pGo, bin: c.goplugin, registers: true,
			argv: func(n *node, maxPods int) []string {
				return []string{c.goplugin, "--kubelet-dir", n.kdir, "--dev-root", n.dev,
					"--max-pods", strconv.Itoa(maxPods)}
			},
			sgxSock: func(n *node) string { return filepath.Join(n.kdir, "goplugin-sgx.sock") }},
		{name: pFloor, bin: c.floor, probe: true,
			argv: func(n *node, maxPods int) []string {
				return []string{c.floor, filepath.Join(n.kdir, "floor.sock")}
			},
			sgxSock: func(n *node) string { return filepath.Join(n.kdir, "floor.sock") }},
	}
	if c.only != "" {
		var keep []pluginSpec
		for _, p := range plugins {
			if strings.Contains(","+c.only+",", ","+p.name+",") {
				keep = append(keep, p)
			}
		}
		plugins = keep
	}
	for _, p := range plugins {
		if _, err := os.Stat(p.bin); err != nil {
			fmt.Fprintf(os.Stderr, "bench: %s: %v\n", p.name, err)
			return 1
		}
	}
	if _, err := os.Stat(c.shim); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		return 1
	}

	res := &results{Samples: map[string]map[string][]float64{}}
	start := time.Now()
	for run := 1; run <= c.runs; run++ {
		for _, p := range plugins {
			progress("run %d/%d: %s", run, c.runs, p.name)
			if err := c.lifecycle(p, res); err != nil {
				res.fail("run %d, %s, load and lifecycle: %v", run, p.name, err)
			}
			if p.registers && !p.lifeOnly {
				if err := c.lateKubelet(p, res); err != nil {
					res.fail("run %d, %s, late kubelet: %v", run, p.name, err)
				}
				for _, maxPods := range []int{110, 10000} {
					if err := c.listAndWatch(p, maxPods, res); err != nil {
						res.fail("run %d, %s, ListAndWatch of %d: %v", run, p.name,
							maxPods, err)
					}
				}
			}
			if p.probe {
				if err := c.serverTime(p, res); err != nil {
					res.fail("run %d, %s, server time: %v", run, p.name, err)
				}
			}
		}
	}
	c.sizes(res, plugins)
	progress("done in %.0f s", time.Since(start).Seconds())

	if *jsonOut != "" {
		data, _ := json.MarshalIndent(res, "", "  ")
		if err := os.WriteFile(*jsonOut, data, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
		}
	}
	rep := report(&c, res)
	fmt.Print(rep.text)
	if *mdOut != "" {
		if err := os.WriteFile(*mdOut, []byte(rep.markdown), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
		}
	}
	if len(res.Errors) > 0 {
		fmt.Printf("\n%d measurement(s) failed:\n  %s\n", len(res.Errors),
			strings.Join(res.Errors, "\n  "))
		return 1
	}
	return 0
}

// noteRetries counts the Register retries a plugin logged ("register failed ...: REASON") and
// keeps them as notes: they explain registration times near the 100 ms backoff step.
func noteRetries(res *results, plugin, phase string, p *proc) {
	data, err := os.ReadFile(p.log)
	if err != nil {
		return
	}
	reasons := map[string]int{}
	for _, line := range strings.Split(string(data), "\n") {
		i := strings.Index(line, "register failed")
		if i < 0 {
			continue
		}
		reason := line[i:]
		if j := strings.Index(reason, "): "); j >= 0 {
			reason = reason[j+3:]
		}
		if j := strings.Index(reason, ","); j >= 0 {
			reason = reason[:j]
		}
		reasons[reason]++
	}
	for reason, n := range reasons {
		what := fmt.Sprintf("%s, %s, after %q", plugin, phase, reason)
		res.Retries = append(res.Retries, retries{What: what, N: n})
	}
}

// lifecycle: start with the kubelet up, idle memory, load, memory, restarts, hotplugs.
func (c *benchConfig) lifecycle(p pluginSpec, res *results) (err error) {
	n, err := newNode(c.work, "bench-"+p.name+"-")
	if err != nil {
		return err
	}
	defer n.remove()
	if p.labels {
		if n.api, err = startAPIServer(n.root); err != nil {
			return err
		}
		defer n.api.stop()
	}
	var k *kubelet
	if p.registers {
		k = newKubelet(n.kdir, "localhost")
		k.mode = c.restartMode
		if err := k.start(); err != nil {
			return err
		}
		defer k.stop()
	}
	proc, err := startProc(p.argv(n, 110), nil, filepath.Join(n.root, "plugin.log"))
	if err != nil {
		return err
	}
	defer func() {
		if serr := proc.stop(10 * time.Second); serr != nil && err == nil {
			err = serr
		}
		noteRetries(res, p.name, "start, load, restarts, hotplug", proc)
		if err != nil {
			err = fmt.Errorf("%v\nplugin log:\n%s", err, proc.tail(15))
		}
	}()

	if p.registers {
		first, last, err := k.waitRegistered(benchResources, proc.start, 20*time.Second)
		if err != nil {
			return err
		}
		res.add("start_first_ms", p.name, ms(first))
		res.add("start_all_ms", p.name, ms(last))
		if p.labels {
			// The first PATCH: the idle memory below includes the TLS and HTTP/2 state.
			at, err := n.api.waitPatch(proc.start, 10*time.Second, sgxLabel(true))
			if err != nil {
				return fmt.Errorf("first label PATCH: %v", err)
			}
			res.add("label_first_ms", p.name, ms(at.Sub(proc.start)))
		}
	} else if err := waitPath(proc, p.sgxSock(n), 10*time.Second); err != nil {
		return err
	}

	time.Sleep(time.Second)
	m, err := proc.memory()
	if err != nil {
		return err
	}
	res.add("rss_idle_kib", p.name, float64(m.RSS))
	res.add("hwm_idle_kib", p.name, float64(m.HWM))

	conn, err := dialTimeout(p.sgxSock(n), "localhost", 10*time.Second)
	if err != nil {
		return err
	}
	a, err := measureAllocate(conn, "sgx-0", c.warmup, c.allocN)
	conn.Close()
	if err != nil {
		return err
	}
	res.add("alloc_p50_us", p.name, usec(a.P50))
	res.add("alloc_p99_us", p.name, usec(a.P99))

	rate, err := measureThroughput(p.sgxSock(n), "localhost", "sgx-0", c.conns,
		300*time.Millisecond, c.tputDur)
	if err != nil {
		return err
	}
	res.add("tput_cps", p.name, rate)

	time.Sleep(time.Second)
	if m, err = proc.memory(); err != nil {
		return err
	}
	res.add("rss_load_kib", p.name, float64(m.RSS))
	res.add("hwm_load_kib", p.name, float64(m.HWM))

	if !p.registers {
		return nil
	}
	for i := 0; i < c.restarts; i++ {
		time.Sleep(50 * time.Millisecond)
		if err := k.restart(c.restartGap); err != nil {
			return err
		}
		_, last, err := k.waitRegistered(benchResources, k.createdAt(), 20*time.Second)
		if err != nil {
			return fmt.Errorf("after kubelet restart %d: %v", i+1, err)
		}
		res.add("rereg_ms", p.name, ms(last))
	}

	affected := benchResources[:2] // sgx and dcap; ias has no device on this node
	enclave := filepath.Join(n.dev, enclaveNode)
	for i := 0; i < c.hotplugs; i++ {
		time.Sleep(50 * time.Millisecond)
		t := time.Now()
		if err := os.Remove(enclave); err != nil {
			return err
		}
		d, err := k.waitUpdate(affected, t, 10*time.Second, func(u update) bool {
			return u.total > 0 && u.healthy == 0
		})
		if err != nil {
			return fmt.Errorf("hotplug %d, enclave removed: %v", i+1, err)
		}
		res.add("hot_remove_ms", p.name, ms(d))
		if p.labels {
			at, err := n.api.waitPatch(t, 10*time.Second, sgxLabel(false))
			if err != nil {
				return fmt.Errorf("hotplug %d, enclave removed, labels: %v", i+1, err)
			}
			res.add("label_remove_ms", p.name, ms(at.Sub(t)))
		}

		time.Sleep(50 * time.Millisecond)
		t = time.Now()
		if err := mkEnclave(n.dev); err != nil {
			return err
		}
		d, err = k.waitUpdate(affected, t, 10*time.Second, func(u update) bool {
			return u.healthy == 110
		})
		if err != nil {
			return fmt.Errorf("hotplug %d, enclave created: %v", i+1, err)
		}
		res.add("hot_create_ms", p.name, ms(d))
		if p.labels {
			at, err := n.api.waitPatch(t, 10*time.Second, sgxLabel(true))
			if err != nil {
				return fmt.Errorf("hotplug %d, enclave created, labels: %v", i+1, err)
			}
			res.add("label_create_ms", p.name, ms(at.Sub(t)))
		}
	}
	if errs := k.errorList(); len(errs) > 0 {
		return fmt.Errorf("the kubelet saw errors: %v", errs)
	}
	if p.labels {
		// At least the first PATCH and one per change (2 per hotplug cycle), no refusals.
		patches, errs := n.api.counts()
		if len(errs) > 0 {
			return fmt.Errorf("the API server refused %d request(s): %v", len(errs), errs)
		}
		if patches < 1+2*c.hotplugs {
			return fmt.Errorf("the API server saw %d PATCHes, want at least %d (1 + 2 per "+
				"hotplug cycle)", patches, 1+2*c.hotplugs)
		}
		res.add("label_patches", p.name, float64(patches))
		res.add("label_patch_rate", p.name, float64(patches)/time.Since(proc.start).Seconds())
	}
	return nil
}

// lateKubelet: the plugin serves first; then kubelet.sock appears.
func (c *benchConfig) lateKubelet(p pluginSpec, res *results) (err error) {
	n, err := newNode(c.work, "bench-"+p.name+"-")
	if err != nil {
		return err
	}
	defer n.remove()
	proc, err := startProc(p.argv(n, 110), nil, filepath.Join(n.root, "plugin.log"))
	if err != nil {
		return err
	}
	defer func() {
		if serr := proc.stop(10 * time.Second); serr != nil && err == nil {
			err = serr
		}
		noteRetries(res, p.name, "late kubelet", proc)
		if err != nil {
			err = fmt.Errorf("%v\nplugin log:\n%s", err, proc.tail(15))
		}
	}()
	if err := waitPath(proc, p.sgxSock(n), 10*time.Second); err != nil {
		return err
	}
	time.Sleep(300 * time.Millisecond)
	k := newKubelet(n.kdir, "localhost")
	if err := k.start(); err != nil {
		return err
	}
	defer k.stop()
	_, last, err := k.waitRegistered(benchResources, k.createdAt(), 20*time.Second)
	if err != nil {
		return err
	}
	res.add("reg_kubelet_ms", p.name, ms(last))
	return nil
}

// listAndWatch: first answers with |maxPods| slots, no kubelet.
func (c *benchConfig) listAndWatch(p pluginSpec, maxPods int, res *results) (err error) {
	n, err := newNode(c.work, "bench-"+p.name+"-")
	if err != nil {
		return err
	}
	defer n.remove()
	proc, err := startProc(p.argv(n, maxPods), nil, filepath.Join(n.root, "plugin.log"))
	if err != nil {
		return err
	}
	defer func() {
		if serr := proc.stop(10 * time.Second); serr != nil && err == nil {
			err = serr
		}
		if err != nil {
			err = fmt.Errorf("%v\nplugin log:\n%s", err, proc.tail(15))
		}
	}()
	if err := waitPath(proc, p.sgxSock(n), 10*time.Second); err != nil {
		return err
	}
	r, err := measureListAndWatch(p.sgxSock(n), "localhost", c.lawStreams)
	if err != nil {
		return err
	}
	if r.Devices != maxPods {
		return fmt.Errorf("first answer lists %d devices, want %d", r.Devices, maxPods)
	}
	key := fmt.Sprintf("law%d", maxPods)
	res.add(key+"_cold_us", p.name, usec(r.Cold))
	res.add(key+"_warm_us", p.name, usec(r.Warm))
	res.add(key+"_bytes", p.name, float64(r.Bytes))
	res.add(key+"_decode_us", p.name, usec(r.Decode))
	return nil
}

// serverTime: Allocates with the srvtime.so probe preloaded; the server's own time per call
// beside the client's view of the same calls.
func (c *benchConfig) serverTime(p pluginSpec, res *results) (err error) {
	n, err := newNode(c.work, "bench-"+p.name+"-")
	if err != nil {
		return err
	}
	defer n.remove()
	out := filepath.Join(n.root, "srvtime.txt")
	shim, err := filepath.Abs(c.shim)
	if err != nil {
		return err
	}
	proc, err := startProc(p.argv(n, 110), []string{"LD_PRELOAD=" + shim, "SRVTIME_OUT=" + out},
		filepath.Join(n.root, "plugin.log"))
	if err != nil {
		return err
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = proc.stop(10 * time.Second)
		}
		if err != nil {
			err = fmt.Errorf("%v\nplugin log:\n%s", err, proc.tail(15))
		}
	}()
	if err := waitPath(proc, p.sgxSock(n), 10*time.Second); err != nil {
		return err
	}
	conn, err := dialTimeout(p.sgxSock(n), "localhost", 10*time.Second)
	if err != nil {
		return err
	}
	a, err := measureAllocate(conn, "sgx-0", c.warmup, c.allocN)
	conn.Close()
	if err != nil {
		return err
	}
	stopped = true
	if err := proc.stop(10 * time.Second); err != nil {
		return err
	}
	srv, err := readServerTimes(out, c.allocN)
	if err != nil {
		return err
	}
	s := srv.sorted()
	res.add("server_p50_us", p.name, usec(s.pct(50)))
	res.add("server_p99_us", p.name, usec(s.pct(99)))
	res.add("server_client_p50_us", p.name, usec(a.P50))
	return nil
}

// readServerTimes reads srvtime.so's intervals and keeps the last |n| that are calls: an
// Allocate answer (HEADERS, DATA and trailers) is over 200 bytes, while what a server sends for
// anything else the client sends (PING and SETTINGS acks, WINDOW_UPDATE) is under 64. The
// request side is no filter: grpc-go's request can be as short as 23 bytes when its HEADERS came
// in an earlier read with a PING.
func readServerTimes(path string, n int) (latencies, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("srvtime probe wrote nothing (%v): is the binary dynamic?", err)
	}
	defer f.Close()
	var all latencies
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var in, out, ns int64
		if _, err := fmt.Sscan(sc.Text(), &in, &out, &ns); err != nil {
			return nil, fmt.Errorf("%s: %v", path, err)
		}
		if out >= 100 {
			all = append(all, time.Duration(ns))
		}
	}
	if len(all) < n {
		return nil, fmt.Errorf("srvtime probe saw %d calls, want at least %d", len(all), n)
	}
	return all[len(all)-n:], nil
}

// sizes records the binaries' sizes, as built and stripped.
func (c *benchConfig) sizes(res *results, plugins []pluginSpec) {
	add := func(key, plugin, path string) {
		st, err := os.Stat(path)
		if err != nil {
			res.Notes = append(res.Notes, fmt.Sprintf("no %s: %v", path, err))
			return
		}
		res.add(key, plugin, float64(st.Size()))
		tmp, err := os.CreateTemp(c.work, "stripped-")
		if err != nil {
			return
		}
		tmp.Close()
		defer os.Remove(tmp.Name())
		if err := exec.Command("strip", "-o", tmp.Name(), path).Run(); err == nil {
			if st, err := os.Stat(tmp.Name()); err == nil {
				res.add(key+"_stripped", plugin, float64(st.Size()))
			}
		}
	}
	for _, p := range plugins {
		switch p.name {
		case pOurs:
			add("size_dynamic", pOurs, c.ours)
			add("size_static", pOurs, c.oursStatic)
		case pGo:
			add("size_static", pGo, c.goplugin) // Go links statically (CGO_ENABLED=0)
		case pFloor:
			add("size_dynamic", pFloor, c.floor)
		}
	}
}
