"""test_17_dra_prepare.py - NodePrepareResources and NodeUnprepareResources through the API server
(issue #12 section 1, prepare): the daemon reads each claim with GET
/apis/resource.k8s.io/v1/namespaces/NS/resourceclaims/NAME on its worker, checks the UID and
takes the results of our driver and pool, answers with the CDI IDs D/sgx=<device>, and
checkpoints what it prepared under --dra-dir. Against the test DRA kubelet and the test API
server.

Cases: an allocated claim (devices, CDI IDs, checkpoint; again from the checkpoint without a
GET; v1beta1), a wrong UID, an unallocated claim, another driver's result, a batch mixing good
and missing claims, a hanging API server (a per-claim error within --api-timeout, Allocate
unaffected), a restart between prepare and unprepare, a bad checkpoint set aside, and
`health --dra` answered while the worker waits on a hanging API server.
"""

import json
import os
import sys

import pytest

import sdp
from sdp import T

from test_10_labels import api, caps_args, pki, write_token  # noqa: F401 (fixtures)

sys.path.insert(0, os.path.join(sdp.REPO, "tests", "kubelet"))

from fake_dra_kubelet import FakeDraKubelet  # noqa: E402

D = sdp.DOMAIN
NODE = "node-1"
UID = "0f6f5a2e-7c1b-4d0e-9a51-3e2b8d1c0a11"


class Env:
    def __init__(self, node, srv, kubelet, dra_dir):
        self.node = node
        self.srv = srv
        self.kubelet = kubelet
        self.checkpoint = os.path.join(dra_dir, "checkpoint.json")

    def prepare(self, claims, **kw):
        kw.setdefault("timeout", T(10))
        return self.kubelet.prepare(D, claims, **kw)

    def unprepare(self, claims, **kw):
        kw.setdefault("timeout", T(10))
        return self.kubelet.unprepare(D, claims, **kw)

    def claim_gets(self):
        return [r for r in self.srv.requests if "/resourceclaims/" in (r.path or "")]

    def checkpointed(self):
        with open(self.checkpoint) as f:
            return {c["uid"]: c for c in json.load(f)["claims"]}


@pytest.fixture
def env(node, api, pki, workdir):
    """A factory: env(layout="inkernel", timeout=T(2)) -> Env with the daemon registered with
    both kubelets."""
    made = []

    def make(layout="inkernel", timeout=None, hang=False, extra=()):
        srv = api(node=NODE)
        if hang:
            srv.inject_hang(1000)
        dra_dir = os.path.join(workdir, "plugins", D)
        k = FakeDraKubelet(os.path.join(workdir, "reg"), driver=D, dial_timeout=T(5))
        k.start()
        made.append(k)
        n = node(layout, args=[
            "--dra", "--node-name", NODE, "--apiserver", srv.url,
            "--token-file", write_token(workdir, "token-1"), "--ca-file", pki.ca,
            "--api-timeout", "%g" % (timeout or T(2)),
            "--plugins-registry", os.path.join(workdir, "reg"), "--dra-dir", dra_dir,
        ] + caps_args(workdir) + list(extra))
        k.wait_registered(D, T(10))
        return Env(n, srv, k, dra_dir)

    yield make
    errors = []
    for k in made:
        k.stop()
        errors += k.errors
    assert not errors, "the DRA kubelet saw protocol errors: %s" % errors


# An allocated claim: one Device per result of ours, with its request, pool, device and CDI ID;
# checkpointed; asked again it is answered from the checkpoint without reading the API server;
# v1beta1 gets the same.
def test_17_40_prepare_allocated(env):
    e = env()
    e.srv.add_claim("team", "sgx-claim", UID, results=[
        ("enclave", D, NODE, "dcap"), ("gpu", "gpu.example.com", NODE, "gpu-0")])
    resp = e.prepare([("team", UID, "sgx-claim")])
    r = resp.claims[UID]
    assert r.error == ""
    assert [(list(d.request_names), d.pool_name, d.device_name, list(d.cdi_device_ids))
            for d in r.devices] == [(["enclave"], NODE, "dcap", [D + "/sgx=dcap"])]
    assert e.checkpointed()[UID]["devices"] == [{"request": "enclave", "pool": NODE,
                                                 "device": "dcap"}]
    gets = len(e.claim_gets())
    assert gets == 1 and e.claim_gets()[0].path == \
        "/apis/resource.k8s.io/v1/namespaces/team/resourceclaims/sgx-claim"
    again = e.prepare([("team", UID, "sgx-claim")], version="v1beta1")
    assert again.claims[UID].SerializeToString() == r.SerializeToString()  # v1beta1: same bytes
    assert len(e.claim_gets()) == gets
    e.node.daemon.wait_log(lambda l: "claim team/sgx-claim (uid %s) prepared" % UID in
                           l.get("msg", ""), T(5))


