"""test_15_apiserver_status.py - the test API server's nodes/status path (issue #11 section 4),
tested on its own, without the daemon: PATCH /api/v1/nodes/NAME/status with a JSON merge patch
(null removes a key) or a JSON patch (add, replace, remove, test; "~1" for "/" in keys; 422 when
an operation fails), the real server's rules for status.capacity quantities (422 with a Status
naming the field), the node's capacity readable and changeable by tests, and failures injected
for the status path alone (403, hang) while the labels' path answers."""

import json
import os
import socket
import sys

import pytest

import sdp
from sdp import T

sys.path.insert(0, os.path.join(sdp.REPO, "tests", "apiserver"))

import fake_apiserver  # noqa: E402
from fake_apiserver import DEFAULT_CAPACITY, JSON_PATCH, MERGE_PATCH  # noqa: E402
from test_10_labels import api, pki  # noqa: E402,F401  (fixtures)

NODE = "node-1"
PATH = "/api/v1/nodes/" + NODE
STATUS = PATH + "/status"
EPC = "sgx.k8s.io/epc"


def patch(srv, pki, body, path=STATUS, ctype=MERGE_PATCH, timeout=5.0):
    """One PATCH; returns (status, answer as JSON)."""
    if not isinstance(body, str):
        body = json.dumps(body)
    st, answer = fake_apiserver.h2_request(srv.port, pki.ca, "token-1", body, path,
                                           content_type=ctype, timeout=timeout)
    return st, json.loads(answer)


def merge(cap):
    return {"status": {"capacity": cap}}


def forget_problems(srv, n=1):
    """The last |n| requests broke the daemon's contract on purpose: their problems are the
    test's, not the teardown's."""
    for r in srv.requests[-n:]:
        r.problems.clear()


# 15_01: a merge patch sets our key beside the node's others, a changed value replaces it, null
# removes it; the answer is the node with its status
def test_15_01_merge_patch(api, pki):
    srv = api()
    st, node = patch(srv, pki, merge({EPC: "201326592"}))
    assert st == 200, node
    assert node["status"]["capacity"] == dict(DEFAULT_CAPACITY, **{EPC: "201326592"})
    assert srv.capacity() == dict(DEFAULT_CAPACITY, **{EPC: "201326592"})
    assert patch(srv, pki, merge({EPC: "67108864"}))[0] == 200
    assert srv.capacity()[EPC] == "67108864"
    assert patch(srv, pki, merge({EPC: None, "sgx.intel.com/epc": None}))[0] == 200
    assert srv.capacity() == DEFAULT_CAPACITY
    rs = srv.snapshot()[0]
    assert [r.status for r in rs] == [200] * 3 and all(r.status_path for r in rs)
    assert rs[0].capacity[EPC] == "201326592"
    assert srv.labels() == {"kubernetes.io/hostname": NODE, "kubernetes.io/os": "linux"}


# 15_02: a JSON patch as the Kubernetes docs advertise an extended resource: add with "~1" for
# the "/" in the key, replace, test, remove
def test_15_02_json_patch(api, pki):
    srv = api()
    key = "/status/capacity/sgx.k8s.io~1epc"
    st, node = patch(srv, pki, [{"op": "add", "path": key, "value": "4096"}], ctype=JSON_PATCH)
    assert st == 200, node
    assert srv.capacity()[EPC] == "4096"
    ops = [{"op": "test", "path": key, "value": "4096"},
           {"op": "replace", "path": key, "value": "8Ki"}]
    assert patch(srv, pki, ops, ctype=JSON_PATCH)[0] == 200
    assert srv.capacity()[EPC] == "8Ki"
    assert patch(srv, pki, [{"op": "remove", "path": key}], ctype=JSON_PATCH)[0] == 200
    assert EPC not in srv.capacity()
    assert srv.capacity() == DEFAULT_CAPACITY


# 15_03: a JSON patch whose operation fails is 422 and changes nothing: a failed test, removing
# or replacing a key that is not there, a path through a missing object; the ops before the
# failing one are not applied either
@pytest.mark.parametrize("ops", [
    [{"op": "test", "path": "/status/capacity/sgx.k8s.io~1epc", "value": "1"}],
    [{"op": "remove", "path": "/status/capacity/sgx.k8s.io~1epc"}],
    [{"op": "replace", "path": "/status/capacity/sgx.k8s.io~1epc", "value": "1"}],
    [{"op": "add", "path": "/status/capacity/a.b~1c", "value": "1"},
     {"op": "add", "path": "/status/capacity/nope/x", "value": "1"}],
    [{"op": "move", "from": "/status/capacity/cpu", "path": "/status/capacity/x"}],
], ids=["test", "remove", "replace", "missing-parent", "unsupported-op"])
def test_15_03_json_patch_fails(api, pki, ops):
    srv = api()
    st, answer = patch(srv, pki, ops, ctype=JSON_PATCH)
    assert st == 422, answer
    assert answer["kind"] == "Status" and answer["reason"] == "Invalid", answer
    assert srv.capacity() == DEFAULT_CAPACITY
    forget_problems(srv)  # "move" has no "path" under status.capacity to check


