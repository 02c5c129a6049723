"""test_mutating.py - the MutatingAdmissionPolicy of epcResource (issue 11), with helm 3 and helm
4: rendered only where the cluster serves admissionregistration.k8s.io/v1
MutatingAdmissionPolicy and only with epcResource; its CEL applied for real to pods (map_eval.mjs
with cel-js; Kubernetes' quantity() and list sum()/max(), Object{} construction and the
ApplyConfiguration merge are test shims there, written to Kubernetes' rules): a container asking
for <domain>/epc and no SGX device gets <domain>/sgx: 1, the pod the annotation <domain>/epc with
its total EPC in bytes; with compat intel the same for sgx.intel.com/epc -> sgx.intel.com/enclave
and the annotation sgx.intel.com/epc (Kata's)."""

import copy
import json
import os
import subprocess

import pytest

from chartlib import HERE, MAP_API, objects, one
D = "sgx.k8s.io"
MI = 1 << 20


def map_docs(helm, *args):
    return helm.template("--api-versions", MAP_API, *args)


def run(tools, spec, pods):
    r = subprocess.run([tools["node"], os.path.join(HERE, "map_eval.mjs"), tools["celjs"]],
                       input=json.dumps({"spec": spec, "cases": [
                           {"request": {"operation": "CREATE", "kind": {"kind": "Pod"}},
                            "object": p} for p in pods]}),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def ctr(name, limits=None, requests=None, **more):
    c = {"name": name, "image": "enclave:1"}
    res = {}
    if limits is not None:
        res["limits"] = dict(limits)
    if requests is not None:
        res["requests"] = dict(requests)
    if res:
        c["resources"] = res
    c.update(more)
    return c


def pod(*containers, init=(), annotations=None):
    p = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"},
         "spec": {"containers": list(containers)}}
    if init:
        p["spec"]["initContainers"] = list(init)
    if annotations is not None:
        p["metadata"]["annotations"] = annotations
    return p


def epc(q, name=D + "/epc", **other):
    """limits == requests, as the API server defaults an extended resource's request."""
    return dict({name: q}, **other)


def with_device(c, dev=D + "/sgx"):
    c = copy.deepcopy(c)
    for k in ("limits", "requests"):
        c["resources"].setdefault(k, {})[dev] = "1"
    return c


def annotated(p, total, names=(D + "/epc",)):
    p = copy.deepcopy(p)
    p["metadata"].setdefault("annotations", {}).update({n: str(total) for n in names})
    return p


def spec_of(helm, *args):
    return one(map_docs(helm, *args), "MutatingAdmissionPolicy")["spec"]


# 01: rendered only where MutatingAdmissionPolicy v1 is served, and only with epcResource
def test_mutating_01_rendered_only_when_served(helm):
    assert not objects(helm.template(), "MutatingAdmissionPolicy")
    assert not objects(helm.template("--api-versions", "admissionregistration.k8s.io/v1beta1/"
                                     "MutatingAdmissionPolicy"), "MutatingAdmissionPolicy")
    docs = map_docs(helm, "--set", "epcResource=false")
    assert not objects(docs, "MutatingAdmissionPolicy")
    assert not objects(docs, "MutatingAdmissionPolicyBinding")


# 02: the policy and its binding: pods on CREATE, fail closed, reinvoked if needed, apply configs
def test_mutating_02_objects(helm):
    docs = map_docs(helm)
    m = one(docs, "MutatingAdmissionPolicy")
    b = one(docs, "MutatingAdmissionPolicyBinding")
    assert m["apiVersion"] == b["apiVersion"] == "admissionregistration.k8s.io/v1"
    assert b["spec"] == {"policyName": m["metadata"]["name"]}
    s = m["spec"]
    assert s["failurePolicy"] == "Fail" and s["reinvocationPolicy"] == "IfNeeded"
    assert s["matchConstraints"]["resourceRules"] == [{
        "apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"]}]
    assert {x["patchType"] for x in s["mutations"]} == {"ApplyConfiguration"}
    text = json.dumps(s)
    assert "sgx.intel.com" not in text and "webhook" not in text.lower()
    assert "sgx.intel.com/enclave" in json.dumps(spec_of(helm, "--set", "compat={intel}"))


EPC_ONLY = ctr("app", limits=epc("64Mi"), requests=epc("64Mi"))
LIMITS_ONLY = ctr("app", limits=epc("32Mi"))
REQUESTS_ONLY = ctr("app", requests=epc("16Mi"))

