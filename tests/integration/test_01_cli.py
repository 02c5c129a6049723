"""test_01_cli.py - the command line (issue #2 section 1): bad flags, --help, --version,
--max-pods range, `probe` text and --json per layout, and directories that do not exist yet."""

import json
import os
import re

import pytest

import sdp
from sdp import T, run_cli, res

pytestmark = pytest.mark.usefixtures("binary")

FLAGS = ["--kubelet-dir", "--dev-root", "--max-pods", "--resource-domain", "--no-provision",
         "--provision-resource", "--aesmd-dir", "--log-format", "--log-level", "--version",
         "--help", "--cdi", "--cdi-dir"]


def project_version():
    with open(os.path.join(sdp.REPO, "meson.build")) as f:
        return re.search(r"version\s*:\s*'([^']+)'", f.read()).group(1)


def check_bad_flag(r, flag):
    """Exit 2; stderr: one error line naming |flag|, then the usage; nothing on stdout."""
    assert r.returncode == 2, "exit %d, stderr: %r" % (r.returncode, r.stderr)
    assert r.stdout == ""
    lines = r.stderr.splitlines()
    assert lines, "nothing on stderr"
    assert flag in lines[0], "first stderr line does not name %s: %r" % (flag, lines[0])
    usage = [i for i, l in enumerate(lines) if re.search(r"usage", l, re.I)]
    assert usage, "no usage text on stderr: %r" % r.stderr
    assert all(not l.strip() for l in lines[1:usage[0]]), \
        "the error is more than one line: %r" % lines[:usage[0]]
    assert "--kubelet-dir" in r.stderr, "usage does not list the flags"


BAD = [
    (["--bogus"], "--bogus"),
    (["--max-pods"], "--max-pods"),
    (["--max-pods", "0"], "--max-pods"),
    (["--max-pods", "100001"], "--max-pods"),
    (["--max-pods", "12x"], "--max-pods"),
    (["--max-pods", "-5"], "--max-pods"),
    (["--max-pods", ""], "--max-pods"),
    (["--max-pods", "18446744073709551617"], "--max-pods"),
    (["--log-format", "xml"], "--log-format"),
    (["--log-level", "trace"], "--log-level"),
    (["--log-level"], "--log-level"),
    (["--kubelet-dir"], "--kubelet-dir"),
    (["--kubelet-dir", ""], "--kubelet-dir"),
    (["--dev-root", ""], "--dev-root"),
    (["--resource-domain", ""], "--resource-domain"),
    (["--resource-domain", "bad/domain"], "--resource-domain"),
    (["--aesmd-dir", ""], "--aesmd-dir"),
    (["--aesmd-dir", "relative/aesmd"], "--aesmd-dir"),
    (["--cdi-dir", "relative/cdi"], "--cdi-dir"),
    (["--cdi=yes"], "--cdi"),
    (["bogus-command"], "bogus-command"),
    (["probe", "--bogus"], "--bogus"),
    (["probe", "--dev-root"], "--dev-root"),
]


# 01_01: every malformed flag or value exits 2 with one line naming the flag, and usage on stderr
@pytest.mark.parametrize("args,flag", BAD, ids=[" ".join(a) or "empty" for a, _ in BAD])
def test_01_01_bad_flag_exits_2(args, flag):
    check_bad_flag(run_cli(args), flag)


# 01_02: --help prints the usage with every flag and `probe` on stdout, exit 0
def test_01_02_help():
    r = run_cli(["--help"])
    assert r.returncode == 0, r.stderr
    for f in FLAGS + ["probe", "--json"]:
        assert f in r.stdout, "--help does not mention %s" % f
    assert re.search(r"usage", r.stdout, re.I)


# 01_03: --version prints the project version on one line, exit 0
def test_01_03_version():
    r = run_cli(["--version"])
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.strip().splitlines()) == 1, r.stdout
    assert project_version() in r.stdout


# 01_04: --max-pods at both ends of 1..100000 is accepted and advertised
@pytest.mark.parametrize("n", [1, 100000])
def test_01_04_max_pods_range_ends(node, n):
    nd = node("inkernel", ["--max-pods", str(n)], wait=False)
    nd.wait_registered(timeout=T(20))
    for r in sdp.RESOURCES[:2]:
        nd.wait_devices(r, n, n, timeout=T(20))
    devs = nd.kubelet.devices(res("dcap"))
    assert len(set(devs)) == n
    assert all(len(i) <= 63 for i in devs)