# 15_04: status.capacity values are Kubernetes quantities, non-negative, whole numbers for
# extended resources: else 422 with a Status whose message and causes name the field
BAD = {
    "abc": "quantities must match the regular expression",
    "12 Mi": "quantities must match the regular expression",
    "": "quantities must match the regular expression",
    "-1": "must be greater than or equal to 0",
    "1.5": "must be an integer",
    "1500m": "must be an integer",
    201326592: "quantities must match",  # a JSON number, not a string
}


@pytest.mark.parametrize("value", list(BAD), ids=[repr(v) for v in BAD])
def test_15_04_bad_quantity(api, pki, value):
    srv = api()
    st, answer = patch(srv, pki, merge({EPC: value}))
    assert st == 422, answer
    field = "status.capacity[%s]" % EPC
    assert answer["reason"] == "Invalid" and answer["code"] == 422
    assert field in answer["message"] and BAD[value] in answer["message"], answer["message"]
    assert [c["field"] for c in answer["details"]["causes"]] == [field]
    assert EPC not in srv.capacity()
    # the same through a JSON patch
    st, answer = patch(srv, pki, [{"op": "add", "path": "/status/capacity/sgx.k8s.io~1epc",
                                   "value": value}], ctype=JSON_PATCH)
    assert st == 422 and field in answer["message"], answer


# 15_05: quantities the real server takes: suffixes, exponents, "2000m" is a whole 2; a native
# resource may be fractional
@pytest.mark.parametrize("value", ["0", "201326592", "192Mi", "1Gi", "2000m", "1e3", "5k",
                                   "+7"])
def test_15_05_good_quantity(api, pki, value):
    srv = api()
    assert patch(srv, pki, merge({EPC: value, "cpu": "1500m"}))[0] == 200
    assert srv.capacity()[EPC] == value and srv.capacity()["cpu"] == "1500m"


# 15_06: failures injected for the status path leave the labels' path alone: 403 (with the
# nodes/status message), then a hang that never answers
def test_15_06_injected_for_status_only(api, pki):
    srv = api()
    srv.inject(403, count=1, target="status")
    labels = {"metadata": {"labels": {"sgx.k8s.io/sgx": "true"}}}
    assert patch(srv, pki, labels, path=PATH)[0] == 200  # not taken by the injection
    st, answer = patch(srv, pki, merge({EPC: "1"}))
    assert st == 403 and 'cannot patch resource "nodes/status"' in answer["message"], answer
    assert patch(srv, pki, merge({EPC: "1"}))[0] == 200
    srv.inject_hang(count=1, target="status")
    assert patch(srv, pki, labels, path=PATH)[0] == 200
    with pytest.raises(socket.timeout):
        patch(srv, pki, merge({EPC: "2"}), timeout=T(0.5))
    rs = srv.snapshot()[0]
    assert rs[-1].status is None and rs[-1].injected and rs[-1].status_path
    assert srv.capacity()[EPC] == "1"
    srv.inject(500, target="labels")
    assert patch(srv, pki, merge({EPC: "3"}))[0] == 200
    assert patch(srv, pki, labels, path=PATH)[0] == 500


# 15_07: the status path takes merge and JSON patches only (415 otherwise), the node's path
# merge patches only; another node's status is 404; a bad token is 401
def test_15_07_content_types_and_paths(api, pki):
    srv = api()
    st, _ = patch(srv, pki, merge({EPC: "1"}), ctype="application/strategic-merge-patch+json")
    assert st == 415
    st, _ = patch(srv, pki, [{"op": "add", "path": "/metadata/labels/a", "value": "b"}],
                  path=PATH, ctype=JSON_PATCH)
    assert st == 415
    forget_problems(srv, 2)
    st, answer = patch(srv, pki, merge({EPC: "1"}), path="/api/v1/nodes/other/status")
    assert st == 404 and 'nodes "other" not found' in answer["message"]
    st, _ = fake_apiserver.h2_request(srv.port, pki.ca, "nope", json.dumps(merge({EPC: "1"})),
                                      STATUS)
    assert st == 401
    assert EPC not in srv.capacity()


# 15_08: a test (a restarted kubelet) can reset the capacity behind the daemon's back; the
# server's record catches a patch that touches more than status.capacity
def test_15_08_set_capacity_and_contract(api, pki):
    srv = api(capacity={EPC: "4096"})
    assert srv.capacity()[EPC] == "4096"
    srv.set_capacity(EPC, None)
    assert EPC not in srv.capacity()
    srv.set_capacity(EPC, "0")
    assert srv.capacity()[EPC] == "0"
    assert patch(srv, pki, {"status": {"capacity": {EPC: "1"}, "phase": "Running"}})[0] == 200
    assert srv.requests[-1].problems, "a patch of more than status.capacity went unnoticed"
    forget_problems(srv)
