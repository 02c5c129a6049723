"""test_10_labels.py - node labels through the Kubernetes API (issue #3 sections 2 and 3), against
the test API server in tests/apiserver/fake_apiserver.py: a real TLS server speaking HTTP/2 with
certificates made here by openssl, which checks every request and keeps the node's labels.

The capability facts come from files made here: a recorded CPUID dump (--cpuid-file), a proc
root (cpuinfo flags, kernel release) and a sys root (EPC per NUMA node).

Cases: the labels per CPU, kernel and driver; removed when the device vanishes or on a node
without SGX; --resource-domain; the token rotated; wrong CA, wrong name, HTTP/1.1 only; 401, 403,
404, 409, 500 and a server that never answers, all logged and retried while Allocate keeps
answering; re-assert; and the flag check.
"""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import pytest

import sdp
from sdp import T, res

sys.path.insert(0, os.path.join(sdp.REPO, "tests", "apiserver"))

import fake_apiserver  # noqa: E402
from fake_apiserver import FakeApiServer  # noqa: E402

SGX, DCAP, IAS = (res(k) for k in ("sgx", "dcap", "ias"))
OWNED = ("sgx", "dcap", "ias", "sgx2", "flc", "epc-mib")
NODE = "node-1"
PATH = "/api/v1/nodes/" + NODE
MIB = 1 << 20

# ---- capability inputs ----

# Recorded CPUID: "LEAF SUBLEAF EAX EBX ECX EDX". Leaf 0: max leaf 0x12, "GenuineIntel";
# 7.0: EBX[2] SGX, ECX[30] FLC; 0x12.0: EAX[0] SGX1, EAX[1] SGX2, EDX max enclave sizes;
# 0x12.2..: EPC sections (type 1 in EAX[3:0], size in ECX[31:12] and EDX[19:0]).
CPU_HEAD = "0x0 0x0 0x12 0x756e6547 0x6c65746e 0x49656e69\n0x1 0x0 0x000606a6 0 0 0\n"
CPUS = {
    # a server part: SGX2 and FLC, two 64 MiB EPC sections (128 MiB by CPUID)
    "sgx2_flc": CPU_HEAD + "0x7 0x0 0 0x00000004 0x40000000 0\n"
                           "0x12 0x0 0x00000003 0 0 0x0000381f\n"
                           "0x12 0x2 0x80000001 0 0x04000001 0\n"
                           "0x12 0x3 0x84000001 0 0x04000001 0\n",
    # a client part: SGX1 without FLC, one 96 MiB EPC section
    "sgx1": CPU_HEAD + "0x7 0x0 0 0x00000004 0 0\n"
                       "0x12 0x0 0x00000001 0 0 0x0000241f\n"
                       "0x12 0x2 0x70200001 0 0x06000001 0\n",
}
FLAGS_FLC = "fpu vme de pse tsc msr pae sgx sgx_lc"
FLAGS_NO_SGX = "fpu vme de pse tsc msr pae"  # what the kernel shows a CPU without FLC


def caps_args(workdir, cpu="sgx2_flc", release="6.5.0-18-generic", flags=FLAGS_FLC,
              epc_nodes=(64 * MIB, 128 * MIB)):
    """Writes the CPUID dump, proc root and sys root under |workdir|; returns the flags."""
    d = os.path.join(workdir, "caps")
    proc, sysr = os.path.join(d, "proc"), os.path.join(d, "sys")
    os.makedirs(os.path.join(proc, "sys", "kernel"), exist_ok=True)
    with open(os.path.join(d, "cpuid.txt"), "w") as f:
        f.write(CPUS[cpu])
    with open(os.path.join(proc, "sys", "kernel", "osrelease"), "w") as f:
        f.write(release + "\n")
    with open(os.path.join(proc, "cpuinfo"), "w") as f:
        for i in range(2):
            f.write("processor\t: %d\nvendor_id\t: GenuineIntel\nflags\t\t: %s\n\n" % (i, flags))
    for i, size in enumerate(epc_nodes):
        x86 = os.path.join(sysr, "devices", "system", "node", "node%d" % i, "x86")
        os.makedirs(x86, exist_ok=True)
        with open(os.path.join(x86, "sgx_total_bytes"), "w") as f:
            f.write("%d\n" % size)
    os.makedirs(os.path.join(sysr, "devices", "system", "node"), exist_ok=True)
    return ["--cpuid-file", os.path.join(d, "cpuid.txt"), "--proc-root", proc, "--sys-root", sysr]


