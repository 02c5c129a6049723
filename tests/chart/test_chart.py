"""test_chart.py - the Helm chart deploy/helm/sgxdevplugin (issue #4), with helm 3 and helm 4:
lint, the default render (DaemonSet, volumes, securityContext, env, args, probe, RBAC), each
value changed, upgrades, and the schema rejecting wrong values. Assertions are on parsed YAML."""

import shutil

import pytest
import yaml

from chartlib import (CHART, MAP_API, RELEASE, VAP_API, args_of, chart_meta, container, daemonset, flag, objects, one,
                      write_values)

DEV_ROOT = "/host/dev"
KUBELET_DIR = "/var/lib/kubelet/device-plugins"


def pod_spec(docs):
    return daemonset(docs)["spec"]["template"]["spec"]


def volume_for_mount(docs, mount):
    vols = {v["name"]: v for v in pod_spec(docs)["volumes"]}
    return vols[mount["name"]]


def mounts_by_path(docs):
    return {m["mountPath"]: m for m in container(docs)["volumeMounts"]}


# 01: helm lint, plain and --strict (warnings are errors), passes
@pytest.mark.parametrize("strict", [False, True], ids=["lint", "lint-strict"])
def test_chart_01_lint(helm, strict):
    r = helm.run("lint", CHART, *(["--strict"] if strict else []))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "1 chart(s) linted, 0 chart(s) failed" in r.stdout, r.stdout
    assert "[ERROR]" not in r.stdout and "[WARNING]" not in r.stdout, r.stdout


# 02: lint catches a bad value through the schema
def test_chart_02_lint_rejects_bad_value(helm):
    r = helm.run("lint", CHART, "--set-string", "maxSGXPods=abc")
    assert r.returncode != 0, r.stdout
    assert "maxSGXPods" in r.stdout + r.stderr


# 03: the default render holds exactly the DaemonSet and the RBAC objects, in the release namespace
def test_chart_03_default_objects(helm):
    docs = helm.template(namespace="sgx-system")
    kinds = sorted(d["kind"] for d in docs)
    assert kinds == ["ClusterRole", "ClusterRoleBinding", "DaemonSet", "ServiceAccount"]
    for d in docs:
        if d["kind"] in ("DaemonSet", "ServiceAccount"):
            assert d["metadata"]["namespace"] == "sgx-system", d["kind"]
        else:
            assert "namespace" not in d["metadata"], d["kind"]
        assert d["metadata"]["name"] == RELEASE
        assert d["metadata"]["labels"]["app.kubernetes.io/instance"] == RELEASE


# 04: host /dev read-only at --dev-root; the kubelet dir read-write at the same path
def test_chart_04_volumes(helm):
    docs = helm.template()
    args = args_of(docs)
    mounts = mounts_by_path(docs)
    assert len(mounts) == 2 and len(pod_spec(docs)["volumes"]) == 2

    dev_root = flag(args, "--dev-root")
    assert dev_root == DEV_ROOT
    dev = mounts[dev_root]
    assert dev.get("readOnly") is True
    assert volume_for_mount(docs, dev)["hostPath"] == {"path": "/dev", "type": "Directory"}

    kdir = flag(args, "--kubelet-dir")
    assert kdir == KUBELET_DIR
    k = mounts[kdir]
    assert not k.get("readOnly", False)
    assert volume_for_mount(docs, k)["hostPath"] == {"path": KUBELET_DIR, "type": "Directory"}


# 05: least privilege: not privileged, read-only root, no escalation, no capabilities, seccomp
def test_chart_05_security_context(helm):
    docs = helm.template()
    sc = container(docs)["securityContext"]
    assert sc["privileged"] is False
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert sc["runAsUser"] == 0
    ps = pod_spec(docs)
    for k in ("hostNetwork", "hostPID", "hostIPC"):
        assert not ps.get(k, False), k


