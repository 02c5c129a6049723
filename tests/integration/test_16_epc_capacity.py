"""test_16_epc_capacity.py - EPC as a schedulable resource (issue #11 sections 1, 2 and 4): with
--epc-resource the daemon publishes <domain>/epc (bytes: the kernel's per-NUMA-node total from a
fake --sys-root) in the node's status.capacity through PATCH /api/v1/nodes/NAME/status, against
the test API server (tests/apiserver/fake_apiserver.py) and the test kubelet.

Cases: set on start; nothing re-sent while the devices stay; removed (null) when the enclave
device vanishes and back when it returns; a kubelet restart re-asserts it; --compat intel also
publishes sgx.intel.com/epc and labels sgx.intel.com/capable=true; 403 on nodes/status logged
naming the RBAC rule, and other HTTP errors and a hang logged and retried while Allocate answers
and the labels land; --epc-resource without a node name is exit 2.
"""

import os
import subprocess
import sys
import time

import pytest

import sdp
from sdp import T, res

sys.path.insert(0, os.path.join(sdp.REPO, "tests", "apiserver"))

from fake_apiserver import DEFAULT_CAPACITY, MERGE_PATCH  # noqa: E402
from test_10_labels import (api, caps_args, pki, wait_labelled, write_token,  # noqa: E402,F401
                            allocate_works)

NODE = "node-1"
PATH = "/api/v1/nodes/" + NODE
STATUS = PATH + "/status"
MIB = 1 << 20
EPC = res("epc")
INTEL_EPC = "sgx.intel.com/epc"
EPC_BYTES = str((64 + 128) * MIB)  # caps_args' two NUMA nodes
ALL_LABELS = dict(sgx="true", dcap="true", sgx2="true", flc="true", **{"epc-mib": "192"})


def epc_args(workdir, pki, srv, labels=False, timeout=None, interval="600", extra=()):
    """The daemon's flags for publishing the EPC of NODE through |srv| (and labelling it)."""
    return ((["--label-node"] if labels else []) +
            ["--epc-resource", "--node-name", NODE, "--apiserver", srv.url,
             "--token-file", write_token(workdir, "token-1"), "--ca-file", pki.ca,
             "--api-timeout", timeout or "%g" % T(2), "--label-interval", interval] +
            caps_args(workdir) + list(extra))


def status_requests(srv, since=0):
    return [r for r in srv.snapshot()[0][since:] if r.status_path]


def wait_capacity(nd, srv, want, since=0, log_since=0):
    """Waits for a successful status PATCH from request |since| on that leaves our capacity
    keys as |want| ({key: value}; a None value: absent); checks its body (a merge patch of
    status.capacity alone) and the log line; returns the request."""

    def ok(s):
        for r in s.requests[since:]:
            if r.status == 200 and r.status_path and all(
                    r.capacity.get(k) == v for k, v in want.items()):
                return r
        return None

    r = srv.wait_for(ok, T(5), "the node's capacity %s" % want)
    assert r.headers.get("content-type") == MERGE_PATCH
    assert r.json == {"status": {"capacity": want}}, "patch body %s" % r.json
    nd.daemon.wait_log(lambda l: l.get("level") == "info" and l.get("path") == STATUS and
                       "capacity" in l.get("msg", ""), T(3), since=log_since,
                       what="the capacity log line")
    return r


def warned(nd, *words, since=0, timeout=None):
    """Waits for a warn/error line about the status path holding every word of |words|."""
    return nd.daemon.wait_log(
        lambda l: l.get("level") in ("warn", "error") and l.get("path") == STATUS and
        all(w in l.get("msg", "") for w in words), timeout or T(5), since=since,
        what="a warning with %s" % (words,))


# 16_01: on start the node's EPC (the kernel's total over NUMA nodes) is set in status.capacity
# as a plain integer string, once; the node's other capacity stays; without --label-node no
# label is touched
def test_16_01_set_on_start(api, pki, node, workdir):
    srv = api()
    nd = node("inkernel", epc_args(workdir, pki, srv))
    r = wait_capacity(nd, srv, {EPC: EPC_BYTES})
    assert r.token == "token-1" and r.path == STATUS
    assert srv.capacity() == dict(DEFAULT_CAPACITY, **{EPC: EPC_BYTES})
    time.sleep(T(0.5))
    rs = srv.snapshot()[0]
    assert len(rs) == 1, "requests: %s" % rs
    assert srv.labels() == {"kubernetes.io/hostname": NODE, "kubernetes.io/os": "linux"}
    allocate_works(nd)


