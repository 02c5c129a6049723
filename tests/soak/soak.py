"""soak.py - what the soak and fault tests share beyond the integration suite's sdp.py: the
daemon's open file descriptors and resident memory read from /proc, and the figures a run
prints at its end (conftest.py prints them).
"""

import os
import time

import sdp
from sdp import T

FIGURES = []  # (test, text): measured figures printed at the end of the run


def figure(request, fmt, *args):
    """Records one figure of the running test for the end-of-run summary."""
    FIGURES.append((request.node.name, fmt % args))


# ---- the daemon seen from /proc ----

def fds(pid):
    """The daemon's open file descriptors: {fd number: what it points at}."""
    out = {}
    d = "/proc/%d/fd" % pid
    for name in os.listdir(d):
        try:
            out[int(name)] = os.readlink(os.path.join(d, name))
        except FileNotFoundError:  # closed while we looked
            pass
    return out


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def rss_kb(pid):
    """VmRSS of |pid| in KiB."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for pid %d" % pid)


def inotify_watches(pid):
    """Inode numbers of everything |pid| watches with inotify (from /proc/PID/fdinfo)."""
    out = set()
    for n, target in fds(pid).items():
        if target != "anon_inode:inotify":
            continue
        try:
            with open("/proc/%d/fdinfo/%d" % (pid, n)) as f:
                for line in f:
                    if line.startswith("inotify "):
                        fields = dict(x.split(":", 1) for x in line.split()[1:])
                        out.add(int(fields["ino"], 16))
        except FileNotFoundError:
            pass
    return out


def fd_kinds(pid):
    """The daemon's descriptors as a sorted list of kinds: paths as they are, "socket:" and
    "anon_inode:[...]" without their inode (sockets are new ones after every re-bind, and fd
    numbers may be reused in another order)."""
    out = []
    for t in fds(pid).values():
        out.append("socket:" if t.startswith("socket:") else t)
    return sorted(out)


def wait_fds(pid, want, timeout, what):
    """Waits until |pid|'s descriptors (fd_kinds()) are exactly |want|: as many, of the same
    kinds. Connections close asynchronously, hence the wait."""
    try:
        sdp.poll(lambda: fd_kinds(pid) == want, timeout, what)
    except AssertionError:
        now = fd_kinds(pid)
        extra, gone = list(now), []
        for k in want:
            if k in extra:
                extra.remove(k)
            else:
                gone.append(k)
        raise AssertionError("%s: %d fds now, %d at baseline; extra: %s; missing: %s; all: %s" % (
            what, len(now), len(want), extra, gone, fds(pid))) from None


def settled_fds(pid, timeout):
    """The daemon's descriptors once they stopped changing (connections we closed are closed
    on the daemon's side a moment later): the same for 0.5 s."""
    end = time.monotonic() + timeout
    last, since = None, time.monotonic()
    while True:
        now = fd_kinds(pid)
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= 0.5:
            return now
        assert time.monotonic() < end, "the daemon's descriptors keep changing: %s" % now
        time.sleep(0.05)


def warm_up(nd):
    """Brings the daemon of |nd| to its steady set of descriptors and returns that set: one
    kubelet restart whose first Register of each resource is refused (a registration's retry
    timer, a timerfd, is made at its first failure and kept for good), then the descriptors once
    they stopped changing."""
    k = nd.kubelet
    k.stop()
    k.wipe()
    for r in nd.resources:
        k.reject(1, resource=r, code=sdp.grpc.StatusCode.UNAVAILABLE)
    k.start()
    k.wait_for(lambda: all(k.register_count(r, generation=k.generation, ok=False) == 2
                           for r in nd.resources), T(10), "a refused Register of each resource")
    nd.wait_registered(timeout=T(10))
    return settled_fds(nd.daemon.proc.pid, T(10))
