#!/usr/bin/python3
"""dra_bench.py - the DRA driver's benchmarks (issue 12, section 3), run by bench/run.sh:

  prepare   NodePrepareResources latency per call, one claim per call: a fresh claim each time
            (the daemon GETs it from the API server on its worker, checkpoints it, answers), the
            same claim again (answered from the checkpoint, no GET), and its
            NodeUnprepareResources; p50/p90/p99/max over --calls calls per run.
  hotplug   slice publication after a hotplug: from the unlink (or mknod) of sgx_enclave under
            --dev-root to the API server storing the ResourceSlice whose devices say so (PUT
            of the pool's slice: dcap gone, dcap back); p50/max over 2 x --hotplugs per run.

The daemon runs with --dra against the test API server (tests/apiserver/fake_apiserver.py: TLS
and HTTP/2 on 127.0.0.1, Python) and the test kubelets (tests/kubelet/: the DRA plugin manager
and the device manager, Python grpcio), on a simulated node made with mknod (so: root). The
client is Python grpcio, not the kubelet's grpc-go: see BENCHMARKS.md for what that means.

A benchmark, never a test: no timing is judged. It fails (exit 1) only when a measurement could
not be made: an answer with an error or the wrong device, a fresh prepare without its GET, a
repeat prepare with one, a hotplug without its slice write, or a protocol problem seen by the
test kubelet or the test API server.

    /usr/bin/python3 bench/dra_bench.py --binary build/sgxdevplugin [--runs 3] [--calls 200]
        [--hotplugs 10] [--md OUT.md] [--json OUT.json] [--only prepare,hotplug] [--keep]
"""

import argparse
import json
import os
import shutil
import socket
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
for d in ("tests/integration", "tests/kubelet", "tests/apiserver"):
    sys.path.insert(0, os.path.join(REPO, d))

import sdp  # noqa: E402  (the daemon as a process, the fake /dev)
import fake_apiserver  # noqa: E402
import fake_dra_kubelet  # noqa: E402
from fake_kubelet import FakeKubelet  # noqa: E402
from test_10_labels import caps_args, write_token  # noqa: E402  (CPUID dump, proc and sys roots)

D = sdp.DOMAIN
NODE = "bench-node"


