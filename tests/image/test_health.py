"""test_health.py - `sgxdevplugin health` (issue #4, the liveness probe): against a running daemon
every socket answers GetDevicePluginOptions and it exits 0; a missing socket, a daemon that is gone
and a daemon that is stopped (SIGSTOP: the kernel still accepts connections, nobody answers) each
exit 1 within the timeout, naming the socket and the reason; a daemon that resumes is healthy
again."""

import os
import signal
import socket
import time
from concurrent import futures

import pytest

import sdp
from sdp import T, res, run_cli

pytestmark = pytest.mark.usefixtures("binary")

KINDS = ("sgx", "dcap", "ias")


def health(node, *args, timeout=None):
    """Runs `health --kubelet-dir <node's dir> ARGS`; returns (CompletedProcess, seconds)."""
    t = time.monotonic()
    r = run_cli(["health", "--kubelet-dir", node.kdir] + list(args), timeout=timeout)
    return r, time.monotonic() - t


def lines_by_socket(r):
    """{socket path: (resource, rest of the line)} from health's stdout."""
    out = {}
    for line in r.stdout.splitlines():
        head, _, rest = line.partition(": ")
        resource, _, path = head.partition(" ")
        out[path] = (resource, rest)
    return out


def check_no_sanitizer_report(r):
    bad = [l for l in r.stderr.splitlines() if any(m in l for m in sdp.SANITIZER_MARKS)]
    assert not bad, "sanitizer report from health: %s" % r.stderr


# 01: a running daemon: one "ok" line per socket, exit 0, nothing on stderr
def test_health_01_ok(node):
    n = node("inkernel")
    r, _ = health(n)
    assert r.returncode == 0, r.stdout + r.stderr
    got = lines_by_socket(r)
    assert sorted(got) == sorted(n.socket(k) for k in KINDS), r.stdout
    for k in KINDS:
        resource, rest = got[n.socket(k)]
        assert resource == res(k)
        assert rest.startswith("ok (answered in "), r.stdout
    assert r.stderr == ""


# 02: a node without SGX still serves its sockets: the daemon is alive, health says so
def test_health_02_ok_without_devices(node):
    n = node("none")
    r, _ = health(n)
    assert r.returncode == 0, r.stdout + r.stderr
    assert len(r.stdout.splitlines()) == 3


# 03: with --provision-resource the provisioning socket is checked too; the domain names lines
def test_health_03_provision_socket_and_domain(node):
    n = node("inkernel", args=["--provision-resource", "--resource-domain", "example.com"],
             resources=[res(k, "example.com") for k in KINDS + ("provision",)])
    r, _ = health(n, "--resource-domain", "example.com")
    assert r.returncode == 0, r.stdout + r.stderr
    got = lines_by_socket(r)
    assert got[n.socket("provision")][0] == "example.com/provision"
    assert all(v[1].startswith("ok") for v in got.values()), r.stdout
    assert len(got) == 4


# 04: one socket missing (removed under the daemon): exit 1, that socket named, the others ok
def test_health_04_missing_socket(node):
    n = node("inkernel")
    os.unlink(n.socket("ias"))
    r, _ = health(n)
    assert r.returncode == 1, r.stdout + r.stderr
    got = lines_by_socket(r)
    assert got[n.socket("ias")][1].startswith("FAILED: no such socket"), r.stdout
    assert got[n.socket("sgx")][1].startswith("ok"), r.stdout
    assert got[n.socket("dcap")][1].startswith("ok"), r.stdout
    check_no_sanitizer_report(r)


# 05: a stopped daemon (SIGSTOP) accepts connections in the kernel but never answers: every socket
# fails after --timeout, exit 1 within the timeout; after SIGCONT the daemon is healthy again
def test_health_05_stopped_daemon_times_out(node):
    n = node("inkernel")
    n.daemon.proc.send_signal(signal.SIGSTOP)
    try:
        r, took = health(n, "--timeout", "1", timeout=T(10))
    finally:
        n.daemon.proc.send_signal(signal.SIGCONT)
    assert r.returncode == 1, r.stdout + r.stderr
    got = lines_by_socket(r)
    assert len(got) == 3, r.stdout
    for k in KINDS:
        assert got[n.socket(k)][1].startswith("FAILED: no answer within 1 s"), r.stdout
    # the calls run at once: one timeout, not one per socket
    assert 0.9 <= took < 1.0 + T(1.5), "health took %.2f s with --timeout 1" % took
    check_no_sanitizer_report(r)
    # the abandoned connections do not hurt the resumed daemon
    r, _ = health(n)
    assert r.returncode == 0, r.stdout + r.stderr
    n.wait_devices(res("dcap"), 110)


