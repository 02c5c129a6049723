"""test_dra.py - the chart's Dynamic Resource Allocation (issue 12), with helm 3 and helm 4:
dra.enabled (off by default) passes --dra, --plugins-registry, --dra-dir and --cdi and mounts the
kubelet's plugin registry, the driver's directory and /var/run/cdi read-write, only then; the
ClusterRole gets resourceslices, resourceclaims and nodes; the DeviceClass <resourceDomain> and the
ValidatingAdmissionPolicy on resourceslices are rendered only where the cluster serves
resource.k8s.io/v1 (and ValidatingAdmissionPolicy); their CEL runs for real (cel-js); the README's
DRA examples are deploy/examples/ verbatim, valid Kubernetes objects naming the chart's class."""

import hashlib
import json
import os
import re
import shutil
import subprocess

import pytest
import yaml

from chartlib import (CHART, DRA_APIS, HERE, RELEASE, TOP, VAP_API, args_of, container,
                      daemonset, flag, objects, one, write_values)
from test_policy import evaluate

SA_USER = "system:serviceaccount:default:sgxdevplugin"
NODE_NAME_KEY = "authentication.kubernetes.io/node-name"
REGISTRY = "/var/lib/kubelet/plugins_registry"
EVERYTHING = DRA_APIS + ("--api-versions", VAP_API)
EXAMPLES = os.path.join(TOP, "deploy", "examples")


def dra(helm, tmp_path, *args, **values):
    """Renders with dra.enabled and the given dra.* values (plus *args)."""
    v = {"dra": dict({"enabled": True}, **values.pop("dra", {}))}
    v.update(values)
    # a name per content: helm.template caches renders by their arguments
    name = "dra-%s.yaml" % hashlib.sha1(json.dumps(v, sort_keys=True).encode()).hexdigest()[:12]
    return helm.template("-f", write_values(tmp_path, v, name=name), *args)


def mounts(docs):
    return {m["mountPath"]: m for m in container(docs)["volumeMounts"]}


def volume(docs, mount):
    vols = {v["name"]: v for v in daemonset(docs)["spec"]["template"]["spec"]["volumes"]}
    return vols[mount["name"]]


