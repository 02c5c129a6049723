"""test_podman.py - the release image, run for real (issue #4 section 2): the final stage of the
root Dockerfile, fed the static binary built on the host (BINARY_SOURCE=host: FROM scratch, no
pulls, no network), built and run with Debian's podman. The container gets the test kubelet's
socket directory bind-mounted at the default --kubelet-dir and fake SGX character devices (either a
fake /dev tree bind-mounted read-only at --dev-root, as the Helm chart mounts the host's /dev, or
the device nodes passed with --device), runs read-only with every capability dropped and no
network; it must register with the test kubelet on the host, answer Allocate, pass `health` run
inside it (the liveness probe) and exit 0 with its sockets removed on `podman stop`.

The binary is $SGXDEVPLUGIN_STATIC (default build-static/sgxdevplugin); it must be statically
linked, since the image holds nothing else.

Podman here: its default runtime (crun) fails on these machines' hybrid cgroups and on rlimits, so
the test writes a containers.conf (CONTAINERS_CONF) selecting runc, cgroupfs, file events and
explicit default_ulimits no higher than the hard limits podman itself runs with (runc has no
CAP_SYS_RESOURCE to raise them: podman 4.3 sets its own RLIMIT_NPROC to 32768 at start, so nproc
is capped there). Images and containers live in a vfs store under a temp dir, removed afterwards.
Needs root, podman and runc (`apt-get install podman runc`), and a root directory that is a mount
point (in a chroot, bind-mount the root onto itself first); skips with the reason otherwise.
"""

import json
import os
import resource
import shutil
import struct
import subprocess
import tarfile
import tempfile
import time

import pytest

import sdp
from sdp import T, res
from fake_kubelet import FakeKubelet
from test_10_labels import api, caps_args, pki, write_token  # noqa: F401 (fixtures)

DOCKERFILE = os.path.join(sdp.REPO, "Dockerfile")
STATIC = os.path.abspath(os.environ.get("SGXDEVPLUGIN_STATIC") or
                         os.path.join(sdp.REPO, "build-static", "sgxdevplugin"))
CONTAINER_KDIR = "/var/lib/kubelet/device-plugins"  # the daemon's default --kubelet-dir
PODMAN_NPROC_CAP = 32768  # podman 4.3 lowers its own RLIMIT_NPROC to this before running runc


def is_static_elf(path):
    """True when |path| is an ELF executable without a PT_INTERP (no dynamic loader)."""
    with open(path, "rb") as f:
        head = f.read(64)
        if head[:4] != b"\x7fELF" or head[4] != 2:  # 64-bit only
            return False
        endian = "<" if head[5] == 1 else ">"
        phoff, = struct.unpack_from(endian + "Q", head, 32)
        phentsize, phnum = struct.unpack_from(endian + "HH", head, 54)
        for i in range(phnum):
            f.seek(phoff + i * phentsize)
            p_type, = struct.unpack(endian + "I", f.read(4))
            if p_type == 3:  # PT_INTERP
                return False
    return True


class Podman:
    """Debian's podman with a private config and store under |root|."""

    def __init__(self, root):
        self.root = root
        self.conf = os.path.join(root, "containers.conf")
        nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        nproc = resource.getrlimit(resource.RLIMIT_NPROC)[1]
        nofile = 1048576 if nofile == resource.RLIM_INFINITY else min(nofile, 1048576)
        nproc = PODMAN_NPROC_CAP if nproc == resource.RLIM_INFINITY else min(nproc,
                                                                             PODMAN_NPROC_CAP)
        for d in ("storage", "run", "tmp"):
            os.makedirs(os.path.join(root, d), exist_ok=True)
        with open(self.conf, "w") as f:
            f.write('[containers]\n'
                    'default_ulimits = ["nofile=%d:%d", "nproc=%d:%d"]\n'
                    '[engine]\n'
                    'runtime = "runc"\n'
                    'cgroup_manager = "cgroupfs"\n'
                    'events_logger = "file"\n'
                    'tmp_dir = "%s"\n' % (nofile, nofile, nproc, nproc,
                                          os.path.join(root, "tmp")))
        self.env = dict(os.environ, CONTAINERS_CONF=self.conf)
        self.base = ["podman", "--root", os.path.join(root, "storage"), "--runroot",
                     os.path.join(root, "run"), "--storage-driver", "vfs"]

    def run(self, *args, check=True, timeout=120):
        r = subprocess.run(self.base + list(args), stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, timeout=timeout, env=self.env)
        if check and r.returncode != 0:
            raise AssertionError("podman %s: exit %d\nstdout: %s\nstderr: %s" % (
                " ".join(args), r.returncode, r.stdout, r.stderr))
        return r

    def inspect(self, what, name):
        return json.loads(self.run(what, "inspect", name).stdout)[0]


