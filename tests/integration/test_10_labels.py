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
import subprocess
import sys
import tempfile
import time  # noqa: F401 (used by the daemon cases)

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


def label_args(workdir, pki, srv, ca=None, token="token-1", timeout="2", interval="600",
               url=None, caps=None, node_name=NODE):
    """The daemon's flags for labelling |node_name| through |srv|."""
    return (["--label-node", "--node-name", node_name, "--apiserver", url or srv.url,
             "--token-file", write_token(workdir, token), "--ca-file", ca or pki.ca,
             "--api-timeout", timeout, "--label-interval", interval] +
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
    h1 = api(alpn=["http/1.1"])
    with pytest.raises(RuntimeError):
        req(h1.port, pki.ca, "token-1", body, PATH)


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
