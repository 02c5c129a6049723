"""test_11_sgx_only.py - SGX devices and nothing else (issue 10): a name of an SGX device that
leads to /dev/mem, to a node with other numbers, or through links to a misc device outside the SGX
names, and a node the kernel (sysfs uevent) names otherwise, are refused: not advertised, not
mapped, one warn line each naming the path, the target, major:minor and the reason, listed by
probe with a "refused" verdict. The layouts the plugin always knew are untouched."""

import json
import os
import time

import grpc
import pytest

import sdp
from sdp import T, res

SGX, DCAP, IAS = res("sgx"), res("dcap"), res("ias")

# layout -> {path: (target, "MAJ:MIN", reason)}
REFUSED = {
    "mem_link": {"/dev/sgx_enclave": ("/dev/mem", "1:1", "not-misc")},
    "mem_dirlink": {"/dev/sgx/enclave": ("/dev/mem", "1:1", "not-misc")},
    "mem_numbers": {"/dev/sgx_enclave": ("/dev/sgx_enclave", "1:1", "not-misc")},
    "chain_outside": {"/dev/sgx_enclave": ("/dev/watchdog", "10:130", "not-sgx-name"),
                      "/dev/sgx/enclave": ("/dev/watchdog", "10:130", "not-sgx-name")},
}


def refusals(nd, since=0):
    return [l for l in nd.daemon.lines()[since:]
            if l.get("level") == "warn" and "refusing" in l.get("msg", "")]


def probe_json(dev_root, *args):
    r = sdp.run_cli(["probe", "--json", "--dev-root", dev_root] + list(args))
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def fake_sys(workdir, devnames):
    """A sys root whose dev/char/MAJ:MIN/uevent names each device as |devnames| says."""
    sys_root = os.path.join(workdir, "sys")
    for (maj, mnr), name in devnames.items():
        d = os.path.join(sys_root, "dev", "char", "%d:%d" % (maj, mnr))
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "uevent"), "w") as f:
            f.write("MAJOR=%d\nMINOR=%d\nDEVNAME=%s\n" % (maj, mnr, name))
    return sys_root


# 11_01: /dev/mem behind sgx_enclave, behind sgx/enclave, as sgx_enclave's numbers, and a chain
# that ends on another misc device: nothing advertised or mapped, one warn line per name
@pytest.mark.parametrize("layout", sorted(REFUSED))
def test_11_01_not_sgx_refused(node, layout):
    nd = node(layout)
    for r in (SGX, DCAP, IAS):
        assert nd.kubelet.capacity(r) == 0, "%s advertises %d devices over %s" % (
            r, nd.kubelet.capacity(r), layout)
    with pytest.raises(grpc.RpcError):
        nd.kubelet.allocate(SGX, ["sgx-0"])
    want = REFUSED[layout]
    nd.daemon.wait_log(lambda l: "SGX capability: refused" in l.get("msg", ""), T(3),
                       what="the refused verdict")
    lines = refusals(nd)
    assert sorted(l["path"] for l in lines) == sorted(want), lines
    for l in lines:
        target, num, reason = want[l["path"]]
        assert "target=%s dev=%s reason=%s" % (target, num, reason) in l["msg"], l
        assert "not advertised or mapped" in l["msg"], l


# 11_02: probe lists the refused nodes with the reason (text and JSON); the verdict says refused
@pytest.mark.parametrize("layout", sorted(REFUSED))
def test_11_02_probe_lists_refused(devtree, layout):
    t = devtree(layout)
    j = probe_json(t.root)
    got = {x["path"]: (x["target"], "%d:%d" % (x["major"], x["minor"]), x["reason"])
           for x in j["refused"]}
    assert got == REFUSED[layout]
    assert j["in_use"]["dcap_enclave"] is None
    assert all(r["allocate"] is None and r["count"] == 0 for r in j["resources"])
    assert j["capabilities"]["verdict"] == "refused", j["capabilities"]["verdict_line"]
    r = sdp.run_cli(["probe", "--dev-root", t.root])
    assert "refused device nodes (not SGX: never advertised or mapped):" in r.stdout
    assert "\nverdict: refused - not usable: SGX refused: " in r.stdout
    assert "Allocate" not in r.stdout


# 11_03: the kernel names 10:125 "watchdog": the in-kernel layout's enclave node is refused,
# its provisioning node (named sgx_provision by the kernel) is fine but alone no SGX
def test_11_03_uevent_names_another_device(node, workdir):
    sys_root = fake_sys(workdir, {sdp.ENCLAVE: "watchdog", sdp.PROVISION: "sgx_provision"})
    nd = node("inkernel", args=["--sys-root", sys_root])
    assert nd.kubelet.capacity(DCAP) == 0 and nd.kubelet.capacity(SGX) == 0
    lines = refusals(nd)
    assert len(lines) == 1 and lines[0]["path"] == "/dev/sgx_enclave", lines
    assert "dev=10:125 reason=kernel-name" in lines[0]["msg"] and '"watchdog"' in lines[0]["msg"]
    j = probe_json(nd.dev.root, "--sys-root", sys_root)
    assert [(x["path"], x["kernel_name"], x["reason"]) for x in j["refused"]] == [
        ("/dev/sgx_enclave", "watchdog", "kernel-name")]


# 11_04: the warning is logged when the refusals change, not on every rescan; fixing the node
# brings SGX back without a restart
def test_11_04_logged_once_then_fixed(node):
    nd = node("mem_link")
    assert len(refusals(nd)) == 1
    mark = nd.daemon.mark()
    for i in range(3):  # rescans: the dev root changes, the refusal does not
        nd.dev.mkfile("unrelated%d" % i)
    nd.dev.mknod("tty9", 4, 9)
    time.sleep(0.5)  # the rescans the events cause
    assert refusals(nd, mark) == []
    nd.dev.remove("sgx_enclave")
    nd.dev.mknod("sgx_enclave", *sdp.ENCLAVE)
    nd.wait_devices(DCAP, 110, 110, timeout=T(3))
    assert nd.kubelet.allocate(DCAP, ["dcap-0"]) is not None
    assert refusals(nd, mark) == []


# 11_05: the layouts the plugin always knew refuse nothing
@pytest.mark.parametrize("layout", [l for l in sorted(sdp.LAYOUTS) if l not in REFUSED])
def test_11_05_known_layouts_refuse_nothing(devtree, layout):
    t = devtree(layout)
    j = probe_json(t.root)
    assert j["refused"] == [], j["refused"]
    assert j["capabilities"]["verdict"] != "refused"