def cel(tools, expressions, contexts):
    r = subprocess.run([tools["node"], os.path.join(HERE, "cel_eval.mjs"), tools["celjs"]],
                       input=json.dumps({"expressions": expressions, "contexts": contexts}),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


# 01: off by default: no DRA flag, mount, rule or object, even where the cluster serves DRA
def test_dra_01_off_by_default(helm):
    docs = helm.template(*EVERYTHING)
    args = args_of(docs)
    assert not [a for a in args if a.startswith(("--dra", "--plugins-registry", "--cdi",
                                                 "--no-device-plugin"))], args
    assert set(mounts(docs)) == {"/host/dev", "/var/lib/kubelet/device-plugins"}
    assert not objects(docs, "DeviceClass")
    assert [p["metadata"]["name"] for p in objects(docs, "ValidatingAdmissionPolicy")] == [
        RELEASE + "-node-labels"]
    for rule in one(docs, "ClusterRole")["rules"]:
        assert "resource.k8s.io" not in rule["apiGroups"], rule


# 02: dra.enabled: --dra with the registry and the driver's dir (default under the kubelet's
# plugins dir, named by resourceDomain), --cdi with /var/run/cdi (a DRA prepare answers CDI IDs);
# all three host dirs mounted read-write at the same paths; the device plugin stays, and its
# liveness probe checks the DRA sockets too (the daemon's DRA flags)
@pytest.mark.parametrize("domain", ["sgx.k8s.io", "sgx.example.com"])
def test_dra_02_args_and_mounts(helm, tmp_path, domain):
    docs = dra(helm, tmp_path, resourceDomain=domain)
    args = args_of(docs)
    assert "--dra" in args and "--no-device-plugin" not in args
    assert flag(args, "--plugins-registry") == REGISTRY
    assert flag(args, "--dra-dir") == "/var/lib/kubelet/plugins/" + domain
    assert args.count("--cdi") == 1 and flag(args, "--cdi-dir") == "/var/run/cdi"
    m = mounts(docs)
    for path in (REGISTRY, "/var/lib/kubelet/plugins/" + domain, "/var/run/cdi"):
        assert not m[path].get("readOnly", False), path
        assert volume(docs, m[path])["hostPath"] == {"path": path, "type": "DirectoryOrCreate"}
    assert m["/host/dev"]["readOnly"] is True
    assert container(docs)["securityContext"]["readOnlyRootFilesystem"] is True
    probe = container(docs)["livenessProbe"]["exec"]["command"]
    assert probe == ["/sgxdevplugin", "health", "--kubelet-dir=/var/lib/kubelet/device-plugins",
                     "--resource-domain=" + domain, "--timeout=3", "--dra",
                     "--plugins-registry=" + REGISTRY,
                     "--dra-dir=/var/lib/kubelet/plugins/" + domain], probe
    assert len(m) == 5 and len(daemonset(docs)["spec"]["template"]["spec"]["volumes"]) == 5


# 03: other host paths; cdi and dra together give one --cdi and one mount (the same logic)
def test_dra_03_paths_and_cdi_shared(helm, tmp_path):
    docs = dra(helm, tmp_path, cdi=True, dra={
        "pluginsRegistry": "/var/lib/k0s/kubelet/plugins_registry",
        "pluginDir": "/var/lib/k0s/kubelet/plugins/sgx"})
    args = args_of(docs)
    assert flag(args, "--plugins-registry") == "/var/lib/k0s/kubelet/plugins_registry"
    assert flag(args, "--dra-dir") == "/var/lib/k0s/kubelet/plugins/sgx"
    assert args.count("--cdi") == 1
    assert [a for a in args if a.startswith("--cdi-dir")] == ["--cdi-dir=/var/run/cdi"]
    m = mounts(docs)
    for path in ("/var/lib/k0s/kubelet/plugins_registry", "/var/lib/k0s/kubelet/plugins/sgx"):
        assert volume(docs, m[path])["hostPath"]["path"] == path
    assert REGISTRY not in m
    names = [v["name"] for v in daemonset(docs)["spec"]["template"]["spec"]["volumes"]]
    assert names.count("cdi-specs") == 1 and len(names) == len(set(names))


# 04: dra.deviceplugin=false: --no-device-plugin, for the daemon and its liveness probe, which
# then checks only the DRA sockets (test_binary.py runs it against the daemon); without
# dra.enabled the value changes nothing
def test_dra_04_no_device_plugin(helm, tmp_path):
    docs = dra(helm, tmp_path, dra={"deviceplugin": False,
                                    "pluginDir": "/var/lib/k0s/kubelet/plugins/sgx"})
    args = args_of(docs)
    assert "--no-device-plugin" in args
    probe = container(docs)["livenessProbe"]["exec"]["command"]
    assert probe[:2] == ["/sgxdevplugin", "health"] and "--timeout=3" in probe, probe
    for a in ("--dra", "--no-device-plugin", "--plugins-registry=" + REGISTRY,
              "--dra-dir=/var/lib/k0s/kubelet/plugins/sgx"):
        assert probe.count(a) == 1 and a in args, (a, probe)
    off = helm.template("-f", write_values(tmp_path, {"dra": {"deviceplugin": False}}))
    assert off == helm.template()


SLICE_RULE = {"apiGroups": ["resource.k8s.io"], "resources": ["resourceslices"],
              "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]}
CLAIM_RULE = {"apiGroups": ["resource.k8s.io"], "resources": ["resourceclaims"], "verbs": ["get"]}


# 05: RBAC: slices (all the verbs the driver uses), claims get, nodes get; with no labels and no
# EPC, DRA alone still renders the ServiceAccount and mounts its token
def test_dra_05_rbac(helm, tmp_path):
    rules = one(dra(helm, tmp_path), "ClusterRole")["rules"]
    assert SLICE_RULE in rules and CLAIM_RULE in rules
    assert {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "patch"]} in rules
    docs = dra(helm, tmp_path, labelNodes=False, epcResource=False)
    assert one(docs, "ClusterRole")["rules"] == [
        {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get"]}, SLICE_RULE, CLAIM_RULE]
    sa = one(docs, "ServiceAccount")
    binding = one(docs, "ClusterRoleBinding")
    assert binding["subjects"][0]["name"] == sa["metadata"]["name"]
    ps = daemonset(docs)["spec"]["template"]["spec"]
    assert ps["serviceAccountName"] == sa["metadata"]["name"]
    assert ps["automountServiceAccountToken"] is True
    assert "--label-node" not in args_of(docs)


# 06: the DeviceClass: only where resource.k8s.io/v1 is served; named after the driver; selects
# the driver's devices; extendedResourceName only when set
def test_dra_06_device_class(helm, tmp_path):
    assert not objects(dra(helm, tmp_path), "DeviceClass")
    assert not objects(dra(helm, tmp_path, "--api-versions", "resource.k8s.io/v1beta2/DeviceClass"),
                       "DeviceClass")
    dc = one(dra(helm, tmp_path, *DRA_APIS), "DeviceClass")
    assert dc["apiVersion"] == "resource.k8s.io/v1"
    assert dc["metadata"]["name"] == "sgx.k8s.io" and "namespace" not in dc["metadata"]
    assert dc["spec"] == {"selectors": [{"cel": {"expression": 'device.driver == "sgx.k8s.io"'}}]}
    dc = one(dra(helm, tmp_path, *DRA_APIS, resourceDomain="sgx.example.com",
                 dra={"extendedResourceName": "sgx.example.com/sgx"}), "DeviceClass")
    assert dc["metadata"]["name"] == "sgx.example.com"
    assert dc["spec"]["extendedResourceName"] == "sgx.example.com/sgx"
    assert dc["spec"]["selectors"] == [
        {"cel": {"expression": 'device.driver == "sgx.example.com"'}}]


# 07: the class's CEL, evaluated: our driver's devices match, another driver's do not
def test_dra_07_device_class_cel(helm, tools, tmp_path):
    dc = one(dra(helm, tmp_path, *DRA_APIS, resourceDomain="sgx.example.com"), "DeviceClass")
    expr = [s["cel"]["expression"] for s in dc["spec"]["selectors"]]
    got = cel(tools, expr, [{"device": {"driver": d, "attributes": {}, "capacity": {}}}
                            for d in ("sgx.example.com", "sgx.k8s.io", "gpu.example.com")])
    assert got == [[{"value": True}], [{"value": False}], [{"value": False}]]


def policy(helm, tmp_path, *args, **values):
    docs = dra(helm, tmp_path, *EVERYTHING, *args, **values)
    vaps = {p["metadata"]["name"]: p for p in objects(docs, "ValidatingAdmissionPolicy")}
    return docs, vaps[RELEASE + "-resourceslices"]


# 08: the ResourceSlice policy and its binding: only where both VAP and resource.k8s.io/v1 are
# served; Deny, fail closed; create/update/delete of resourceslices by our ServiceAccount
def test_dra_08_policy_objects(helm, tmp_path):
    for apis in ((), DRA_APIS, ("--api-versions", VAP_API)):
        docs = dra(helm, tmp_path, *apis)
        assert not [p for p in objects(docs, "ValidatingAdmissionPolicy")
                    if "resourceslices" in p["metadata"]["name"]], apis
    docs, vap = policy(helm, tmp_path)
    name = vap["metadata"]["name"]
    bindings = [b for b in objects(docs, "ValidatingAdmissionPolicyBinding")
                if b["spec"]["policyName"] == name]
    assert len(bindings) == 1 and bindings[0]["spec"]["validationActions"] == ["Deny"]
    spec = vap["spec"]
    assert spec["failurePolicy"] == "Fail"
    assert spec["matchConstraints"]["resourceRules"] == [{
        "apiGroups": ["resource.k8s.io"], "apiVersions": ["*"],
        "operations": ["CREATE", "UPDATE", "DELETE"], "resources": ["resourceslices"]}]
    assert [m["expression"] for m in spec["matchConditions"]] == [
        "request.userInfo.username == '%s'" % SA_USER]
    # the node comes from the token exactly as in the node-label policy
    labels = [p for p in objects(docs, "ValidatingAdmissionPolicy") if p is not vap][0]
    node_var = [v for v in labels["spec"]["variables"] if v["name"] == "nodeName"]
    assert [v for v in spec["variables"] if v["name"] == "nodeName"] == node_var


def rslice(node="n1", driver="sgx.k8s.io", **spec):
    s = {"driver": driver, "pool": {"name": node or "pool", "generation": 1,
                                    "resourceSliceCount": 1}, "devices": []}
    if node is not None:
        s["nodeName"] = node
    s.update(spec)
    return {"apiVersion": "resource.k8s.io/v1", "kind": "ResourceSlice",
            "metadata": {"name": "%s-sgx.k8s.io-abcde" % node, "generateName": "n1-sgx.k8s.io-",
                         "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": "n1",
                                              "uid": "u1", "controller": True}]},
            "spec": s}


def sreq(op, user=SA_USER, node_name=("n1",)):
    r = {"operation": op, "subResource": "", "kind": {"kind": "ResourceSlice"},
         "userInfo": {"username": user, "groups": ["system:serviceaccounts"]}}
    if node_name is not None:
        r["userInfo"]["extra"] = {NODE_NAME_KEY: list(node_name)}
    return r


OWN = rslice()
BUMPED = rslice(devices=[{"name": "dcap"}], pool={"name": "n1", "generation": 2,
                                                   "resourceSliceCount": 1})
# (id, request, oldObject, object, allowed); a delete has object null and oldObject the slice
SLICE_CASES = [
    ("create-own", sreq("CREATE"), None, OWN, True),
    ("update-own", sreq("UPDATE"), OWN, BUMPED, True),
    ("delete-own", sreq("DELETE"), OWN, None, True),
    ("create-other-node", sreq("CREATE"), None, rslice("n2"), False),
    ("update-other-node", sreq("UPDATE"), rslice("n2"), rslice("n2", devices=[{"name": "x"}]),
     False),
    ("update-move-to-own", sreq("UPDATE"), rslice("n2"), OWN, False),
    ("update-move-away", sreq("UPDATE"), OWN, rslice("n2"), False),
    ("delete-other-node", sreq("DELETE"), rslice("n2"), None, False),
    ("create-all-nodes", sreq("CREATE"), None, rslice(None, allNodes=True), False),
    ("create-node-selector", sreq("CREATE"), None, rslice(None, nodeSelector={
        "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In",
                                                "values": ["n1"]}]}]}), False),
    ("delete-all-nodes", sreq("DELETE"), rslice(None, allNodes=True), None, False),
    ("create-other-driver", sreq("CREATE"), None, rslice(driver="gpu.example.com"), False),
    ("update-other-driver", sreq("UPDATE"), rslice(driver="gpu.example.com"),
     rslice(driver="gpu.example.com", devices=[{"name": "x"}]), False),
    ("delete-other-driver", sreq("DELETE"), rslice(driver="gpu.example.com"), None, False),
    ("create-no-node-name", sreq("CREATE", node_name=None), None, OWN, False),
    ("delete-no-node-name", sreq("DELETE", node_name=None), OWN, None, False),
    ("create-two-node-names", sreq("CREATE", node_name=("n1", "n2")), None, OWN, False),
    ("create-empty-node-name", sreq("CREATE", node_name=("",)), None, rslice(""), False),
]