class TimedApiServer(fake_apiserver.FakeApiServer):
    """The test API server, noting when each slice write is stored: (monotonic time, verb,
    sorted device names). Stored = the request read, decoded and validated, before the answer.

    Its connections get TCP_NODELAY, as every TCP connection of Go's net package (the real
    kube-apiserver's) has by default: without it, an answer written while an earlier small
    segment is unacknowledged waits for the daemon's delayed ACK, ~40 ms on Linux, which is
    what a fresh prepare then measures (about 45 ms instead of about 5)."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.writes = []

    def _serve(self, s, c, hang_tls):
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return super()._serve(s, c, hang_tls)

    def _store_slice(self, obj, verb):
        r = super()._store_slice(obj, verb)
        if obj.get("spec", {}).get("driver") == D:
            self.writes.append((time.monotonic(), verb,
                                sorted(d["name"] for d in obj["spec"].get("devices") or [])))
        return r


class Run:
    """One daemon with --dra, its API server and its kubelets, under |work|."""

    def __init__(self, binary, pki, work, api_timeout):
        self.work = work
        self.srv = TimedApiServer(pki, node=NODE).start()
        self.dev = sdp.DevTree(os.path.join(work, "dev"))
        self.dev.apply("inkernel")  # sgx_enclave + sgx_provision: the pool's device "dcap"
        kdir = os.path.join(work, "k")
        self.kubelet = FakeKubelet(kdir, dial_timeout=5)
        self.kubelet.start()
        reg = os.path.join(work, "reg")
        self.dra = fake_dra_kubelet.FakeDraKubelet(reg, driver=D, dial_timeout=5)
        self.dra.start()
        sys_root = os.path.join(work, "empty-sys")
        os.makedirs(sys_root, exist_ok=True)
        self.daemon = sdp.Daemon(
            ["--kubelet-dir", kdir, "--dev-root", self.dev.root, "--log-format", "json",
             "--sys-root", sys_root, "--dra", "--node-name", NODE, "--apiserver", self.srv.url,
             "--token-file", write_token(work, "token-1"), "--ca-file", pki.ca,
             "--api-timeout", "%g" % api_timeout, "--label-interval", "600",
             "--plugins-registry", reg, "--dra-dir", os.path.join(work, "plugins", D)]
            + caps_args(work), os.path.join(work, "daemon.log"), binary=binary)
        self.daemon.start()
        self.plugin = self.dra.wait_registered(D, 10)
        # the first slice, before any measurement
        self.wait_write(0, ["dcap"], 10)

    def wait_write(self, since, devices, timeout):
        """The first slice write at or after |since| (monotonic) saying |devices|; its time."""
        def found(s):
            for t, verb, devs in s.writes:
                if t >= since and devs == devices and verb in ("create", "update"):
                    return t
            return None
        return self.srv.wait_for(found, timeout, "a ResourceSlice write with devices %s" % devices)

    def problems(self):
        p = ["DRA kubelet: " + e for e in self.dra.errors]
        p += ["kubelet: " + str(e) for e in self.kubelet.errors]
        p += ["API server: " + e for e in self.srv.errors]
        p += ["request %r: %s" % (r, x) for r in self.srv.requests for x in r.problems]
        return p

    def stop(self):
        rc = self.daemon.stop(timeout=10)
        self.dra.stop()
        self.kubelet.stop()
        self.srv.stop()
        return rc


def claim_gets(srv):
    with srv.cond:
        return sum(1 for r in srv.requests if "/resourceclaims/" in (r.path or ""))


def bench_prepare(run, calls, run_no, fail):
    """|calls| rounds of: prepare a fresh claim, prepare it again, unprepare it; on one channel
    kept open (the kubelet keeps its connection to a plugin). Returns {row: [seconds]}."""
    grpc, mods = fake_dra_kubelet.load_api()
    pb, pb_grpc = mods["dra_v1"]
    ch = fake_dra_kubelet.dial(run.plugin.endpoint, 5)
    stub = pb_grpc.DRAPluginStub(ch)
    want_cdi = [D + "/sgx=dcap"]
    out = {"fresh": [], "repeat": [], "unprepare": [], "first": []}
    try:
        for i in range(calls + 1):  # round 0 is the first of this daemon: kept apart
            uid = "bench-%d-%d" % (run_no, i)
            name = "claim-%d" % i
            run.srv.add_claim("bench", name, uid, results=[("enclave", D, NODE, "dcap")])
            claim = [pb.Claim(namespace="bench", uid=uid, name=name)]
            gets = claim_gets(run.srv)
            for row in ("fresh", "repeat"):
                t0 = time.perf_counter()
                resp = stub.NodePrepareResources(pb.NodePrepareResourcesRequest(claims=claim),
                                                 timeout=45)
                dt = time.perf_counter() - t0
                r = resp.claims[uid]
                if r.error or [list(d.cdi_device_ids) for d in r.devices] != [want_cdi]:
                    fail("prepare %s (%s): error %r devices %s" % (uid, row, r.error, r.devices))
                got = claim_gets(run.srv) - gets
                if got != (1 if row == "fresh" else 0):
                    fail("prepare %s (%s): %d claim GETs" % (uid, row, got))
                gets += got
                if i:
                    out[row].append(dt)
                elif row == "fresh":
                    out["first"].append(dt)
            t0 = time.perf_counter()
            resp = stub.NodeUnprepareResources(pb.NodeUnprepareResourcesRequest(claims=claim),
                                               timeout=45)
            dt = time.perf_counter() - t0
            if resp.claims[uid].error:
                fail("unprepare %s: %s" % (uid, resp.claims[uid].error))
            if i:
                out["unprepare"].append(dt)
    finally:
        ch.close()
    return out


def bench_hotplug(run, hotplugs, fail):
    """|hotplugs| cycles of unlink sgx_enclave (the pool's slice loses dcap) and mknod it again
    (dcap back). Returns {"unlink": [s], "mknod": [s]}."""
    out = {"unlink": [], "mknod": []}
    for _ in range(hotplugs):
        for what, act, devices in (
                ("unlink", lambda: run.dev.remove("sgx_enclave"), []),
                ("mknod", lambda: run.dev.mknod("sgx_enclave", *sdp.ENCLAVE), ["dcap"])):
            time.sleep(0.3)  # the previous change settled (CDI spec, health, ListAndWatch)
            t0 = time.monotonic()
            act()
            try:
                t1 = run.wait_write(t0, devices, 10)
            except AssertionError as e:
                fail("hotplug %s: %s" % (what, str(e)[:300]))
                continue
            out[what].append(t1 - t0)
    return out


def pct(xs, p):
    """Nearest-rank percentile."""
    s = sorted(xs)
    return s[max(0, min(len(s) - 1, -(-len(s) * p // 100) - 1))]


ROWS = (  # key, what, statistics
    ("fresh", "NodePrepareResources, a fresh claim (GET from the API server, checkpoint)",
     "full"),
    ("repeat", "NodePrepareResources, the same claim again (from the checkpoint, no GET)", "full"),
    ("unprepare", "NodeUnprepareResources of that claim (checkpoint rewritten)", "full"),
    ("first", "the first fresh prepare of each daemon", "few"),
    ("unlink", "slice stored after unlink of sgx_enclave (dcap gone)", "few"),
    ("mknod", "slice stored after mknod of sgx_enclave (dcap back)", "few"),
)


def ms(x):
    return "%.2f" % (x * 1e3)


def table(samples):
    lines = ["| measurement | n | p50 ms | p90 ms | p99 ms | max ms |",
             "|---|---:|---:|---:|---:|---:|"]
    for key, what, kind in ROWS:
        xs = samples.get(key) or []
        if not xs:
            continue
        if kind == "full":
            lines.append("| %s | %d | %s | %s | %s | %s |" % (
                what, len(xs), ms(pct(xs, 50)), ms(pct(xs, 90)), ms(pct(xs, 99)),
                ms(max(xs))))
        else:
            lines.append("| %s | %d | %s | | | %s |" % (what, len(xs), ms(pct(xs, 50)),
                                                        ms(max(xs))))
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--binary", default=os.path.join(REPO, "build", "sgxdevplugin"))
    ap.add_argument("--runs", type=int, default=3, help="daemons started, one after another")
    ap.add_argument("--calls", type=int, default=200, help="prepare rounds per run")
    ap.add_argument("--hotplugs", type=int, default=10, help="unlink+mknod cycles per run")
    ap.add_argument("--only", default="prepare,hotplug")
    ap.add_argument("--api-timeout", type=float, default=10)
    ap.add_argument("--md")
    ap.add_argument("--json")
    ap.add_argument("--keep", action="store_true", help="keep the work dir (daemon logs)")
    a = ap.parse_args()
    only = set(a.only.split(","))
    if os.geteuid() != 0:
        sys.exit("dra_bench.py: needs root (the simulated node's devices are made with mknod)")
    binary = os.path.abspath(a.binary)
    top = tempfile.mkdtemp(prefix="sgxdrabench-")
    pki = fake_apiserver.make_pki(os.path.join(top, "pki"))
    failures = []

    def fail(msg):
        failures.append(msg)
        print("dra_bench: MEASUREMENT FAILED: " + msg, file=sys.stderr, flush=True)

    samples = {}
    per_run = []
    try:
        for n in range(a.runs):
            work = os.path.join(top, "run%d" % n)
            os.makedirs(work)
            run = Run(binary, pki, work, a.api_timeout)
            got = {}
            try:
                if "prepare" in only:
                    got.update(bench_prepare(run, a.calls, n, fail))
                if "hotplug" in only:
                    got.update(bench_hotplug(run, a.hotplugs, fail))
            finally:
                rc = run.stop()
                for p in run.problems():
                    fail(p)
                if rc != 0:
                    fail("daemon exit %s on SIGTERM; log tail:\n%s" % (rc, run.daemon.tail()))
            per_run.append({k: pct(v, 50) for k, v in got.items() if v})
            for k, v in got.items():
                samples.setdefault(k, []).extend(v)
            print("run %d: %s" % (n + 1, ", ".join(
                "%s p50 %s ms" % (k, ms(v)) for k, v in sorted(per_run[-1].items()))),
                flush=True)
    finally:
        if a.keep:
            print("work dir kept: " + top)
        else:
            shutil.rmtree(top, ignore_errors=True)
    md = table(samples)
    md += "\n\nPer-run p50 (ms): " + "; ".join(
        "run %d: %s" % (i + 1, ", ".join("%s %s" % (k, ms(v)) for k, v in sorted(r.items())))
        for i, r in enumerate(per_run))
    print()
    print(md)
    if a.md:
        with open(a.md, "w") as f:
            f.write(md + "\n")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"runs": a.runs, "calls": a.calls, "hotplugs": a.hotplugs,
                       "samples_s": samples, "per_run_p50_s": per_run,
                       "failures": failures}, f, indent=1)
    if failures:
        print("dra_bench: %d measurement(s) failed" % len(failures), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
