"""test_binary.py - the command lines the chart renders are ones the real daemon accepts (issue
#4): for several value sets, the DaemonSet's args start the binary (SGXDEVPLUGIN, default
build/sgxdevplugin), which serves its sockets, and the liveness probe's command, run as the
kubelet would, passes against it and fails once it is gone. The host paths (every read-write
mount, and the dev root) are swapped for temp directories; everything else is exactly the
rendered argv. The DRA value sets (issue 12) are skipped, saying so, while the binary's --help
does not list --dra (a feature probe: they run as soon as the daemon has the flags)."""

import os
import pathlib
import re
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

from chartlib import TOP, args_of, container, flag, write_values

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
    "cdi": {"cdi": True},
    "dra": {"dra": {"enabled": True}},
    "dra-only": {"dra": {"enabled": True, "deviceplugin": False}, "labelNodes": False},
    "dra-extended": {"dra": {"enabled": True, "extendedResourceName": "sgx.k8s.io/sgx"},
                     "resourceDomain": "sgx.k8s.io", "cdi": True},
}


def swap(argv, paths):
    """argv with each "--flag=PATH" whose PATH is a key of |paths| given its test directory."""
    out = []
    for a in argv:
        flag, eq, value = a.partition("=")
        out.append(flag + eq + paths[value] if eq and value in paths else a)
    return out


def has_flag(binary, name):
    """Whether the daemon's --help lists |name| (a feature probe)."""
    r = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=10)
    return re.search(r"(^|\s)%s(\s|=|$)" % re.escape(name), r.stdout + r.stderr, re.M) is not None


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


# 00: the feature probe: a flag listed by --help counts; a longer flag that starts with it does
# not (--dra-dir, --dra-slots)
@pytest.mark.parametrize("text,found", [
    ("  --dra                    serve the DRA kubelet plugin API", True),
    ("  --dra=on", True),
    ("  --dra-dir DIR            the driver's directory", False),
    ("  --dra-slots              exclusive devices", False),
    ("  --cdi                    write a CDI spec (see --dra-dir)", False),
])
def test_binary_00_feature_probe(short_tmp, text, found):
    fake = short_tmp / "fake"
    fake.write_text("#!/bin/sh\ncat <<'EOF'\nOptions:\n%s\nEOF\n" % text)
    fake.chmod(0o755)
    assert has_flag(str(fake), "--dra") is found


@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_binary_01_rendered_args_run(helm, binary, short_tmp, name):
    tmp_path = short_tmp
    vals = write_values(tmp_path, VALUE_SETS[name])
    docs = helm.template("-f", vals)
    c = container(docs)
    rendered = args_of(docs)
    if "--dra" in rendered and not has_flag(binary, "--dra"):
        pytest.skip("%s --help does not list --dra: the daemon's DRA flags (--dra, "
                    "--plugins-registry, --dra-dir, --no-device-plugin) have not landed yet"
                    % binary)
    # every read-write host directory becomes a temp dir of its own; the dev root an empty one
    paths = {DEV_ROOT: str(tmp_path / "dev")}
    for i, m in enumerate(m for m in c["volumeMounts"] if not m.get("readOnly")):
        paths[m["mountPath"]] = str(tmp_path / ("rw%d" % i))
    for d in paths.values():
        os.mkdir(d)
    kdir = paths[flag(rendered, "--kubelet-dir")]
    args = swap(rendered, paths)
    assert not [a for a in args if "/var/" in a], "a host path left in %s" % args
    probe = c.get("livenessProbe")
    probe = swap(probe["exec"]["command"], paths) if probe else None
    assert probe is None or probe[0] == "/sgxdevplugin"
    # the sockets to wait for: the device plugin's in the kubelet dir (none with
    # --no-device-plugin), and with --dra the registration socket and dra.sock
    want = 0 if "--no-device-plugin" in args else (4 if "--provision-resource" in args else 3)
    for a in args:  # --compat=intel,azure: intel serves two sockets, the others one each
        if a.startswith("--compat=") and "--no-device-plugin" not in args:
            want += sum(2 if c == "intel" else 1 for c in a.split("=", 1)[1].split(","))
    dra_socks = []
    if "--dra" in args:
        d = flag(rendered, "--resource-domain")
        dra_socks = [os.path.join(flag(args, "--plugins-registry"), d + "-reg.sock"),
                     os.path.join(flag(args, "--dra-dir"), "dra.sock")]

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
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and p.poll() is None:
            if len([f for f in os.listdir(kdir) if f.endswith(".sock")]) >= want and \
                    all(os.path.exists(s) for s in dra_socks):
                break
            time.sleep(0.02)
        log.seek(0)
        assert p.poll() is None, "daemon exited %s on %s:\n%s" % (p.returncode, args, log.read())
        assert all(os.path.exists(s) for s in dra_socks), (dra_socks, log.read())
        if probe:
            h = subprocess.run([binary] + probe[1:], capture_output=True, text=True, env=env,
                               timeout=10)
            assert h.returncode == 0, "liveness probe %s failed:\n%s%s" % (probe, h.stdout,
                                                                           h.stderr)
            # one line per device-plugin socket, and with --dra the two DRA sockets' lines
            assert len(h.stdout.splitlines()) == want + (2 if "--dra" in probe else 0), h.stdout
            assert ("--dra" in probe) == ("--dra" in args), (probe, args)
            assert ("--no-device-plugin" in probe) == ("--no-device-plugin" in args), probe
    finally:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
        rc = p.wait(timeout=10)
        log.close()
    assert rc == 0, (tmp_path / "daemon.log").read_text()
    # and the probe fails once the daemon is gone
    if probe:
        h = subprocess.run([binary] + probe[1:], capture_output=True, text=True, env=env,
                           timeout=10)
        assert h.returncode == 1, h.stdout + h.stderr
