"""sdp.py - what the integration tests share: the daemon under test as a process, a fake device
tree under a temp dir, timeouts, and small polling helpers. The fixtures in conftest.py put these
together; the test kubelet lives in tests/kubelet/fake_kubelet.py.
"""

import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "kubelet"))

import fake_kubelet  # noqa: E402

grpc, pb, pb_grpc = fake_kubelet.load_api()

BINARY = os.path.abspath(os.environ.get("SGXDEVPLUGIN", os.path.join(REPO, "build",
                                                                       "sgxdevplugin")))
DOMAIN = "sgx.k8s.io"
KINDS = ("sgx", "dcap", "ias")


def res(kind, domain=DOMAIN):
    return "%s/%s" % (domain, kind)


RESOURCES = [res(k) for k in KINDS]


def _binary_is_sanitized(path):
    try:
        with open(path, "rb") as f:
            return b"__asan_init" in f.read()
    except OSError:
        return False


# A sanitizer build: $SGXDEVPLUGIN_SANITIZED=1, or ASan's runtime found in the binary.
SANITIZED = os.environ.get("SGXDEVPLUGIN_SANITIZED") == "1" or _binary_is_sanitized(BINARY)
# The daemon runs under valgrind (tools/valgrind-integration.sh): valgrind keeps some file
# descriptors of the process's limit for itself.
VALGRIND = os.environ.get("SGXDEVPLUGIN_VALGRIND") == "1"

# Sanitizer builds run a few times slower: every timeout is multiplied by SCALE.
SCALE = float(os.environ.get("SGXDEVPLUGIN_TIMEOUT_SCALE") or (3.0 if SANITIZED else 1.0))


def T(seconds):
    """A timeout, scaled for slow (sanitizer) builds."""
    return seconds * SCALE


def poll(predicate, timeout, what, interval=0.02):
    """Calls predicate() until it returns something true and returns that; raises AssertionError
    naming |what| after |timeout| seconds."""
    end = time.monotonic() + timeout
    while True:
        v = predicate()
        if v:
            return v
        if time.monotonic() > end:
            raise AssertionError("timed out after %.1f s waiting for %s" % (timeout, what))
        time.sleep(interval)


# ---- the fake device tree ----

# (name relative to the dev root, kind, major, minor or link target)
ENCLAVE = (10, 125)
PROVISION = (10, 126)
ISGX = (10, 57)
MEM = (1, 1)  # /dev/mem
WATCHDOG = (10, 130)  # a misc device that is not SGX

LAYOUTS = {
    # in-kernel driver (Linux 5.11+)
    "inkernel": [("sgx_enclave", "c", ENCLAVE), ("sgx_provision", "c", PROVISION)],
    # out-of-tree DCAP driver
    "dcapdriver": [("sgx/enclave", "c", ENCLAVE), ("sgx/provision", "c", PROVISION)],
    # sgx/sgx_enclave (legacy name), no provisioning device
    "sgxdir": [("sgx/sgx_enclave", "c", ENCLAVE)],
    # legacy single `sgx` char device with its sgx_prv
    "legacy": [("sgx", "c", ENCLAVE), ("sgx_prv", "c", PROVISION)],
    # legacy out-of-tree IAS driver
    "ias": [("isgx", "c", ISGX)],
    "dcap_ias": [("sgx_enclave", "c", ENCLAVE), ("sgx_provision", "c", PROVISION),
                 ("isgx", "c", ISGX)],
    "none": [],
    # in-kernel nodes plus udev's sgx/ links, one relative and one absolute
    "udev": [("sgx_enclave", "c", ENCLAVE), ("sgx_provision", "c", PROVISION),
             ("sgx/enclave", "l", "../sgx_enclave"), ("sgx/provision", "l", "/dev/sgx_provision")],
    # real nodes in sgx/, the in-kernel names are links to them
    "udev_reverse": [("sgx/enclave", "c", ENCLAVE), ("sgx/provision", "c", PROVISION),
                     ("sgx_enclave", "l", "sgx/enclave"),
                     ("sgx_provision", "l", "/dev/sgx/provision")],
    # two real nodes with one major:minor: the first of sgx_enclave, sgx/enclave... is reported
    "dup_nodes": [("sgx/enclave", "c", ENCLAVE), ("sgx_enclave", "c", ENCLAVE),
                  ("sgx/provision", "c", PROVISION), ("sgx_provision", "c", PROVISION)],
    # links to links: sgx_enclave -> sgx/sgx_enclave -> /dev/sgx/enclave (the real node)
    "chain": [("sgx/enclave", "c", ENCLAVE), ("sgx/sgx_enclave", "l", "/dev/sgx/enclave"),
              ("sgx_enclave", "l", "sgx/sgx_enclave"), ("sgx/provision", "c", PROVISION)],
    # a dangling link is no device
    "dangling": [("sgx_enclave", "l", "/dev/sgx/enclave"), ("isgx", "l", "nothing")],
    # a provisioning device alone is no SGX
    "provision_only": [("sgx_provision", "c", PROVISION)],
    # right names, wrong file types: a regular file and a directory
    "not_chardev": [("sgx_enclave", "f", None), ("isgx", "d", None)],
    # issue 10: SGX names on what is not SGX, refused (test_11_sgx_only.py)
    "mem_link": [("mem", "c", MEM), ("sgx_enclave", "l", "mem")],
    "mem_dirlink": [("mem", "c", MEM), ("sgx/enclave", "l", "../mem")],
    "mem_numbers": [("sgx_enclave", "c", MEM)],
    "chain_outside": [("watchdog", "c", WATCHDOG), ("sgx_enclave", "l", "sgx/enclave"),
                      ("sgx/enclave", "l", "../wd"), ("wd", "l", "/dev/watchdog")],
}


