"""chartlib.py - helpers for the chart tests: paths, and picking objects, the container, its args
and flags out of rendered documents."""

import os

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
CHART = os.path.join(TOP, "deploy", "helm", "sgxdevplugin")
RELEASE = "sgxdevplugin"
VAP_API = "admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy"
MAP_API = "admissionregistration.k8s.io/v1/MutatingAdmissionPolicy"
# what a cluster with Dynamic Resource Allocation (resource.k8s.io/v1, Kubernetes 1.34 on) serves
DRA_APIS = ("--api-versions", "resource.k8s.io/v1/DeviceClass",
            "--api-versions", "resource.k8s.io/v1/ResourceSlice")

# every successful `helm template` of the session (conftest's Helm.template): (helm major, args,
# release, namespace, text); test_models.py validates them all against the Kubernetes API schema
RENDERS = []


def objects(docs, kind):
    return [d for d in docs if d.get("kind") == kind]


def one(docs, kind):
    found = objects(docs, kind)
    assert len(found) == 1, "%d %s objects rendered" % (len(found), kind)
    return found[0]


def daemonset(docs):
    return one(docs, "DaemonSet")


def container(docs):
    cs = daemonset(docs)["spec"]["template"]["spec"]["containers"]
    assert len(cs) == 1
    return cs[0]


def args_of(docs):
    return container(docs)["args"]


def flag(args, name):
    """The value of --name=V (or --name V) in args; None when absent."""
    for i, a in enumerate(args):
        if a.startswith(name + "="):
            return a[len(name) + 1:]
        if a == name and i + 1 < len(args) and not args[i + 1].startswith("--"):
            return args[i + 1]
    return None


def chart_meta():
    with open(os.path.join(CHART, "Chart.yaml")) as f:
        return yaml.safe_load(f)


def write_values(tmp_path, values, name="values.yaml"):
    p = tmp_path / name
    p.write_text(yaml.safe_dump(values))
    return str(p)
