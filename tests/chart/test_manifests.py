"""test_manifests.py - deploy/manifests/ is the chart rendered with its defaults (issue #4): fails
when the committed files drift from what deploy/manifests/render.sh gives, with helm 3 and helm 4
alike; the files hold what the chart's default render holds."""

import os
import subprocess

import yaml

from chartlib import TOP, objects

MANIFESTS = os.path.join(TOP, "deploy", "manifests")
FILES = ("sgxdevplugin.yaml", "sgxdevplugin-admission-policy.yaml", "sgxdevplugin-epc-policy.yaml")


# 01: render.sh's output, with this helm, is byte for byte the committed files
def test_manifests_01_no_drift(helm, tmp_path):
    env = dict(helm.env, HELM=helm.path)
    r = subprocess.run(["sh", os.path.join(MANIFESTS, "render.sh"), str(tmp_path)],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    for name in FILES:
        with open(os.path.join(MANIFESTS, name)) as f:
            committed = f.read()
        fresh = (tmp_path / name).read_text()
        assert fresh == committed, (
            "deploy/manifests/%s drifted from the chart: run deploy/manifests/render.sh" % name)


# 02: the plain manifests hold the default release: namespace default, RBAC, the DaemonSet, and
# the policy (only in its own file)
def test_manifests_02_content(helm):
    with open(os.path.join(MANIFESTS, FILES[0])) as f:
        main = [d for d in yaml.safe_load_all(f) if d]
    with open(os.path.join(MANIFESTS, FILES[1])) as f:
        vap = [d for d in yaml.safe_load_all(f) if d]
    assert main == helm.template()
    assert sorted(d["kind"] for d in main) == [
        "ClusterRole", "ClusterRoleBinding", "DaemonSet", "ServiceAccount"]
    assert all(d["metadata"].get("namespace", "default") == "default" for d in main)
    assert sorted(d["kind"] for d in vap) == [
        "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"]
    assert not objects(main, "ValidatingAdmissionPolicy")
    with open(os.path.join(MANIFESTS, FILES[2])) as f:
        epc = [d for d in yaml.safe_load_all(f) if d]
    assert sorted(d["kind"] for d in epc) == [
        "MutatingAdmissionPolicy", "MutatingAdmissionPolicyBinding"]
    assert not objects(main, "MutatingAdmissionPolicy")
