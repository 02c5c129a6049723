"""test_13_cdi.py - CDI (issue #11 section 3): with --cdi the daemon writes a CDI spec (cdiVersion
0.5.0, kind D/sgx, one device per mapping with its device nodes) to --cdi-dir on start, rewrites it
when devices come and go and removes it when none is left, answers Allocate with cdi_devices
(D/sgx=<device>) instead of DeviceSpecs, removes the spec on SIGTERM only while it is still ours,
and keeps serving when the directory cannot be written."""

import json
import os
import stat

import pytest

import sdp
from sdp import T, res

SGX, DCAP, IAS, PROV = (res(k) for k in ("sgx", "dcap", "ias", "provision"))
SPEC_NAME = "sgx.k8s.io-sgx.json"


def node_(path, host, majmin):
    return {"path": path, "hostPath": host, "type": "c", "major": majmin[0],
            "minor": majmin[1], "permissions": "rw"}


def dcap_nodes(enclave, provision=None):
    out = [node_("/dev/sgx_enclave", enclave, sdp.ENCLAVE),
           node_("/dev/sgx/enclave", enclave, sdp.ENCLAVE)]
    if provision:
        out += [node_("/dev/sgx_provision", provision, sdp.PROVISION),
                node_("/dev/sgx/provision", provision, sdp.PROVISION)]
    return out


def prov_nodes(provision):
    return [node_("/dev/sgx_provision", provision, sdp.PROVISION),
            node_("/dev/sgx/provision", provision, sdp.PROVISION)]


INKERNEL = dcap_nodes("/dev/sgx_enclave", "/dev/sgx_provision")
DRIVER = dcap_nodes("/dev/sgx/enclave", "/dev/sgx/provision")
LEGACY = [node_("/dev/sgx", "/dev/sgx", sdp.ENCLAVE), node_("/dev/sgx_prv", "/dev/sgx_prv",
                                                             sdp.PROVISION)]
ISGX = [node_("/dev/isgx", "/dev/isgx", sdp.ISGX)]

# (layout, extra flags, {device name: deviceNodes})
LAYOUT_CASES = [
    ("inkernel", [], {"dcap": INKERNEL}),
    ("dcapdriver", [], {"dcap": DRIVER}),
    ("legacy", [], {"dcap": LEGACY}),
    ("ias", [], {"ias": ISGX}),
    ("dcap_ias", [], {"dcap": INKERNEL, "ias": ISGX}),
    ("udev", [], {"dcap": INKERNEL}),
    ("inkernel", ["--no-provision"], {"dcap-noprovision": dcap_nodes("/dev/sgx_enclave")}),
    ("inkernel", ["--provision-resource"], {"dcap": INKERNEL,
                                            "provision": prov_nodes("/dev/sgx_provision")}),
]


def cdi_args(node_dir, extra=()):
    return ["--cdi", "--cdi-dir", node_dir] + list(extra)


def read_spec(path):
    with open(path) as f:
        return json.load(f)


def devices(spec):
    """{name: deviceNodes} of a spec, after checking its header."""
    assert spec["cdiVersion"] == "0.5.0", spec
    assert spec["kind"] == "sgx.k8s.io/sgx", spec
    assert set(spec) == {"cdiVersion", "kind", "devices"}, spec
    return {d["name"]: d["containerEdits"]["deviceNodes"] for d in spec["devices"]}


def wait_spec(path, want, timeout=None):
    """Waits until the spec at |path| has exactly the devices |want| ({name: nodes}), or is gone
    when |want| is None."""

    def now():
        if not os.path.exists(path):
            return None
        try:
            return devices(read_spec(path))
        except (ValueError, KeyError):  # never half a file: fail on the next look
            return "unparsable"

    sdp.poll(lambda: now() == want, timeout or T(5),
             "the CDI spec %s to be %s" % (path, want if want else "removed"))


def cdi_names(resp, i=0):
    return [d.name for d in resp.container_responses[i].cdi_devices]


# 13_01: on start, the spec holds one device per mapping with its device nodes, for every layout
@pytest.mark.parametrize("layout,args,want", LAYOUT_CASES,
                         ids=["%s%s" % (c[0], "".join(c[1])) for c in LAYOUT_CASES])
def test_13_01_spec_per_layout(node, workdir, layout, args, want):
    cdi = os.path.join(workdir, "cdi")
    resources = list(sdp.RESOURCES) + ([PROV] if "--provision-resource" in args else [])
    n = node(layout, cdi_args(cdi, args), resources=resources)
    path = os.path.join(cdi, SPEC_NAME)
    wait_spec(path, want)
    assert sorted(os.listdir(cdi)) == [SPEC_NAME], os.listdir(cdi)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
    n.daemon.wait_log(lambda l: l.get("path") == path and "wrote the CDI spec" in l.get("msg", ""),
                      T(2), what="the write's log line")


# 13_02: a missing --cdi-dir is created (0755, parents too); no device at all writes no spec
def test_13_02_dir_created_and_no_device_no_spec(node, workdir):
    cdi = os.path.join(workdir, "run", "cdi")
    n = node("none", cdi_args(cdi))
    path = os.path.join(cdi, SPEC_NAME)
    n.dev.apply("ias")
    wait_spec(path, {"ias": ISGX})
    assert stat.S_IMODE(os.stat(cdi).st_mode) == 0o755
    n.dev.remove("isgx")
    wait_spec(path, None)
    n.daemon.wait_log(lambda l: l.get("path") == path and "removed the CDI spec" in l.get("msg", ""),
                      T(2), what="the removal's log line")


