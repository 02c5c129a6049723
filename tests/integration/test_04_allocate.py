"""test_04_allocate.py - Allocate (issue #2 sections 2 and 3): the exact DeviceSpecs per device
layout and flag, host paths as the host sees them (/dev/..., links resolved, never the dev root),
--aesmd-dir, and the errors for unknown IDs and vanished devices, after which the daemon keeps
serving."""

import pytest

import sdp
from sdp import T, res, specs

SGX, DCAP, IAS, PROV = (res(k) for k in ("sgx", "dcap", "ias", "provision"))
grpc = sdp.grpc


def dcap_specs(enclave, provision=None):
    """The enclave (and provisioning) host node under both container names."""
    out = [("/dev/sgx_enclave", enclave, "rw"), ("/dev/sgx/enclave", enclave, "rw")]
    if provision:
        out += [("/dev/sgx_provision", provision, "rw"), ("/dev/sgx/provision", provision, "rw")]
    return sorted(out)


def prov_specs(provision):
    return sorted([("/dev/sgx_provision", provision, "rw"), ("/dev/sgx/provision", provision,
                                                              "rw")])


INKERNEL = dcap_specs("/dev/sgx_enclave", "/dev/sgx_provision")
DRIVER = dcap_specs("/dev/sgx/enclave", "/dev/sgx/provision")
LEGACY = sorted([("/dev/sgx", "/dev/sgx", "rw"), ("/dev/sgx_prv", "/dev/sgx_prv", "rw")])
ISGX = [("/dev/isgx", "/dev/isgx", "rw")]

# (layout, extra flags, resource kind, expected DeviceSpecs)
CASES = [
    ("inkernel", [], "sgx", INKERNEL),
    ("inkernel", [], "dcap", INKERNEL),
    ("dcapdriver", [], "dcap", DRIVER),
    ("dcapdriver", [], "sgx", DRIVER),
    ("sgxdir", [], "dcap", dcap_specs("/dev/sgx/sgx_enclave")),
    ("legacy", [], "dcap", LEGACY),
    ("legacy", [], "sgx", LEGACY),
    ("legacy", ["--no-provision"], "dcap", [("/dev/sgx", "/dev/sgx", "rw")]),
    ("ias", [], "sgx", ISGX),
    ("ias", [], "ias", ISGX),
    ("dcap_ias", [], "sgx", INKERNEL),
    ("dcap_ias", [], "dcap", INKERNEL),
    ("dcap_ias", [], "ias", ISGX),
    ("udev", [], "dcap", INKERNEL),
    ("udev", [], "sgx", INKERNEL),
    ("udev_reverse", [], "dcap", DRIVER),
    ("dup_nodes", [], "dcap", INKERNEL),
    ("chain", [], "dcap", DRIVER),
    ("inkernel", ["--no-provision"], "dcap", dcap_specs("/dev/sgx_enclave")),
    ("inkernel", ["--no-provision"], "sgx", dcap_specs("/dev/sgx_enclave")),
    ("inkernel", ["--provision-resource"], "provision", prov_specs("/dev/sgx_provision")),
    ("inkernel", ["--provision-resource", "--no-provision"], "provision",
     prov_specs("/dev/sgx_provision")),
    ("inkernel", ["--provision-resource", "--no-provision"], "dcap",
     dcap_specs("/dev/sgx_enclave")),
    ("dcapdriver", ["--provision-resource"], "provision", prov_specs("/dev/sgx/provision")),
    ("legacy", ["--provision-resource"], "provision", [("/dev/sgx_prv", "/dev/sgx_prv", "rw")]),
]


def resources_for(args):
    return sdp.RESOURCES + ([PROV] if "--provision-resource" in args else [])


def first_ids(nd, r, n=1):
    ids = sorted(nd.kubelet.devices(r), key=lambda i: (len(i), i))
    assert len(ids) >= n, "%s advertises %d devices" % (r, len(ids))
    return ids[:n]


# 04_01: Allocate answers one DeviceSpec per container path, rw, host paths under /dev
@pytest.mark.parametrize("layout,args,kind,want", CASES,
                         ids=["%s-%s%s" % (l, k, "".join(a)) for l, a, k, _ in CASES])
def test_04_01_device_specs(node, layout, args, kind, want):
    nd = node(layout, args, resources=resources_for(args))
    r = res(kind)
    resp = nd.kubelet.allocate(r, first_ids(nd, r))
    assert len(resp.container_responses) == 1
    got = specs(resp)
    assert got == sorted(want), "\n got: %s\nwant: %s" % (got, sorted(want))
    for _, host, _ in got:
        assert not host.startswith(nd.dev.root), host
    assert not resp.container_responses[0].mounts, "mounts without --aesmd-dir"


# 04_02: the same through a :authority of the socket path (kubelets before 1.26)
def test_04_02_old_kubelet_authority(node):
    nd = node("inkernel", authority=sdp.fake_kubelet.KUBELET_OLD_AUTHORITY)
    resp = nd.kubelet.allocate(SGX, first_ids(nd, SGX))
    assert specs(resp) == INKERNEL


# 04_03: one response per container request, each with the full set of specs
def test_04_03_several_containers(node):
    nd = node("dcap_ias")
    ids = first_ids(nd, SGX, 3)
    resp = nd.kubelet.allocate(SGX, [ids[0]], [ids[1], ids[2]], [ids[2]])
    assert len(resp.container_responses) == 3
    for i in range(3):
        assert specs(resp, i) == INKERNEL, i