# ---- probe ----

# Expected probe findings per layout: (name, class, host path, "major:minor")
E = "%d:%d" % sdp.ENCLAVE
P = "%d:%d" % sdp.PROVISION
I = "%d:%d" % sdp.ISGX
PROBE = {
    "inkernel": [("sgx_enclave", "dcap", "/dev/sgx_enclave", E),
                 ("sgx_provision", "dcap", "/dev/sgx_provision", P)],
    "dcapdriver": [("sgx/enclave", "dcap", "/dev/sgx/enclave", E),
                   ("sgx/provision", "dcap", "/dev/sgx/provision", P)],
    "sgxdir": [("sgx/sgx_enclave", "dcap", "/dev/sgx/sgx_enclave", E)],
    "legacy": [("sgx", "dcap", "/dev/sgx", E), ("sgx_prv", "dcap", "/dev/sgx_prv", P)],
    "ias": [("isgx", "ias", "/dev/isgx", I)],
    "dcap_ias": [("sgx_enclave", "dcap", "/dev/sgx_enclave", E),
                 ("sgx_provision", "dcap", "/dev/sgx_provision", P),
                 ("isgx", "ias", "/dev/isgx", I)],
    "none": [],
    "udev": [("sgx_enclave", "dcap", "/dev/sgx_enclave", E),
             ("sgx_provision", "dcap", "/dev/sgx_provision", P),
             ("sgx/enclave", "dcap", "/dev/sgx_enclave", E),
             ("sgx/provision", "dcap", "/dev/sgx_provision", P)],
    "udev_reverse": [("sgx_enclave", "dcap", "/dev/sgx/enclave", E),
                     ("sgx_provision", "dcap", "/dev/sgx/provision", P),
                     ("sgx/enclave", "dcap", "/dev/sgx/enclave", E),
                     ("sgx/provision", "dcap", "/dev/sgx/provision", P)],
    "provision_only": [("sgx_provision", "dcap", "/dev/sgx_provision", P)],
    "not_chardev": [],
    "dup_nodes": [("sgx_enclave", "dcap", "/dev/sgx_enclave", E),
                  ("sgx/enclave", "dcap", "/dev/sgx/enclave", E),
                  ("sgx_provision", "dcap", "/dev/sgx_provision", P),
                  ("sgx/provision", "dcap", "/dev/sgx/provision", P)],
    "dangling": [],
    "chain": [("sgx_enclave", "dcap", "/dev/sgx/enclave", E),
              ("sgx/enclave", "dcap", "/dev/sgx/enclave", E),
              ("sgx/sgx_enclave", "dcap", "/dev/sgx/enclave", E),
              ("sgx/provision", "dcap", "/dev/sgx/provision", P)],
}

# Resources each layout would advertise (the others advertise nothing)
ADVERTISED = {
    "inkernel": {"sgx", "dcap"}, "dcapdriver": {"sgx", "dcap"}, "sgxdir": {"sgx", "dcap"},
    "legacy": {"sgx", "dcap"}, "ias": {"sgx", "ias"}, "dcap_ias": {"sgx", "dcap", "ias"},
    "none": set(), "udev": {"sgx", "dcap"}, "udev_reverse": {"sgx", "dcap"},
    "provision_only": set(), "not_chardev": set(), "dup_nodes": {"sgx", "dcap"},
    "dangling": set(), "chain": {"sgx", "dcap"},
}


# 01_05: probe prints each device name with its class, real host path and major:minor, exit 0
@pytest.mark.parametrize("layout", sorted(PROBE))
def test_01_05_probe_text(devtree, layout):
    t = devtree(layout)
    r = run_cli(["probe", "--dev-root", t.root])
    assert r.returncode == 0, r.stderr
    out = r.stdout
    for name, cls, host, mm in PROBE[layout]:
        line = [l for l in out.splitlines() if re.search(r"(^|[\s/=])%s(\s|$|[,:;])" %
                                                          re.escape(name), l) and mm in l]
        assert line, "probe does not show %s (%s) with %s:\n%s" % (name, host, mm, out)
        assert any(host in l and cls in l for l in line), \
            "probe line for %s lacks host path %s or class %s: %r" % (name, host, cls, line)
    for kind in sdp.KINDS:
        assert res(kind) in out, "probe does not say what it would advertise for %s" % kind


