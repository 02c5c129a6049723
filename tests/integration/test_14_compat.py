"""test_14_compat.py - the other SGX plugins' resource names (issue #11 section 2): --compat
intel serves sgx.intel.com/enclave and sgx.intel.com/provision with --max-pods slots each;
--compat azure and alibaba serve one device per MiB of EPC (the kernel's per-NUMA-node total),
cut to fit the kubelet's message limit; each on its own socket, registered, Allocate-able and
Unhealthy when the device vanishes; bad --compat values exit 2."""

import os

import pytest

import sdp
from sdp import T, res, run_cli, specs

MIB = 1024 * 1024
INTEL_ENCLAVE = "sgx.intel.com/enclave"
INTEL_PROVISION = "sgx.intel.com/provision"
AZURE = "kubernetes.azure.com/sgx_epc_mem_in_MiB"
ALIBABA = "alibabacloud.com/sgx_epc_MiB"
ALL = ["--compat", "intel,azure,alibaba"]

ENCLAVE_ONLY = sorted([("/dev/sgx_enclave", "/dev/sgx_enclave", "rw"),
                       ("/dev/sgx/enclave", "/dev/sgx_enclave", "rw")])
PROVISION_ONLY = sorted([("/dev/sgx_provision", "/dev/sgx_provision", "rw"),
                         ("/dev/sgx/provision", "/dev/sgx_provision", "rw")])
ENCLAVE_AND_PROVISION = sorted(ENCLAVE_ONLY + PROVISION_ONLY)


def sys_root(workdir, nodes_mib):
    """A fake /sys whose NUMA nodes report |nodes_mib| MiB of EPC each."""
    root = os.path.join(workdir, "sys")
    for i, mib in enumerate(nodes_mib):
        d = os.path.join(root, "devices", "system", "node", "node%d" % i, "x86")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "sgx_total_bytes"), "w") as f:
            f.write("%d\n" % (mib * MIB))
    return ["--sys-root", root]


def compat_node(node, workdir, compat=ALL, nodes_mib=(64, 64), layout="inkernel", extra=()):
    names = {"intel": [INTEL_ENCLAVE, INTEL_PROVISION], "azure": [AZURE], "alibaba": [ALIBABA]}
    wanted = list(sdp.RESOURCES)
    for c in compat[1].split(","):
        wanted += names[c]
    return node(layout, list(compat) + sys_root(workdir, nodes_mib) + list(extra),
                resources=wanted)


# 14_01: every compat resource registers on its own socket with the right device count
def test_14_01_registered_and_listed(node, workdir):
    nd = compat_node(node, workdir)
    for r in (INTEL_ENCLAVE, INTEL_PROVISION):
        nd.wait_devices(r, 110, 110)
    for r in (AZURE, ALIBABA):
        nd.wait_devices(r, 128, 128)  # 64 + 64 MiB over two NUMA nodes
    eps = {nd.kubelet.endpoint(r) for r in (INTEL_ENCLAVE, INTEL_PROVISION, AZURE, ALIBABA)}
    assert eps == {"sgxdevplugin-intel-enclave.sock", "sgxdevplugin-intel-provision.sock",
                   "sgxdevplugin-azure-epc.sock", "sgxdevplugin-alibaba-epc.sock"}
    # our own resources are unchanged beside them
    nd.wait_devices(res("dcap"), 110, 110)


# 14_02: without --compat none of the other names is served
def test_14_02_off_by_default(node, workdir):
    nd = node("inkernel", sys_root(workdir, [64]))
    nd.wait_devices(res("sgx"), 110, 110)
    assert set(nd.kubelet.resources) == set(sdp.RESOURCES)
    assert not any(n.startswith("sgxdevplugin-intel") or "epc" in n
                   for n in os.listdir(nd.kdir)), os.listdir(nd.kdir)


# 14_03: sgx.intel.com/enclave maps the enclave device alone, sgx.intel.com/provision the
# provisioning device alone
def test_14_03_intel_allocate(node, workdir):
    nd = compat_node(node, workdir, compat=["--compat", "intel"])
    nd.wait_devices(INTEL_ENCLAVE, 110, 110)
    resp = nd.kubelet.allocate(INTEL_ENCLAVE, ["intel-enclave-0"])
    assert specs(resp) == ENCLAVE_ONLY
    resp = nd.kubelet.allocate(INTEL_PROVISION, ["intel-provision-3"])
    assert specs(resp) == PROVISION_ONLY


