"""test_08_lifecycle.py - start and stop (issue #2 section 4): SIGTERM/SIGINT close the streams,
remove our sockets and exit 0, but leave a socket path another process owns now (rolling update);
stale sockets are replaced at start; a kubelet that never answers blocks nothing."""

import os
import signal
import socket
import stat
import time

import pytest

import sdp
from sdp import T, res, specs

DCAP = res("dcap")


def sockets_of(nd):
    return [nd.socket(k) for k in sdp.KINDS]


# 08_01: SIGTERM / SIGINT: exit 0, every stream ends, our sockets are gone, kubelet.sock stays
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_08_01_signal_exit_0(node, sig):
    nd = node("dcap_ias")
    t0 = time.monotonic()
    assert nd.stop_daemon(sig) == 0
    assert time.monotonic() - t0 < T(3)
    for p in sockets_of(nd):
        assert not os.path.exists(p), "%s left behind" % p
    assert os.path.exists(os.path.join(nd.kdir, "kubelet.sock"))
    k = nd.kubelet
    k.wait_for(lambda: all(k.resources[r].current is None for r in sdp.RESOURCES), T(2),
               "the kubelet to see every ListAndWatch stream end")


# 08_02: a socket path another process bound meanwhile (rolling update: the new pod) is not
# removed on SIGTERM
def test_08_02_rolling_update_socket_kept(node):
    nd = node("inkernel")
    nd.allow_stream_ends = True  # our socket is gone: the old streams may end
    dcap, ias = nd.socket("dcap"), nd.socket("ias")
    newpod = socket.socket(socket.AF_UNIX)
    os.unlink(dcap)  # what the new pod does to a path it finds taken
    try:
        newpod.bind(dcap)
    except OSError as e:
        newpod.close()
        pytest.fail("the new pod cannot bind %s: %s: the old daemon re-created its socket at "
                    "once when the new pod removed it, and fights over the path" % (dcap, e))
    newpod.listen(1)
    ino = os.stat(dcap).st_ino
    try:
        assert nd.stop_daemon() == 0
        assert os.path.exists(dcap), "%s is gone after SIGTERM though the new pod had bound " \
            "it (did the daemon re-create its socket over it, then unlink it?)" % dcap
        assert os.stat(dcap).st_ino == ino, "%s was replaced" % dcap
        assert not os.path.exists(ias), "our own ias socket was left behind"
    finally:
        newpod.close()


# 08_03: a socket path replaced by another (non-socket) file is neither replaced nor removed
def test_08_03_socket_path_replaced_by_file(node):
    nd = node("inkernel")
    nd.allow_stream_ends = True
    sgx = nd.socket("sgx")
    os.unlink(sgx)
    with open(sgx, "w") as f:
        f.write("another file\n")
    ino = os.stat(sgx).st_ino
    # The daemon may notice and react; then it stops.
    assert nd.kubelet.allocate(res("dcap"), ["dcap-0"])
    assert nd.stop_daemon() == 0
    assert os.path.exists(sgx), "SIGTERM removed %s, which is not ours any more" % sgx
    assert os.stat(sgx).st_ino == ino, "the daemon replaced another file at %s" % sgx


# 08_04: SIGTERM with stalled clients connected still exits 0 promptly
def test_08_04_sigterm_with_stalled_clients(node):
    nd = node("inkernel")
    stalled = [sdp.unix_connect(nd.socket("dcap")) for _ in range(3)]
    stalled[1].sendall(b"PRI * HTTP/2.0\r\n")
    w = sdp.Watcher(nd.socket("dcap"))
    try:
        w.wait(sdp.all_health(110), T(5), "the first list")
        t0 = time.monotonic()
        assert nd.stop_daemon() == 0
        assert time.monotonic() - t0 < T(3)
    finally:
        w.close()
        for s in stalled:
            s.close()


