#!/usr/bin/python3
"""demo.py - what `make demo` runs: the plugin's main job on a simulated node.

    /usr/bin/python3 tests/demo.py build/sgxdevplugin

Builds a fake /dev with the in-kernel SGX driver's two device nodes (mknod, so it needs root),
starts the test kubelet (tests/kubelet/fake_kubelet.py) and the daemon, waits for the three
registrations, prints what the node would show as allocatable and capacity per resource, performs
one Allocate for sgx.k8s.io/sgx as the kubelet would for a pod, prints the device mapping the
container gets, stops the daemon with SIGTERM and cleans up. Exits non-zero if anything failed.

The simulated node is an Ice Lake-SP server (SGX2 + FLC: its CPUID registers recorded in
tests/fixtures/cpuid/, fed with --cpuid-file) on Linux 6.5 with 64 MiB of EPC per NUMA node (a fake
/proc and /sys), so `probe` shows its capability report, and the daemon labels the node through a
test API server (tests/apiserver/fake_apiserver.py: TLS with a CA made by openssl, HTTP/2).
"""

import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "kubelet"))
sys.path.insert(0, os.path.join(HERE, "apiserver"))

import fake_apiserver  # noqa: E402
import fake_kubelet  # noqa: E402

CPUID = os.path.join(HERE, "fixtures", "cpuid", "icelake-sp-xeon.cpuid")
NODE = "sgx-node-1"

DOMAIN = "sgx.k8s.io"
RESOURCES = ["%s/%s" % (DOMAIN, k) for k in ("sgx", "dcap", "ias")]
TIMEOUT = 20.0


def step(msg):
    print("==> " + msg, flush=True)


def fail(msg, log=None):
    print("FAILED: " + msg, file=sys.stderr)
    if log and os.path.exists(log):
        with open(log, errors="replace") as f:
            tail = f.read().splitlines()[-20:]
        print("daemon log (last lines):\n  " + "\n  ".join(tail), file=sys.stderr)
    return 1