# ---- the API server ----

@pytest.fixture(scope="session")
def pki():
    d = tempfile.mkdtemp(prefix="sdp-pki-", dir="/tmp")
    try:
        yield fake_apiserver.make_pki(d)
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def api(pki):
    """A factory: api(**FakeApiServer kwargs) starts a test API server. On teardown: no request
    broke the rules (method, content type, token form, body touching only metadata.labels) and
    the server itself had no error."""
    servers = []

    def make(**kw):
        kw.setdefault("node", NODE)
        s = FakeApiServer(pki, **kw).start()
        servers.append(s)
        return s

    yield make
    problems = []
    for s in servers:
        s.stop()
        problems += ["api server: " + e for e in s.errors]
        problems += ["request %r: %s" % (r, p) for r in s.requests for p in r.problems]
    if problems:
        pytest.fail("teardown found problems:\n  " + "\n  ".join(problems), pytrace=False)


def write_token(workdir, token, name="token"):
    """Replaces the token file atomically (as the kubelet does); trailing newline included."""
    path = os.path.join(workdir, name)
    with open(path + ".new", "w") as f:
        f.write(token + "\n")
    os.rename(path + ".new", path)
    return path


def label_args(workdir, pki, srv, ca=None, token="token-1", timeout=None, interval="600",
               url=None, caps=None, node_name=NODE):
    """The daemon's flags for labelling |node_name| through |srv|."""
    return (["--label-node", "--node-name", node_name, "--apiserver", url or srv.url,
             "--token-file", write_token(workdir, token), "--ca-file", ca or pki.ca,
             "--api-timeout", timeout or "%g" % T(2), "--label-interval", interval] +
            (caps if caps is not None else caps_args(workdir)))


def owned(labels, domain=sdp.DOMAIN):
    return {k: v for k, v in labels.items() if k.startswith(domain + "/")}


def want_labels(want, domain=sdp.DOMAIN):
    return {"%s/%s" % (domain, k): v for k, v in want.items()}


def expected_patch(want, domain=sdp.DOMAIN):
    """The contract's body: every label we own, wanted ones with their value, the rest null."""
    return {"%s/%s" % (domain, k): want.get(k) for k in OWNED}


def wait_labelled(nd, srv, want, domain=sdp.DOMAIN, since=0, log_since=0):
    """Waits for a successful PATCH from request |since| on that leaves our labels as |want|;
    checks its body and the log line; returns the request."""
    wanted = want_labels(want, domain)

    def ok(s):
        for r in s.requests[since:]:
            if r.status == 200 and owned(r.labels, domain) == wanted:
                return r
        return None

    r = srv.wait_for(ok, T(5), "the node labelled %s" % wanted)
    body = r.json["metadata"]["labels"]
    assert body == expected_patch(want, domain), "patch body %s" % body
    nd.daemon.wait_log(lambda l: l.get("level") == "info" and l.get("path") == PATH and
                       "labelled" in l.get("msg", ""), T(3), since=log_since,
                       what="the 'labelled' log line")
    return r


def allocate_works(nd):
    ids = sorted(nd.kubelet.devices(SGX))
    assert ids, "no %s devices advertised" % SGX
    resp = nd.kubelet.allocate(SGX, ids[:1], timeout=T(2))
    assert resp.container_responses[0].devices, "Allocate answered no device"


def warned(nd, *words, since=0, timeout=None):
    """Waits for a warn/error line about the node's path holding every word of |words|."""
    return nd.daemon.wait_log(
        lambda l: l.get("level") in ("warn", "error") and l.get("path") == PATH and
        all(w in l.get("msg", "") for w in words), timeout or T(5), since=since,
        what="a warning with %s" % (words,))