class DevTree:
    """A fake /dev under |root| built with mknod."""

    def __init__(self, root):
        self.root = root

    def path(self, name):
        return os.path.join(self.root, name)

    def apply(self, layout):
        for name, kind, arg in LAYOUTS[layout]:
            if kind == "c":
                self.mknod(name, *arg)
            elif kind == "l":
                self.symlink(name, arg)
            elif kind == "f":
                self.mkfile(name)
            elif kind == "d":
                os.makedirs(self.path(name), exist_ok=True)

    def _parent(self, name):
        os.makedirs(os.path.dirname(self.path(name)), exist_ok=True)

    def mknod(self, name, major, minor):
        self._parent(name)
        os.mknod(self.path(name), 0o600 | stat.S_IFCHR, os.makedev(major, minor))

    def symlink(self, name, target):
        self._parent(name)
        os.symlink(target, self.path(name))

    def mkfile(self, name):
        self._parent(name)
        with open(self.path(name), "w") as f:
            f.write("not a device\n")

    def remove(self, name):
        p = self.path(name)
        if os.path.isdir(p) and not os.path.islink(p):
            shutil.rmtree(p)
        else:
            os.unlink(p)


def can_mknod():
    d = tempfile.mkdtemp(prefix="sdp-mknod")
    try:
        os.mknod(os.path.join(d, "c"), 0o600 | stat.S_IFCHR, os.makedev(1, 3))
        return True
    except PermissionError:
        return False
    finally:
        shutil.rmtree(d, ignore_errors=True)


# ---- the daemon ----

SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                   "SUMMARY: UndefinedBehaviorSanitizer", "SUMMARY: AddressSanitizer")


def sanitizer_env():
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0:exitcode=23")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    return env