# Each claim's own error: a wrong UID (deleted and made again), not allocated, only another
# driver's result, not found; the good claim of the same batch is prepared.
def test_17_41_per_claim_errors(env):
    e = env()
    e.srv.add_claim("ns", "remade", "new-uid", results=[("r", D, NODE, "dcap")])
    e.srv.add_claim("ns", "pending", "uid-p", results=[("r", D, NODE, "dcap")], allocated=False)
    e.srv.add_claim("ns", "gpu", "uid-g", results=[("r", "gpu.example.com", NODE, "gpu-0")])
    e.srv.add_claim("ns", "other-node", "uid-o", results=[("r", D, "node-2", "dcap")])
    e.srv.add_claim("ns", "good", "uid-ok", results=[("r", D, NODE, "dcap")])
    resp = e.prepare([("ns", "old-uid", "remade"), ("ns", "uid-p", "pending"),
                      ("ns", "uid-g", "gpu"), ("ns", "uid-o", "other-node"),
                      ("ns", "uid-x", "missing"), ("ns", "uid-ok", "good")])
    errs = {k: v.error for k, v in resp.claims.items()}
    assert "has uid new-uid, not old-uid" in errs["old-uid"]
    assert "is not allocated" in errs["uid-p"]
    assert "no device of driver %s in pool %s (its results: gpu.example.com/%s)" % (
        D, NODE, NODE) in errs["uid-g"]
    assert "its results: %s/node-2" % D in errs["uid-o"]
    assert "HTTP 404" in errs["uid-x"] and "not found" in errs["uid-x"]
    assert errs["uid-ok"] == "" and len(resp.claims["uid-ok"].devices) == 1
    assert all(len(resp.claims[u].devices) == 0 for u in errs if u != "uid-ok")
    assert set(e.checkpointed()) == {"uid-ok"}


# An API server that never answers: the claim's error comes within --api-timeout, well inside
# the kubelet's 45 s, and the device plugin's Allocate answers meanwhile.
def test_17_42_hanging_apiserver(env):
    e = env(timeout=T(1), hang=True)
    import time
    t0 = time.monotonic()
    resp = e.prepare([("ns", "u1", "c1")], timeout=T(10))
    took = time.monotonic() - t0
    assert "did not answer" in resp.claims["u1"].error
    assert took < T(8), took
    ids = sorted(e.node.kubelet.devices(sdp.res("sgx")))
    assert e.node.kubelet.allocate(sdp.res("sgx"), ids[:1], timeout=T(2)).container_responses


# A restart between prepare and unprepare: the checkpoint brings the claim back, prepare answers
# from it even with the API server refusing, unprepare removes it; unknown claims succeed.
def test_17_43_restart_between_prepare_and_unprepare(env):
    e = env()
    e.srv.add_claim("ns", "c", UID, results=[("r", D, NODE, "dcap")])
    first = e.prepare([("ns", UID, "c")]).claims[UID]
    assert first.error == ""
    mark = e.node.daemon.mark()
    e.node.restart_daemon()
    e.node.daemon.wait_log(lambda l: "1 prepared claim(s) from the checkpoint" in
                           l.get("msg", ""), T(5), mark)
    e.kubelet.wait_for(lambda: D in e.kubelet.plugins, T(10), "still registered")
    e.srv.inject(500, count=100)
    assert e.prepare([("ns", UID, "c")]).claims[UID] == first
    resp = e.unprepare([("ns", UID, "c"), ("ns", "never", "x")])
    assert {k: v.error for k, v in resp.claims.items()} == {UID: "", "never": ""}
    assert e.checkpointed() == {}
    e.srv.clear_injections()