# 16_02: the devices staying as they are (a rescan, an unrelated file in the dev root) send
# nothing; with --label-node the labels and the capacity go out once each
def test_16_02_unchanged_when_devices_stay(api, pki, node, workdir):
    srv = api()
    nd = node("inkernel", epc_args(workdir, pki, srv, labels=True))
    wait_capacity(nd, srv, {EPC: EPC_BYTES})
    wait_labelled(nd, srv, ALL_LABELS)
    n = len(srv.snapshot()[0])
    assert n == 2, srv.snapshot()[0]
    nd.dev.mkfile("not-sgx")
    time.sleep(T(0.5))
    assert len(srv.snapshot()[0]) == n, "re-sent: %s" % srv.snapshot()[0][n:]


# 16_03: the enclave device vanishing removes our capacity key (null in the merge patch), its
# return sets it again; one status PATCH per change
def test_16_03_removed_and_back(api, pki, node, workdir):
    srv = api()
    nd = node("inkernel", epc_args(workdir, pki, srv))
    wait_capacity(nd, srv, {EPC: EPC_BYTES})
    n, mark = len(srv.snapshot()[0]), nd.daemon.mark()
    nd.dev.remove("sgx_enclave")
    wait_capacity(nd, srv, {EPC: None}, since=n, log_since=mark)
    assert srv.capacity() == DEFAULT_CAPACITY
    time.sleep(T(0.3))
    assert len(srv.snapshot()[0]) == n + 1, "PATCHes for one change: %s" % srv.snapshot()[0][n:]
    n, mark = len(srv.snapshot()[0]), nd.daemon.mark()
    nd.dev.mknod("sgx_enclave", *sdp.ENCLAVE)
    wait_capacity(nd, srv, {EPC: EPC_BYTES}, since=n, log_since=mark)
    time.sleep(T(0.3))
    assert len(srv.snapshot()[0]) == n + 1, "PATCHes for one change: %s" % srv.snapshot()[0][n:]


# 16_04: a restarted kubelet may reset extended capacity: with the capacity cleared on the API
# server, a kubelet restart makes the daemon send it again (long before the 600 s interval),
# once; the labels are not re-sent
def test_16_04_kubelet_restart_reasserts(api, pki, node, workdir):
    srv = api()
    nd = node("inkernel", epc_args(workdir, pki, srv, labels=True))
    wait_capacity(nd, srv, {EPC: EPC_BYTES})
    wait_labelled(nd, srv, ALL_LABELS)
    time.sleep(T(0.3))
    n = len(srv.snapshot()[0])
    srv.set_capacity(EPC, None)  # what a restarted kubelet does to extended capacity
    nd.kubelet.restart()
    nd.wait_registered()
    srv.wait_for(lambda s: s.capacity().get(EPC) == EPC_BYTES, T(5),
                 "the capacity re-sent after the kubelet restart")
    time.sleep(T(0.3))
    rs = srv.snapshot()[0][n:]
    assert len(rs) == 1 and rs[0].status_path and rs[0].status == 200, rs
    allocate_works(nd)


# 16_05: --compat intel: sgx.intel.com/epc beside <domain>/epc with the same bytes, and the label
# sgx.intel.com/capable=true beside ours; both removed when the enclave device vanishes
def test_16_05_compat_intel(api, pki, node, workdir):
    srv = api(labels={"sgx.intel.com/sgx": "true"})  # not ours: left alone
    resources = list(sdp.RESOURCES) + ["sgx.intel.com/enclave", "sgx.intel.com/provision"]
    nd = node("inkernel", epc_args(workdir, pki, srv, labels=True, extra=["--compat", "intel"]),
              resources=resources)
    wait_capacity(nd, srv, {EPC: EPC_BYTES, INTEL_EPC: EPC_BYTES})
    srv.wait_for(lambda s: s.labels().get("sgx.intel.com/capable") == "true", T(5),
                 "the sgx.intel.com/capable label")
    labels = srv.labels()
    assert labels["sgx.intel.com/sgx"] == "true"
    assert labels["sgx.k8s.io/sgx"] == "true"
    n, mark = len(srv.snapshot()[0]), nd.daemon.mark()
    nd.dev.remove("sgx_enclave")
    wait_capacity(nd, srv, {EPC: None, INTEL_EPC: None}, since=n, log_since=mark)
    srv.wait_for(lambda s: "sgx.intel.com/capable" not in s.labels(), T(5),
                 "the sgx.intel.com/capable label removed")
    assert srv.labels()["sgx.intel.com/sgx"] == "true"
    assert srv.capacity() == DEFAULT_CAPACITY


