"""conftest.py - fixtures for the integration tests: a simulated node (a fake device tree made
with mknod, the test kubelet, the daemon under test with --log-format json --log-level debug),
torn down after the yield with SIGTERM and a check that the daemon exited 0, left no sanitizer
report and never broke the kubelet protocol (the test kubelet's `errors` and `stream_ends`).

The binary is $SGXDEVPLUGIN (default build/sgxdevplugin); timeouts scale with sdp.SCALE.
"""

import os
import shutil
import signal
import tempfile
import time

import pytest

import sdp
from sdp import T
from fake_kubelet import FakeKubelet

RESTART_FIGURES = []  # (test, seconds) from kubelet.sock creation to all re-registered


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


def pytest_terminal_summary(terminalreporter):
    if RESTART_FIGURES:
        terminalreporter.section("kubelet restart: kubelet.sock created -> all re-registered")
        for name, secs in RESTART_FIGURES:
            terminalreporter.write_line("%8.1f ms  %s" % (secs * 1000, name))


def pytest_report_header(config):
    return "sgxdevplugin: %s (timeout scale %.1f)" % (sdp.BINARY, sdp.SCALE)


@pytest.fixture(scope="session")
def binary():
    if not os.access(sdp.BINARY, os.X_OK):
        pytest.fail("no daemon binary at %s (build it, or set SGXDEVPLUGIN)" % sdp.BINARY)
    return sdp.BINARY


@pytest.fixture(scope="session")
def mknod_ok():
    if not sdp.can_mknod():
        pytest.skip("mknod of a character device is not permitted here (needs root/CAP_MKNOD)")


@pytest.fixture
def workdir(request):
    """A short temp dir (unix socket paths must stay under 108 bytes). Kept when the test fails
    or $SGXDEVPLUGIN_KEEP is set."""
    d = tempfile.mkdtemp(prefix="sdp-", dir="/tmp")
    yield d
    rep = getattr(request.node, "rep_call", None)
    if (rep is not None and rep.failed) or os.environ.get("SGXDEVPLUGIN_KEEP"):
        print("kept %s for inspection" % d)
    else:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def devtree(workdir, mknod_ok):
    """A factory: devtree(layout) builds WORKDIR/dev with that layout and returns a DevTree."""

    def make(layout="inkernel", root=None):
        t = sdp.DevTree(root or os.path.join(workdir, "dev"))
        os.makedirs(t.root, exist_ok=True)
        t.apply(layout)
        return t

    return make


class Node:
    """One simulated node: dev tree, test kubelet, daemon. Built by the `node` fixture."""

    def __init__(self, workdir, dev, kubelet_dir, kubelet, daemon, resources):
        self.workdir = workdir
        self.dev = dev
        self.kdir = kubelet_dir
        self.kubelet = kubelet
        self.daemon = daemon
        self.resources = resources
        self.allow_stream_ends = False  # the test ends streams on purpose
        self.allow_reregister = False  # the test makes the kubelet drop the plugin
        self.events_from = 0  # kubelet events since the daemon's last start
        self.stopped = None  # monotonic time of the stop signal

    def socket(self, kind):
        return os.path.join(self.kdir, "sgxdevplugin-%s.sock" % kind)

    def wait_registered(self, resources=None, timeout=None):
        self.kubelet.wait_registered(resources or self.resources, timeout or T(10))

    def wait_devices(self, resource, healthy, total=None, timeout=None):
        """Waits until the kubelet shows |healthy| allocatable (and |total| capacity)."""
        k = self.kubelet

        def ok():
            return k.allocatable(resource) == healthy and (
                total is None or k.capacity(resource) == total)

        try:
            k.wait_for(ok, timeout or T(5), "%s allocatable=%d capacity=%s" % (
                resource, healthy, total))
        except AssertionError as e:
            raise AssertionError("%s (now allocatable=%d capacity=%d)" % (
                e, k.allocatable(resource), k.capacity(resource))) from None

    def stop_daemon(self, sig=signal.SIGTERM):
        if not self.stopped:
            self.stopped = time.monotonic()  # streams may end from here on
        return self.daemon.stop(sig)

    def restart_daemon(self):
        """SIGTERM (must exit 0), wait until the kubelet saw every stream end, start again and
        wait for the registrations: a rolling update with the same kubelet."""
        rc = self.stop_daemon()
        assert rc == 0, "daemon exit code on SIGTERM: %r" % rc
        k = self.kubelet
        k.wait_for(lambda: all(k.resources[r].current is None for r in self.resources), T(5),
                   "the kubelet to see every stream end after SIGTERM")
        with k.lock:
            k.stream_ends.clear()
            self.events_from = len(k.events)
        self.stopped = None
        self.daemon.start()
        self.wait_registered()

    def problems(self):
        """What went wrong beyond the test's own assertions."""
        out = []
        if self.kubelet is not None:
            out += ["kubelet: " + e for e in self.kubelet.errors]
            if not self.allow_stream_ends:
                out += ["kubelet: %s: the plugin ended ListAndWatch while serving: %s" % (r, w)
                        for (t, r, w) in self.kubelet.stream_ends
                        if not self.stopped or t < self.stopped]
            most, counts = self.kubelet.max_registrations(self.events_from)
            if most > 1 and not self.allow_reregister:
                out.append("kubelet: more than one successful Register per resource and kubelet "
                           "instance: %s" % {"gen%d %s" % k: v for k, v in counts.items()
                                             if v > 1})
        return out