# 06: NODE_NAME comes from the downward API
def test_chart_06_env_node_name(helm):
    env = {e["name"]: e for e in container(helm.template())["env"]}
    assert env["NODE_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "spec.nodeName"}}
    assert "value" not in env["NODE_NAME"]


# 07: the default args: 110 slots, node labels and EPC capacity on, provisioning mapped, text
# logs, no --compat
def test_chart_07_default_args(helm):
    args = args_of(helm.template())
    assert flag(args, "--max-pods") == "110"
    assert "--label-node" in args
    assert "--epc-resource" in args
    assert not any(a.startswith("--compat") for a in args)
    assert "--no-provision" not in args
    assert flag(args, "--resource-domain") == "sgx.k8s.io"
    assert flag(args, "--log-format") == "text"
    assert flag(args, "--log-level") == "info"
    assert "command" not in container(helm.template())  # the image's entrypoint runs


# 08: the liveness probe runs the daemon's own health check against its sockets
def test_chart_08_liveness_probe(helm):
    probe = container(helm.template())["livenessProbe"]
    cmd = probe["exec"]["command"]
    assert cmd[:2] == ["/sgxdevplugin", "health"]
    assert flag(cmd, "--kubelet-dir") == KUBELET_DIR
    assert flag(cmd, "--resource-domain") == "sgx.k8s.io"
    timeout = float(flag(cmd, "--timeout"))
    assert timeout == 3
    assert probe["timeoutSeconds"] > timeout
    assert probe["periodSeconds"] == 30
    assert probe["failureThreshold"] >= 3


# 09: rolling update one node at a time without surge; priority, image, pull policy, resources
def test_chart_09_daemonset_spec(helm):
    docs = helm.template()
    ds = daemonset(docs)
    assert ds["spec"]["updateStrategy"] == {
        "type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}}
    sel = ds["spec"]["selector"]["matchLabels"]
    labels = ds["spec"]["template"]["metadata"]["labels"]
    assert sel and all(labels[k] == v for k, v in sel.items())
    ps = pod_spec(docs)
    assert ps["priorityClassName"] == "system-node-critical"
    c = container(docs)
    meta = chart_meta()
    assert meta["apiVersion"] == "v2"
    assert c["image"].endswith(":" + meta["appVersion"]), c["image"]
    assert c["imagePullPolicy"] == "Always"
    assert set(c["resources"]["requests"]) == {"cpu", "memory"}
    assert "memory" in c["resources"]["limits"]
    for k in ("nodeSelector", "tolerations", "affinity", "imagePullSecrets"):
        assert k not in ps, k


NODES_RULE = {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "patch"]}
STATUS_RULE = {"apiGroups": [""], "resources": ["nodes/status"], "verbs": ["patch"]}


# 10: labelNodes: a ServiceAccount, a ClusterRole of exactly get+patch on nodes (and, with
# epcResource, patch on nodes/status), bound to it
@pytest.mark.parametrize("epc", [True, False], ids=["epc", "no-epc"])
def test_chart_10_rbac(helm, epc):
    docs = helm.template("--set", "epcResource=%s" % str(epc).lower(), namespace="sgx-system")
    sa = one(docs, "ServiceAccount")
    role = one(docs, "ClusterRole")
    binding = one(docs, "ClusterRoleBinding")
    assert role["rules"] == [NODES_RULE] + ([STATUS_RULE] if epc else [])
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io",
                                  "kind": "ClusterRole", "name": role["metadata"]["name"]}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": sa["metadata"]["name"],
                                    "namespace": "sgx-system"}]
    ps = pod_spec(docs)
    assert ps["serviceAccountName"] == sa["metadata"]["name"]
    assert ps["automountServiceAccountToken"] is True
    assert not objects(docs, "Role") and not objects(docs, "RoleBinding")


# 11: labelNodes=false and epcResource=false: no ServiceAccount, ClusterRole, binding or policy; no
# token; no --label-node. labelNodes=false alone: the role holds only patch on nodes/status
def test_chart_11_label_nodes_false(helm):
    docs = helm.template("--set", "labelNodes=false", "--set", "epcResource=false",
                         "--api-versions", VAP_API, "--api-versions", MAP_API)
    assert [d["kind"] for d in docs] == ["DaemonSet"]
    epc_only = helm.template("--set", "labelNodes=false")
    assert one(epc_only, "ClusterRole")["rules"] == [STATUS_RULE]
    assert "--label-node" not in args_of(epc_only)
    assert "--epc-resource" in args_of(epc_only)
    ps = pod_spec(docs)
    assert ps["automountServiceAccountToken"] is False
    assert "serviceAccountName" not in ps
    assert "--label-node" not in args_of(docs)
    assert "--epc-resource" not in args_of(docs)


# 11b: compat reaches the daemon as one --compat=LIST; empty, no flag
def test_chart_11b_compat(helm):
    args = args_of(helm.template("--set", "compat={intel,alibaba}"))
    assert [a for a in args if a.startswith("--compat")] == ["--compat=intel,alibaba"]
    args = args_of(helm.template("--set", "compat={azure}", "--set", "epcResource=false"))
    assert "--compat=azure" in args and "--epc-resource" not in args


