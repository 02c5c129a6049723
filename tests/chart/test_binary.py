"""test_binary.py - the command lines the chart renders are ones the real daemon accepts (issue
#4): for several value sets, the DaemonSet's args start the binary (SGXDEVPLUGIN, default
build/sgxdevplugin), which serves its sockets, and the liveness probe's command, run as the
kubelet would, passes against it and fails once it is gone. The host paths are swapped for temp
directories; everything else is exactly the rendered argv."""

import os
import pathlib
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

from chartlib import TOP, args_of, container, write_values

BINARY = os.environ.get("SGXDEVPLUGIN", os.path.join(TOP, "build", "sgxdevplugin"))
DEV_ROOT = "/host/dev"

VALUE_SETS = {
    "defaults": {},
    "no-labels": {"labelNodes": False},
    "everything": {"maxSGXPods": 100000, "provision": False, "resourceDomain": "sgx.example.com",
                   "logFormat": "json", "logLevel": "debug",
                   "extraArgs": ["--provision-resource", "--label-interval=60"]},
    "one-slot": {"maxSGXPods": 1, "logLevel": "error"},
    "compat-no-epc": {"compat": ["intel", "azure", "alibaba"], "epcResource": False},
    "epc-only": {"labelNodes": False, "compat": ["intel"]},
}


def swap(argv, kdir_host, kdir, dev):
    """argv with the kubelet dir and the dev root replaced by test directories."""
    out = []
    for a in argv:
        a = a.replace("=" + DEV_ROOT, "=" + dev).replace("=" + kdir_host, "=" + kdir)
        out.append(a)
    return out


@pytest.fixture(scope="module")
def binary():
    assert os.access(BINARY, os.X_OK), "no daemon binary at %s (set SGXDEVPLUGIN)" % BINARY
    return BINARY


@pytest.fixture
def short_tmp():
    """A temp dir with a short path: pytest's tmp_path under a long $TMPDIR can leave too little
    of a unix socket's 107 bytes for DIR/sgxdevplugin-provision.sock."""
    d = tempfile.mkdtemp(prefix="sdpc-", dir="/tmp")
    yield pathlib.Path(d)
    shutil.rmtree(d, ignore_errors=True)


@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_binary_01_rendered_args_run(helm, binary, short_tmp, name):
    tmp_path = short_tmp
    vals = write_values(tmp_path, VALUE_SETS[name])
    docs = helm.template("-f", vals)
    c = container(docs)
    kdir_host = next(m["mountPath"] for m in c["volumeMounts"] if not m.get("readOnly"))
    kdir = tmp_path / "device-plugins"
    dev = tmp_path / "dev"
    kdir.mkdir()
    dev.mkdir()
    args = swap(args_of(docs), kdir_host, str(kdir), str(dev))
    probe = swap(c["livenessProbe"]["exec"]["command"], kdir_host, str(kdir), str(dev))
    assert probe[0] == "/sgxdevplugin"

    # the pod's environment: NODE_NAME from the downward API; the API server, where labelling
    # is on, a port nobody listens on (the labeller may fail; the plugin must serve regardless)
    env = {"PATH": "/usr/bin:/bin", "NODE_NAME": "node-a",
           "KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": "9"}
    for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS"):
        if k in os.environ:
            env[k] = os.environ[k]
    log = open(tmp_path / "daemon.log", "w+")
    p = subprocess.Popen([binary] + args, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        want = 4 if "--provision-resource" in args else 3
        for a in args:  # --compat=intel,azure: intel serves two sockets, the others one each
            if a.startswith("--compat="):
                want += sum(2 if c == "intel" else 1 for c in a.split("=", 1)[1].split(","))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and p.poll() is None:
            if len([f for f in os.listdir(kdir) if f.endswith(".sock")]) >= want:
                break
            time.sleep(0.02)
        log.seek(0)
        assert p.poll() is None, "daemon exited %s on %s:\n%s" % (p.returncode, args, log.read())
        h = subprocess.run([binary] + probe[1:], capture_output=True, text=True, env=env,
                           timeout=10)
        assert h.returncode == 0, "liveness probe %s failed:\n%s%s" % (probe, h.stdout, h.stderr)
        assert len(h.stdout.splitlines()) == want, h.stdout
    finally:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
        rc = p.wait(timeout=10)
        log.close()
    assert rc == 0, (tmp_path / "daemon.log").read_text()
    # and the probe fails once the daemon is gone
    h = subprocess.run([binary] + probe[1:], capture_output=True, text=True, env=env, timeout=10)
    assert h.returncode == 1, h.stdout + h.stderr
