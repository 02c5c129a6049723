"""test_09_capabilities.py - `sgxdevplugin probe` reports the node's SGX capabilities (issue 3,
section 1): for each recorded CPU of tests/fixtures/cpuid/ (real register values), over a fake
/proc and /sys made by the test and a fake device tree, the text and the JSON show SGX1, SGX2,
FLC, EPC (total and per NUMA node), the maximum enclave size, the kernel, the driver and the
verdict; a missing or malformed --cpuid-file is exit 1 with one line."""

import json
import os

import pytest

import sdp
from sdp import run_cli

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "cpuid")
MIB = 1024 * 1024


def cpuid(name):
    return os.path.join(FIXTURES, name)


def facts(workdir, release=None, flags=None, nodes=()):
    """A fake proc and sys root under |workdir|: osrelease |release|, a cpuinfo whose first
    processor has |flags| (None: no cpuinfo), and sgx_total_bytes per NUMA node (MiB)."""
    proc = os.path.join(workdir, "proc")
    sys_ = os.path.join(workdir, "sys")
    os.makedirs(os.path.join(proc, "sys", "kernel"), exist_ok=True)
    os.makedirs(os.path.join(sys_, "devices", "system", "node"), exist_ok=True)
    if release is not None:
        with open(os.path.join(proc, "sys", "kernel", "osrelease"), "w") as f:
            f.write(release + "\n")
    if flags is not None:
        with open(os.path.join(proc, "cpuinfo"), "w") as f:
            f.write("processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: fpu vme %s\n"
                    "vmx flags\t: vnmi\n\nprocessor\t: 1\nflags\t\t: fpu sgx sgx_lc\n" % flags)
    for i, mib in enumerate(nodes):
        d = os.path.join(sys_, "devices", "system", "node", "node%d" % i, "x86")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "sgx_total_bytes"), "w") as f:
            f.write("%d\n" % (mib * MIB))
    return ["--proc-root", proc, "--sys-root", sys_]


def probe(dev, roots, cpu, *extra):
    args = ["probe", "--dev-root", dev.root] + roots + ["--cpuid-file", cpuid(cpu)] + list(extra)
    return run_cli(args)