def root_is_mount_point():
    """False in a chroot whose root directory is not a mount point of its own."""
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == "/" for line in f)


def why_no_podman():
    """None when podman can be tried here, else the reason."""
    if os.geteuid() != 0:
        return "needs root (rootful podman, mknod)"
    for tool in ("podman", "runc"):
        if shutil.which(tool) is None:
            return "%s is not installed (apt-get install podman runc)" % tool
    if not root_is_mount_point():
        # containers/storage applies every layer in a private mount namespace whose first step,
        # remounting / private, fails with EINVAL when / is not a mount point
        return ("/ is not a mount point (a chroot without its root bind-mounted onto itself): "
                "podman cannot apply image layers here ('remount /, flags: 0x44000: invalid "
                "argument'); run the chroot on `mount --bind ROOT ROOT`")
    return None


@pytest.fixture(scope="module")
def podman():
    why = why_no_podman()
    if why:
        pytest.skip(why)
    root = tempfile.mkdtemp(prefix="sdp-podman-", dir="/tmp")
    p = Podman(root)
    yield p
    p.run("rm", "--all", "--force", check=False)
    p.run("rmi", "--all", "--force", check=False)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def image(podman, figures):
    """Builds the Dockerfile's final stage from the host's static binary; returns its name."""
    if not os.access(STATIC, os.X_OK):
        pytest.fail("no static binary at %s: meson setup build-static -Dstatic=true && "
                    "ninja -C build-static (or set SGXDEVPLUGIN_STATIC)" % STATIC)
    if not is_static_elf(STATIC):
        pytest.fail("%s is dynamically linked: the image holds nothing but the binary, build it "
                    "with -Dstatic=true" % STATIC)
    ctx = os.path.join(podman.root, "context")
    os.makedirs(ctx)
    binary = os.path.join(ctx, "sgxdevplugin")
    if shutil.which("strip"):
        subprocess.run(["strip", "-o", binary, STATIC], check=True)
    else:
        shutil.copy2(STATIC, binary)
    name = "localhost/sgxdevplugin:test-%d" % os.getpid()
    t = time.monotonic()
    podman.run("build", "--pull=never", "--network", "none", "--build-arg", "BINARY_SOURCE=host",
               "-f", DOCKERFILE, "-t", name, ctx)
    figures["podman build (final stage)"] = "%.2f s" % (time.monotonic() - t)
    figures["binary in the image"] = "%d bytes (%s)" % (os.path.getsize(binary),
                                                        "stripped" if shutil.which("strip")
                                                        else "not stripped")
    figures["image size"] = "%d bytes" % podman.inspect("image", name)["Size"]
    return name


def start_container(podman, image, name, kdir, dev, mode, args=()):
    """podman run -d: read-only, no capabilities, no network, the kubelet dir bind-mounted at the
    default --kubelet-dir, devices as |mode| says."""
    cmd = ["run", "-d", "--name", name, "--network", "none", "--read-only", "--cap-drop", "ALL",
           "--security-opt", "no-new-privileges", "-v", "%s:%s" % (kdir, CONTAINER_KDIR)]
    if mode == "devtree":  # the host's /dev at --dev-root, read-only, as the Helm chart does
        cmd += ["-v", "%s:/host/dev:ro" % dev.root, image, "--dev-root", "/host/dev"]
    else:  # the nodes themselves in the container's /dev
        for name_, kind, _ in sdp.LAYOUTS["inkernel"]:
            cmd += ["--device", "%s:/dev/%s" % (dev.path(name_), name_)]
        cmd += [image]
    podman.run(*(cmd + ["--log-format", "json"] + list(args)))


