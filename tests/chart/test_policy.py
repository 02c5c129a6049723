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
    docs = policy_docs(helm, "--set", "labelNodes=false")
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


# 03: the labels the policy lets us touch are exactly the daemon's, under resourceDomain
@pytest.mark.parametrize("domain", ["sgx.k8s.io", "sgx.example.com"])
def test_policy_03_label_list_is_the_daemons(helm, domain):
    vap = one(policy_docs(helm, "--set", "resourceDomain=" + domain), "ValidatingAdmissionPolicy")
    ours = [v for v in vap["spec"]["variables"] if v["name"] == "ours"][0]["expression"]
    keys = re.findall(r"'([^']*)'", ours)
    assert sorted(keys) == sorted("%s/%s" % (domain, n) for n in labeler_names())


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


# 04: the CEL, evaluated: own node and own labels pass; anything else is denied
def test_policy_04_cel(helm, tools):
    spec = one(policy_docs(helm), "ValidatingAdmissionPolicy")["spec"]
    cases = [{"request": r, "oldObject": o, "object": n} for _, r, o, n, _ in CASES]
    got = evaluate(tools, spec, cases)
    bad = []
    for (name, _, _, _, allowed), g in zip(CASES, got):
        if not g["matched"] or g["allowed"] != allowed:
            bad.append("%s: want %s, got %s" % (name, "allowed" if allowed else "denied", g))
    assert not bad, "\n".join(bad)


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