def warnings(nd, *words):
    return [l for l in nd.daemon.lines()
            if l.get("level") in ("warn", "error") and l.get("path") == PATH and
            all(w in l.get("msg", "") for w in words)]


# 10_01: the test API server itself: applies a merge patch, checks the token, path and body;
# a client that does not trust its CA or asks for another name is refused
def test_10_01_fake_apiserver_selftest(api, pki):
    srv = api(labels={"sgx.k8s.io/ias": "true"})
    req = fake_apiserver.h2_request
    body = '{"metadata":{"labels":{"sgx.k8s.io/sgx":"true","sgx.k8s.io/ias":null}}}'
    assert req(srv.port, pki.ca, "token-1", body, PATH)[0] == 200
    assert srv.labels() == {"kubernetes.io/hostname": NODE, "kubernetes.io/os": "linux",
                            "sgx.k8s.io/sgx": "true"}
    assert req(srv.port, pki.ca, "nope", body, PATH)[0] == 401
    assert req(srv.port, pki.ca, "token-1", body, "/api/v1/nodes/other")[0] == 404
    srv.inject(403)
    st, answer = req(srv.port, pki.ca, "token-1", body, PATH)
    assert st == 403 and '"reason": "Forbidden"' in answer
    rs, conns = srv.snapshot()
    assert [r.status for r in rs] == [200, 401, 404, 403]
    assert len(conns) == 4 and all(c.handshake and c.alpn == "h2" for c in conns)
    with pytest.raises(Exception):  # ssl.SSLCertVerificationError
        req(srv.port, pki.other_ca, "token-1", body, PATH)
    with pytest.raises(Exception):
        req(srv.port, pki.ca, "token-1", body, PATH, server_hostname="apiserver.example")
    srv.wait_for(lambda s: sum(c.handshake is False for c in s.connections) == 2, T(2),
                 "two refused handshakes")
    assert len(srv.snapshot()[0]) == 4
    srv.inject(200)  # a rule-breaking request is recorded with its problems
    st, _ = req(srv.port, pki.ca, "token-1", '{"spec":{}}', PATH, content_type="text/plain")
    assert st == 200
    bad = srv.requests.pop()
    assert len(bad.problems) == 2, bad.problems
    srv.inject_close()
    with pytest.raises(RuntimeError):  # closed unanswered
        req(srv.port, pki.ca, "token-1", body, PATH)
    h1 = api(alpn=["http/1.1"])
    with pytest.raises(RuntimeError):
        req(h1.port, pki.ca, "token-1", body, PATH)


# 10_02: on an SGX node our labels are set from the facts, with one PATCH; labels we do not own
# stay
LABEL_CASES = {
    # in-kernel driver, SGX2 CPU, Linux 6.5: everything; EPC from sysfs (64 + 128 MiB)
    "sgx2-inkernel": ("inkernel", dict(), dict(sgx="true", dcap="true", sgx2="true", flc="true",
                                               **{"epc-mib": "192"})),
    # Linux 5.15 has no EDMM: no sgx2 though the CPU has it
    "sgx2-linux5": ("dcap_ias", dict(release="5.15.0-91-generic"),
                    dict(sgx="true", dcap="true", ias="true", flc="true",
                         **{"epc-mib": "192"})),
    # the out-of-tree DCAP driver cannot use SGX2
    "sgx2-oot-driver": ("dcapdriver", dict(), dict(sgx="true", dcap="true", flc="true",
                                                   **{"epc-mib": "192"})),
    # SGX1 without FLC runs isgx only; the kernel shows no sgx flag; EPC from CPUID (96 MiB)
    "sgx1-isgx": ("ias", dict(cpu="sgx1", release="5.15.0-91-generic", flags=FLAGS_NO_SGX,
                              epc_nodes=()), dict(sgx="true", ias="true", **{"epc-mib": "96"})),
    # FLC from the kernel's sgx_lc flag alone; the legacy DCAP node /dev/sgx counts as dcap
    "flc-from-cpuinfo-legacy": ("legacy", dict(cpu="sgx1", epc_nodes=()),
                                dict(sgx="true", dcap="true", flc="true", **{"epc-mib": "96"})),
}