# (id, pod, want: the pod after the policy, or None for unchanged and not matched)
CASES = [
    ("epc-only", pod(EPC_ONLY), annotated(pod(with_device(EPC_ONLY)), 64 * MI)),
    ("limits-only", pod(LIMITS_ONLY), annotated(pod(with_device(LIMITS_ONLY)), 32 * MI)),
    ("requests-only", pod(REQUESTS_ONLY), annotated(pod(with_device(REQUESTS_ONLY)), 16 * MI)),
] + [
    ("already-" + dev, pod(ctr("app", limits=epc("8Mi", **{D + "/" + dev: "1"}),
                               requests=epc("8Mi", **{D + "/" + dev: "1"}))),
     annotated(pod(ctr("app", limits=epc("8Mi", **{D + "/" + dev: "1"}),
                       requests=epc("8Mi", **{D + "/" + dev: "1"}))), 8 * MI))
    for dev in ("sgx", "dcap", "ias")
] + [
    ("no-epc", pod(ctr("web", limits={"cpu": "1", D + "/sgx": "1"})), None),
    ("no-resources", pod(ctr("web")), None),
    ("several-summed",
     pod(EPC_ONLY, ctr("side", limits=epc("1Gi")), ctr("plain", limits={"memory": "1Gi"}),
         ctr("dev", limits=epc("512Ki", **{D + "/dcap": "1"}))),
     annotated(pod(with_device(EPC_ONLY), with_device(ctr("side", limits=epc("1Gi"))),
                   ctr("plain", limits={"memory": "1Gi"}),
                   ctr("dev", limits=epc("512Ki", **{D + "/dcap": "1"}))),
               64 * MI + 1024 * MI + 512 * 1024)),
    # init containers: each gets its device; the pod's EPC is the larger of the containers' sum
    # and the largest init container, plus sidecars (restartPolicy Always)
    ("init-larger", pod(EPC_ONLY, init=[ctr("setup", limits=epc("256Mi"))]),
     annotated(pod(with_device(EPC_ONLY), init=[with_device(ctr("setup", limits=epc("256Mi")))]),
               256 * MI)),
    ("init-smaller", pod(EPC_ONLY, init=[ctr("a", limits=epc("1Mi")), ctr("b", limits=epc("2Mi"))]),
     annotated(pod(with_device(EPC_ONLY), init=[with_device(ctr("a", limits=epc("1Mi"))),
                                                with_device(ctr("b", limits=epc("2Mi")))]),
               64 * MI)),
    ("init-only-epc", pod(ctr("web"), init=[ctr("seal", limits=epc("4Mi"))]),
     annotated(pod(ctr("web"), init=[with_device(ctr("seal", limits=epc("4Mi")))]), 4 * MI)),
    ("sidecar", pod(EPC_ONLY, init=[ctr("proxy", limits=epc("8Mi"), restartPolicy="Always")]),
     annotated(pod(with_device(EPC_ONLY),
                   init=[with_device(ctr("proxy", limits=epc("8Mi"), restartPolicy="Always"))]),
               72 * MI)),
    # quantities as Kubernetes reads them
    ("plain-bytes", pod(ctr("a", limits=epc("67108864"))),
     annotated(pod(with_device(ctr("a", limits=epc("67108864")))), 64 * MI)),
    ("decimal-si", pod(ctr("a", limits=epc("1M")), ctr("b", limits=epc("2k")),
                       ctr("c", limits=epc("1G"))),
     annotated(pod(*(with_device(ctr(n, limits=epc(q))) for n, q in
                     (("a", "1M"), ("b", "2k"), ("c", "1G")))), 10 ** 6 + 2000 + 10 ** 9)),
    ("fraction-and-exponent", pod(ctr("a", limits=epc("0.5Gi")), ctr("b", limits=epc("1e6")),
                                  ctr("c", limits=epc("2E3"))),
     annotated(pod(*(with_device(ctr(n, limits=epc(q))) for n, q in
                     (("a", "0.5Gi"), ("b", "1e6"), ("c", "2E3")))), (1 << 29) + 10 ** 6 + 2000)),
    ("millis", pod(ctr("a", limits=epc("4096000m"))),
     annotated(pod(with_device(ctr("a", limits=epc("4096000m")))), 4096)),
    ("other-annotations-kept", pod(EPC_ONLY, annotations={"team": "a", D + "/epc": "1"}),
     annotated(pod(with_device(EPC_ONLY), annotations={"team": "a"}), 64 * MI)),
    ("intel-names-ignored-without-compat",
     pod(ctr("app", limits=epc("64Mi", name="sgx.intel.com/epc"))), None),
]