def demo(binary, work):
    dev = os.path.join(work, "dev")
    kdir = os.path.join(work, "device-plugins")
    log = os.path.join(work, "sgxdevplugin.log")

    step("fake device tree in %s (the in-kernel SGX driver's nodes)" % dev)
    os.makedirs(dev)
    for name, minor in (("sgx_enclave", 125), ("sgx_provision", 126)):
        try:
            os.mknod(os.path.join(dev, name), 0o600 | stat.S_IFCHR, os.makedev(10, minor))
        except PermissionError:
            return fail("mknod needs root (run make demo as root, or in a container)")
        print("    %-16s char device 10:%d" % (name, minor))

    proc, sys_ = os.path.join(work, "proc"), os.path.join(work, "sys")
    os.makedirs(os.path.join(proc, "sys", "kernel"))
    with open(os.path.join(proc, "sys", "kernel", "osrelease"), "w") as f:
        f.write("6.5.0-demo\n")
    with open(os.path.join(proc, "cpuinfo"), "w") as f:
        f.write("processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: fpu sse2 sgx sgx_lc\n\n")
    for n in (0, 1):
        d = os.path.join(sys_, "devices", "system", "node", "node%d" % n, "x86")
        os.makedirs(d)
        with open(os.path.join(d, "sgx_total_bytes"), "w") as f:
            f.write("%d\n" % (64 << 20))
    facts = ["--cpuid-file", CPUID, "--proc-root", proc, "--sys-root", sys_]
    step("sgxdevplugin probe: an Ice Lake-SP server's recorded CPUID, Linux 6.5, 2 NUMA nodes")
    r = subprocess.run([binary, "probe", "--dev-root", dev] + facts, capture_output=True,
                       text=True)
    if r.returncode != 0:
        return fail("probe exited with %d: %s" % (r.returncode, r.stderr.strip()))
    for line in r.stdout.splitlines():
        print("    " + line.replace(work, "$TMP"))

    step("test API server for node %s (TLS + HTTP/2, CA made with openssl)" % NODE)
    pki = fake_apiserver.make_pki(os.path.join(work, "pki"))
    token = os.path.join(work, "token")
    with open(token, "w") as f:
        f.write("demo-token\n")
    api = fake_apiserver.FakeApiServer(pki, node=NODE, tokens=("demo-token",)).start()
    print("    %s, labels now: %s" % (api.url, json_labels(api.labels())))

    step("test kubelet serving %s/kubelet.sock" % kdir)
    kubelet = fake_kubelet.FakeKubelet(kdir)
    kubelet.start()
    daemon = None
    try:
        args = [binary, "--kubelet-dir", kdir, "--dev-root", dev, "--max-pods", "110",
                "--log-format", "text", "--log-level", "info"] + facts + [
                "--label-node", "--node-name", NODE, "--apiserver", api.url,
                "--token-file", token, "--ca-file", pki.ca]
        step("starting " + " ".join(args))
        with open(log, "wb") as logf:
            daemon = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf)

        try:
            kubelet.wait_registered(RESOURCES, TIMEOUT)
        except AssertionError as e:
            return fail(str(e), log)
        step("registrations (the kubelet dialed back each socket before answering Register)")
        for r in RESOURCES:
            print("    %-16s endpoint %s" % (r, kubelet.endpoint(r)))

        step("node status, as kubectl get node -o jsonpath='{.status.allocatable}' shows it")
        print("    allocatable: {%s}" % ", ".join(
            '"%s":"%d"' % (r, kubelet.allocatable(r)) for r in RESOURCES))
        print("    capacity:    {%s}" % ", ".join(
            '"%s":"%d"' % (r, kubelet.capacity(r)) for r in RESOURCES))
        print("    (no /dev/isgx on this node, so %s/ias has no slots)" % DOMAIN)

        sgx = RESOURCES[0]
        ids = sorted(kubelet.devices(sgx), key=lambda i: (len(i), i))[:1]
        if not ids:
            return fail("%s advertises no devices" % sgx, log)
        step("Allocate %s %s (what the kubelet asks when a pod requests 1 %s)" % (sgx, ids[0],
                                                                                   sgx))
        try:
            resp = kubelet.allocate(sgx, ids)
        except fake_kubelet.grpc.RpcError as e:
            return fail("Allocate: %s: %s" % (e.code().name, e.details()), log)
        c = resp.container_responses[0]
        print("    %-22s %-22s %s" % ("container path", "host path", "permissions"))
        for d in c.devices:
            print("    %-22s %-22s %s" % (d.container_path, d.host_path, d.permissions))
        for m in c.mounts:
            print("    mount %s -> %s" % (m.host_path, m.container_path))
        if not c.devices:
            return fail("Allocate returned no devices", log)
        if kubelet.errors:
            return fail("; ".join(kubelet.errors), log)

        step("node labels, as kubectl get node %s --show-labels shows them" % NODE)
        try:
            api.wait_for(lambda s: "%s/sgx" % DOMAIN in s._labels, TIMEOUT,
                         "the node's SGX labels")
        except AssertionError as e:
            return fail(str(e), log)
        print("    " + json_labels(api.labels()))
        # the daemon logs the PATCH once its answer is in
        end = time.monotonic() + TIMEOUT
        while "labelled" not in open(log, errors="replace").read():
            if time.monotonic() > end:
                return fail("the daemon did not log the labels it set", log)
            time.sleep(0.02)
        if api.errors or any(rq.problems for rq in api.snapshot()[0]):
            return fail("the API server saw bad requests: %s" % api.errors, log)

        step("stopping the daemon (SIGTERM)")
        daemon.send_signal(signal.SIGTERM)
        try:
            rc = daemon.wait(10)
        except subprocess.TimeoutExpired:
            return fail("the daemon did not exit within 10 s of SIGTERM", log)
        if rc != 0:
            return fail("the daemon exited with %d" % rc, log)
        left = [f for f in os.listdir(kdir) if f.startswith("sgxdevplugin-")]
        if left:
            return fail("sockets left behind: %s" % left, log)
        print("    exit 0, sockets removed")
        step("what the daemon logged (--log-format text --log-level info)")
        with open(log, errors="replace") as f:
            for line in f.read().splitlines()[:24]:
                print("    " + line.replace(work, "$TMP"))
        return 0
    finally:
        if daemon is not None and daemon.poll() is None:
            daemon.kill()
            daemon.wait()
        kubelet.stop()
        api.stop()


def json_labels(labels):
    return "{%s}" % ", ".join('"%s":"%s"' % kv for kv in sorted(labels.items()))


def main():
    if len(sys.argv) != 2:
        print("usage: %s PATH/TO/sgxdevplugin" % sys.argv[0], file=sys.stderr)
        return 2
    binary = os.path.abspath(sys.argv[1])
    if not os.access(binary, os.X_OK):
        return fail("no executable at %s (build it first)" % binary)
    work = tempfile.mkdtemp(prefix="sgxdemo-")
    t0 = time.monotonic()
    try:
        rc = demo(binary, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if rc == 0:
        step("demo done in %.1f s" % (time.monotonic() - t0))
    return rc


if __name__ == "__main__":
    sys.exit(main())