class Daemon:
    """build/sgxdevplugin as a child process; stderr (its log) goes to a file that wait_log()
    reads. Lines are parsed as JSON when they are; other lines are kept as {"raw": line}."""

    def __init__(self, args, log_path, binary=BINARY, preexec_fn=None):
        self.args = [binary] + list(args)
        self.log_path = log_path
        self.preexec_fn = preexec_fn  # runs in the child before exec (e.g. setrlimit)
        self.proc = None
        self.returncode = None

    def start(self):
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=self._log,
                                     env=sanitizer_env(), preexec_fn=self.preexec_fn)
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def rss_kb(self):
        """Resident memory of the daemon in kB."""
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def cpu_seconds(self):
        """utime + stime of the daemon from /proc/PID/stat, in seconds."""
        with open("/proc/%d/stat" % self.proc.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        # after "pid (comm)": state is field 3, utime 14 and stime 15 (1-based)
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def open_fds(self):
        return len(os.listdir("/proc/%d/fd" % self.proc.pid))

    def raw_lines(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace").splitlines()

    def lines(self):
        out = []
        for l in self.raw_lines():
            try:
                j = json.loads(l)
                if not isinstance(j, dict):
                    raise ValueError
                out.append(j)
            except ValueError:
                out.append({"raw": l})
        return out

    def mark(self):
        """The number of log lines so far: pass it as |since| to wait_log()."""
        return len(self.raw_lines())

    def wait_log(self, predicate, timeout, since=0, what="a log line"):
        """Waits for a line (a dict) from line |since| on for which predicate(line) is true;
        returns it. Fails early if the daemon exits."""

        def find():
            for l in self.lines()[since:]:
                if predicate(l):
                    return l
            if not self.alive():
                raise AssertionError("daemon exited (%s) while waiting for %s; log tail:\n%s" % (
                    self.proc.poll(), what, self.tail()))
            return None

        try:
            return poll(find, timeout, what)
        except AssertionError as e:
            if "daemon exited" in str(e):
                raise
            raise AssertionError("%s; log tail:\n%s" % (e, self.tail())) from None

    def tail(self, n=30):
        return "\n".join(self.raw_lines()[-n:])

    def sanitizer_reports(self):
        return [l for l in self.raw_lines() if any(m in l for m in SANITIZER_MARKS)]

    def stop(self, sig=signal.SIGTERM, timeout=None):
        """Sends |sig| and waits for the exit; returns the exit code (None if it had to be
        killed after |timeout|)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout if timeout is not None else T(10))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self.returncode = None
                self._log.close()
                return None
        self.returncode = self.proc.returncode
        self._log.close()
        return self.returncode


def run_cli(args, timeout=None, binary=BINARY):
    """Runs the binary to completion: CompletedProcess with text stdout/stderr."""
    return subprocess.run([binary] + list(args), stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=timeout or T(10), env=sanitizer_env())


def unix_connect(path, timeout=None):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout or T(5))
    s.connect(path)
    return s


def channel(path, authority=None, max_recv=64 * 1024 * 1024):
    """A grpcio channel to a plugin socket."""
    opts = [("grpc.use_local_subchannel_pool", 1),  # a connection of its own
            ("grpc.max_receive_message_length", max_recv),
            ("grpc.max_send_message_length", 64 * 1024 * 1024)]
    if authority:
        opts.append(("grpc.default_authority", authority))
    return grpc.insecure_channel("unix://" + path, options=opts)


def specs(resp, i=0):
    """The DeviceSpecs of container response |i| as a sorted list of tuples."""
    return sorted((d.container_path, d.host_path, d.permissions)
                  for d in resp.container_responses[i].devices)


class Watcher:
    """A ListAndWatch stream of our own on a plugin socket, read in a thread."""

    def __init__(self, path, authority=None, max_recv=None):
        import threading
        self.channel = channel(path, authority, max_recv or 64 * 1024 * 1024)
        self.cond = threading.Condition()
        self.updates = []  # (monotonic time, {ID: health})
        self.ended = None
        self.call = pb_grpc.DevicePluginStub(self.channel).ListAndWatch(pb.Empty())
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            for resp in self.call:
                with self.cond:
                    self.updates.append((time.monotonic(),
                                         {d.ID: d.health for d in resp.devices}))
                    self.cond.notify_all()
            why = ("OK", "")
        except grpc.RpcError as e:
            why = (e.code().name, e.details())
        with self.cond:
            self.ended = why
            self.cond.notify_all()

    def wait(self, predicate, timeout, what):
        """Waits until predicate(latest devices dict) holds; returns the update time."""
        end = time.monotonic() + timeout
        with self.cond:
            while True:
                if self.updates and predicate(self.updates[-1][1]):
                    return self.updates[-1][0]
                if self.ended is not None:
                    raise AssertionError("stream ended (%s) while waiting for %s" % (
                        self.ended, what))
                left = end - time.monotonic()
                if left <= 0:
                    last = self.updates[-1][1] if self.updates else None
                    raise AssertionError("timed out after %.1f s waiting for %s; last update: %s" %
                                         (timeout, what, summary(last)))
                self.cond.wait(min(left, 0.05))

    def close(self):
        self.call.cancel()
        self.thread.join(5)
        self.channel.close()


def healthy(devices):
    return sum(1 for h in devices.values() if h == "Healthy")


def summary(devices):
    if devices is None:
        return "none"
    return "%d devices, %d Healthy" % (len(devices), healthy(devices))


def all_health(n, health="Healthy"):
    """A predicate: exactly n devices, all with |health|."""
    return lambda d: len(d) == n and all(h == health for h in d.values())