def container_log(podman, name):
    r = podman.run("logs", name, check=False)
    return r.stdout + r.stderr


def in_kernel_specs():
    enclave, provision = "/dev/sgx_enclave", "/dev/sgx_provision"
    return sorted([("/dev/sgx_enclave", enclave, "rw"), ("/dev/sgx/enclave", enclave, "rw"),
                   ("/dev/sgx_provision", provision, "rw"),
                   ("/dev/sgx/provision", provision, "rw")])


# 01: the final stage holds the binary and nothing else, with it as the entrypoint
def test_podman_01_image_is_the_binary_alone(podman, image, workdir):
    cfg = podman.inspect("image", image)
    assert cfg["Config"]["Entrypoint"] == ["/sgxdevplugin"]
    assert len(cfg["RootFS"]["Layers"]) == 1, cfg["RootFS"]
    archive = os.path.join(workdir, "image.tar")
    podman.run("save", "--format", "docker-archive", "-o", archive, image)
    files = []
    with tarfile.open(archive) as outer:
        manifest = json.load(outer.extractfile("manifest.json"))
        layers = manifest[0]["Layers"]
        assert len(layers) == 1, manifest
        with tarfile.open(fileobj=outer.extractfile(layers[0])) as layer:
            files = [(m.name, m.isfile()) for m in layer.getmembers()]
    assert files == [("sgxdevplugin", True)], files
    r = podman.run("run", "--rm", "--network", "none", image, "--version")
    assert r.stdout.startswith("sgxdevplugin "), r.stdout + r.stderr


# 02: the container registers with the kubelet on the host, answers Allocate with the host's
# device paths, passes `health` run inside it, re-registers after a kubelet restart and exits 0
# with its sockets removed on `podman stop`
@pytest.mark.parametrize("mode", ["devtree", "device"])
def test_podman_02_register_allocate_stop(podman, image, workdir, devtree, figures, mode):
    dev = devtree("inkernel")
    kdir = os.path.join(workdir, "k")
    k = FakeKubelet(kdir, dial_timeout=T(5))
    k.start()
    name = "sdp-test-%d-%s" % (os.getpid(), mode)
    stopped = None
    try:
        t = time.monotonic()
        start_container(podman, image, name, kdir, dev, mode)
        k.wait_registered(sdp.RESOURCES, T(20))
        figures["run -> all registered (%s)" % mode] = "%.2f s" % (time.monotonic() - t)
        k.wait_for(lambda: k.allocatable(res("dcap")) == 110, T(5), "dcap allocatable=110")
        assert k.allocatable(res("sgx")) == 110
        assert k.capacity(res("ias")) == 0

        # Allocate on the kubelet's own registration channel
        resp = k.allocate(res("dcap"), ["dcap-0"], timeout=T(5))
        assert sdp.specs(resp) == in_kernel_specs()
        resp = k.allocate(res("sgx"), ["sgx-3"], ["sgx-4"], timeout=T(5))
        assert sdp.specs(resp, 1) == in_kernel_specs()

        # the liveness probe, as the kubelet would exec it
        r = podman.run("exec", name, "/sgxdevplugin", "health", "--timeout", "2", check=False)
        assert r.returncode == 0, r.stdout + r.stderr
        assert r.stdout.count(": ok") == 3, r.stdout

        # inotify on the bind-mounted directory sees a kubelet restart. The daemon is given time
        # to see kubelet.sock gone before the directory is wiped and the socket made again: on
        # ext4 the new kubelet.sock usually gets the old inode number, and a daemon that only
        # looks after both events cannot tell the restart (a plugin.c race of its own, not the
        # container's).
        k.stop()
        sdp.poll(lambda: "kubelet socket is gone" in container_log(podman, name), T(5),
                 "the daemon to see kubelet.sock removed", interval=0.05)
        k.wipe()
        k.start()
        k.wait_registered(sdp.RESOURCES, T(10))

        t = time.monotonic()
        stopped = t
        podman.run("stop", "--time", "10", name)
        figures["podman stop (%s)" % mode] = "%.2f s" % (time.monotonic() - t)
        state = podman.inspect("container", name)["State"]
        log = container_log(podman, name)
        assert state["ExitCode"] == 0, "exit code %s on podman stop; log:\n%s" % (
            state["ExitCode"], log)
        assert time.monotonic() - t < T(5), "podman stop waited for the kill timeout"
        assert '"received SIGTERM' in log and '"stopped"' in log, log
        left = sorted(os.listdir(kdir))
        assert left == ["kubelet.sock"], "sockets left after stop: %s" % left
        assert not k.errors, k.errors
        # streams ended only once we stopped the container
        early = [(r_, w) for (t_, r_, w) in k.stream_ends if t_ < stopped]
        assert not early, early
    finally:
        if stopped is None or os.environ.get("SDP_KEEP_LOG"):
            print("container log:\n" + container_log(podman, name))
        podman.run("rm", "--force", name, check=False)
        k.stop()