# 01_06: probe --json gives the same facts: each device name (class, host path, major:minor),
# and per resource its slot count and the host nodes Allocate would map
@pytest.mark.parametrize("layout", sorted(PROBE))
def test_01_06_probe_json(devtree, layout):
    t = devtree(layout)
    r = run_cli(["probe", "--dev-root", t.root, "--json"])
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    got = sorted((d["name"], d["class"], d["host_path"], "%d:%d" % (d["major"], d["minor"]))
                 for d in doc["devices"])
    assert got == sorted(PROBE[layout])
    hosts = {h for (_, _, h, _) in PROBE[layout]}
    res_by_name = {x["name"]: x for x in doc["resources"]}
    assert sorted(res_by_name) == sorted(sdp.RESOURCES)
    for kind in sdp.KINDS:
        x = res_by_name[res(kind)]
        present = kind in ADVERTISED[layout]
        assert x["count"] == (110 if present else 0), x
        mapped = [d["host_path"] for d in (x.get("allocate") or {}).get("devices", [])]
        assert bool(mapped) == present, x
        assert set(mapped) <= hosts, "%s maps %s, not real nodes of %s" % (res(kind), mapped,
                                                                         layout)


# 01_07: probe of a dev root that does not exist finds nothing and exits 0
def test_01_07_probe_missing_dev_root(workdir):
    r = run_cli(["probe", "--dev-root", os.path.join(workdir, "nope")])
    assert r.returncode == 0, r.stderr
    assert "sgx_enclave" not in r.stdout and "isgx" not in r.stdout
    r = run_cli(["probe", "--dev-root", os.path.join(workdir, "nope"), "--json"])
    assert r.returncode == 0, r.stderr
    json.loads(r.stdout)


# 01_08: probe with the default dev root (/dev) exits 0
def test_01_08_probe_default_dev_root():
    r = run_cli(["probe"])
    assert r.returncode == 0, r.stderr
    assert res("sgx") in r.stdout


# 01_09: a --dev-root that does not exist yet is logged; devices are advertised once it appears
def test_01_09_dev_root_appears_later(node):
    nd = node(None)
    nd.daemon.wait_log(lambda l: l.get("path") == nd.dev.root, T(5),
                       what="a log line about the missing dev root")
    nd.wait_registered()
    for r in sdp.RESOURCES:
        assert nd.kubelet.capacity(r) == 0
    os.makedirs(nd.dev.root)
    nd.dev.apply("inkernel")
    nd.wait_devices(res("dcap"), 110, 110, timeout=T(5))
    nd.wait_devices(res("sgx"), 110, 110, timeout=T(5))
    assert nd.kubelet.capacity(res("ias")) == 0


# 01_10: a --dev-root whose parent is missing too is watched for as well
def test_01_10_dev_root_parent_appears_later(node, workdir):
    root = os.path.join(workdir, "host", "dev")
    nd = node(None, dev_root=root)
    nd.wait_registered()
    os.makedirs(root)
    nd.dev.apply("ias")
    nd.wait_devices(res("ias"), 110, 110, timeout=T(5))


# 01_11: a --kubelet-dir that does not exist yet is logged; the daemon registers once it appears
def test_01_11_kubelet_dir_appears_later(node):
    nd = node("inkernel", kubelet=False)
    nd.daemon.wait_log(lambda l: l.get("path") == nd.kdir, T(5),
                       what="a log line about the missing kubelet dir")
    assert not os.path.exists(nd.kdir)
    nd.kubelet.start()
    nd.wait_registered()
    for r in sdp.RESOURCES:
        assert nd.kubelet.register_count(r) == 1


# 01_12: a --kubelet-dir whose parent is missing too (kubelet not installed yet) is watched for
def test_01_12_kubelet_dir_parent_appears_later(node, workdir):
    kdir = os.path.join(workdir, "var", "device-plugins")
    nd = node("inkernel", kubelet=False, kubelet_dir=kdir)
    nd.daemon.wait_log(lambda l: l.get("path") is not None, T(5), what="any log line")
    nd.kubelet.start()
    nd.wait_registered()


