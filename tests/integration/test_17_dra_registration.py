"""test_17_dra_registration.py - the kubelet side of the DRA driver (issue #12 section 1): --dra
serves pluginregistration.Registration on <plugins-registry>/D-reg.sock and the DRAPlugin
service (v1 and v1beta1) on <dra-dir>/dra.sock, against the test DRA kubelet in
tests/kubelet/fake_dra_kubelet.py (it watches the registry dir, dials, GetInfo, validates,
notifies, then calls the endpoint).

Cases: registration (and the device-plugin API still served beside it), a refusal logged with
the kubelet's reason, prepare and unprepare in both versions, a kubelet restart that wipes the
registry dir, a wiped --dra-dir, malformed protobuf on both sockets, --no-device-plugin, our
sockets unlinked on exit but a stranger's left alone, the flag checks, and `health --dra` (the
chart's liveness probe) with and without the device plugin.
"""

import os
import shutil
import signal
import stat
import subprocess
import sys

import pytest

import sdp
from sdp import T

sys.path.insert(0, os.path.join(sdp.REPO, "tests", "kubelet"))

import fake_dra_kubelet  # noqa: E402
from fake_dra_kubelet import FakeDraKubelet  # noqa: E402

grpc, MODS = fake_dra_kubelet.load_api()
DRIVER = sdp.DOMAIN
# no API server in these tests: every claim is that claim's error (test_17_dra_prepare.py has one)
NO_API = "cannot read it from the API server"


class Dra:
    """A node with --dra: the `node` fixture's node plus the DRA kubelet and the two paths."""

    def __init__(self, node, kubelet, registry, dra_dir):
        self.node = node
        self.kubelet = kubelet
        self.registry = registry
        self.dra_dir = dra_dir
        self.reg_sock = os.path.join(registry, DRIVER + "-reg.sock")
        self.dra_sock = os.path.join(dra_dir, "dra.sock")

    def wait_registered(self, generation=None):
        return self.kubelet.wait_registered(DRIVER, T(10), generation)


@pytest.fixture
def dra(node, workdir):
    """A factory: dra(args=[], wait_dp=True) starts the DRA kubelet, then a node with --dra and
    the paths under WORKDIR; the DRA kubelet must have seen no protocol error at teardown."""
    made = []

    def make(args=(), wait_dp=True, start_kubelet=True):
        registry = os.path.join(workdir, "reg")
        dra_dir = os.path.join(workdir, "plugins", DRIVER)
        k = FakeDraKubelet(registry, driver=DRIVER, dial_timeout=T(5))
        if start_kubelet:
            k.start()
        # no API server here (test_17_dra_slices.py has one): the slice publisher retries
        n = node(args=["--dra", "--plugins-registry", registry, "--dra-dir", dra_dir,
                       "--node-name", "node-1", "--apiserver", "https://127.0.0.1:9",
                       "--token-file", os.path.join(workdir, "no-token")] + list(args),
                 wait=wait_dp)
        d = Dra(n, k, registry, dra_dir)
        made.append(d)
        return d

    yield make

    errors = []
    for d in made:
        d.kubelet.stop()
        errors += d.kubelet.errors
    assert not errors, "the DRA kubelet saw protocol errors: %s" % errors


def gone(path):
    """Removes the directory |path| at once (renamed away, then deleted): the daemon re-creating
    its socket inside while rmtree walks it must not make the removal fail."""
    tmp = path + ".gone"
    os.rename(path, tmp)
    shutil.rmtree(tmp)


def raw_call(path, method, payload):
    """Sends |payload| bytes as the request message of |method| on the socket |path|."""
    ch = fake_dra_kubelet.dial(path, T(5))
    try:
        return ch.unary_unary(method)(payload, timeout=T(5))
    finally:
        ch.close()