def check(tools, spec, cases):
    got = evaluate(tools, spec, [{"request": r, "oldObject": o, "object": n}
                                 for _, r, o, n, _ in cases])
    bad = ["%s: want %s, got %s" % (name, "allowed" if allowed else "denied", g)
           for (name, _, _, _, allowed), g in zip(cases, got)
           if not g["matched"] or g["allowed"] != allowed]
    assert not bad, "\n".join(bad)
    return got


# 09: the policy's CEL, evaluated: our pod writes (creates, updates, deletes) only its own node's
# slices of its own driver; a delete is judged by oldObject (object is null)
def test_dra_09_policy_cel(helm, tools, tmp_path):
    got = check(tools, policy(helm, tmp_path)[1]["spec"], SLICE_CASES)
    # a denial says why, with no CEL error behind it
    for (name, *_), g in zip(SLICE_CASES, got):
        assert not [f for f in g["failed"] if "error:" in f], (name, g)


# 10: the driver follows resourceDomain; others (another ServiceAccount, the kubelet, an admin)
# are not this policy's business
def test_dra_10_policy_domain_and_others(helm, tools, tmp_path):
    spec = policy(helm, tmp_path, resourceDomain="sgx.example.com")[1]["spec"]
    check(tools, spec, [
        ("domain-ours", sreq("CREATE"), None, rslice(driver="sgx.example.com"), True),
        ("domain-default", sreq("CREATE"), None, OWN, False)])
    spec = policy(helm, tmp_path)[1]["spec"]
    users = ["system:serviceaccount:default:other", "system:serviceaccount:kube-system:sgxdevplugin",
             "system:node:n1", "kubernetes-admin"]
    got = evaluate(tools, spec, [{"request": sreq("CREATE", user=u), "oldObject": None,
                                  "object": rslice("n2", driver="gpu.example.com")}
                                 for u in users])
    assert got == [{"matched": False, "allowed": True, "failed": []}] * len(users)


