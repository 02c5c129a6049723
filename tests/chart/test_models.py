"""test_models.py - every object the chart renders is a valid object of the Kubernetes API
(issue 12's chart validation), with helm 3 and helm 4: validate_models.mjs builds each as the
kubernetes-models 5.1.0 class of its apiVersion and kind and runs the API's OpenAPI schema over
it; an apiVersion/kind it does not know fails. The renders are an explicit list of value sets
(every combination the chart tests use) plus every render the other chart tests made in this
session (chartlib.RENDERS; this test runs last). The validator itself is shown to fail on broken
objects."""

import json
import os
import subprocess

import pytest
import yaml

from chartlib import DRA_APIS, HERE, MAP_API, RENDERS, VAP_API
# a cluster that serves both admission policies and resource.k8s.io/v1 (the DeviceClass)
POLICIES = ("--api-versions", VAP_API, "--api-versions", MAP_API) + DRA_APIS

# the value sets of test_chart.py, test_binary.py, test_policy.py, test_mutating.py and
# test_dra.py, each rendered plain and where the cluster serves both admission policies and DRA
VALUE_SETS = {
    "defaults": {},
    "no-labels": {"labelNodes": False},
    "no-api": {"labelNodes": False, "epcResource": False},
    "no-epc": {"epcResource": False},
    "compat-intel": {"compat": ["intel"]},
    "compat-all": {"compat": ["intel", "azure", "alibaba"], "resourceDomain": "sgx.example.com"},
    "slots": {"maxSGXPods": 1},
    "cdi": {"cdi": True},
    "dra": {"dra": {"enabled": True}},
    "dra-everything": {"dra": {"enabled": True, "deviceplugin": False,
                               "extendedResourceName": "sgx.example.com/sgx",
                               "pluginsRegistry": "/var/lib/k0s/kubelet/plugins_registry",
                               "pluginDir": "/var/lib/k0s/kubelet/plugins/sgx"},
                       "resourceDomain": "sgx.example.com", "cdi": True},
    "dra-no-api": {"dra": {"enabled": True}, "labelNodes": False, "epcResource": False},
    "slots-max": {"maxSGXPods": 100000},
    "other-values": {"provision": False, "resourceDomain": "sgx.example.com", "logFormat": "json",
                     "logLevel": "debug", "kubeletDir": "/var/lib/k0s/kubelet/device-plugins",
                     "extraArgs": ["--provision-resource", "--aesmd-dir=/var/run/aesmd"]},
    "scheduling": {
        "tolerations": [{"key": "sgx", "operator": "Exists", "effect": "NoSchedule"}],
        "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [
                {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]}]}]}}},
        "resources": {"requests": {"cpu": "5m", "memory": "8Mi"}, "limits": {"memory": "32Mi"}},
        "priorityClassName": "", "imagePullSecrets": [{"name": "regcred"}],
        "nodeSelector": {"example.com/pool": "{{ .Release.Name }}-sgx"},
        "image": "registry.example.com/sgx/plugin:1.2.3", "imagePullPolicy": "IfNotPresent"},
}


def validate(tools, text):
    """Runs validate_models.mjs on YAML |text|; returns (exit code, [entry...])."""
    r = subprocess.run([tools["node"], os.path.join(HERE, "validate_models.mjs"), tools["models"]],
                       input=text, capture_output=True, text=True, timeout=120)
    assert r.returncode in (0, 1), "validate_models.mjs failed (%d):\n%s" % (r.returncode, r.stderr)
    return r.returncode, json.loads(r.stdout)


def assert_valid(tools, text, what):
    rc, got = validate(tools, text)
    bad = ["%s/%s %s: %s" % (e["apiVersion"], e["kind"], e["name"], "; ".join(e["errors"]))
           for e in got if not e["ok"]]
    assert rc == 0 and not bad, "%s:\n  %s" % (what, "\n  ".join(bad))
    return got


DAEMONSET = {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "d"},
             "spec": {"selector": {"matchLabels": {"a": "b"}},
                      "template": {"metadata": {"labels": {"a": "b"}},
                                   "spec": {"containers": [{"name": "c", "image": "i"}]}}}}


def broken(path, value):
    """DAEMONSET with the field at |path| (a tuple of keys and indexes) set to |value|."""
    d = json.loads(json.dumps(DAEMONSET))
    where = d
    for k in path[:-1]:
        where = where[k]
    if value is None:
        del where[path[-1]]
    else:
        where[path[-1]] = value
    return d