# ---- CDI (issue #11 section 3) ----

# podman 4.3's CDI spec dirs: built in, no containers.conf setting and no flag (`podman info`
# shows none). Tried by hand with podman 4.3.1: cdiVersion 0.2.0 to 0.5.0 load (hostPath in
# deviceNodes included); 0.6.0 and later are skipped without a word, and `--device D/sgx=dcap`
# then fails with "unresolvable CDI devices".
CDI_DIRS = ("/etc/cdi", "/var/run/cdi")


def podman_cdi_dirs(podman):
    """The CDI spec directories this podman reads: containers.conf's `cdi_spec_dirs` when podman
    knows the setting (`podman info` shows it), else the built-in /etc/cdi and /var/run/cdi."""
    info = json.loads(podman.run("info", "--format", "json").stdout)
    dirs = (info.get("host") or {}).get("cdiSpecDirs") or info.get("cdiSpecDirs")
    return list(dirs) if dirs else list(CDI_DIRS)


def probe_in_container(podman, image, *run_args):
    """`probe --json` of the image's binary in a FROM scratch container: the devices it sees."""
    r = podman.run("run", "--rm", "--network", "none", *run_args, image, "probe", "--json",
                   "--dev-root", "/dev", check=False)
    return r


# 03: the daemon (on the host, --cdi) writes its spec to the CDI directory podman reads; podman
# runs the FROM scratch image with --device D/sgx=dcap from that spec alone, and the container
# sees the character devices at both names with the host's major:minor; D/sgx=dcap-noprovision is
# no device of this spec (it is written for the provisioning flag in force)
def test_podman_03_cdi_device_from_the_daemons_spec(podman, image, workdir, devtree, binary):
    dev = devtree("inkernel")
    cdi_dir = podman_cdi_dirs(podman)[-1]
    # a domain of its own: the spec file name cannot meet another writer's in a shared directory
    domain = "t%d.cdi.sgxdevplugin.test" % os.getpid()
    path = os.path.join(cdi_dir, "%s-sgx.json" % domain)
    made_dir = not os.path.isdir(cdi_dir)
    d = sdp.Daemon(["--kubelet-dir", os.path.join(workdir, "k"), "--dev-root", dev.root,
                    "--resource-domain", domain, "--cdi", "--cdi-dir", cdi_dir,
                    "--log-format", "json"], os.path.join(workdir, "daemon.log"), binary=binary)
    d.start()
    try:
        sdp.poll(lambda: os.path.exists(path), T(5), "the daemon's CDI spec in %s" % cdi_dir)
        r = probe_in_container(podman, image, "--device", "%s/sgx=dcap" % domain)
        if r.returncode != 0 and ("CDI" in r.stderr or "cdi" in r.stderr):
            with open(path) as f:
                spec = f.read()
            pytest.fail("podman %s cannot use the daemon's CDI spec: %s\nspec:\n%s" % (
                podman.run("--version").stdout.strip(), r.stderr.strip(), spec))
        assert r.returncode == 0, r.stdout + r.stderr
        seen = {x["name"]: (x["major"], x["minor"]) for x in json.loads(r.stdout)["devices"]}
        assert seen == {"sgx_enclave": sdp.ENCLAVE, "sgx/enclave": sdp.ENCLAVE,
                        "sgx_provision": sdp.PROVISION, "sgx/provision": sdp.PROVISION}, seen
        # a name the spec does not hold is refused by podman, not silently ignored
        r = probe_in_container(podman, image, "--device", "%s/sgx=dcap-noprovision" % domain)
        assert r.returncode != 0, r.stdout
        # without the CDI device the container has no SGX device at all
        r = probe_in_container(podman, image)
        assert r.returncode == 0, r.stdout + r.stderr
        assert json.loads(r.stdout)["devices"] == [], r.stdout
    finally:
        rc = d.stop()
        log = "\n".join(d.raw_lines())
        leftover = os.path.exists(path)
        if leftover:
            os.unlink(path)
        if made_dir:
            try:
                os.rmdir(cdi_dir)
            except OSError:
                pass
    assert rc == 0, log
    assert not leftover, "the spec survived the daemon's SIGTERM:\n" + log