# 11: the schema rejects wrong DRA values, naming them
@pytest.mark.parametrize("how,setting,key", [
    ("--set-string", "dra.enabled=yes", "enabled"),
    ("--set-string", "dra.deviceplugin=false", "deviceplugin"),
    ("--set", "dra.pluginsRegistry=var/lib/kubelet/plugins_registry", "pluginsRegistry"),
    ("--set", "dra.pluginDir=plugins/sgx", "pluginDir"),
    ("--set", "dra.extendedResourceName=sgx", "extendedResourceName"),
    ("--set", "dra.extendedResourceName=kubernetes.io/sgx", "extendedResourceName"),
    ("--set", "dra.extendedResourceName=node.kubernetes.io/sgx", "extendedResourceName"),
    ("--set", "dra.extendedResourceName=requests.sgx.k8s.io/sgx", "extendedResourceName"),
    ("--set", "dra.extendedResourceName=Sgx.K8s.io/sgx", "extendedResourceName"),
    ("--set", "dra.enable=true", "enable"),
], ids=lambda v: v if "=" in str(v) else None)
def test_dra_11_schema_rejects(helm, how, setting, key):
    err = helm.template_fails(how, setting)
    assert key in err, err


def notes(helm, tmp_path, *args):
    """NOTES.txt rendered, through a copy of the chart that puts it in a ConfigMap (as
    test_chart.py's test 19 does)."""
    chart = tmp_path / "sgxdevplugin"
    shutil.copytree(CHART, chart)
    text = (chart / "templates" / "NOTES.txt").read_text()
    (chart / "templates" / "NOTES.txt").unlink()
    (chart / "templates" / "_notes.tpl").write_text(
        '{{- define "test.notes" -}}\n' + text + '{{- end }}\n')
    (chart / "templates" / "notes.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\n"
        "data:\n  notes: {{ include \"test.notes\" . | quote }}\n")
    r = helm.run("template", RELEASE, str(chart), *args)
    assert r.returncode == 0, r.stderr
    docs = [d for d in yaml.safe_load_all(r.stdout) if d]
    return [d for d in docs if d["kind"] == "ConfigMap"][0]["data"]["notes"]