@pytest.mark.parametrize("case", list(LABEL_CASES))
def test_10_02_labels_added(api, pki, node, workdir, case):
    layout, facts, want = LABEL_CASES[case]
    srv = api(labels={"example.com/rack": "r7"})
    nd = node(layout, label_args(workdir, pki, srv, caps=caps_args(workdir, **facts)))
    r = wait_labelled(nd, srv, want)
    assert r.token == "token-1" and r.path == PATH
    assert srv.labels() == dict(want_labels(want), **{
        "kubernetes.io/hostname": NODE, "kubernetes.io/os": "linux", "example.com/rack": "r7"})
    time.sleep(T(0.5))  # nothing changed: no second PATCH before the interval
    assert len(srv.snapshot()[0]) == 1, srv.snapshot()[0]
    allocate_works(nd)


# 10_03: the enclave device vanishing removes our labels (others stay); returning, they are back;
# one PATCH per change
def test_10_03_device_vanishes_and_returns(api, pki, node, workdir):
    srv = api()
    nd = node("inkernel", label_args(workdir, pki, srv))
    want = dict(sgx="true", dcap="true", sgx2="true", flc="true", **{"epc-mib": "192"})
    wait_labelled(nd, srv, want)
    n, mark = len(srv.snapshot()[0]), nd.daemon.mark()
    nd.dev.remove("sgx_enclave")  # the provisioning device alone is no SGX
    wait_labelled(nd, srv, {}, since=n, log_since=mark)
    assert srv.labels() == {"kubernetes.io/hostname": NODE, "kubernetes.io/os": "linux"}
    time.sleep(T(0.3))
    assert len(srv.snapshot()[0]) == n + 1, "PATCHes for one change: %s" % srv.snapshot()[0][n:]
    n, mark = len(srv.snapshot()[0]), nd.daemon.mark()
    nd.dev.mknod("sgx_enclave", *sdp.ENCLAVE)
    wait_labelled(nd, srv, want, since=n, log_since=mark)
    time.sleep(T(0.3))
    assert len(srv.snapshot()[0]) == n + 1, "PATCHes for one change: %s" % srv.snapshot()[0][n:]


# 10_04: a node without an SGX device loses stale labels of ours, keeps everyone else's; also
# a VM whose CPUID claims SGX2 and FLC
def test_10_04_no_sgx_removes_stale_labels(api, pki, node, workdir):
    srv = api(labels={"sgx.k8s.io/sgx": "true", "sgx.k8s.io/epc-mib": "64",
                      "example.com/sgx": "true", "sgx.k8s.io.example.com/x": "y"})
    nd = node("provision_only", label_args(workdir, pki, srv))
    wait_labelled(nd, srv, {})
    assert srv.labels() == {"kubernetes.io/hostname": NODE, "kubernetes.io/os": "linux",
                            "example.com/sgx": "true", "sgx.k8s.io.example.com/x": "y"}


# 10_05: --resource-domain is the labels' prefix; the default domain's labels are not ours then
def test_10_05_resource_domain(api, pki, node, workdir):
    dom = "sgx.example.com"
    srv = api(labels={"sgx.k8s.io/sgx": "true", dom + "/ias": "true"})
    nd = node("inkernel", ["--resource-domain", dom] + label_args(workdir, pki, srv),
              resources=[res(k, dom) for k in sdp.KINDS])
    want = dict(sgx="true", dcap="true", sgx2="true", flc="true", **{"epc-mib": "192"})
    wait_labelled(nd, srv, want, domain=dom)
    assert srv.labels()["sgx.k8s.io/sgx"] == "true"
    assert owned(srv.labels(), dom) == want_labels(want, dom)