# 06: the default timeout is 5 s: a stopped daemon fails after it, not before
def test_health_06_default_timeout(node):
    n = node("inkernel")
    n.daemon.proc.send_signal(signal.SIGSTOP)
    try:
        r, took = health(n, timeout=T(20))
    finally:
        n.daemon.proc.send_signal(signal.SIGCONT)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "no answer within 5 s" in r.stdout
    assert 4.9 <= took < 5.0 + T(1.5), "health took %.2f s" % took


# 07: a daemon that exited cleanly removed its sockets: exit 1, "no such socket" for each
def test_health_07_daemon_gone(node):
    n = node("inkernel")
    assert n.stop_daemon() == 0
    r, took = health(n)
    assert r.returncode == 1, r.stdout + r.stderr
    got = lines_by_socket(r)
    assert all(v[1].startswith("FAILED: no such socket") for v in got.values()), r.stdout
    assert len(got) == 3
    assert took < T(2)


# 08: a daemon killed with SIGKILL left its sockets behind: nothing listens, exit 1 at once
def test_health_08_daemon_killed(node):
    n = node("inkernel")
    n.stop_daemon(signal.SIGKILL)
    r, took = health(n)
    assert r.returncode == 1, r.stdout + r.stderr
    got = lines_by_socket(r)
    assert all(v[1].startswith("FAILED: connection refused") for v in got.values()), r.stdout
    assert took < T(2)


# 09: something else on our socket path that answers gRPC, but not the DevicePlugin service:
# its status is reported and the check fails
def test_health_09_wrong_server(workdir):
    kdir = os.path.join(workdir, "k")
    os.makedirs(kdir)
    server = sdp.grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    server.add_insecure_port("unix:" + os.path.join(kdir, "sgxdevplugin-sgx.sock"))
    server.start()
    try:
        r = run_cli(["health", "--kubelet-dir", kdir])
    finally:
        server.stop(0).wait(5)
    assert r.returncode == 1, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert "sgxdevplugin-sgx.sock: FAILED: answered UNIMPLEMENTED" in lines[0], r.stdout
    assert "FAILED: no such socket" in lines[1], r.stdout


# 10: a listener that accepts and closes at once: the check fails, it does not hang
def test_health_10_peer_closes(workdir):
    kdir = os.path.join(workdir, "k")
    os.makedirs(kdir)
    paths = [os.path.join(kdir, "sgxdevplugin-%s.sock" % k) for k in KINDS]
    socks = []
    for p in paths:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(p)
        s.listen(8)
        socks.append(s)
    import threading

    stop = threading.Event()

    def serve(s):
        s.settimeout(0.1)
        while not stop.is_set():
            try:
                c, _ = s.accept()
                c.close()
            except socket.timeout:
                pass

    threads = [threading.Thread(target=serve, args=(s,), daemon=True) for s in socks]
    for t in threads:
        t.start()
    try:
        t0 = time.monotonic()
        r = run_cli(["health", "--kubelet-dir", kdir, "--timeout", "3"])
        took = time.monotonic() - t0
    finally:
        stop.set()
        for t in threads:
            t.join(2)
        for s in socks:
            s.close()
    assert r.returncode == 1, r.stdout + r.stderr
    assert all("FAILED: connection closed before an answer" in l
               for l in r.stdout.splitlines()), r.stdout
    assert took < T(2.5), "health waited for the timeout (%.2f s) on closed connections" % took
    check_no_sanitizer_report(r)


# 11: bad usage is exit 2 (a misconfigured probe fails loudly, never passes)
@pytest.mark.parametrize("args,flag", [
    (["--timeout", "0"], "--timeout"),
    (["--timeout", "soon"], "--timeout"),
    (["--dev-root", "/dev"], "--dev-root"),
    (["--max-pods", "3"], "--max-pods"),
])
def test_health_11_bad_usage(args, flag):
    r = run_cli(["health"] + args)
    assert r.returncode == 2, r.stdout + r.stderr
    assert r.stdout == ""
    assert r.stderr.splitlines()[0].startswith("sgxdevplugin: " + flag), r.stderr