# 12: --set maxSGXPods=100 reaches the daemon's --max-pods; so do the bounds
@pytest.mark.parametrize("n", [100, 1, 100000])
def test_chart_12_max_sgx_pods(helm, n):
    args = args_of(helm.template("--set", "maxSGXPods=%d" % n))
    assert flag(args, "--max-pods") == str(n)
    assert sum(a.startswith("--max-pods") for a in args) == 1


# 13: `helm upgrade --set maxSGXPods=100`: only the args change; the immutable selector does not
def test_chart_13_upgrade_changes_args_only(helm):
    before = daemonset(helm.template())
    after = daemonset(helm.template("--is-upgrade", "--set", "maxSGXPods=100"))
    assert after["spec"]["selector"] == before["spec"]["selector"]
    assert after["metadata"]["name"] == before["metadata"]["name"]
    ca = after["spec"]["template"]["spec"]["containers"][0]
    cb = before["spec"]["template"]["spec"]["containers"][0]
    assert flag(cb["args"], "--max-pods") == "110" and flag(ca["args"], "--max-pods") == "100"
    assert [a for a in ca["args"] if not a.startswith("--max-pods")] == \
        [a for a in cb["args"] if not a.startswith("--max-pods")]
    ca["args"] = cb["args"] = None
    assert after == before


# 14: nodeSelector is evaluated as a template
def test_chart_14_node_selector_template(helm, tmp_path):
    vals = write_values(tmp_path, {"nodeSelector": {
        "example.com/pool": "{{ .Release.Name }}-sgx", "sgx.k8s.io/sgx": "true"}})
    docs = helm.template("-f", vals, release="enclaves")
    assert pod_spec(docs)["nodeSelector"] == {"example.com/pool": "enclaves-sgx",
                                              "sgx.k8s.io/sgx": "true"}


# 15: image is one string, repository:tag, as --set image=... gives it
def test_chart_15_image(helm):
    c = container(helm.template("--set", "image=registry.example.com/sgx/plugin:1.2.3",
                                "--set", "imagePullPolicy=IfNotPresent"))
    assert c["image"] == "registry.example.com/sgx/plugin:1.2.3"
    assert c["imagePullPolicy"] == "IfNotPresent"


# 16: provision=false is --no-provision; resourceDomain, logFormat, kubeletDir and extraArgs reach
# the args, the probe and the mounts
def test_chart_16_other_values(helm, tmp_path):
    vals = write_values(tmp_path, {
        "provision": False, "resourceDomain": "sgx.example.com", "logFormat": "json",
        "logLevel": "debug", "kubeletDir": "/var/lib/k0s/kubelet/device-plugins",
        "extraArgs": ["--provision-resource", "--aesmd-dir=/var/run/aesmd"]})
    docs = helm.template("-f", vals)
    args = args_of(docs)
    assert "--no-provision" in args
    assert flag(args, "--resource-domain") == "sgx.example.com"
    assert flag(args, "--log-format") == "json" and flag(args, "--log-level") == "debug"
    assert flag(args, "--kubelet-dir") == "/var/lib/k0s/kubelet/device-plugins"
    assert args[-2:] == ["--provision-resource", "--aesmd-dir=/var/run/aesmd"]
    cmd = container(docs)["livenessProbe"]["exec"]["command"]
    assert flag(cmd, "--kubelet-dir") == "/var/lib/k0s/kubelet/device-plugins"
    assert flag(cmd, "--resource-domain") == "sgx.example.com"
    m = mounts_by_path(docs)["/var/lib/k0s/kubelet/device-plugins"]
    assert volume_for_mount(docs, m)["hostPath"]["path"] == "/var/lib/k0s/kubelet/device-plugins"


# 17: scheduling and pull values pass through; priorityClassName "" drops the field
def test_chart_17_scheduling_values(helm, tmp_path):
    tol = [{"key": "sgx", "operator": "Exists", "effect": "NoSchedule"}]
    aff = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [
            {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]}]}]}}}
    res = {"requests": {"cpu": "5m", "memory": "8Mi"}, "limits": {"memory": "32Mi"}}
    vals = write_values(tmp_path, {"tolerations": tol, "affinity": aff, "resources": res,
                                   "priorityClassName": "",
                                   "imagePullSecrets": [{"name": "regcred"}]})
    docs = helm.template("-f", vals)
    ps = pod_spec(docs)
    assert ps["tolerations"] == tol and ps["affinity"] == aff
    assert ps["imagePullSecrets"] == [{"name": "regcred"}]
    assert "priorityClassName" not in ps
    assert container(docs)["resources"] == res