# 12: NOTES.txt: nothing of DRA when off; the class and the slices when served; a warning when the
# cluster does not serve resource.k8s.io/v1
def test_dra_12_notes(helm, tmp_path):
    assert "DRA" not in notes(helm, tmp_path)
    text = notes(helm, tmp_path / "a", "--set", "dra.enabled=true", "--set",
                 "dra.extendedResourceName=sgx.k8s.io/sgx", *DRA_APIS)
    assert "deviceClassName: sgx.k8s.io" in text
    assert "--field-selector spec.driver=sgx.k8s.io" in text
    assert "sgx.k8s.io/sgx" in text and "DRAExtendedResource" in text
    assert "WARNING" not in text
    text = notes(helm, tmp_path / "b", "--set", "dra.enabled=true")
    assert "WARNING" in text and "resource.k8s.io/v1" in text


# ---- the README's examples (deploy/examples/) ----

def readme_blocks():
    """{file: block} for each README block introduced by <!-- include deploy/examples/F -->."""
    with open(os.path.join(TOP, "README.md")) as f:
        text = f.read()
    found = re.findall(r"<!-- include (deploy/examples/[\w.-]+) -->\n```yaml\n(.*?)```", text, re.S)
    return dict(found)


EXAMPLE_FILES = ("deploy/examples/dra-sgx2-epc.yaml", "deploy/examples/dra-extended-resource.yaml")


def example(name):
    with open(os.path.join(TOP, name)) as f:
        return f.read()