# 14_04: any number of EPC MiB map the enclave and provisioning devices once per container
@pytest.mark.parametrize("r,prefix", [(AZURE, "azure-epc"), (ALIBABA, "alibaba-epc")])
def test_14_04_epc_allocate(node, workdir, r, prefix):
    nd = compat_node(node, workdir, compat=["--compat", "azure,alibaba"])
    nd.wait_devices(r, 128, 128)
    ids = ["%s-%d" % (prefix, i) for i in range(10)]
    resp = nd.kubelet.allocate(r, ids, ids[:1])
    assert len(resp.container_responses) == 2
    for i in range(2):
        assert specs(resp, i) == ENCLAVE_AND_PROVISION, i
    with pytest.raises(sdp.grpc.RpcError) as e:
        nd.kubelet.allocate(r, ["%s-128" % prefix])
    assert e.value.code() == sdp.grpc.StatusCode.INVALID_ARGUMENT
    assert nd.daemon.alive()


# 14_05: an EPC too large for one device list is cut to the largest count that fits, logged once
def test_14_05_epc_cut_to_fit(node, workdir):
    nd = compat_node(node, workdir, compat=["--compat", "azure"], nodes_mib=[256 * 1024] * 2)
    nd.daemon.wait_log(lambda l: l.get("resource") == AZURE and "advertising" in l.get("msg", ""),
                       T(10), what="the cut-to-fit line")
    nd.kubelet.wait_for(lambda: nd.kubelet.capacity(AZURE) > 0, T(20), what="azure devices")
    n = nd.kubelet.capacity(AZURE)
    assert 50000 < n < 512 * 1024, n
    lines = [l for l in nd.daemon.lines()
             if l.get("resource") == AZURE and "advertising" in l.get("msg", "")]
    assert len(lines) == 1, lines
    assert "524288 MiB" in lines[0]["msg"] and ("advertising %d devices" % n) in lines[0]["msg"]


# 14_06: the compat resources turn Unhealthy when the enclave device vanishes, and back
def test_14_06_unhealthy_when_gone(node, workdir):
    nd = compat_node(node, workdir)
    nd.wait_devices(AZURE, 128, 128)
    nd.dev.remove("sgx_enclave")
    for r, total in ((INTEL_ENCLAVE, 110), (AZURE, 128), (ALIBABA, 128)):
        nd.wait_devices(r, 0, total)
    nd.dev.mknod("sgx_enclave", *sdp.ENCLAVE)
    nd.wait_devices(AZURE, 128, 128)
    nd.wait_devices(INTEL_ENCLAVE, 110, 110)


# 14_07: unknown EPC size: the EPC resources advertise nothing and say why
def test_14_07_epc_unknown(node, workdir):
    nd = compat_node(node, workdir, compat=["--compat", "azure"], nodes_mib=[],
                     extra=["--cpuid-file", os.path.join(sdp.REPO, "tests", "fixtures", "cpuid",
                                                         "amd-ryzen7-1800x.cpuid")])
    nd.daemon.wait_log(lambda l: l.get("resource") == AZURE and "unknown" in l.get("msg", ""),
                       T(10), what="the unknown-EPC line")
    assert nd.kubelet.capacity(AZURE) == 0


BAD = ["", "bogus", "intel,bogus", "intel,intel", "intel,", ",azure", "Intel", "intel azure"]


# 14_08: a bad --compat value is exit 2 with one line naming the flag
@pytest.mark.parametrize("v", BAD)
def test_14_08_bad_compat(v):
    r = run_cli(["--compat", v])
    assert r.returncode == 2, r.stderr
    assert r.stderr.splitlines()[0].startswith("sgxdevplugin: --compat"), r.stderr


# 14_09: probe lists the compat resources with their slot counts
def test_14_09_probe(devtree, workdir):
    t = devtree("inkernel")
    r = run_cli(["probe", "--dev-root", t.root] + ALL + sys_root(workdir, [100]))
    assert r.returncode == 0, r.stderr
    for name, count in ((INTEL_ENCLAVE, 110), (INTEL_PROVISION, 110), (AZURE, 100),
                        (ALIBABA, 100)):
        line = [l for l in r.stdout.splitlines() if l.lstrip().startswith(name + " ")]
        assert line, name
        assert (" %d " % count) in line[0], line[0]


def bind_socket(path):
    """A listening unix socket at |path|, as another plugin would leave one."""
    s = sdp.socket.socket(sdp.socket.AF_UNIX, sdp.socket.SOCK_STREAM)
    s.bind(path)
    s.listen(1)
    return s