# GetInfo names our driver, the absolute dra.sock path and both versions; the kubelet registers
# us, and the device plugin registers beside it.
def test_17_01_registers(dra):
    d = dra()
    p = d.wait_registered()
    assert p.info.type == "DRAPlugin"
    assert p.info.name == DRIVER
    assert p.info.endpoint == d.dra_sock
    assert list(p.info.supported_versions) == ["v1.DRAPlugin", "v1beta1.DRAPlugin",
                                               "v1.DRAResourceHealth"]
    assert p.version == "v1"
    assert stat.S_ISSOCK(os.stat(d.reg_sock).st_mode)
    d.node.daemon.wait_log(lambda l: "registered with the kubelet as DRA driver" in
                           l.get("msg", ""), T(5), what="the registration log line")
    d.node.wait_registered()  # the device-plugin API too


# A refusal by the kubelet is logged with its reason; a kubelet restart registers us again.
def test_17_02_refusal_logged(dra):
    d = dra(start_kubelet=False)
    d.kubelet.reject("driver name conflicts with another plugin")
    d.kubelet.start()
    line = d.node.daemon.wait_log(lambda l: "refused to register" in l.get("msg", ""), T(10),
                                  what="the refusal log line")
    assert "driver name conflicts with another plugin" in line["msg"]
    assert line.get("level") == "warn"
    assert DRIVER not in d.kubelet.plugins
    d.kubelet.restart(wipe=False)
    d.wait_registered()


# NodePrepareResources (v1 and v1beta1) answers every claim by UID, with its own error when the
# API server cannot be reached; NodeUnprepareResources succeeds for each (none was prepared).
@pytest.mark.parametrize("version", ["v1", "v1beta1"])
def test_17_03_prepare_unprepare(dra, version):
    d = dra()
    d.wait_registered()
    claims = [("default", "uid-1", "claim-a"), ("team", "uid-2", "claim-b"),
              ("default", "uid-1", "claim-a")]
    resp = d.kubelet.prepare(DRIVER, claims, version=version, timeout=T(10))
    assert sorted(resp.claims.keys()) == ["uid-1", "uid-2"]
    for uid, ns, name in (("uid-1", "default", "claim-a"), ("uid-2", "team", "claim-b")):
        r = resp.claims[uid]
        assert NO_API in r.error
        assert "%s/%s" % (ns, name) in r.error
        assert len(r.devices) == 0
    # a claim without its uid is answered, under the empty key, with an error naming the fields
    resp = d.kubelet.prepare(DRIVER, [("default", "", "x")], version=version, timeout=T(10))
    assert "required" in resp.claims[""].error
    resp = d.kubelet.unprepare(DRIVER, claims + [("other", "uid-9", "never")], version=version,
                               timeout=T(10))
    assert sorted(resp.claims.keys()) == ["uid-1", "uid-2", "uid-9"]
    assert all(r.error == "" for r in resp.claims.values())
    # an empty batch is an empty answer
    assert len(d.kubelet.prepare(DRIVER, [], version=version).claims) == 0


# A kubelet restart that wipes the registry dir: the registration socket is re-created and the
# new kubelet registers us; the DRA service keeps answering.
def test_17_04_kubelet_restart(dra):
    d = dra()
    d.wait_registered()
    for _ in range(2):
        d.kubelet.restart(wipe=True)
        p = d.wait_registered(generation=d.kubelet.generation)
        assert p.generation == d.kubelet.generation
    d.node.daemon.wait_log(lambda l: "registration socket was removed" in l.get("msg", ""),
                           T(5), what="the re-creation log line")
    resp = d.kubelet.prepare(DRIVER, [("ns", "u", "c")], timeout=T(10))
    assert NO_API in resp.claims["u"].error
    d.node.wait_registered()


# The registry dir removed and only later made again (a kubelet that takes its time), and a
# wiped --dra-dir: both sockets come back, dra.sock first.
def test_17_05_dirs_removed(dra):
    d = dra()
    d.wait_registered()
    d.kubelet.stop()
    gone(d.registry)
    mark = d.node.daemon.mark()
    gone(os.path.dirname(d.dra_dir))
    sdp.poll(lambda: os.path.exists(d.dra_sock), T(5), "dra.sock re-created")
    d.node.daemon.wait_log(lambda l: "DRA socket was removed" in l.get("msg", ""), T(5), mark,
                           what="the dra.sock log line")
    d.kubelet.start()  # makes the registry dir
    p = d.wait_registered(generation=d.kubelet.generation)
    assert p.info.endpoint == d.dra_sock
    resp = d.kubelet.prepare(DRIVER, [("ns", "u", "c")], timeout=T(10))
    assert "u" in resp.claims