# 18: the schema rejects wrong types and out-of-range values, naming the value
@pytest.mark.parametrize("how,setting,key", [
    ("--set-string", "maxSGXPods=abc", "maxSGXPods"),
    ("--set", "maxSGXPods=-1", "maxSGXPods"),
    ("--set", "maxSGXPods=0", "maxSGXPods"),
    ("--set", "maxSGXPods=100001", "maxSGXPods"),
    ("--set-string", "labelNodes=yes", "labelNodes"),
    ("--set-string", "provision=false", "provision"),
    ("--set-string", "cdi=true", "cdi"),
    ("--set", "imagePullPolicy=Sometimes", "imagePullPolicy"),
    ("--set", "image=sgxdevplugin", "image"),
    ("--set", "logFormat=xml", "logFormat"),
    ("--set", "kubeletDir=var/lib/kubelet", "kubeletDir"),
    ("--set", "resourceDomain=Bad_Domain", "resourceDomain"),
    ("--set", "extraArgs=--debug", "extraArgs"),
    ("--set", "maxSgxPods=100", "maxSgxPods"),
    ("--set-string", "epcResource=yes", "epcResource"),
    ("--set", "compat={intel,sgx}", "compat"),
    ("--set", "compat={intel,intel}", "compat"),
    ("--set", "compat=intel", "compat"),
], ids=lambda v: v if "=" in str(v) else None)
def test_chart_18_schema_rejects(helm, how, setting, key):
    err = helm.template_fails(how, setting)
    assert key in err, err


# 19: NOTES.txt tells how to check allocatable and how to request the resources. `helm template`
# leaves NOTES out and helm 3.18's `install --dry-run=client` still looks for a cluster, so a copy
# of the chart renders NOTES.txt, unchanged, into a ConfigMap
def test_chart_19_notes(helm, tmp_path):
    chart = tmp_path / "sgxdevplugin"
    shutil.copytree(CHART, chart)
    notes = (chart / "templates" / "NOTES.txt").read_text()
    (chart / "templates" / "NOTES.txt").unlink()
    (chart / "templates" / "_notes.tpl").write_text(
        '{{- define "test.notes" -}}\n' + notes + '{{- end }}\n')
    (chart / "templates" / "notes.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\n"
        "data:\n  notes: {{ include \"test.notes\" . | quote }}\n")
    r = helm.run("template", RELEASE, str(chart), "--namespace", "sgx-system",
                 "--set", "resourceDomain=sgx.example.com")
    assert r.returncode == 0, r.stderr
    docs = [d for d in yaml.safe_load_all(r.stdout) if d]
    text = [d for d in docs if d["kind"] == "ConfigMap"][0]["data"]["notes"]
    assert "jsonpath='{.status.allocatable}'" in text
    assert "sgx.example.com/sgx: 1" in text
    assert "sgx.example.com/dcap" in text and "sgx.example.com/ias" in text
    assert "--namespace sgx-system" in text
    assert "daemonset/%s" % RELEASE in text


# 20: cdi: --cdi with the spec dir, and the host's /var/run/cdi mounted read-write at the same
# path; off by default: neither flag nor mount
def test_chart_20_cdi(helm, tmp_path):
    docs = helm.template()
    assert not [a for a in args_of(docs) if a.startswith("--cdi")]
    assert "/var/run/cdi" not in mounts_by_path(docs)
    assert "cdi-specs" not in {v["name"] for v in pod_spec(docs)["volumes"]}

    docs = helm.template("-f", write_values(tmp_path, {"cdi": True}))
    args = args_of(docs)
    assert "--cdi" in args
    assert flag(args, "--cdi-dir") == "/var/run/cdi"
    m = mounts_by_path(docs)["/var/run/cdi"]
    assert not m.get("readOnly", False)
    assert volume_for_mount(docs, m)["hostPath"] == {"path": "/var/run/cdi",
                                                     "type": "DirectoryOrCreate"}
    # the rest stays read-only: /dev, the root filesystem
    assert mounts_by_path(docs)[DEV_ROOT]["readOnly"] is True
    assert container(docs)["securityContext"]["readOnlyRootFilesystem"] is True