def check(got, cases):
    bad = []
    for (name, p, want), g in zip(cases, got):
        if g["error"]:
            bad.append("%s: error %s" % (name, g["error"]))
        elif want is None and (g["matched"] or g["object"] != p):
            bad.append("%s: want no match and no change, got %s" % (name, g))
        elif want is not None and g["object"] != want:
            bad.append("%s:\n   want %s\n    got %s" % (name, json.dumps(want), json.dumps(g["object"])))
        elif g["again"] != g["object"]:
            bad.append("%s: a second run changed it again: %s" % (name, g["again"]))
    assert not bad, "\n".join(bad)


# 03: the CEL applied to pods
def test_mutating_03_cel(helm, tools):
    check(run(tools, spec_of(helm), [p for _, p, _ in CASES]), CASES)


# 04: a quantity that is not a whole number of bytes, or not a quantity, errors (denied: Fail)
@pytest.mark.parametrize("q", ["1500m", "0.1", "12Q", "1 Mi", "10E", "1e20"])
def test_mutating_04_bad_quantity(helm, tools, q):
    got = run(tools, spec_of(helm), [pod(ctr("a", limits=epc(q)))])
    assert got[0]["matched"] and got[0]["error"], got


INTEL = "sgx.intel.com"


def ias(q, name="app"):
    return ctr(name, limits=epc(q, name=INTEL + "/epc"), requests=epc(q, name=INTEL + "/epc"))


INTEL_CASES = [
    ("intel-epc-only", pod(ias("64Mi")),
     annotated(pod(with_device(ias("64Mi"), INTEL + "/enclave")), 64 * MI,
               (D + "/epc", INTEL + "/epc"))),
    ("intel-already-enclave", pod(with_device(ias("8Mi"), INTEL + "/enclave")),
     annotated(pod(with_device(ias("8Mi"), INTEL + "/enclave")), 8 * MI,
               (D + "/epc", INTEL + "/epc"))),
    ("intel-init", pod(ctr("web"), init=[ctr("i", limits=epc("2Mi", name=INTEL + "/epc"))]),
     annotated(pod(ctr("web"), init=[with_device(ctr("i", limits=epc("2Mi", name=INTEL + "/epc")),
                                                 INTEL + "/enclave")]), 2 * MI,
               (D + "/epc", INTEL + "/epc"))),
    ("ours-and-intel-summed", pod(EPC_ONLY, ias("1Mi", "kata")),
     annotated(pod(with_device(EPC_ONLY), with_device(ias("1Mi", "kata"), INTEL + "/enclave")),
               65 * MI,
               (D + "/epc", INTEL + "/epc"))),
    # one device only, when a container names both EPCs
    ("both-epc-names-one-device",
     pod(ctr("x", limits=epc("1Mi", **{INTEL + "/epc": "1Mi"}))),
     annotated(pod(with_device(ctr("x", limits=epc("1Mi", **{INTEL + "/epc": "1Mi"})))), 2 * MI,
               (D + "/epc", INTEL + "/epc"))),
    ("no-epc", pod(ctr("web", limits={INTEL + "/enclave": "1"})), None),
]


# 05: with compat intel, the Intel plugin's names too, and the annotation Kata reads
def test_mutating_05_compat_intel(helm, tools):
    check(run(tools, spec_of(helm, "--set", "compat={intel}"), [p for _, p, _ in INTEL_CASES]),
          INTEL_CASES)


# 06: the names follow resourceDomain
def test_mutating_06_resource_domain(helm, tools):
    d = "sgx.example.com"
    p = pod(ctr("a", limits={d + "/epc": "1Mi"}))
    want = pod(ctr("a", limits={d + "/epc": "1Mi", d + "/sgx": "1"}, requests={d + "/sgx": "1"}))
    want["metadata"]["annotations"] = {d + "/epc": str(MI)}
    got = run(tools, spec_of(helm, "--set", "resourceDomain=" + d), [p, pod(EPC_ONLY)])
    assert got[0]["object"] == want, got[0]
    assert not got[1]["matched"], got[1]


# 07: the test's own shims can fail: a mutation that is wrong is caught (the expected pod for
# epc-only, checked against a policy whose device name was changed)
def test_mutating_07_harness_catches_a_wrong_policy(helm, tools):
    spec = json.loads(json.dumps(spec_of(helm)).replace("'sgx.k8s.io/sgx': '1'",
                                                        "'sgx.k8s.io/dcap': '1'"))
    with pytest.raises(AssertionError):
        check(run(tools, spec, [CASES[0][1]]), CASES[:1])