# 01_13: text log format: one line per event, "<time> <level> resource=... path=... message"
def test_01_13_text_log_format(devtree, workdir):
    t = devtree("inkernel")
    log = os.path.join(workdir, "text.log")
    d = sdp.Daemon(["--kubelet-dir", os.path.join(workdir, "k"), "--dev-root", t.root,
                    "--log-format", "text", "--log-level", "info"], log).start()
    try:
        line = d.wait_log(lambda l: "path=" in l.get("raw", ""), T(5),
                          what="a text line with path=")["raw"]
        assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z (error|warn|info) ", line), line
        assert not any(l["raw"].startswith("{") for l in d.lines() if "raw" in l)
        assert not any(" debug " in l for l in d.raw_lines())
    finally:
        assert d.stop() == 0


# 01_14: JSON log lines carry time, level, msg (and resource/path when they concern one)
def test_01_14_json_log_format(node):
    nd = node("inkernel")
    lines = nd.daemon.lines()
    assert lines and all("raw" not in l for l in lines), [l for l in lines if "raw" in l][:3]
    for l in lines:
        assert {"time", "level", "msg"} <= set(l), l
        assert l["level"] in ("error", "warn", "info", "debug"), l
    assert any(l.get("resource") == res("dcap") for l in lines)
    assert any(l.get("level") == "debug" for l in lines), "--log-level debug shows no debug line"


# 01_15: --log-level warn writes warnings and errors only
def test_01_15_log_level_filters(devtree, workdir):
    t = devtree("inkernel")
    log = os.path.join(workdir, "warn.log")
    d = sdp.Daemon(["--kubelet-dir", os.path.join(workdir, "missing"), "--dev-root", t.root,
                    "--log-format", "json", "--log-level", "warn"], log).start()
    try:
        d.wait_log(lambda l: l.get("level") == "warn" and
                   l.get("path") == os.path.join(workdir, "missing"), T(5),
                   what="a warning about the missing kubelet dir")
    finally:
        assert d.stop() == 0
    levels = {l.get("level") for l in d.lines()}
    assert levels <= {"warn", "error"}, "--log-level warn wrote %s lines" % levels


# ---- the longest resource domain (issue #9: a 253-character domain passed the CLI and probe,
# then the daemon exited with "File name too long"; health could not run) ----

# A valid DNS subdomain of exactly 253 characters (labels of at most 63).
LONGEST_DOMAIN = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 61])
assert len(LONGEST_DOMAIN) == 253


# 01_16: the daemon registers and lists every resource under a 253-character domain
def test_01_16_longest_domain_daemon(node):
    names = [res(k, LONGEST_DOMAIN) for k in sdp.KINDS]
    nd = node("inkernel", ["--resource-domain", LONGEST_DOMAIN], resources=names)
    for r in names[:2]:
        nd.wait_devices(r, 110, 110)
    assert not any(l.get("level") == "error" for l in nd.daemon.lines()), nd.daemon.tail(20)


# 01_17: probe (text and JSON) names every resource under a 253-character domain
def test_01_17_longest_domain_probe(devtree):
    t = devtree("inkernel")
    r = run_cli(["probe", "--dev-root", t.root, "--resource-domain", LONGEST_DOMAIN])
    assert r.returncode == 0, r.stderr
    for k in sdp.KINDS:
        assert res(k, LONGEST_DOMAIN) in r.stdout, k
    r = run_cli(["probe", "--json", "--dev-root", t.root, "--resource-domain", LONGEST_DOMAIN])
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    names = json.dumps(doc)
    for k in sdp.KINDS:
        assert res(k, LONGEST_DOMAIN) in names, k


# 01_18: health checks every socket of a daemon serving a 253-character domain
def test_01_18_longest_domain_health(node):
    names = [res(k, LONGEST_DOMAIN) for k in sdp.KINDS]
    nd = node("inkernel", ["--resource-domain", LONGEST_DOMAIN], resources=names)
    r = run_cli(["health", "--kubelet-dir", nd.kdir, "--resource-domain", LONGEST_DOMAIN])
    assert r.returncode == 0, r.stdout + r.stderr
    for n in names:
        assert "%s %s" % (n, nd.socket(n.rsplit("/", 1)[1])) in r.stdout, n
    assert "ok" in r.stdout


# 01_19: one character more is exit 2 naming the flag, for the daemon, probe and health
@pytest.mark.parametrize("cmd", [[], ["probe"], ["health"]], ids=["daemon", "probe", "health"])
def test_01_19_domain_one_too_long(cmd):
    check_bad_flag(run_cli(cmd + ["--resource-domain", "x" + LONGEST_DOMAIN]), "--resource-domain")