# 10_06: the token file is re-read for every request: rotated, the new token is sent; a revoked
# token (401) is logged, and once the file holds a good one again the retry succeeds
def test_10_06_token_rotated(api, pki, node, workdir):
    srv = api(tokens=["token-1"])
    nd = node("inkernel", label_args(workdir, pki, srv, interval="1"))
    want = dict(sgx="true", dcap="true", sgx2="true", flc="true", **{"epc-mib": "192"})
    wait_labelled(nd, srv, want)
    # rotation: the server takes both for a while, the file changes, the old token is revoked
    srv.set_tokens("token-1", "token-2")
    write_token(workdir, "token-2")
    n = len(srv.snapshot()[0])
    srv.wait_for(lambda s: any(r.token == "token-2" and r.status == 200 for r in s.requests[n:]),
                 T(3), "a request with the rotated token")
    srv.set_tokens("token-2")
    n = len(srv.snapshot()[0])
    rs = srv.wait_requests(1, T(3), since=n)
    assert [(r.token, r.status) for r in rs] == [("token-2", 200)] * len(rs)
    # revoked behind our back: 401, logged with the token hint, retried
    mark = nd.daemon.mark()
    srv.set_tokens("token-3")
    warned(nd, "401", "token", "retrying", since=mark)
    allocate_works(nd)
    n = len(srv.snapshot()[0])
    write_token(workdir, "token-3")
    rs = srv.wait_requests(1, T(4), since=n, status=200)
    assert rs[0].token == "token-3"


# 10_07: an API server whose certificate does not chain to --ca-file is refused before any
# request: logged, retried, and the kubelet side keeps serving
@pytest.mark.parametrize("cert,ca", [("other_ca_server", "ca"), ("server", "other_ca")])
def test_10_07_wrong_ca(api, pki, node, workdir, cert, ca):
    srv = api(cert=cert)
    nd = node("inkernel", label_args(workdir, pki, srv, ca=getattr(pki, ca)))
    warned(nd, "certificate", "retrying")
    allocate_works(nd)
    srv.wait_for(lambda s: sum(c.handshake is False for c in s.connections) >= 2, T(4),
                 "a second (retried) handshake, refused")
    rs, conns = srv.snapshot()
    assert rs == [], "requests reached the server: %s" % rs
    assert not any(c.handshake for c in conns), "a handshake completed"
    sdp.poll(lambda: len(warnings(nd, "certificate", "retrying in 2 s")) == 1, T(2),
             "the second failure logged, retrying in 2 s")


def needs_localhost(host):
    """Tests by host name need "localhost" to resolve to 127.0.0.1 (a bare chroot without
    /etc/hosts cannot look names up at all)."""
    if host == "127.0.0.1":
        return
    try:
        addrs = {a[4][0] for a in socket.getaddrinfo(host, None, socket.AF_INET)}
    except OSError:
        addrs = set()
    if "127.0.0.1" not in addrs:
        pytest.skip("%s does not resolve to 127.0.0.1 here (no /etc/hosts?)" % host)


# 10_08: a certificate for another name or address is refused: IP SANs for an IP URL, DNS names
# for a host name URL
@pytest.mark.parametrize("cert,host", [("other_name", "127.0.0.1"), ("dns_only", "127.0.0.1"),
                                       ("ip_only", "localhost")])
def test_10_08_name_mismatch(api, pki, node, workdir, cert, host):
    needs_localhost(host)
    srv = api(cert=cert)
    url = "https://%s:%d" % (host, srv.port)
    nd = node("inkernel", label_args(workdir, pki, srv, url=url))
    warned(nd, "certificate", "retrying")
    rs, conns = srv.snapshot()
    assert rs == [], "requests reached the server: %s" % rs
    assert conns and not any(c.handshake for c in conns), "a handshake completed"


# 10_09: an API server by host name: the certificate's DNS name is what counts
def test_10_09_host_name_url(api, pki, node, workdir):
    needs_localhost("localhost")
    srv = api(cert="dns_only")
    nd = node("ias", label_args(workdir, pki, srv, url="https://localhost:%d" % srv.port))
    wait_labelled(nd, srv, dict(sgx="true", ias="true", flc="true", **{"epc-mib": "192"}))