def probe_json(dev, roots, cpu):
    r = probe(dev, roots, cpu, "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["capabilities"]


def text_field(out, key):
    """The value of '  key   value' in the capabilities section."""
    for line in out.splitlines():
        if line.startswith("  %s " % key) and line[2:2 + len(key)] == key:
            return line[2 + len(key):].strip()
    raise AssertionError("no %r line in:\n%s" % (key, out))


def verdict_line(out):
    lines = [l for l in out.splitlines() if l.startswith("verdict: ")]
    assert len(lines) == 1, out
    assert out.rstrip("\n").splitlines()[-1] == lines[0], "the verdict is not the last line"
    return lines[0]


# Each case: recorded CPU, device layout, kernel (release, cpuinfo flags, EPC MiB per node),
# then what probe must show: the facts, the verdict and words its line must hold.
CASES = {
    # SGX2 + FLC server, in-kernel driver, Linux 6.2: SGX2 usable; EPC from sysfs per node
    "icelake_inkernel_6_2": dict(
        cpu="icelake-sp-xeon.cpuid", layout="inkernel",
        kernel=("6.2.0-39-generic", "sgx sgx_lc", (2028, 2036)),
        sgx1=True, sgx2=True, flc=True, hypervisor=False, bits=(31, 56), sections=2,
        cpu_epc=4064 * MIB, epc=4064 * MIB, nodes=[2028 * MIB, 2036 * MIB], driver="in-kernel",
        sgx2_usable=True, verdict="usable", words=["SGX2 (EDMM) usable", "4064 MiB"]),
    # the same node on Linux 5.15: SGX2 in the CPU, not usable by the driver
    "icelake_inkernel_5_15": dict(
        cpu="icelake-sp-xeon.cpuid", layout="inkernel",
        kernel=("5.15.0-91-generic", "sgx sgx_lc", ()),
        sgx1=True, sgx2=True, flc=True, hypervisor=False, bits=(31, 56), sections=2,
        cpu_epc=4064 * MIB, epc=4064 * MIB, nodes=[], driver="in-kernel",
        sgx2_usable=False, verdict="usable", words=["6.0", "5.15.0-91-generic"]),
    # the out-of-tree DCAP driver on Linux 6.2: SGX2 needs the in-kernel driver
    "icelake_dcap_driver": dict(
        cpu="icelake-sp-xeon.cpuid", layout="dcapdriver",
        kernel=("6.2.0", "sgx sgx_lc", (2028, 2036)),
        sgx1=True, sgx2=True, flc=True, hypervisor=False, bits=(31, 56), sections=2,
        cpu_epc=4064 * MIB, epc=4064 * MIB, nodes=[2028 * MIB, 2036 * MIB], driver="dcap",
        sgx2_usable=False, verdict="usable", words=["in-kernel driver"]),
    # SGX1 without FLC and no device: only the legacy isgx driver could run
    "skylake_no_device": dict(
        cpu="skylake-i7-6700k.cpuid", layout="none", kernel=("6.5.0-14-generic", "avx2", ()),
        sgx1=True, sgx2=False, flc=False, hypervisor=False, bits=(31, 36), sections=1,
        cpu_epc=98041856, epc=98041856, nodes=[], driver="none",
        sgx2_usable=False, verdict="no-flc", words=["FLC", "isgx", "/proc/cpuinfo"]),
    # the same CPU with the isgx driver: usable for IAS
    "skylake_isgx": dict(
        cpu="skylake-i7-6700k.cpuid", layout="ias", kernel=("5.4.0-150-generic", "avx2", ()),
        sgx1=True, sgx2=False, flc=False, hypervisor=False, bits=(31, 36), sections=1,
        cpu_epc=98041856, epc=98041856, nodes=[], driver="none",
        sgx2_usable=False, verdict="usable", words=["isgx", "IAS"]),
    # SGX1 + FLC, SGX on in the kernel, but no device under the dev root
    "coffeelake_no_device": dict(
        cpu="coffeelake-xeon-e2276g.cpuid", layout="none",
        kernel=("6.1.0-17-amd64", "sgx sgx_lc", (93,)),
        sgx1=True, sgx2=False, flc=True, hypervisor=False, bits=(31, 36), sections=1,
        cpu_epc=98041856, epc=93 * MIB, nodes=[93 * MIB], driver="none",
        sgx2_usable=False, verdict="no-driver", words=["--dev-root", "driver"]),
    # a CPU without SGX
    "amd_no_sgx": dict(
        cpu="amd-ryzen7-1800x.cpuid", layout="none", kernel=("6.1.0", "svm", ()),
        sgx1=False, sgx2=False, flc=False, hypervisor=False, bits=(0, 0), sections=0,
        cpu_epc=0, epc=0, nodes=[], driver="none",
        sgx2_usable=False, verdict="no-sgx", words=["AuthenticAMD"]),
    # a VM whose CPUID claims SGX2 + FLC, with no device passed through
    "vm_no_device": dict(
        cpu="vm-alibaba-sgx2.cpuid", layout="none", kernel=("5.10.0", "hypervisor", ()),
        sgx1=True, sgx2=True, flc=True, hypervisor=True, bits=(31, 56), sections=1,
        cpu_epc=23808 * MIB, epc=23808 * MIB, nodes=[], driver="none",
        sgx2_usable=False, verdict="vm-no-device", words=["VM", "passed through"]),
    # SGX in CPUID leaf 7, disabled in firmware (leaf 0x12 empty)
    "skylake_firmware_off": dict(
        cpu="skylake-i7-6700k-sgx-off.cpuid", layout="none", kernel=("6.5.0", "avx2", ()),
        sgx1=False, sgx2=False, flc=False, hypervisor=False, bits=(0, 0), sections=0,
        cpu_epc=0, epc=0, nodes=[], driver="none",
        sgx2_usable=False, verdict="firmware-off", words=["BIOS"]),
}


def yn(b):
    return "yes" if b else "no"


def mib_text(n):
    return ("%d MiB" % (n // MIB)) if n % MIB == 0 else ("%.1f MiB" % (n / MIB))


# 09_01: probe's text shows each recorded CPU's facts, the kernel's, the driver, and ends with
# the verdict line
@pytest.mark.parametrize("case", sorted(CASES))
def test_09_01_probe_text(devtree, workdir, case):
    c = CASES[case]
    dev = devtree(c["layout"])
    release, flags, nodes = c["kernel"]
    r = probe(dev, facts(workdir, release, flags, nodes), c["cpu"])
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert text_field(out, "sgx1") == yn(c["sgx1"])
    assert text_field(out, "sgx2") == yn(c["sgx2"])
    assert text_field(out, "flc").startswith(yn(c["flc"]))
    assert ("hypervisor %s" % yn(c["hypervisor"])) in text_field(out, "cpu")
    if c["bits"] != (0, 0):
        assert text_field(out, "max enclave") == \
            "2^%d bytes (32-bit), 2^%d bytes (64-bit)" % c["bits"]
    assert text_field(out, "epc (cpuid)").startswith(mib_text(c["cpu_epc"]))
    assert text_field(out, "epc total") == mib_text(c["epc"])
    for i, n in enumerate(c["nodes"]):
        assert ("    node%d" % i) in out and mib_text(n) in \
            [l for l in out.splitlines() if l.startswith("    node%d " % i)][0]
    if not c["nodes"]:
        assert text_field(out, "epc (kernel)").startswith("not reported")
    assert text_field(out, "kernel") == release
    assert text_field(out, "driver") == c["driver"]
    assert text_field(out, "sgx2 usable") == yn(c["sgx2_usable"])
    line = verdict_line(out)
    assert line.startswith("verdict: %s - " % c["verdict"]), line
    for w in c["words"]:
        assert w in line, "verdict line %r lacks %r" % (line, w)


# 09_02: probe --json gives the same facts and verdict
@pytest.mark.parametrize("case", sorted(CASES))
def test_09_02_probe_json(devtree, workdir, case):
    c = CASES[case]
    dev = devtree(c["layout"])
    release, flags, nodes = c["kernel"]
    caps = probe_json(dev, facts(workdir, release, flags, nodes), c["cpu"])
    cpu, kernel = caps["cpu"], caps["kernel"]
    assert caps["cpuid_source"] == cpuid(c["cpu"])
    assert cpu["valid"] is True
    assert (cpu["sgx1"], cpu["sgx2"], cpu["hypervisor"]) == \
        (c["sgx1"], c["sgx2"], c["hypervisor"])
    assert caps["flc"] == c["flc"]
    assert (cpu["max_enclave_bits_32"], cpu["max_enclave_bits_64"]) == c["bits"]
    assert len(cpu["epc_sections"]) == c["sections"]
    assert sum(s["bytes"] for s in cpu["epc_sections"]) == cpu["epc_bytes"] == c["cpu_epc"]
    assert [n["bytes"] for n in kernel["epc_nodes"]] == c["nodes"]
    assert [n["node"] for n in kernel["epc_nodes"]] == list(range(len(c["nodes"])))
    assert kernel["release"] == release
    assert kernel["cpuinfo_read"] is True
    assert kernel["flag_sgx"] == ("sgx" in flags.split())
    assert caps["epc_bytes"] == c["epc"]
    assert caps["epc_mib"] == c["epc"] // MIB
    assert caps["driver"] == c["driver"]
    assert caps["dcap"] == (c["layout"] in ("inkernel", "dcapdriver"))
    assert caps["ias"] == (c["layout"] == "ias")
    assert caps["sgx2_usable"] == c["sgx2_usable"]
    assert caps["verdict"] == c["verdict"]
    for w in c["words"]:
        assert w in caps["verdict_line"]
    assert "\n" not in caps["verdict_line"]


# 09_03: the EPC of an Ice Lake-SP part: its two sections (base and size, bits 51:12) exactly
def test_09_03_epc_sections_exact(devtree, workdir):
    caps = probe_json(devtree("none"), facts(workdir, "6.2.0", "sgx sgx_lc"),
                      "icelake-sp-xeon.cpuid")
    assert caps["cpu"]["epc_sections"] == [
        {"base": 0x40_00c00000, "bytes": 2028 * MIB},
        {"base": 0x80_00c00000, "bytes": 2036 * MIB},
    ]
    # the VM's section has size bits above 4 GiB (EDX)
    caps = probe_json(devtree("none", root=os.path.join(workdir, "dev2")),
                      facts(workdir, "6.2.0", "sgx sgx_lc"), "vm-alibaba-sgx2.cpuid")
    assert caps["cpu"]["epc_sections"] == [{"base": 0x6_40000000, "bytes": 0x5_d0000000}]


# 09_04: without proc and sys files the kernel facts are unknown, not an error
def test_09_04_no_kernel_facts(devtree, workdir):
    dev = devtree("inkernel")
    roots = ["--proc-root", os.path.join(workdir, "noproc"),
             "--sys-root", os.path.join(workdir, "nosys")]
    r = probe(dev, roots, "coffeelake-xeon-e2276g.cpuid")
    assert r.returncode == 0, r.stderr
    assert text_field(r.stdout, "kernel") == "unknown"
    assert text_field(r.stdout, "cpuinfo flags").startswith("unknown")
    assert text_field(r.stdout, "epc total") == mib_text(98041856)
    assert verdict_line(r.stdout).startswith("verdict: usable - ")


# 09_05: a --cpuid-file that is missing, a directory, malformed or too big: exit 1, one line on
# stderr naming the file (and the line), nothing on stdout
@pytest.mark.parametrize("what", ["missing", "directory", "malformed", "no_leaf0", "too_big"])
def test_09_05_bad_cpuid_file(devtree, workdir, what):
    dev = devtree("inkernel")
    path = os.path.join(workdir, "cpu.txt")
    want = path
    if what == "directory":
        os.makedirs(path)
    elif what == "malformed":
        with open(path, "w") as f:
            f.write("# a comment\n0 0 16 756e6547 6c65746e 49656e69\n7 0 0 zz 0 0\n")
        want = "line 3"
    elif what == "no_leaf0":
        with open(path, "w") as f:
            f.write("7 0 0 4 0 0\n")
        want = "leaf 0"
    elif what == "too_big":
        with open(path, "w") as f:
            f.write("#" * (64 * 1024 + 1))
        want = "larger than"
    for extra in ([], ["--json"]):
        r = run_cli(["probe", "--dev-root", dev.root, "--cpuid-file", path] + extra)
        assert r.returncode == 1, (what, r.stdout, r.stderr)
        assert r.stdout == ""
        lines = r.stderr.splitlines()
        assert len(lines) == 1, r.stderr
        assert "--cpuid-file" in lines[0] and path in lines[0] and want in lines[0], lines[0]


# 09_06: without --cpuid-file probe reads this CPU and still reports and exits 0
def test_09_06_native_cpuid(devtree, workdir):
    dev = devtree("inkernel")
    r = run_cli(["probe", "--dev-root", dev.root, "--json"] + facts(workdir, "6.2.0", "fpu"))
    assert r.returncode == 0, r.stderr
    caps = json.loads(r.stdout)["capabilities"]
    assert caps["cpuid_source"] == "native"
    # the device is present, so whatever this CPU is, the verdict trusts the driver
    assert caps["verdict"] == "usable"
    assert caps["driver"] == "in-kernel"


# 09_07: the daemon reads the same facts once at start and logs its verdict, again each time a
# device change changes it (the CPU and kernel facts stay as read)
def test_09_07_daemon_logs_verdict_on_device_changes(node, workdir):
    roots = facts(workdir, "6.5.0", "fpu sgx sgx_lc", nodes=(64, 64))
    nd = node("inkernel", args=["--cpuid-file", cpuid("icelake-sp-xeon.cpuid")] + roots)

    def verdict(name, since=0):
        return nd.daemon.wait_log(
            lambda l: l.get("msg", "").startswith("SGX capability: %s: " % name), sdp.T(5),
            since=since, what="the verdict %s" % name)

    line = verdict("usable")
    assert "SGX1+SGX2+FLC" in line["msg"] and "EPC 128 MiB" in line["msg"], line
    assert "SGX2 (EDMM) usable" in line["msg"], line
    mark = nd.daemon.mark()
    nd.dev.remove("sgx_enclave")
    line = verdict("no-driver", since=mark)
    assert "no SGX device node" in line["msg"], line
    mark = nd.daemon.mark()
    nd.dev.mknod("sgx_enclave", *sdp.ENCLAVE)
    verdict("usable", since=mark)
    assert len([l for l in nd.daemon.lines()
                if l.get("msg", "").startswith("SGX capability: ")]) == 3


# 09_08: the daemon with a --cpuid-file it cannot use does not start: exit 1, the file named
def test_09_08_daemon_bad_cpuid_file(devtree, workdir):
    dev = devtree("inkernel")
    path = os.path.join(workdir, "missing.cpuid")
    r = run_cli(["--kubelet-dir", os.path.join(workdir, "k"), "--dev-root", dev.root,
                 "--cpuid-file", path])
    assert r.returncode == 1, (r.stdout, r.stderr)
    errors = [l for l in r.stderr.splitlines() if " error " in l]
    assert errors and path in errors[0] and "SGX capability facts" in errors[0], r.stderr