# 13_03: hotplug: the spec follows the devices (removed when none is left, rewritten when they
# come back, a device added when a second driver appears)
def test_13_03_rewritten_on_hotplug(node, workdir):
    cdi = os.path.join(workdir, "cdi")
    n = node("inkernel", cdi_args(cdi))
    path = os.path.join(cdi, SPEC_NAME)
    wait_spec(path, {"dcap": INKERNEL})
    n.dev.remove("sgx_provision")
    wait_spec(path, {"dcap": dcap_nodes("/dev/sgx_enclave")})
    n.dev.remove("sgx_enclave")
    wait_spec(path, None)
    n.wait_devices(DCAP, 0, 110)
    n.dev.apply("inkernel")
    wait_spec(path, {"dcap": INKERNEL})
    n.dev.mknod("isgx", *sdp.ISGX)
    wait_spec(path, {"dcap": INKERNEL, "ias": ISGX})


# 13_04: Allocate answers cdi_devices (D/sgx=<device>) that the spec holds, and no DeviceSpecs,
# mounts or envs; with --no-provision the device without the provisioning node
@pytest.mark.parametrize("layout,args", [("dcap_ias", []), ("inkernel", ["--no-provision",
                                                                         "--aesmd-dir",
                                                                         "/var/run/aesmd"])])
def test_13_04_allocate_names_spec_devices(node, workdir, layout, args):
    cdi = os.path.join(workdir, "cdi")
    n = node(layout, cdi_args(cdi, args))
    path = os.path.join(cdi, SPEC_NAME)
    sdp.poll(lambda: os.path.exists(path), T(5), "the spec")
    spec = read_spec(path)
    names = {"sgx.k8s.io/sgx=" + d["name"] for d in spec["devices"]}
    kinds = ["sgx", "dcap"] + (["ias"] if layout == "dcap_ias" else [])
    for kind in kinds:
        n.wait_devices(res(kind), 110)
        resp = n.kubelet.allocate(res(kind), ["%s-1" % kind], ["%s-2" % kind], timeout=T(5))
        for i in range(2):
            got = cdi_names(resp, i)
            assert len(got) == 1 and got[0] in names, (kind, got, names)
            c = resp.container_responses[i]
            assert not c.devices and not c.mounts and not c.envs, c
        want = {"sgx": "dcap", "dcap": "dcap", "ias": "ias"}[kind]
        if "--no-provision" in args and want == "dcap":
            want = "dcap-noprovision"
        assert cdi_names(resp) == ["sgx.k8s.io/sgx=" + want]
    if "--aesmd-dir" in args:  # the mount moved into the spec
        mounts = spec["devices"][0]["containerEdits"]["mounts"]
        assert mounts == [{"hostPath": "/var/run/aesmd", "containerPath": "/var/run/aesmd",
                           "options": ["rbind", "rw"]}], mounts


# 13_05: SIGTERM removes the spec we wrote
def test_13_05_removed_on_sigterm(node, workdir):
    cdi = os.path.join(workdir, "cdi")
    n = node("inkernel", cdi_args(cdi))
    path = os.path.join(cdi, SPEC_NAME)
    wait_spec(path, {"dcap": INKERNEL})
    assert n.stop_daemon() == 0
    assert not os.path.exists(path), "the spec survived SIGTERM"
    assert os.listdir(cdi) == [], os.listdir(cdi)


# 13_06: a spec replaced by another writer (the next pod of a rolling update) survives our SIGTERM
def test_13_06_replaced_spec_survives_sigterm(node, workdir):
    cdi = os.path.join(workdir, "cdi")
    n = node("inkernel", cdi_args(cdi))
    path = os.path.join(cdi, SPEC_NAME)
    wait_spec(path, {"dcap": INKERNEL})
    other = path + ".other"
    with open(other, "w") as f:
        f.write('{"cdiVersion": "0.5.0", "kind": "sgx.k8s.io/sgx", "devices": []}\n')
    os.rename(other, path)
    mark = n.daemon.mark()
    assert n.stop_daemon() == 0
    with open(path) as f:
        assert '"devices": []' in f.read(), "our exit removed or rewrote another writer's spec"
    n.daemon.wait_log(lambda l: "no longer ours" in l.get("msg", ""), T(2), since=mark,
                      what="the 'no longer ours' line")


# 13_07: an unwritable --cdi-dir is a warning and the daemon keeps serving; the write is retried
# on the next change and succeeds once the directory can be made
def test_13_07_unwritable_dir_keeps_serving(node, workdir):
    blocker = os.path.join(workdir, "blocker")
    with open(blocker, "w") as f:
        f.write("a file where the directory should be\n")
    cdi = os.path.join(blocker, "cdi")
    n = node("inkernel", cdi_args(cdi))
    path = os.path.join(cdi, SPEC_NAME)
    line = n.daemon.wait_log(lambda l: l.get("level") == "warn" and l.get("path") == path and
                             "cannot write the CDI spec" in l.get("msg", ""), T(5),
                             what="the warning about the CDI dir")
    assert "Not a directory" in line["msg"], line
    assert "retrying" in line["msg"], line
    n.wait_devices(DCAP, 110)
    resp = n.kubelet.allocate(DCAP, ["dcap-0"], timeout=T(5))
    assert cdi_names(resp) == ["sgx.k8s.io/sgx=dcap"]
    # the same failure is logged once, not on every look
    n.dev.mknod("isgx", *sdp.ISGX)
    n.wait_devices(IAS, 110)
    warns = [l for l in n.daemon.lines() if "cannot write the CDI spec" in l.get("msg", "")]
    assert len(warns) == 1, warns
    # the directory can be made now: the next change writes the spec
    os.unlink(blocker)
    n.dev.remove("isgx")
    wait_spec(path, {"dcap": INKERNEL})
    assert n.daemon.alive()
