"""test_17_dra_slices.py - the API side of the DRA driver (issue #12 section 2): with --dra the
node's pool is published as one resource.k8s.io/v1 ResourceSlice, against the test API server
in tests/apiserver/fake_apiserver.py (which keeps the slices and validates each write the way
the API server's v1 validation does, check_slice()).

Cases: the slice on every device layout (devices, attributes, capacity, owner, name, pool), the
empty pool's slice, hotplug updating the slice in place with pool.generation bumped, extra slices
of ours deleted with preconditions while another driver's stay, someone else's change undone on
re-assert, 403 logged with the RBAC rule and retried, and the kubelet's path unaffected by an API
server that does not answer.
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
MIB = 1 << 20
EPC = 192 * MIB  # the sys root of caps_args(): 64 + 128 MiB


def dra_args(workdir, pki, srv, interval="600", extra=()):
    return (["--dra", "--node-name", NODE, "--apiserver", srv.url,
             "--token-file", write_token(workdir, "token-1"), "--ca-file", pki.ca,
             "--api-timeout", "%g" % T(2), "--label-interval", interval,
             "--plugins-registry", os.path.join(workdir, "reg"),
             "--dra-dir", os.path.join(workdir, "plugins", D)] + caps_args(workdir) + list(extra))


def wait_slice(srv, pred, what, timeout=None):
    """Waits until our slices satisfy pred(list of slices); returns the list."""
    return srv.wait_for(lambda s: (lambda l: l if pred(l) else None)(srv_slices(s)),
                        timeout or T(10), what)


def srv_slices(s):
    return [o for n, o in sorted(s.slices.items())
            if o["spec"].get("driver") == D and o["spec"].get("nodeName") == NODE]


def one_slice(srv, devices, what=None, timeout=None):
    """Waits for exactly one slice of ours holding |devices| (names); returns it."""
    sl = wait_slice(srv, lambda l: len(l) == 1 and sorted(
        d["name"] for d in l[0]["spec"].get("devices") or []) == sorted(devices),
        what or "one ResourceSlice with devices %s" % devices, timeout)
    return sl[0]


def attrs(dev):
    return {k[len(D) + 1:]: next(iter(v.values())) for k, v in dev["attributes"].items()}


LAYOUTS = {
    # layout: {device: (driver attribute, provisioning)}
    "inkernel": {"dcap": ("in-kernel", True)},
    "dcapdriver": {"dcap": ("dcap", True)},
    "sgxdir": {"dcap": ("dcap", False)},
    "legacy": {"dcap": ("legacy-dcap", True)},
    "ias": {"ias": ("ias", False)},
    "dcap_ias": {"dcap": ("in-kernel", True), "ias": ("ias", False)},
    "none": {},
}


# The slice on every device layout: one device per enclave class, shared, with its EPC capacity
# and the SGX facts as attributes; owned by the Node; generateName <node>-D-; pool = node.
@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_17_20_slice_per_layout(node, api, pki, workdir, layout):
    srv = api(node=NODE)
    n = node(layout, args=dra_args(workdir, pki, srv), wait=False)
    want = LAYOUTS[layout]
    sl = one_slice(srv, list(want))
    md, spec = sl["metadata"], sl["spec"]
    assert md["generateName"] == "%s-%s-" % (NODE, D)
    assert md["name"].startswith(md["generateName"])
    assert md["ownerReferences"] == [{"apiVersion": "v1", "kind": "Node", "name": NODE,
                                      "uid": srv.node_uid, "controller": True}]
    assert spec["driver"] == D and spec["nodeName"] == NODE
    assert spec["pool"] == {"name": NODE, "generation": 1, "resourceSliceCount": 1}
    edmm = any(v[0] == "in-kernel" for v in want.values())  # SGX2 usable: a node-wide fact
    for dev in spec.get("devices") or []:
        drv, prov = want[dev["name"]]
        assert dev["allowMultipleAllocations"] is True
        assert dev["capacity"] == {"epc": {"value": str(EPC), "requestPolicy": {
            "default": "0", "validRange": {"min": "0"}}}}
        assert attrs(dev) == {"driver": drv, "sgx1": True, "sgx2": True, "flc": True,
                              "edmm": edmm, "provisioning": prov,
                              "epcBytes": EPC, "kernel": "6.5.0",
                              "kernelRelease": "6.5.0-18-generic"}
        assert set(next(iter(v)) for v in dev["attributes"].values()) <= {
            "string", "bool", "int", "version"}
        assert dev["attributes"][D + "/kernel"] == {"version": "6.5.0"}
        assert dev["attributes"][D + "/epcBytes"] == {"int": EPC}
    n.daemon.wait_log(lambda l: "created ResourceSlice" in l.get("msg", ""), T(5))
    # the list is by field selector; nothing but our node's slices is asked for
    lists = [r for r in srv.requests if r.method == "GET" and "resourceslices" in r.path]
    assert lists and all("fieldSelector=spec.driver%3D" + D + "%2Cspec.nodeName%3D" + NODE
                         in r.path for r in lists)


# Hotplug: a device that goes or comes updates the same slice in place, generation bumped; the
# last device gone leaves the pool's one slice, empty.
def test_17_21_hotplug_updates_in_place(node, api, pki, workdir):
    srv = api(node=NODE)
    n = node("dcap_ias", args=dra_args(workdir, pki, srv), wait=False)
    first = one_slice(srv, ["dcap", "ias"])
    name = first["metadata"]["name"]
    n.dev.remove("isgx")
    sl = one_slice(srv, ["dcap"], "the ias device gone from the slice")
    assert sl["metadata"]["name"] == name and sl["metadata"]["uid"] == first["metadata"]["uid"]
    assert sl["spec"]["pool"]["generation"] == 2
    for f in ("sgx_enclave", "sgx_provision"):
        n.dev.remove(f)
    sl = one_slice(srv, [], "the empty pool's slice")
    assert sl["metadata"]["name"] == name and sl["spec"]["pool"]["generation"] == 3
    n.dev.mknod("isgx", *sdp.ISGX)
    sl = one_slice(srv, ["ias"], "the ias device back")
    assert sl["spec"]["pool"]["generation"] == 4
    assert [h[1] for h in srv.slice_history] == ["create", "update", "update", "update"]
    n.daemon.wait_log(lambda l: "updated ResourceSlice %s" % name in l.get("msg", "") and
                      "generation 4" in l.get("msg", ""), T(5))


# Extra slices of ours are deleted with uid and resourceVersion preconditions (the first by
# name kept and updated, its generation above every other); another driver's slice stays.
def test_17_22_extra_slices_deleted(node, api, pki, workdir):
    srv = api(node=NODE)

    def stale(name, gen):
        return {"apiVersion": "resource.k8s.io/v1", "kind": "ResourceSlice",
                "metadata": {"name": name},
                "spec": {"driver": D, "nodeName": NODE, "devices": [],
                         "pool": {"name": NODE, "generation": gen, "resourceSliceCount": 2}}}

    a = srv.add_slice(stale("%s-%s-aaaaa" % (NODE, D), 7))
    b = srv.add_slice(stale("%s-%s-bbbbb" % (NODE, D), 7))
    other = srv.add_slice({"apiVersion": "resource.k8s.io/v1", "kind": "ResourceSlice",
                           "metadata": {"name": "gpu-slice"},
                           "spec": {"driver": "gpu.example.com", "nodeName": NODE, "devices": [],
                                    "pool": {"name": NODE, "generation": 1,
                                             "resourceSliceCount": 1}}})
    node("inkernel", args=dra_args(workdir, pki, srv), wait=False)
    sl = one_slice(srv, ["dcap"])
    assert sl["metadata"]["name"] == a["metadata"]["name"]
    assert sl["spec"]["pool"] == {"name": NODE, "generation": 8, "resourceSliceCount": 1}
    deletes = [r for r in srv.requests if r.method == "DELETE"]
    assert len(deletes) == 1 and deletes[0].status == 200
    assert deletes[0].preconditions == {"uid": b["metadata"]["uid"],
                                        "resourceVersion": b["metadata"]["resourceVersion"]}
    assert srv.our_slices("gpu.example.com") == [other]


# Someone else's change to our slice is undone on the next re-assert; an unchanged slice is
# left alone (no write, no generation bump).
def test_17_23_reassert(node, api, pki, workdir):
    srv = api(node=NODE)
    n = node("inkernel", args=dra_args(workdir, pki, srv, interval="0.3"), wait=False)
    sl = one_slice(srv, ["dcap"])
    mark = len(srv.requests)
    srv.wait_for(lambda s: sum(1 for r in s.requests[mark:] if r.method == "GET" and
                               "resourceslices" in r.path) >= 2, T(5), "two re-asserts")
    assert [h[1] for h in srv.slice_history] == ["create"]
    with srv.cond:
        obj = srv.slices[sl["metadata"]["name"]]
        obj["spec"]["devices"][0]["attributes"][D + "/sgx2"] = {"bool": False}
        srv._store_slice(obj, "update")
    sl = wait_slice(srv, lambda l: len(l) == 1 and l[0]["spec"]["devices"][0]["attributes"][
        D + "/sgx2"] == {"bool": True}, "the change undone")[0]
    assert sl["spec"]["pool"]["generation"] == 2
    assert n.daemon.alive()


# 403 on resourceslices: logged with the RBAC rule to add, retried, published once allowed;
# the kubelet's paths (Allocate, DRA registration) never wait for it.
def test_17_24_forbidden_names_rbac(node, api, pki, workdir):
    srv = api(node=NODE)
    srv.rbac_deny_slices = True
    dk = FakeDraKubelet(os.path.join(workdir, "reg"), driver=D, dial_timeout=T(5))
    dk.start()
    try:
        n = node("inkernel", args=dra_args(workdir, pki, srv))
        line = n.daemon.wait_log(lambda l: l.get("level") == "warn" and
                                 "HTTP 403" in l.get("msg", ""), T(10), what="the 403 warning")
        assert 'apiGroups [\\"resource.k8s.io\\"]' in json.dumps(line["msg"]) or \
            'apiGroups ["resource.k8s.io"]' in line["msg"]
        assert "resourceslices" in line["msg"] and "retrying in" in line["msg"]
        dk.wait_registered(D, T(10))
        ids = sorted(n.kubelet.devices(sdp.res("sgx")))
        assert n.kubelet.allocate(sdp.res("sgx"), ids[:1], timeout=T(2)).container_responses
        srv.rbac_deny_slices = False
        one_slice(srv, ["dcap"], timeout=T(15))
    finally:
        dk.stop()
    assert dk.errors == []


# An API server that never answers: registration answers at once, prepare answers within
# --api-timeout with the claim's error, and the daemon stops promptly (requests cancelled).
def test_17_25_hanging_apiserver(node, api, pki, workdir):
    srv = api(node=NODE)
    srv.inject_hang(100)
    dk = FakeDraKubelet(os.path.join(workdir, "reg"), driver=D, dial_timeout=T(5))
    dk.start()
    try:
        n = node("inkernel", args=dra_args(workdir, pki, srv))
        dk.wait_registered(D, T(10))
        resp = dk.prepare(D, [("ns", "u1", "c")], timeout=T(10))
        assert "did not answer" in resp.claims["u1"].error, resp.claims["u1"].error
        srv.wait_requests(1, T(5))
        assert n.stop_daemon() == 0
    finally:
        dk.stop()


# --dra-slots: --max-pods exclusive devices per class, 128 per slice, every slice of the pool of
# one generation with resourceSliceCount; a device gone re-cuts the pool (generation bumped on
# every slice, the extra ones deleted).
def test_17_26_slots(node, api, pki, workdir):
    srv = api(node=NODE)
    n = node("dcap_ias", args=dra_args(workdir, pki, srv, extra=["--dra-slots", "--max-pods",
                                                                  "200"]), wait=False)

    def cut(count, gen):
        def ok(l):
            return (len(l) == count and all(
                x["spec"]["pool"] == {"name": NODE, "generation": gen,
                                      "resourceSliceCount": count} for x in l))
        return wait_slice(srv, ok, "%d slices of generation %d" % (count, gen))

    sl = cut(4, 1)  # 400 devices
    names = [d["name"] for x in sl for d in x["spec"]["devices"]]
    assert sorted(len(x["spec"]["devices"]) for x in sl) == [16, 128, 128, 128]
    assert sorted(names) == sorted(["dcap-%d" % i for i in range(200)] +
                                   ["ias-%d" % i for i in range(200)])
    dev = sl[0]["spec"]["devices"][0]
    assert "allowMultipleAllocations" not in dev
    assert dev["capacity"] == {"epc": {"value": str(EPC)}}
    assert attrs(dev)["epcBytes"] == EPC
    kept = sorted(x["metadata"]["name"] for x in sl)[:2]
    n.dev.remove("isgx")
    sl = cut(2, 2)  # 200 devices
    assert sorted(x["metadata"]["name"] for x in sl) == kept
    assert sorted(d["name"] for x in sl for d in x["spec"]["devices"]) == \
        sorted("dcap-%d" % i for i in range(200))
    assert sum(1 for r in srv.requests if r.method == "DELETE" and r.status == 200) == 2
    r = sdp.run_cli(["--dra", "--node-name", NODE, "--dra-slots", "--max-pods", "513"])
    assert r.returncode != 0 and "--dra-slots: at most 512 devices per class" in r.stderr