@pytest.fixture
def node(request, workdir, devtree, binary):
    """A factory: node(layout, args=[], kubelet=True, authority=None, wait=True) builds the dev
    tree (none at all for layout=None), starts the test kubelet (unless kubelet=False; start it
    later with node.kubelet.start()) and the daemon, and with |wait| waits for every resource to
    register and list. On teardown: the kubelet saw no protocol error, SIGTERM exits 0, no sanitizer
    report."""
    nodes = []

    def make(layout="inkernel", args=(), kubelet=True, authority=None, wait=True,
             resources=None, kubelet_dir=None, dev_root=None, preexec_fn=None):
        if layout is None:  # the dev root does not exist yet
            dev = sdp.DevTree(dev_root or os.path.join(workdir, "dev"))
        else:
            dev = devtree(layout, root=dev_root)
        kdir = kubelet_dir or os.path.join(workdir, "k")
        k = FakeKubelet(kdir, authority=authority, dial_timeout=T(5))
        if kubelet:
            k.start()
        log = os.path.join(workdir, "daemon.log")
        # an empty sys root unless the test gives one: the host's /sys must not decide a test
        # (discovery checks the kernel's name of each device there; capabilities read EPC)
        sys_root = os.path.join(workdir, "empty-sys")
        os.makedirs(sys_root, exist_ok=True)
        # and a CDI directory of its own (--cdi and --dra write a spec there), never the host's
        cdi_dir = os.path.join(workdir, "cdi")
        d = sdp.Daemon(["--kubelet-dir", kdir, "--dev-root", dev.root, "--log-format", "json",
                        "--log-level", "debug", "--sys-root", sys_root, "--cdi-dir", cdi_dir]
                       + list(args), log,
                       preexec_fn=preexec_fn)
        n = Node(workdir, dev, kdir, k, d, resources or list(sdp.RESOURCES))
        nodes.append(n)
        d.start()
        if kubelet and wait:
            n.wait_registered()
        return n

    yield make

    problems = []
    for n in nodes:
        problems += n.problems()
        if not n.stopped:
            rc = n.stop_daemon()
            if rc != 0:
                problems.append("daemon exit code on SIGTERM: %r (want 0)" % rc)
        problems += ["sanitizer: " + l for l in n.daemon.sanitizer_reports()]
        n.kubelet.stop()
        rep = getattr(request.node, "rep_call", None)
        if problems or (rep is not None and rep.failed):
            print("daemon log tail (%s):\n%s" % (n.daemon.log_path, n.daemon.tail(40)))
    if problems:
        pytest.fail("teardown found problems:\n  " + "\n  ".join(problems), pytrace=False)


@pytest.fixture
def restart_figures():
    return RESTART_FIGURES