# 16_06: a 403 on nodes/status is logged with the server's message and the RBAC rule to add
# (nodes/status, patch), retried after 1 s; Allocate answers and the labels land meanwhile;
# once the server relents the capacity lands too
def test_16_06_status_403_names_the_rbac_rule(api, pki, node, workdir):
    srv = api()
    srv.inject(403, count=1000, target="status")
    nd = node("inkernel", epc_args(workdir, pki, srv, labels=True))
    line = warned(nd, "403", "retrying in 1 s", "nodes/status", "patch", "RBAC")
    assert 'cannot patch resource \\"nodes/status\\"' in line["msg"] or \
        'cannot patch resource "nodes/status"' in line["msg"], line["msg"]
    wait_labelled(nd, srv, ALL_LABELS)
    allocate_works(nd)
    srv.wait_for(lambda s: len([r for r in s.requests if r.status_path]) >= 2, T(4),
                 "the status PATCH retried")
    n_labels = len([r for r in srv.snapshot()[0] if not r.status_path])
    srv.clear_injections()
    wait_capacity(nd, srv, {EPC: EPC_BYTES})
    # the labels, sent once, were not re-sent with each status retry
    assert len([r for r in srv.snapshot()[0] if not r.status_path]) == n_labels == 1


# 16_07: other HTTP errors of the status path are logged with their status and hint, retried,
# and the kubelet side keeps answering
HINTS = {401: ["token"], 404: ["not found", "--node-name"], 409: ["conflict"],
         422: ["invalid"], 500: ["failed"]}


@pytest.mark.parametrize("code", sorted(HINTS))
def test_16_07_http_error_retried(api, pki, node, workdir, code):
    srv = api()
    srv.inject(code, count=2, target="status")
    nd = node("inkernel", epc_args(workdir, pki, srv))
    warned(nd, str(code), "retrying in 1 s", *HINTS[code])
    allocate_works(nd)
    wait_capacity(nd, srv, {EPC: EPC_BYTES})
    rs = status_requests(srv)
    assert [r.status for r in rs] == [code, code, 200]


# 16_08: a status PATCH that is never answered ends at --api-timeout, logged and retried;
# Allocate answers during the hang; SIGTERM during the hung request still stops at once
def test_16_08_hang_times_out(api, pki, node, workdir):
    srv = api()
    srv.inject_hang(count=1000, target="status")
    nd = node("inkernel", epc_args(workdir, pki, srv, timeout="1"))
    srv.wait_requests(1, T(3))
    allocate_works(nd)
    warned(nd, "within", "retrying", timeout=T(4))
    srv.wait_requests(2, T(4))
    allocate_works(nd)
    t0 = time.monotonic()
    assert nd.stop_daemon() == 0
    assert time.monotonic() - t0 < T(2), "SIGTERM took too long during a hung request"
    assert EPC not in srv.capacity()


# 16_09: --epc-resource needs a node name: exit 2 naming the flag on the first line
def test_16_09_needs_node_name(binary, workdir):
    env = sdp.sanitizer_env()
    env.pop("NODE_NAME", None)
    r = subprocess.run([binary, "--epc-resource", "--kubelet-dir", workdir, "--dev-root",
                        workdir], capture_output=True, text=True, env=env, timeout=T(10))
    assert r.returncode == 2, r.stderr
    assert r.stdout == ""
    first = r.stderr.splitlines()[0]
    assert "--epc-resource" in first and "--node-name" in first and "NODE_NAME" in first, first