# 10_10: a server that will not speak HTTP/2 (ALPN http/1.1 only, or no ALPN) is a logged
# error; nothing is sent to it
@pytest.mark.parametrize("alpn", [["http/1.1"], None], ids=["http1.1", "no-alpn"])
def test_10_10_http1_only(api, pki, node, workdir, alpn):
    srv = api(alpn=alpn)
    nd = node("inkernel", label_args(workdir, pki, srv))
    warned(nd, "HTTP/2", "retrying")
    allocate_works(nd)
    srv.wait_for(lambda s: s.connections and all(c.closed for c in s.connections), T(2),
                 "the connection closed by the daemon")
    rs, conns = srv.snapshot()
    assert rs == []
    assert conns[0].handshake and conns[0].alpn is None
    assert conns[0].raw == b"", "the daemon sent %r to a server without h2" % conns[0].raw


# 10_11: HTTP errors are logged with the status, the server's message and a hint, retried after
# 1 s, and the kubelet side keeps answering meanwhile; once the server relents the labels land
HINTS = {401: ["token"], 403: ["RBAC", "patch", "nodes"], 404: ["not found", "--node-name"],
         409: [], 500: []}


@pytest.mark.parametrize("code", sorted(HINTS))
def test_10_11_http_error_retried(api, pki, node, workdir, code):
    srv = api()
    srv.inject(code, count=1000)
    nd = node("inkernel", label_args(workdir, pki, srv))
    line = warned(nd, str(code), "retrying in 1 s", *HINTS[code])
    msg = fake_apiserver.default_message(code, NODE)
    assert msg in line["msg"], "the server's message is not in %r" % line["msg"]
    allocate_works(nd)
    srv.wait_requests(1, T(2), status=code)
    srv.clear_injections()
    wait_labelled(nd, srv, dict(sgx="true", dcap="true", sgx2="true", flc="true",
                                **{"epc-mib": "192"}))
    rs = srv.snapshot()[0]
    assert rs[-1].t - rs[-2].t >= 0.9, "retried after %.2f s, not 1 s" % (rs[-1].t - rs[-2].t)


# 10_12: the backoff doubles: failures 1 s, then 2 s apart
def test_10_12_backoff_doubles(api, pki, node, workdir):
    srv = api()
    srv.inject(500, count=2)
    nd = node("inkernel", label_args(workdir, pki, srv))
    rs = srv.wait_requests(3, T(6))
    assert [r.status for r in rs] == [500, 500, 200]
    gaps = [b.t - a.t for a, b in zip(rs, rs[1:])]
    for got, want in zip(gaps, (1, 2)):
        assert want * 0.9 <= got <= want + T(1), "gaps %s s, want 1, 2" % gaps
    assert warnings(nd, "500", "retrying in 1 s") and warnings(nd, "500", "retrying in 2 s")


# 10_13: a server that accepts and never answers (at the request, or in the TLS handshake):
# --api-timeout ends the attempt, logged and retried; Allocate keeps answering during the hang;
# SIGTERM during a hung request still stops the daemon at once
@pytest.mark.parametrize("stage", ["request", "tls"])
def test_10_13_server_hangs(api, pki, node, workdir, stage):
    srv = api()
    if stage == "request":
        srv.inject_hang(count=1000)
    else:
        srv.hang_tls(count=1000)
    nd = node("inkernel", label_args(workdir, pki, srv, timeout="1"))
    if stage == "request":
        srv.wait_requests(1, T(3))
    else:
        srv.wait_for(lambda s: s.connections, T(3), "a connection")
    allocate_works(nd)  # while the daemon waits on the server
    warned(nd, "within", "retrying", timeout=T(4))
    # the retry hangs too: stop the daemon in the middle of it
    srv.wait_for(lambda s: len(s.connections) >= 2 and not s.connections[-1].closed, T(4),
                 "the retried connection")
    if stage == "request":
        srv.wait_requests(2, T(3))
    allocate_works(nd)
    t0 = time.monotonic()
    rc = nd.stop_daemon()
    took = time.monotonic() - t0
    assert rc == 0, "exit code %r on SIGTERM" % rc
    assert took < T(2), "SIGTERM took %.2f s during a hung request" % took
    srv.wait_for(lambda s: all(c.closed for c in s.connections), T(2),
                 "the daemon's connections closed")
    assert not any(r.status for r in srv.snapshot()[0])