# Malformed protobuf on both sockets: INVALID_ARGUMENT, logged, and the daemon keeps serving.
def test_17_06_bad_input(dra):
    d = dra()
    d.wait_registered()
    garbage = b"\x0a\xff\xff\xff\xff\x0f"  # field 1, length far past the end
    cases = [
        (d.reg_sock, "/pluginregistration.Registration/NotifyRegistrationStatus"),
        (d.dra_sock, "/k8s.io.kubelet.pkg.apis.dra.v1.DRAPlugin/NodePrepareResources"),
        (d.dra_sock, "/k8s.io.kubelet.pkg.apis.dra.v1.DRAPlugin/NodeUnprepareResources"),
        (d.dra_sock, "/k8s.io.kubelet.pkg.apis.dra.v1beta1.DRAPlugin/NodePrepareResources"),
        (d.dra_sock, "/k8s.io.kubelet.pkg.apis.dra.v1beta1.DRAPlugin/NodeUnprepareResources"),
    ]
    for path, method in cases:
        with pytest.raises(grpc.RpcError) as e:
            raw_call(path, method, garbage)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, method
        assert "undecodable" in e.value.details()
    # an unknown method on either socket
    for path in (d.reg_sock, d.dra_sock):
        with pytest.raises(grpc.RpcError) as e:
            raw_call(path, "/k8s.io.kubelet.pkg.apis.dra.v1.DRAPlugin/Nope", b"")
        assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED
    d.node.daemon.wait_log(lambda l: "undecodable NodePrepareResourcesRequest" in
                           l.get("msg", ""), T(5), what="the rejection log line")
    # still serving: GetInfo answers, prepare answers, the device plugin answers
    reg_pb, reg_grpc = MODS["pluginregistration"]
    ch = fake_dra_kubelet.dial(d.reg_sock, T(5))
    try:
        assert reg_grpc.RegistrationStub(ch).GetInfo(reg_pb.InfoRequest()).name == DRIVER
    finally:
        ch.close()
    assert "u" in d.kubelet.prepare(DRIVER, [("ns", "u", "c")], timeout=T(10)).claims
    assert d.node.daemon.alive()


# --no-device-plugin: the DRA driver registers, no device-plugin socket is made and the
# device-plugin kubelet gets no Register.
def test_17_07_no_device_plugin(dra):
    d = dra(args=["--no-device-plugin"], wait_dp=False)
    d.wait_registered()
    d.node.daemon.wait_log(lambda l: "registered with the kubelet as DRA driver" in
                           l.get("msg", ""), T(5))
    assert [f for f in os.listdir(d.node.kdir) if f.startswith("sgxdevplugin")] == []
    assert d.node.kubelet.events == []


# A socket someone else put at our path (a second daemon in a rolling update) is left to them,
# and on SIGTERM only our own socket is unlinked.
def test_17_08_exit_unlinks_only_ours(dra):
    d = dra()
    d.wait_registered()
    mark = d.node.daemon.mark()
    tmp = d.dra_sock + ".new"
    with open(tmp, "w") as f:  # a stranger's file, renamed over our socket
        f.write("not ours\n")
    os.rename(tmp, d.dra_sock)
    d.node.daemon.wait_log(lambda l: "replaced by another process" in l.get("msg", ""), T(5),
                           mark, what="the replaced-socket log line")
    assert d.node.stop_daemon() == 0
    assert open(d.dra_sock).read() == "not ours\n"
    assert not os.path.exists(d.reg_sock)