# 08_05: SIGTERM before any kubelet appeared: exit 0, no socket left
def test_08_05_sigterm_without_kubelet(node):
    nd = node("inkernel", kubelet=False)
    time.sleep(T(0.3))  # setup: let it start up and wait for the kubelet
    assert nd.stop_daemon() == 0
    for p in sockets_of(nd):
        assert not os.path.exists(p)


# 08_06: a kubelet that accepts Register and never answers blocks neither serving nor SIGTERM
def test_08_06_hanging_kubelet(node):
    nd = node("inkernel", kubelet=False)
    os.makedirs(nd.kdir)
    hang = socket.socket(socket.AF_UNIX)
    hang.bind(os.path.join(nd.kdir, "kubelet.sock"))
    hang.listen(16)
    conns = []
    try:
        hang.settimeout(T(5))
        conns.append(hang.accept()[0])  # the daemon dialed; we never answer
        sdp.poll(lambda: all(os.path.exists(p) for p in sockets_of(nd)), T(5), "our sockets")
        ch = sdp.channel(nd.socket("dcap"))
        try:
            stub = sdp.pb_grpc.DevicePluginStub(ch)
            req = sdp.pb.AllocateRequest()
            req.container_requests.add().devices_ids.append("dcap-0")
            t0 = time.monotonic()
            resp = stub.Allocate(req, timeout=T(5))
            assert time.monotonic() - t0 < T(0.5)
            assert len(resp.container_responses[0].devices) == 4
        finally:
            ch.close()
        t0 = time.monotonic()
        assert nd.stop_daemon() == 0
        assert time.monotonic() - t0 < T(3)
    finally:
        for c in conns:
            c.close()
        hang.close()


# 08_07: stale sockets at our paths (a crashed instance) are replaced at start
def test_08_07_stale_own_sockets(node, workdir):
    kdir = os.path.join(workdir, "k")
    os.makedirs(kdir)
    for kind in sdp.KINDS:
        s = socket.socket(socket.AF_UNIX)
        s.bind(os.path.join(kdir, "sgxdevplugin-%s.sock" % kind))
        s.close()
    nd = node("inkernel")
    for kind in sdp.KINDS:
        assert stat.S_ISSOCK(os.stat(nd.socket(kind)).st_mode)
    assert specs(nd.kubelet.allocate(DCAP, ["dcap-0"]))


# 08_08: rolling update: a new daemon takes over while the old one runs; the old one's SIGTERM
# ends its streams, the kubelet drops the resources by name, and the new daemon registers again
def test_08_08_rolling_update(node):
    nd = node("inkernel")
    nd.allow_stream_ends = True
    nd.allow_reregister = True
    k = nd.kubelet
    new = sdp.Daemon(nd.daemon.args[1:], os.path.join(nd.workdir, "new.log")).start()
    try:
        k.wait_for(lambda: all(k.register_count(r) == 2 for r in sdp.RESOURCES), T(10),
                   "the new daemon's registrations")
        nd.wait_registered()
        for r in sdp.RESOURCES:  # the new daemon has its Register answers (see 02_17)
            new.wait_log(lambda l: l.get("resource") == r and l.get("level") == "info" and
                         "registered" in l.get("msg", ""), T(2),
                         what="the new daemon's registration of %s" % r)
        assert nd.stop_daemon() == 0
        for p in sockets_of(nd):
            assert os.path.exists(p), "the old daemon removed the new daemon's %s" % p
        # The kubelet ended the new daemon's streams because the old ones ended: it must
        # register again, once per resource.
        k.wait_for(lambda: all(k.register_count(r) >= 3 for r in sdp.RESOURCES), T(10),
                   "the new daemon to register again after the kubelet dropped it")
        nd.wait_registered()
        for r in sdp.RESOURCES[:2]:
            nd.wait_devices(r, 110, 110)
        assert specs(k.allocate(DCAP, ["dcap-0"]))
        assert all(k.register_count(r) == 3 for r in sdp.RESOURCES), k.describe_events()
    finally:
        rc = new.stop()
        reports = new.sanitizer_reports()
    assert rc == 0, "new daemon exit code %r" % rc
    assert not reports, reports