# 10_14: re-assert: a label of ours removed or changed behind our back is put back at the next
# interval, and the interval is kept (no request storm)
def test_10_14_reassert(api, pki, node, workdir):
    srv = api()
    nd = node("inkernel", label_args(workdir, pki, srv, interval="1"))
    want = dict(sgx="true", dcap="true", sgx2="true", flc="true", **{"epc-mib": "192"})
    wait_labelled(nd, srv, want)
    n = len(srv.snapshot()[0])
    srv.set_label("sgx.k8s.io/sgx", None)
    srv.set_label("sgx.k8s.io/epc-mib", "1")
    srv.set_label("sgx.k8s.io/ias", "true")
    wait_labelled(nd, srv, want, since=n)
    rs = srv.wait_requests(n + 2, T(4))
    gaps = [b.t - a.t for a, b in zip(rs, rs[1:])]
    assert all(g >= 0.8 for g in gaps), "re-asserted %s s apart with --label-interval 1" % gaps


# 10_16: a token file that is not there (not mounted yet) is logged with its path and retried;
# nothing is sent without a token; once it appears the labels land
def test_10_16_token_file_missing(api, pki, node, workdir):
    srv = api()
    args = label_args(workdir, pki, srv)
    tf = args[args.index("--token-file") + 1]
    os.unlink(tf)
    nd = node("inkernel", args)
    warned(nd, tf, "retrying")
    allocate_works(nd)
    time.sleep(T(0.3))
    assert srv.snapshot()[0] == [], "a request went out without a token"
    write_token(workdir, "token-1")
    wait_labelled(nd, srv, dict(sgx="true", dcap="true", sgx2="true", flc="true",
                                **{"epc-mib": "192"}))


# 10_17: no API server listening (restarting): "refused", retried; when it is back the labels
# land
def test_10_17_apiserver_down_then_up(api, pki, node, workdir):
    with socket.socket() as s:  # a port nobody listens on (for now)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    nd = node("inkernel", label_args(workdir, pki, None, url="https://127.0.0.1:%d" % port))
    warned(nd, "refused", "retrying")
    allocate_works(nd)
    srv = api(port=port)
    wait_labelled(nd, srv, dict(sgx="true", dcap="true", sgx2="true", flc="true",
                                **{"epc-mib": "192"}))


# 10_18: a server that reads the request and drops the connection unanswered: logged, retried
def test_10_18_connection_dropped(api, pki, node, workdir):
    srv = api()
    srv.inject_close(count=1)
    nd = node("inkernel", label_args(workdir, pki, srv))
    warned(nd, "retrying")
    rs = srv.wait_requests(2, T(4))
    assert rs[0].status is None and rs[1].status == 200
    assert rs[1].t - rs[0].t >= 0.9
    assert len(warnings(nd)) == 1, warnings(nd)


# 10_15: --label-node needs a node name: exit 2 with the reason on the first line
def test_10_15_label_node_needs_name(binary, workdir):
    env = sdp.sanitizer_env()
    env.pop("NODE_NAME", None)
    r = subprocess.run([binary, "--label-node", "--kubelet-dir", workdir, "--dev-root", workdir],
                       capture_output=True, text=True, env=env, timeout=T(10))
    assert r.returncode == 2, r.stderr
    assert r.stdout == ""
    first = r.stderr.splitlines()[0]
    assert "--node-name" in first and "NODE_NAME" in first, first
    env["NODE_NAME"] = "Not_A_Name"
    r = subprocess.run([binary, "--label-node", "--kubelet-dir", workdir, "--dev-root", workdir],
                       capture_output=True, text=True, env=env, timeout=T(10))
    assert r.returncode == 2 and "NODE_NAME" in r.stderr.splitlines()[0], r.stderr