# NodeWatchResources: every enclave device seen is streamed HEALTHY while present; a vanished one
# turns UNHEALTHY at once (what reaches the pod's status), and HEALTHY again when it is back.
def test_17_10_device_health(dra):
    d = dra()
    d.node.dev.mknod("isgx", *sdp.ISGX)
    d.wait_registered()
    h = d.kubelet.watch_health(DRIVER)
    try:
        first = h.wait({"dcap": "HEALTHY", "ias": "HEALTHY"}, T(5))
        assert first["ias"][2] == "enclave device present"
        d.node.dev.remove("isgx")
        gone = h.wait({"dcap": "HEALTHY", "ias": "UNHEALTHY"}, T(5))
        assert "vanished" in gone["ias"][2] and gone["ias"][1] >= first["ias"][1]
        d.node.dev.mknod("isgx", *sdp.ISGX)
        h.wait({"dcap": "HEALTHY", "ias": "HEALTHY"}, T(5))
    finally:
        h.close()
    d.node.daemon.wait_log(lambda l: "device ias vanished: unhealthy" in l.get("msg", ""), T(5))


# The flag checks: --no-device-plugin needs --dra, the socket paths must fit, paths are absolute.
def test_17_09_flags(binary, workdir):
    r = sdp.run_cli(["--no-device-plugin"])
    assert r.returncode != 0 and "--no-device-plugin: needs --dra" in r.stderr
    r = sdp.run_cli(["--dra", "--node-name", "n1", "--dra-dir", "/" + "d" * 120])
    assert r.returncode != 0 and "--dra-dir: too long for a unix socket" in r.stderr
    r = sdp.run_cli(["--dra", "--node-name", "n1", "--plugins-registry", "/" + "r" * 100])
    assert r.returncode != 0 and "--plugins-registry: too long for a unix socket" in r.stderr
    r = sdp.run_cli(["--dra", "--node-name", "n1", "--dra-dir", "relative/dir"])
    assert r.returncode != 0 and "--dra-dir: expected an absolute path" in r.stderr
    env = dict(os.environ)
    env.pop("NODE_NAME", None)
    r = subprocess.run([sdp.BINARY, "--dra"], capture_output=True, text=True, env=env,
                       timeout=T(10))
    assert r.returncode != 0 and "--dra: needs the node's name" in r.stderr
    r = sdp.run_cli(["--help"])
    assert "/var/lib/kubelet/plugins_registry" in r.stdout and "--no-device-plugin" in r.stdout


# `health --dra` (the chart's liveness probe with DRA on): one ok line for the registration
# socket and one for dra.sock beside the device plugin's; with --no-device-plugin only those two;
# once the daemon is gone, exit 1 with the DRA lines FAILED.
@pytest.mark.parametrize("no_dp", [False, True], ids=["with-device-plugin", "dra-only"])
def test_17_11_health(dra, no_dp):
    extra = ["--no-device-plugin"] if no_dp else []
    d = dra(args=extra, wait_dp=not no_dp)
    d.wait_registered()
    argv = ["health", "--kubelet-dir", d.node.kdir, "--resource-domain", DRIVER, "--dra",
            "--plugins-registry=" + d.registry, "--dra-dir=" + d.dra_dir, "--timeout=3"] + extra
    r = sdp.run_cli(argv)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    dp = [f for f in os.listdir(d.node.kdir) if f.startswith("sgxdevplugin-")]
    assert len(dp) == (0 if no_dp else 3), dp
    assert len(lines) == len(dp) + 2, r.stdout
    assert [l for l in lines if l.startswith("dra-registration %s: ok (answered in " %
                                             d.reg_sock)], r.stdout
    assert [l for l in lines if l.startswith("dra-plugin %s: ok (answered in " % d.dra_sock)], \
        r.stdout
    # the kubelet's DRA side saw nothing odd, and the daemon logged no rejection
    assert not any("rejected" in l.get("msg", "") for l in d.node.daemon.lines()), \
        d.node.daemon.tail(20)
    assert d.node.stop_daemon() == 0
    r = sdp.run_cli(argv)
    assert r.returncode == 1, r.stdout + r.stderr
    assert len(r.stdout.splitlines()) == len(dp) + 2, r.stdout
    assert "dra-registration %s: FAILED: " % d.reg_sock in r.stdout, r.stdout
    assert "dra-plugin %s: FAILED: " % d.dra_sock in r.stdout, r.stdout