# A checkpoint that is not ours is moved aside (logged), and the daemon starts without it.
def test_17_44_bad_checkpoint_set_aside(node, api, pki, workdir):
    srv = api(node=NODE)
    dra_dir = os.path.join(workdir, "plugins", D)
    os.makedirs(dra_dir)
    with open(os.path.join(dra_dir, "checkpoint.json"), "w") as f:
        f.write('{"version": 99}')
    n = node("inkernel", args=[
        "--dra", "--node-name", NODE, "--apiserver", srv.url,
        "--token-file", write_token(workdir, "token-1"), "--ca-file", pki.ca,
        "--plugins-registry", os.path.join(workdir, "reg"), "--dra-dir", dra_dir,
    ] + caps_args(workdir))
    line = n.daemon.wait_log(lambda l: "checkpoint is unreadable" in l.get("msg", ""), T(5))
    assert "not a version 1 checkpoint" in line["msg"]
    assert os.path.exists(os.path.join(dra_dir, "checkpoint.json.bad"))


# A slot of --dra-slots ("dcap-5") is prepared as its class's CDI device.
def test_17_45_slot_device_maps_to_its_class(env):
    e = env()
    e.srv.add_claim("ns", "slot", "uid-s", results=[("r", D, NODE, "dcap-5")])
    r = e.prepare([("ns", "uid-s", "slot")]).claims["uid-s"]
    assert r.error == ""
    assert [(d.device_name, list(d.cdi_device_ids)) for d in r.devices] == \
        [("dcap-5", [D + "/sgx=dcap"])]


def cdi_spec_devices(workdir):
    """The device names of the CDI spec the daemon wrote (the node fixture's --cdi-dir)."""
    path = os.path.join(workdir, "cdi", "%s-sgx.json" % D)
    sdp.poll(lambda: os.path.exists(path), T(5), "the CDI spec %s" % path)
    with open(path) as f:
        spec = json.load(f)
    assert spec["kind"] == D + "/sgx", spec
    return {d["name"]: d for d in spec["devices"]}


# 17_47: --dra writes the CDI spec (no --cdi needed), and every CDI ID a prepare answers resolves
# in it, to the device nodes of its class: with and without the provisioning device
@pytest.mark.parametrize("extra,want", [((), "dcap"), (("--no-provision",), "dcap-noprovision")])
def test_17_47_cdi_ids_resolve_in_the_spec(env, workdir, extra, want):
    e = env(extra=extra)
    e.srv.add_claim("ns", "c", "uid-c", results=[("enclave", D, NODE, "dcap")])
    resp = e.prepare([("ns", "uid-c", "c")])
    ids = [i for d in resp.claims["uid-c"].devices for i in d.cdi_device_ids]
    assert ids == ["%s/sgx=%s" % (D, want)], ids
    devices = cdi_spec_devices(workdir)
    kind, name = ids[0].split("=")
    assert kind == D + "/sgx" and name in devices, (ids, sorted(devices))
    paths = sorted(n["path"] for n in devices[name]["containerEdits"]["deviceNodes"])
    want_paths = ["/dev/sgx/enclave", "/dev/sgx_enclave"]
    if want == "dcap":
        want_paths = sorted(want_paths + ["/dev/sgx/provision", "/dev/sgx_provision"])
    assert paths == want_paths, paths
    # and the device plugin's Allocate still answers with device nodes: --cdi alone decides that
    resp = e.node.kubelet.allocate(sdp.res("dcap"), ["dcap-0"])
    assert resp.container_responses[0].devices and not resp.container_responses[0].cdi_devices


# While the worker waits on a hanging API server, an empty NodeUnprepareResources (what
# `health --dra` asks dra.sock) is answered at once by the loop, not queued behind the prepare:
# the liveness probe does not fail because the API server is slow.
def test_17_46_health_while_the_worker_waits(env, workdir):
    import threading
    import time
    e = env(timeout=T(4), hang=True)
    got = {}
    t = threading.Thread(target=lambda: got.update(
        resp=e.prepare([("ns", "u1", "c1")], timeout=T(15))))
    t.start()
    try:
        deadline = time.monotonic() + T(5)
        while not e.claim_gets() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert e.claim_gets(), "the worker never asked the API server"
        t0 = time.monotonic()
        r = sdp.run_cli(["health", "--kubelet-dir", e.node.kdir, "--dra",
                         "--plugins-registry=" + os.path.join(workdir, "reg"),
                         "--dra-dir=" + os.path.dirname(e.checkpoint), "--timeout=1"])
        took = time.monotonic() - t0
        assert r.returncode == 0, r.stdout + r.stderr
        assert "dra-plugin " in r.stdout and took < T(2), (took, r.stdout)
        assert t.is_alive(), "the prepare was answered before health ran: nothing was proven"
        assert len(e.unprepare([]).claims) == 0
    finally:
        t.join(T(20))
    assert "did not answer" in got["resp"].claims["u1"].error