# 14_10: probe warns of another SGX plugin's socket in the kubelet dir, and says when this node
# serves the same resource (two plugins would double-book the device)
def test_14_10_probe_warns_of_other_plugins(devtree, workdir):
    t = devtree("inkernel")
    kdir = os.path.join(workdir, "k")
    os.makedirs(kdir)
    socks = [bind_socket(os.path.join(kdir, n)) for n in
             ("sgx.intel.com-enclave.sock", "sgx-epc-plugin.sock", "nvidia.sock", "kubelet.sock")]
    with open(os.path.join(kdir, "sgx-notasocket.sock"), "w"):
        pass
    try:
        args = ["probe", "--dev-root", t.root, "--kubelet-dir", kdir]
        r = run_cli(args + ["--compat", "intel"])
        assert r.returncode == 0, r.stderr
        warn = [l for l in r.stdout.splitlines() if l.startswith("warning:")]
        assert len(warn) == 2, warn
        intel = [l for l in warn if "sgx.intel.com-enclave.sock" in l]
        assert intel and "sgx.intel.com/enclave, which this node serves too" in intel[0], warn
        assert any("sgx-epc-plugin.sock" in l and "run sgxdevplugin alone" in l for l in warn)
        # without --compat intel the same socket is still a warning, but no double-booking of ours
        r = run_cli(args)
        assert "which this node serves too" not in r.stdout
        doc = sdp.json.loads(run_cli(args + ["--json", "--compat", "intel"]).stdout)
        got = sorted((o["socket"], o["resource"], o["conflict"]) for o in doc["other_plugins"])
        assert got == [("sgx-epc-plugin.sock", None, False),
                       ("sgx.intel.com-enclave.sock", "sgx.intel.com/enclave", True)], got
    finally:
        for s in socks:
            s.close()


# 14_11: TopologyInfo stays empty on every resource (one enclave device serves every NUMA node)
def test_14_11_no_topology(node, workdir):
    nd = compat_node(node, workdir, nodes_mib=(64, 64))
    nd.wait_devices(AZURE, 128, 128)
    for r in [res("sgx"), res("dcap"), INTEL_ENCLAVE, INTEL_PROVISION, AZURE, ALIBABA]:
        assert nd.kubelet.updates(r), r
        assert nd.kubelet.with_topology(r) == 0, r


def dcap_specs(enclave, provision=None):
    out = [("/dev/sgx_enclave", enclave, "rw"), ("/dev/sgx/enclave", enclave, "rw")]
    if provision:
        out += [("/dev/sgx_provision", provision, "rw"), ("/dev/sgx/provision", provision, "rw")]
    return sorted(out)


def prov_specs(provision):
    return sorted([("/dev/sgx_provision", provision, "rw"), ("/dev/sgx/provision", provision,
                                                              "rw")])


LEGACY_ENCLAVE = [("/dev/sgx", "/dev/sgx", "rw")]
LEGACY_PRV = [("/dev/sgx_prv", "/dev/sgx_prv", "rw")]

# layout -> (intel enclave, intel provision, EPC-per-MiB) DeviceSpecs; None: not advertised
LAYOUT_CASES = {
    "inkernel": (dcap_specs("/dev/sgx_enclave"), prov_specs("/dev/sgx_provision"),
                 dcap_specs("/dev/sgx_enclave", "/dev/sgx_provision")),
    "dcapdriver": (dcap_specs("/dev/sgx/enclave"), prov_specs("/dev/sgx/provision"),
                   dcap_specs("/dev/sgx/enclave", "/dev/sgx/provision")),
    "sgxdir": (dcap_specs("/dev/sgx/sgx_enclave"), None, dcap_specs("/dev/sgx/sgx_enclave")),
    "legacy": (LEGACY_ENCLAVE, LEGACY_PRV, sorted(LEGACY_ENCLAVE + LEGACY_PRV)),
    "udev": (dcap_specs("/dev/sgx_enclave"), prov_specs("/dev/sgx_provision"),
             dcap_specs("/dev/sgx_enclave", "/dev/sgx_provision")),
    "udev_reverse": (dcap_specs("/dev/sgx/enclave"), prov_specs("/dev/sgx/provision"),
                     dcap_specs("/dev/sgx/enclave", "/dev/sgx/provision")),
    "chain": (dcap_specs("/dev/sgx/enclave"), prov_specs("/dev/sgx/provision"),
              dcap_specs("/dev/sgx/enclave", "/dev/sgx/provision")),
    "dcap_ias": (dcap_specs("/dev/sgx_enclave"), prov_specs("/dev/sgx_provision"),
                 dcap_specs("/dev/sgx_enclave", "/dev/sgx_provision")),
    "ias": (None, None, None),
    "none": (None, None, None),
}


# 14_12: on every device layout each compat resource is listed when its devices are there and
# Allocate maps exactly its device nodes; absent devices advertise nothing
@pytest.mark.parametrize("layout", sorted(LAYOUT_CASES))
def test_14_12_every_layout(node, workdir, layout):
    enclave, provision, epc = LAYOUT_CASES[layout]
    nd = compat_node(node, workdir, layout=layout, nodes_mib=(16,))
    for r, want, n, prefix in ((INTEL_ENCLAVE, enclave, 110, "intel-enclave"),
                               (INTEL_PROVISION, provision, 110, "intel-provision"),
                               (AZURE, epc, 16, "azure-epc"), (ALIBABA, epc, 16, "alibaba-epc")):
        if want is None:
            nd.wait_devices(r, 0, 0)
            continue
        nd.wait_devices(r, n, n)
        resp = nd.kubelet.allocate(r, ["%s-0" % prefix, "%s-%d" % (prefix, n - 1)])
        assert specs(resp) == want, (r, specs(resp), want)