# 13: the README holds each example file verbatim
def test_dra_13_readme_includes_examples():
    blocks = readme_blocks()
    for name in EXAMPLE_FILES:
        assert name in blocks, "README.md does not include %s" % name
        assert blocks[name] == example(name), "README.md's copy of %s differs from it" % name


def dts_fields(tools, path):
    """The field names of a kubernetes-models interface (its .d.ts)."""
    with open(os.path.join(tools["models"], "kubernetes-models", path + ".d.ts")) as f:
        return set(re.findall(r'^\s+"([A-Za-z]+)"\??:', f.read(), re.M))


# 14: the examples are valid objects of the Kubernetes API (kubernetes-models), with field names
# that are the API's (the schema lets unknown fields pass, so the claim's are checked by name)
def test_dra_14_examples_valid(tools):
    from test_models import assert_valid
    for name in EXAMPLE_FILES:
        got = assert_valid(tools, example(name), name)
        assert got and all(e["ok"] for e in got)
    rct, pod = [d for d in yaml.safe_load_all(example(EXAMPLE_FILES[0])) if d]
    assert rct["kind"] == "ResourceClaimTemplate" and pod["kind"] == "Pod"
    req = rct["spec"]["spec"]["devices"]["requests"][0]
    v1 = "resource.k8s.io/v1/"
    assert set(req) <= dts_fields(tools, v1 + "DeviceRequest")
    assert set(req["exactly"]) <= dts_fields(tools, v1 + "ExactDeviceRequest")
    assert set(req["exactly"]["capacity"]) <= dts_fields(tools, v1 + "CapacityRequirements")
    assert set(req["exactly"]["selectors"][0]) <= dts_fields(tools, v1 + "DeviceSelector")
    assert {"deviceClassName", "selectors", "capacity"} <= set(req["exactly"])
    assert "extendedResourceName" in dts_fields(tools, v1 + "DeviceClassSpec")
    # the pod uses the template through a claim its container names
    claim = pod["spec"]["resourceClaims"][0]
    assert claim["resourceClaimTemplateName"] == rct["metadata"]["name"]
    assert pod["spec"]["containers"][0]["resources"]["claims"] == [{"name": claim["name"]}]


# 15: the examples fit the chart: the claim names the chart's DeviceClass, asks SGX2 of our
# driver's attributes (cel-js: an SGX1 device does not match) and 64 MiB of EPC; the
# extended-resource pod asks for the name README tells to set as dra.extendedResourceName
def test_dra_15_examples_fit_the_chart(helm, tools, tmp_path):
    rct = [d for d in yaml.safe_load_all(example(EXAMPLE_FILES[0])) if d][0]
    exactly = rct["spec"]["spec"]["devices"]["requests"][0]["exactly"]
    dc = one(dra(helm, tmp_path, *DRA_APIS), "DeviceClass")
    assert exactly["deviceClassName"] == dc["metadata"]["name"]
    assert exactly["capacity"]["requests"] == {"epc": "64Mi"}
    exprs = [s["cel"]["expression"] for s in exactly["selectors"]] + \
        [s["cel"]["expression"] for s in dc["spec"]["selectors"]]

    def device(sgx2, driver="sgx.k8s.io"):
        return {"device": {"driver": driver, "allowMultipleAllocations": True,
                           "attributes": {"sgx.k8s.io": {"driver": "in-kernel", "sgx1": True,
                                                         "sgx2": sgx2, "flc": True}},
                           "capacity": {"sgx.k8s.io": {"epc": "128Mi"}}}}
    got = cel(tools, exprs, [device(True), device(False)])
    assert got == [[{"value": True}, {"value": True}], [{"value": False}, {"value": True}]]

    pod = yaml.safe_load(example(EXAMPLE_FILES[1]))
    limits = pod["spec"]["containers"][0]["resources"]["limits"]
    assert limits == {"sgx.k8s.io/sgx": 1}
    readme = open(os.path.join(TOP, "README.md")).read()
    assert "dra.extendedResourceName=sgx.k8s.io/sgx" in readme
    dc = one(dra(helm, tmp_path, *DRA_APIS, dra={"extendedResourceName": "sgx.k8s.io/sgx"}),
             "DeviceClass")
    assert list(limits) == [dc["spec"]["extendedResourceName"]]
