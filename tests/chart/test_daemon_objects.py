"""test_daemon_objects.py - the Kubernetes objects the daemon itself writes are valid objects of
the API (issue 12: "every rendered object validated with kubernetes-models"): the daemon runs
with --dra against the test API server (tests/apiserver) on a fake device tree, and each
ResourceSlice it stored is checked by validate_models.mjs (kubernetes-models 5.1.0, the
resource.k8s.io/v1 schema) - on each device layout, with the shared model and with --dra-slots.
The validator is shown to fail on a slice broken on purpose."""

import os
import shutil
import sys
import tempfile

import pytest
import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
for d in ("tests/integration", "tests/apiserver"):
    if os.path.join(REPO, d) not in sys.path:
        sys.path.insert(0, os.path.join(REPO, d))

import fake_apiserver  # noqa: E402
import sdp  # noqa: E402

from test_models import validate  # noqa: E402

D = "sgx.k8s.io"
NODE = "node-1"


@pytest.fixture(scope="module")
def pki():
    d = tempfile.mkdtemp(prefix="sdp-pki-", dir="/tmp")
    try:
        yield fake_apiserver.make_pki(d)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def daemon_slices(pki, layout, extra=()):
    """Runs the daemon with --dra on |layout| until its slices are stored; returns them."""
    work = tempfile.mkdtemp(prefix="sdp-objects-", dir="/tmp")
    srv = fake_apiserver.FakeApiServer(pki, node=NODE).start()
    d = None
    try:
        dev = sdp.DevTree(os.path.join(work, "dev"))
        dev.apply(layout)
        with open(os.path.join(work, "token"), "w") as f:
            f.write("token-1\n")
        d = sdp.Daemon(["--kubelet-dir", os.path.join(work, "k"), "--dev-root", dev.root,
                        "--sys-root", os.path.join(work, "sys"), "--cdi-dir",
                        os.path.join(work, "cdi"), "--dra", "--no-device-plugin",
                        "--node-name", NODE, "--apiserver", srv.url, "--token-file",
                        os.path.join(work, "token"), "--ca-file", pki.ca,
                        "--plugins-registry", os.path.join(work, "reg"),
                        "--dra-dir", os.path.join(work, "plugins"), "--log-format", "json"]
                       + list(extra), os.path.join(work, "daemon.log"))
        d.start()
        def whole_pool(s):
            sl = s.our_slices(D, NODE)
            return sl if sl and len(sl) == sl[0]["spec"]["pool"]["resourceSliceCount"] else None

        got = srv.wait_for(whole_pool, sdp.T(10), "the daemon's whole pool of ResourceSlices")
        return got
    finally:
        if d is not None:
            assert d.stop() == 0, "\n".join(d.raw_lines())
        srv.stop()
        assert not srv.errors, srv.errors
        shutil.rmtree(work, ignore_errors=True)


# 01: every ResourceSlice the daemon writes is a valid resource.k8s.io/v1 object, on each layout
# and with --dra-slots (several slices of --max-pods exclusive devices)
@pytest.mark.parametrize("layout,extra", [
    ("inkernel", ()), ("dcap_ias", ()), ("ias", ()), ("none", ()),
    ("inkernel", ("--dra-slots", "--max-pods", "200"))],
    ids=["inkernel", "dcap_ias", "ias", "none", "inkernel-slots"])
def test_daemon_objects_01_slices_valid(tools, pki, layout, extra):
    slices = daemon_slices(pki, layout, extra)
    assert slices
    if extra:
        assert len(slices) >= 2, "200 slots make more than one slice of 128"
    rc, entries = validate(tools, yaml.safe_dump_all(slices))
    assert rc == 0, entries
    assert len(entries) == len(slices)


# 02: the validator fails on a slice the daemon wrote, broken on purpose (a device without a name)
def test_daemon_objects_02_broken_slice_fails(tools, pki):
    sl = daemon_slices(pki, "inkernel")[0]
    del sl["spec"]["devices"][0]["name"]
    rc, entries = validate(tools, yaml.safe_dump(sl))
    assert rc == 1, entries