# 04_04: several IDs in one container still map each device once
def test_04_04_several_ids_one_container(node):
    nd = node("ias")
    resp = nd.kubelet.allocate(IAS, first_ids(nd, IAS, 5))
    assert specs(resp) == ISGX


# 04_05: --aesmd-dir mounts that host dir at the same path into every SGX container
@pytest.mark.parametrize("layout,kind", [("inkernel", "sgx"), ("inkernel", "dcap"),
                                         ("ias", "ias"), ("ias", "sgx")])
def test_04_05_aesmd_dir(node, layout, kind):
    nd = node(layout, ["--aesmd-dir", "/var/run/aesmd"])
    r = res(kind)
    resp = nd.kubelet.allocate(r, first_ids(nd, r), first_ids(nd, r))
    for c in resp.container_responses:
        m = [(x.container_path, x.host_path) for x in c.mounts]
        assert m == [("/var/run/aesmd", "/var/run/aesmd")], m
        assert c.devices


# 04_06: unknown device IDs are INVALID_ARGUMENT naming the ID, and the daemon keeps serving
@pytest.mark.parametrize("bad", ["nope", "", "sgx-110", "sgx-1000000", "dcap-0", "sgx-01",
                                 "sgx--1", "x" * 300, "y" * 100000])
def test_04_06_unknown_id(node, bad):
    nd = node("inkernel")
    assert bad not in nd.kubelet.devices(SGX)
    good = first_ids(nd, SGX)
    with pytest.raises(grpc.RpcError) as e:
        nd.kubelet.allocate(SGX, good + [bad])
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, e.value
    if bad:
        assert bad[:40] in e.value.details(), "the message does not name the ID: %r" % (
            e.value.details())
    # Still serving, on the same and on a new connection.
    assert specs(nd.kubelet.allocate(SGX, good)) == INKERNEL
    ch = sdp.channel(nd.socket("sgx"))
    try:
        req = sdp.pb.AllocateRequest()
        req.container_requests.add().devices_ids.extend(good)
        resp = sdp.pb_grpc.DevicePluginStub(ch).Allocate(req, timeout=T(5))
        assert specs(resp) == INKERNEL
    finally:
        ch.close()
    assert nd.daemon.alive()


# 04_07: devices gone is FAILED_PRECONDITION; the daemon keeps serving and recovers
def test_04_07_devices_gone(node):
    nd = node("inkernel")
    ids = first_ids(nd, DCAP)
    nd.dev.remove("sgx_enclave")
    nd.wait_devices(DCAP, 0, 110, timeout=T(1))
    for r, i in ((DCAP, ids), (SGX, first_ids(nd, SGX))):
        with pytest.raises(grpc.RpcError) as e:
            nd.kubelet.allocate(r, i)
        assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION, e.value
        assert e.value.details(), "no grpc-message"
    nd.dev.mknod("sgx_enclave", *sdp.ENCLAVE)
    nd.wait_devices(DCAP, 110, 110, timeout=T(1))
    assert specs(nd.kubelet.allocate(DCAP, ids)) == INKERNEL


# 04_08: a class never present: Allocate fails with a clear status, nothing is mapped
def test_04_08_class_never_present(node):
    nd = node("inkernel")
    with pytest.raises(grpc.RpcError) as e:
        nd.kubelet.allocate(IAS, ["ias-0"])
    assert e.value.code() in (grpc.StatusCode.FAILED_PRECONDITION,
                              grpc.StatusCode.INVALID_ARGUMENT), e.value


# 04_09: sgx maps what is present at the moment of Allocate: IAS once DCAP is gone, DCAP again
def test_04_09_sgx_follows_present_devices(node):
    nd = node("dcap_ias")
    ids = first_ids(nd, SGX)
    assert specs(nd.kubelet.allocate(SGX, ids)) == INKERNEL
    nd.dev.remove("sgx_enclave")
    nd.wait_devices(DCAP, 0, 110, timeout=T(1))
    assert specs(nd.kubelet.allocate(SGX, ids)) == ISGX
    nd.dev.mknod("sgx_enclave", *sdp.ENCLAVE)
    nd.wait_devices(DCAP, 110, 110, timeout=T(1))
    assert specs(nd.kubelet.allocate(SGX, ids)) == INKERNEL


# 04_10: the enclave without its provisioning device: only the enclave is mapped
def test_04_10_provisioning_gone(node):
    nd = node("inkernel")
    nd.dev.remove("sgx_provision")
    want = dcap_specs("/dev/sgx_enclave")
    sdp.poll(lambda: specs(nd.kubelet.allocate(DCAP, first_ids(nd, DCAP))) == want, T(2),
             "Allocate without the provisioning device")


# 04_11: the device moved while the daemon ran (driver reloaded elsewhere): host paths follow
def test_04_11_device_moves(node):
    nd = node("inkernel")
    nd.dev.remove("sgx_enclave")
    nd.dev.remove("sgx_provision")
    nd.dev.apply("dcapdriver")

    def moved():
        try:
            return specs(nd.kubelet.allocate(DCAP, first_ids(nd, DCAP))) == DRIVER
        except grpc.RpcError as e:  # the moment in between, when no device is there
            assert e.code() == grpc.StatusCode.FAILED_PRECONDITION, e
            return False

    sdp.poll(moved, T(2), "Allocate to follow the nodes to sgx/")
    nd.wait_devices(DCAP, 110, 110)