SPEC = ("spec", "template", "spec")
BROKEN = {
    "container-without-name": (broken(SPEC + ("containers", 0, "name"), None),
                               "containers/0 must have required property 'name'"),
    "containers-not-a-list": (broken(SPEC + ("containers",), {"name": "c"}), "containers"),
    "bad-enum": (broken(SPEC + ("restartPolicy",), "Sometimes"), "restartPolicy"),
    "string-for-integer": (broken(("spec", "minReadySeconds"), "ten"), "minReadySeconds"),
    "no-selector": (broken(("spec", "selector"), None), "selector"),
    "policy-bad-failure-policy": (
        {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingAdmissionPolicy",
         "metadata": {"name": "m"},
         "spec": {"failurePolicy": "Maybe", "reinvocationPolicy": "Never",
                  "mutations": [{"patchType": "JSONPatch", "jsonPatch": {"expression": "[]"}}]}},
        "failurePolicy"),
    "policy-bad-patch-type": (
        {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingAdmissionPolicy",
         "metadata": {"name": "m"},
         "spec": {"reinvocationPolicy": "Never",
                  "mutations": [{"patchType": "StrategicMerge"}]}},
        "patchType"),
    "role-verbs-not-a-list": (
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
         "metadata": {"name": "r"}, "rules": [{"apiGroups": [""], "resources": ["nodes"],
                                               "verbs": "patch"}]}, "verbs"),
    "unknown-kind": ({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}},
                     "unknown apiVersion/kind"),
    "kind-of-another-version": (dict(DAEMONSET, apiVersion="apps/v1beta9"),
                                "unknown apiVersion/kind"),
    "no-kind": ({"apiVersion": "v1", "metadata": {"name": "x"}}, "unknown apiVersion/kind"),
}


# 01: the validator fails on broken objects, naming the field, and on kinds it does not know;
# the same object unbroken passes (so a failure is the breakage, not the harness)
@pytest.mark.parametrize("name", sorted(BROKEN))
def test_models_01_validator_fails_on_broken(tools, name):
    obj, words = BROKEN[name]
    rc, got = validate(tools, yaml.safe_dump_all([DAEMONSET, obj]))
    assert rc == 1, got
    assert got[0]["ok"] is True, got[0]
    assert got[1]["ok"] is False and words.replace("'", "") in " ".join(
        got[1]["errors"]).replace("'", ""), got[1]


# 02: JSON input and a List count too; an empty input is an empty, passing list
def test_models_02_json_and_lists(tools):
    text = json.dumps({"apiVersion": "v1", "kind": "List", "items": [DAEMONSET, DAEMONSET]})
    assert [e["ok"] for e in validate(tools, text)[1]] == [True, True]
    assert validate(tools, "") == (0, [])


def render_args(tmp_path, name, values, policies):
    p = tmp_path / ("%s.yaml" % name)
    p.write_text(yaml.safe_dump(values))
    return ("-f", str(p)) + (POLICIES if policies else ())


# 03: each value set's render, plain and with the admission policies, is valid; every kind the
# chart renders is validated (none unknown)
@pytest.mark.parametrize("policies", [False, True], ids=["plain", "policies"])
@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_models_03_value_sets(helm, tools, tmp_path, name, policies):
    args = render_args(tmp_path, name, VALUE_SETS[name], policies)
    text = helm.render_text(*args, namespace="sgx-system")
    got = assert_valid(tools, text, "%r %s" % (helm, name))
    assert "DaemonSet" in [e["kind"] for e in got]
    if policies and VALUE_SETS[name].get("dra", {}).get("enabled"):
        assert "DeviceClass" in [e["kind"] for e in got], got


# 04: every render the chart tests made in this session with this helm (run last)
def test_models_04_every_render(helm, tools):
    renders = [r for r in RENDERS if r[0] == helm.major]
    if not renders:
        pytest.skip("no other chart test rendered with %r in this session" % helm)
    seen = set()
    for _, args, release, namespace, text in renders:
        if text in seen:
            continue
        seen.add(text)
        assert_valid(tools, text, "%r template %s (release %s, namespace %s)" % (
            helm, " ".join(args), release, namespace))