# 04: the DRA path end to end with a real runtime: the daemon with --dra (on the host) publishes
# its pool, the test DRA kubelet asks it to prepare an allocated claim, and podman runs the FROM
# scratch image with exactly the CDI device IDs the prepare answered, resolved from the spec
# --dra wrote: the container sees the enclave and provisioning devices with the host's numbers
def test_podman_04_dra_prepared_claim_runs(podman, image, workdir, devtree, node, api, pki):
    from fake_dra_kubelet import FakeDraKubelet  # tests/kubelet (on the path with fake_kubelet)

    cdi_dir = podman_cdi_dirs(podman)[-1]
    domain = "t%d.dra.sgxdevplugin.test" % os.getpid()
    path = os.path.join(cdi_dir, "%s-sgx.json" % domain)
    made_dir = not os.path.isdir(cdi_dir)
    srv = api(node="node-1")
    uid = "5d1c2b3a-0000-4000-8000-00000000c1a1"
    srv.add_claim("team", "enclave", uid, results=[("sgx", domain, "node-1", "dcap")])
    reg = os.path.join(workdir, "reg")
    k = FakeDraKubelet(reg, driver=domain, dial_timeout=T(5))
    k.start()
    try:
        nd = node("inkernel", [
            "--resource-domain", domain, "--no-device-plugin", "--dra", "--node-name", "node-1",
            "--apiserver", srv.url, "--token-file", write_token(workdir, "token-1"),
            "--ca-file", pki.ca, "--plugins-registry", reg,
            "--dra-dir", os.path.join(workdir, "plugins", domain), "--cdi-dir", cdi_dir,
        ] + caps_args(workdir), kubelet=False)
        k.wait_registered(domain, T(10))
        resp = k.prepare(domain, [("team", uid, "enclave")], timeout=T(10))
        claim = resp.claims[uid]
        assert claim.error == "", claim.error
        ids = [i for d in claim.devices for i in d.cdi_device_ids]
        assert ids == ["%s/sgx=dcap" % domain], ids
        sdp.poll(lambda: os.path.exists(path), T(5), "the daemon's CDI spec in %s" % cdi_dir)
        r = probe_in_container(podman, image, *[a for i in ids for a in ("--device", i)])
        assert r.returncode == 0, r.stdout + r.stderr
        seen = {x["name"]: (x["major"], x["minor"]) for x in json.loads(r.stdout)["devices"]}
        assert seen == {"sgx_enclave": sdp.ENCLAVE, "sgx/enclave": sdp.ENCLAVE,
                        "sgx_provision": sdp.PROVISION, "sgx/provision": sdp.PROVISION}, seen
        assert k.unprepare(domain, [("team", uid, "enclave")], timeout=T(10)).claims[uid].error \
            == ""
        rc = nd.stop_daemon()
        assert rc == 0, nd.daemon.tail(20)
        assert not os.path.exists(path), "the spec survived the daemon's SIGTERM"
    finally:
        k.stop()
        if os.path.exists(path):
            os.unlink(path)
        if made_dir:
            try:
                os.rmdir(cdi_dir)
            except OSError:
                pass
