"""test_policy.py - the ValidatingAdmissionPolicy that narrows the node-label RBAC (issue #4), with
helm 3 and helm 4: rendered only where the cluster serves admissionregistration.k8s.io/v1
ValidatingAdmissionPolicy and only with labelNodes; bound with Deny; matching our ServiceAccount;
its label list is the daemon's (src/kube/labeler.h). Its CEL runs for real (vap_eval.mjs, a CEL
evaluator) on admission requests: our pod may patch only its own node and only our labels."""

import copy
import json
import os
import re
import subprocess

import pytest

from chartlib import HERE, TOP, VAP_API, objects, one

SA_USER = "system:serviceaccount:default:sgxdevplugin"
NODE_NAME_KEY = "authentication.kubernetes.io/node-name"


def policy_docs(helm, *args, namespace="default"):
    return helm.template("--api-versions", VAP_API, *args, namespace=namespace)


def labeler_names():
    """The label names the daemon owns, LABEL_* in src/kube/labeler.h."""
    with open(os.path.join(TOP, "src", "kube", "labeler.h")) as f:
        names = re.findall(r'^#define LABEL_[A-Z0-9_]+ "([^"]*)"', f.read(), re.M)
    assert names, "no LABEL_* names in src/kube/labeler.h"
    return names


def evaluate(tools, spec, cases):
    """Runs the policy's CEL on each case; returns [{"matched","allowed","failed"}]."""
    r = subprocess.run([tools["node"], os.path.join(HERE, "vap_eval.mjs"), tools["celjs"]],
                       input=json.dumps({"spec": spec, "cases": cases}), capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


# 01: no policy where the API version is not served (helm template's default), nor without labels
def test_policy_01_rendered_only_when_served(helm):
    assert not objects(helm.template(), "ValidatingAdmissionPolicy")
    assert not objects(helm.template(), "ValidatingAdmissionPolicyBinding")
    assert not objects(helm.template("--api-versions", "admissionregistration.k8s.io/v1beta1"
                                     "/ValidatingAdmissionPolicy"), "ValidatingAdmissionPolicy")
    docs = policy_docs(helm, "--set", "labelNodes=false", "--set", "epcResource=false")
    assert not objects(docs, "ValidatingAdmissionPolicy")
    assert not objects(docs, "ValidatingAdmissionPolicyBinding")


# 02: the policy and its binding: Deny, fail closed, our ServiceAccount, updates of nodes
def test_policy_02_objects(helm):
    docs = policy_docs(helm, namespace="sgx-system")
    vap = one(docs, "ValidatingAdmissionPolicy")
    binding = one(docs, "ValidatingAdmissionPolicyBinding")
    assert vap["apiVersion"] == binding["apiVersion"] == "admissionregistration.k8s.io/v1"
    assert binding["spec"]["policyName"] == vap["metadata"]["name"]
    assert binding["spec"]["validationActions"] == ["Deny"]
    assert "paramRef" not in binding["spec"]
    spec = vap["spec"]
    assert spec["failurePolicy"] == "Fail"
    rules = spec["matchConstraints"]["resourceRules"]
    assert any("UPDATE" in r["operations"] and "nodes" in r["resources"] and
               r["apiGroups"] == [""] for r in rules)
    sa = one(docs, "ServiceAccount")["metadata"]
    want = "request.userInfo.username == 'system:serviceaccount:%s:%s'" % (
        sa["namespace"], sa["name"])
    assert [m["expression"] for m in spec["matchConditions"]] == [want]
    assert any(NODE_NAME_KEY in v["expression"] for v in spec["variables"])


# 03: the labels the policy lets us touch are exactly the daemon's, under resourceDomain; with
# compat intel also Intel's full keys (LABEL_* names holding a "/")
@pytest.mark.parametrize("domain,compat", [("sgx.k8s.io", None), ("sgx.example.com", None),
                                           ("sgx.k8s.io", "intel")])
def test_policy_03_label_list_is_the_daemons(helm, domain, compat):
    args = ["--set", "resourceDomain=" + domain]
    if compat:
        args += ["--set", "compat={%s}" % compat]
    vap = one(policy_docs(helm, *args), "ValidatingAdmissionPolicy")
    ours = [v for v in vap["spec"]["variables"] if v["name"] == "ours"][0]["expression"]
    keys = re.findall(r"'([^']*)'", ours)
    want = ["%s/%s" % (domain, n) for n in labeler_names() if "/" not in n]
    if compat:
        want += [n for n in labeler_names() if n.startswith("sgx.intel.com/")]
    assert sorted(keys) == sorted(want)


def node(name="n1", labels=None, annotations=None, spec=None, **meta):
    m = {"name": name, "uid": "u-" + name, "resourceVersion": "7"}
    if labels is not None:
        m["labels"] = labels
    if annotations is not None:
        m["annotations"] = annotations
    m.update(meta)
    return {"apiVersion": "v1", "kind": "Node", "metadata": m,
            "spec": spec if spec is not None else {"podCIDR": "10.0.1.0/24"},
            "status": {"capacity": {"cpu": "8"}}}


OLD = node(labels={"kubernetes.io/hostname": "n1", "team": "a"},
           annotations={"node.alpha.kubernetes.io/ttl": "0"},
           spec={"podCIDR": "10.0.1.0/24",
                 "taints": [{"key": "sgx", "value": "x", "effect": "NoSchedule"}]})


def req(user=SA_USER, node_name=("n1",), operation="UPDATE", sub=""):
    r = {"operation": operation, "subResource": sub, "kind": {"kind": "Node"},
         "userInfo": {"username": user, "groups": ["system:serviceaccounts"]}}
    if node_name is not None:
        r["userInfo"]["extra"] = {NODE_NAME_KEY: list(node_name)}
    return r


def changed(old=OLD, **f):
    """A copy of |old| with metadata fields or spec replaced (None deletes)."""
    new = copy.deepcopy(old)
    for k, v in f.items():
        where = new if k == "spec" else new["metadata"]
        if v is None:
            where.pop(k, None)
        else:
            where[k] = v
    return new


def ours_added(d="sgx.k8s.io", **extra):
    return dict(OLD["metadata"]["labels"], **{d + "/sgx": "true", d + "/dcap": "true",
                                              d + "/epc-mib": "128"}, **extra)


# (id, request, old, new, allowed)
CASES = [
    ("add-our-labels", req(), OLD, changed(labels=ours_added()), True),
    ("change-and-remove-ours", req(),
     changed(labels=ours_added()),
     changed(labels=dict(OLD["metadata"]["labels"], **{"sgx.k8s.io/sgx": "true",
                                                       "sgx.k8s.io/sgx2": "true",
                                                       "sgx.k8s.io/epc-mib": "256"})), True),
    ("all-six", req(), OLD, changed(labels=dict(OLD["metadata"]["labels"], **{
        "sgx.k8s.io/" + n: "true" for n in ("sgx", "dcap", "ias", "sgx2", "flc", "epc-mib")})),
     True),
    ("first-labels-of-bare-node", req(), node(), node(labels={"sgx.k8s.io/sgx": "true"}), True),
    ("nothing-changed", req(), OLD, copy.deepcopy(OLD), True),
    ("status-differs", req(), OLD, dict(copy.deepcopy(OLD), status={"capacity": {"cpu": "9"}}),
     True),
    ("add-foreign-label", req(), OLD, changed(labels=ours_added(evil="1")), False),
    ("our-domain-other-name", req(), OLD,
     changed(labels=ours_added(**{"sgx.k8s.io/trusted": "true"})), False),
    ("change-foreign-label", req(), OLD,
     changed(labels=dict(ours_added(), team="b")), False),
    ("remove-foreign-label", req(), OLD,
     changed(labels={"kubernetes.io/hostname": "n1", "sgx.k8s.io/sgx": "true"}), False),
    ("remove-all-labels", req(), OLD, changed(labels=None), False),
    ("other-node", req(node_name=("n2",)), OLD, changed(labels=ours_added()), False),
    ("no-node-name", req(node_name=None), OLD, changed(labels=ours_added()), False),
    ("two-node-names", req(node_name=("n1", "n2")), OLD, changed(labels=ours_added()), False),
    ("change-annotation", req(), OLD,
     changed(labels=ours_added(), annotations={"node.alpha.kubernetes.io/ttl": "1"}), False),
    ("add-annotation", req(), node(), node(annotations={"a": "b"}), False),
    ("drop-taint", req(), OLD, changed(spec={"podCIDR": "10.0.1.0/24"}), False),
    ("cordon", req(), OLD, changed(spec=dict(OLD["spec"], unschedulable=True)), False),
    ("add-finalizer", req(), OLD, changed(finalizers=["example.com/keep"]), False),
    ("add-owner", req(), OLD, changed(ownerReferences=[
        {"apiVersion": "v1", "kind": "Pod", "name": "p", "uid": "x"}]), False),
    ("status-subresource", req(sub="status"), OLD, copy.deepcopy(OLD), False),
    ("delete", req(operation="DELETE"), OLD, None, False),
]


def check(tools, spec, cases):
    got = evaluate(tools, spec, [{"request": r, "oldObject": o, "object": n}
                                 for _, r, o, n, _ in cases])
    bad = []
    for (name, _, _, _, allowed), g in zip(cases, got):
        if not g["matched"] or g["allowed"] != allowed:
            bad.append("%s: want %s, got %s" % (name, "allowed" if allowed else "denied", g))
    assert not bad, "\n".join(bad)


# 04: the CEL, evaluated: own node and own labels pass; anything else is denied (epcResource off:
# the status subresource is denied too)
def test_policy_04_cel(helm, tools):
    check(tools, one(policy_docs(helm, "--set", "epcResource=false"),
                     "ValidatingAdmissionPolicy")["spec"], CASES)
    # with epcResource (the default) the same, but an update of the status that changes nothing
    spec = one(policy_docs(helm), "ValidatingAdmissionPolicy")["spec"]
    check(tools, spec, [(n, r, o, new, allowed or n == "status-subresource")
                        for n, r, o, new, allowed in CASES])


# 05: someone else (another ServiceAccount, a node, an admin) is not this policy's business
@pytest.mark.parametrize("user", ["system:serviceaccount:default:other",
                                  "system:serviceaccount:kube-system:sgxdevplugin",
                                  "system:node:n1", "kubernetes-admin"])
def test_policy_05_others_not_matched(helm, tools, user):
    spec = one(policy_docs(helm), "ValidatingAdmissionPolicy")["spec"]
    got = evaluate(tools, spec, [{"request": req(user=user), "oldObject": OLD,
                                  "object": changed(labels={"evil": "1"})}])
    assert got == [{"matched": False, "allowed": True, "failed": []}]


# 06: the labels follow resourceDomain: ours under it pass, the default domain's do not
def test_policy_06_resource_domain(helm, tools):
    spec = one(policy_docs(helm, "--set", "resourceDomain=sgx.example.com"),
               "ValidatingAdmissionPolicy")["spec"]
    got = evaluate(tools, spec, [
        {"request": req(), "oldObject": OLD, "object": changed(labels=ours_added("sgx.example.com"))},
        {"request": req(), "oldObject": OLD, "object": changed(labels=ours_added())}])
    assert [g["allowed"] for g in got] == [True, False], got


# ---- nodes/status: the EPC capacity (epcResource, issue 11) ----

def with_status(n, capacity=None, allocatable=None, **more):
    n = copy.deepcopy(n)
    st = n["status"]
    for k, v in (("capacity", capacity), ("allocatable", allocatable)):
        if v is not None:
            st[k] = v
        elif k in st and v is None and k in more.get("drop", ()):
            del st[k]
    st.update({k: v for k, v in more.items() if k != "drop"})
    return n


BASE_CAP = {"cpu": "8", "memory": "32Gi", "pods": "110"}
SNODE = with_status(OLD, capacity=dict(BASE_CAP), allocatable=dict(BASE_CAP),
                    addresses=[{"type": "InternalIP", "address": "10.0.1.5"}],
                    conditions=[{"type": "Ready", "status": "True"}],
                    daemonEndpoints={"kubeletEndpoint": {"Port": 10250}},
                    nodeInfo={"kubeletVersion": "v1.36.0"})


def cap(**extra):
    return dict(BASE_CAP, **extra)


def sreq(**kw):
    return req(sub="status", **kw)


EPC = "sgx.k8s.io/epc"
STATUS_CASES = [
    ("add-epc", sreq(), SNODE, with_status(SNODE, capacity=cap(**{EPC: "128Mi"})), True),
    ("add-epc-allocatable", sreq(), SNODE,
     with_status(SNODE, capacity=cap(**{EPC: "128Mi"}), allocatable=cap(**{EPC: "128Mi"})), True),
    ("change-epc", sreq(), with_status(SNODE, capacity=cap(**{EPC: "64Mi"})),
     with_status(SNODE, capacity=cap(**{EPC: "128Mi"})), True),
    ("remove-epc", sreq(), with_status(SNODE, capacity=cap(**{EPC: "64Mi"})), SNODE, True),
    ("first-epc", sreq(), node(), with_status(node(), capacity={"cpu": "8", EPC: "1Gi"}), True),
    ("foreign-capacity-key", sreq(), SNODE,
     with_status(SNODE, capacity=cap(**{EPC: "1Gi", "example.com/gpu": "8"})), False),
    ("intel-key-without-compat", sreq(), SNODE,
     with_status(SNODE, capacity=cap(**{"sgx.intel.com/epc": "1Gi"})), False),
    ("change-cpu", sreq(), SNODE, with_status(SNODE, capacity=dict(BASE_CAP, cpu="64")), False),
    ("remove-pods-allocatable", sreq(), SNODE,
     with_status(SNODE, allocatable={"cpu": "8", "memory": "32Gi"}), False),
    ("change-memory-allocatable", sreq(), SNODE,
     with_status(SNODE, allocatable=dict(BASE_CAP, memory="64Gi")), False),
    ("readdress", sreq(), SNODE,
     with_status(SNODE, addresses=[{"type": "InternalIP", "address": "10.9.9.9"}]), False),
    ("not-ready", sreq(), SNODE,
     with_status(SNODE, conditions=[{"type": "Ready", "status": "False"}]), False),
    ("kubelet-port", sreq(), SNODE,
     with_status(SNODE, daemonEndpoints={"kubeletEndpoint": {"Port": 1}}), False),
    ("node-info", sreq(), SNODE, with_status(SNODE, nodeInfo={"kubeletVersion": "v9"}), False),
    ("other-node", sreq(node_name=("n2",)), SNODE,
     with_status(SNODE, capacity=cap(**{EPC: "1Gi"})), False),
    ("label-through-status", sreq(), SNODE,
     changed(old=with_status(SNODE, capacity=cap(**{EPC: "1Gi"})),
             labels=dict(OLD["metadata"]["labels"], evil="1")), False),
    ("taint-through-status", sreq(), SNODE, changed(old=SNODE, spec={"podCIDR": "10.0.1.0/24"}),
     False),
    ("other-subresource", req(sub="proxy"), SNODE, copy.deepcopy(SNODE), False),
]


# 07: through nodes/status only our own node's EPC capacity keys change; the rest of the status,
# the labels and the spec stay
def test_policy_07_status_cel(helm, tools):
    check(tools, one(policy_docs(helm), "ValidatingAdmissionPolicy")["spec"], STATUS_CASES)


# 08: compat adds the other plugins' capacity keys; resourceDomain moves ours; without
# labelNodes the node itself may not be patched (labels neither), its status may
@pytest.mark.parametrize("compat,key,allowed", [
    ("{intel}", "sgx.intel.com/epc", True),
    ("{azure}", "kubernetes.azure.com/sgx_epc_mem_in_MiB", True),
    ("{alibaba}", "alibabacloud.com/sgx_epc_MiB", True),
    ("{intel}", "kubernetes.azure.com/sgx_epc_mem_in_MiB", False),
    ("{azure,alibaba}", "sgx.intel.com/epc", False),
])
def test_policy_08_compat_keys(helm, tools, compat, key, allowed):
    spec = one(policy_docs(helm, "--set", "compat=" + compat), "ValidatingAdmissionPolicy")["spec"]
    check(tools, spec, [("compat %s %s" % (compat, key), sreq(), SNODE,
                         with_status(SNODE, capacity=cap(**{key: "128"})), allowed)])


def test_policy_09_domain_and_no_labels(helm, tools):
    spec = one(policy_docs(helm, "--set", "resourceDomain=sgx.example.com"),
               "ValidatingAdmissionPolicy")["spec"]
    check(tools, spec, [
        ("domain-ours", sreq(), SNODE, with_status(SNODE, capacity=cap(**{
            "sgx.example.com/epc": "1Gi"})), True),
        ("domain-default", sreq(), SNODE, with_status(SNODE, capacity=cap(**{EPC: "1Gi"})), False)])
    spec = one(policy_docs(helm, "--set", "labelNodes=false"), "ValidatingAdmissionPolicy")["spec"]
    check(tools, spec, [
        ("status", sreq(), SNODE, with_status(SNODE, capacity=cap(**{EPC: "1Gi"})), True),
        ("labels", req(), OLD, changed(labels=ours_added()), False)])


# 10: the status fields the policy keeps unchanged are NodeStatus' fields in the Kubernetes API
# (kubernetes-models), less capacity and allocatable and the fields newer than 1.30, the oldest
# Kubernetes the policy is rendered for (a field it does not know fails to compile there)
NEWER_THAN_1_30 = {"features", "declaredFeatures"}


def test_policy_10_status_fields_are_the_apis(helm, tools):
    with open(os.path.join(tools["models"], "kubernetes-models", "v1", "NodeStatus.d.ts")) as f:
        api = set(re.findall(r'^\s+"([A-Za-z]+)"\?:', f.read(), re.M))
    assert {"capacity", "allocatable", "addresses"} <= api, api
    vap = one(policy_docs(helm), "ValidatingAdmissionPolicy")["spec"]
    last = [v for v in vap["validations"] if "object.status.phase" in v["expression"]]
    assert len(last) == 1
    kept = set(re.findall(r"has\(object\.status\.([A-Za-z]+)\)", last[0]["expression"]))
    assert kept == api - {"capacity", "allocatable"} - NEWER_THAN_1_30, sorted(api)
