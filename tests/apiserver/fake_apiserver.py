"""fake_apiserver.py - a test Kubernetes API server for the node-labelling and EPC-capacity tests:
a real TLS server (Python's ssl) speaking HTTP/2 through python3-h2 (ALPN "h2"), or HTTP/1.1 only
to test the refusal, on 127.0.0.1 at a port of its own. It serves one node: it checks every
request's method, path, bearer token, content type and body, and records everything (requests,
TLS handshakes, answers).

  PATCH /api/v1/nodes/NAME          JSON merge patch (RFC 7386: null deletes) of metadata.labels
  PATCH /api/v1/nodes/NAME/status   JSON merge patch or JSON patch (RFC 6902: add, replace,
                                    remove, test; "~1" for "/" in keys; 422 for a failing op) of
                                    the node's status; status.capacity and status.allocatable
                                    values must be Kubernetes quantities, non-negative, whole
                                    numbers for extended resources (422 with a Status naming the
                                    field otherwise), as the real server's validation has it

Tests inject failures, for any request or only the labels' or the status' path: the next N
requests answered with an HTTP error and a k8s Status body, or hung (read, never answered), or
connections that never get their TLS handshake.

Certificates come from make_pki(), which runs the `openssl` command: a CA, a server certificate
for IP:127.0.0.1 and DNS:localhost, an unrelated CA, and certificates for other names.

For the DRA driver (issue #12) it also serves GET of the node (with a metadata.uid) and the
resource.k8s.io/v1 resourceslices collection: create (POST, with generateName cut to 58
characters plus 5 random ones, as the real server does), list (GET, fieldSelector on
spec.driver, spec.nodeName and spec.pool.name), update (PUT, 409 on a stale resourceVersion),
delete (DELETE, with uid/resourceVersion preconditions: 409 when they do not hold), each slice
checked against the v1 validation rules a driver can break (check_slice()); and GET of
resourceclaims (/apis/resource.k8s.io/v1/namespaces/NS/resourceclaims/NAME), made by add_claim().

Run by /usr/bin/python3 (Debian's python3-h2). Every accessor is thread-safe.
"""

import copy
import json
import os
import random
import re
import socket
import string
import ssl
import subprocess
import threading
import time
from fractions import Fraction
import urllib.parse
import uuid

import h2.config
import h2.connection
import h2.events
import h2.exceptions

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
DEFAULT_CAPACITY = {"cpu": "4", "memory": "8148836Ki", "pods": "110"}

# ---- certificates ----

_CA_CONF = """[req]
distinguished_name = dn
prompt = no
x509_extensions = v3_ca
[dn]
CN = %s
[v3_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
"""

_LEAF_EXT = """basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = %s
"""


def _openssl(*args, cwd):
    r = subprocess.run(["openssl"] + list(args), cwd=cwd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("openssl %s failed: %s" % (" ".join(args), r.stderr.strip()))


class Pki:
    """Paths of the files make_pki() wrote. Certificates by name: cert(name) -> (crt, key)."""

    def __init__(self, directory):
        self.dir = directory
        self.ca = os.path.join(directory, "ca.crt")
        self.other_ca = os.path.join(directory, "other-ca.crt")

    def cert(self, name):
        return (os.path.join(self.dir, name + ".crt"), os.path.join(self.dir, name + ".key"))


# name -> (issuing CA, subjectAltName)
CERTS = {
    "server": ("ca", "IP:127.0.0.1,DNS:localhost"),  # the right one
    "other_name": ("ca", "IP:10.9.9.9,DNS:apiserver.example"),  # right CA, wrong name and IP
    "ip_only": ("ca", "IP:127.0.0.1"),  # right for https://127.0.0.1, wrong for localhost
    "dns_only": ("ca", "DNS:localhost"),  # right for https://localhost, wrong for 127.0.0.1
    "other_ca_server": ("other-ca", "IP:127.0.0.1,DNS:localhost"),  # right name, unknown CA
}


def make_pki(directory):
    """Writes the CAs and the certificates of CERTS under |directory| (EC P-256, valid 2 days)."""
    os.makedirs(directory, exist_ok=True)
    for ca in ("ca", "other-ca"):
        conf = os.path.join(directory, ca + ".cnf")
        with open(conf, "w") as f:
            f.write(_CA_CONF % ("sgxdevplugin test " + ca))
        _openssl("req", "-x509", "-config", conf, "-newkey", "ec", "-pkeyopt",
                 "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", ca + ".key", "-out",
                 ca + ".crt", "-days", "2", cwd=directory)
    for name, (ca, san) in CERTS.items():
        ext = os.path.join(directory, name + ".ext")
        with open(ext, "w") as f:
            f.write(_LEAF_EXT % san)
        _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                 "-nodes", "-keyout", name + ".key", "-out", name + ".csr", "-subj",
                 "/CN=" + name, cwd=directory)
        _openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".crt", "-CAkey", ca + ".key",
                 "-set_serial", str(abs(hash(name)) % (1 << 62) + 1), "-days", "2", "-extfile",
                 ext, "-out", name + ".crt", cwd=directory)
    return Pki(directory)


# ---- what the server records ----

class Request:
    """One HTTP/2 request as the server saw it."""

    def __init__(self, conn, headers, body):
        self.t = time.monotonic()
        self.conn = conn  # the connection's number (1, 2, ...)
        self.headers = headers  # {lowercase name: value}; repeated names joined with ", "
        self.method = headers.get(":method")
        self.path = headers.get(":path")
        self.body = bytes(body)
        self.json = None
        auth = headers.get("authorization", "")
        self.token = auth[len("Bearer "):] if auth.startswith("Bearer ") else None
        self.problems = []  # what the client got wrong (a test asserts there is none)
        self.status = None  # the answer's HTTP status; None while unanswered / hung
        self.answer = None  # the answer's body (str)
        self.injected = False  # the answer came from an injection
        self.labels = None  # the node's labels after this request, when it succeeded
        self.capacity = None  # the node's status.capacity after this request, when it succeeded
        self.status_path = False  # a request of the status subresource

    def __repr__(self):
        return "<%s %s token=%r status=%s body=%s%s>" % (
            self.method, self.path, self.token, self.status, self.body[:200],
            " problems=%s" % self.problems if self.problems else "")


class Connection:
    def __init__(self, n, peer):
        self.n = n
        self.peer = peer
        self.t = time.monotonic()
        self.handshake = None  # True done, False failed, None not (yet) attempted
        self.handshake_error = None
        self.alpn = None  # the protocol ALPN selected, None when none
        self.closed = None  # monotonic time the connection ended
        self.raw = b""  # the first bytes of a non-h2 connection's data


def status_body(code, reason, message):
    """A k8s Status document, as the API server sends with an error."""
    return json.dumps({"kind": "Status", "apiVersion": "v1", "metadata": {},
                       "status": "Failure", "message": message, "reason": reason,
                       "code": code})


REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
           405: "MethodNotAllowed", 409: "Conflict", 415: "UnsupportedMediaType",
           422: "Invalid", 429: "TooManyRequests", 500: "InternalError",
           503: "ServiceUnavailable"}


def default_message(code, node, status=False):
    return {
        401: "Unauthorized",
        403: 'nodes "%s" is forbidden: User "system:serviceaccount:kube-system:sgxdevplugin" '
             'cannot patch resource "%s" in API group "" at the cluster scope'
             % (node, "nodes/status" if status else "nodes"),
        404: 'nodes "%s" not found' % node,
        409: 'Operation cannot be fulfilled on nodes "%s": the object has been modified; please '
             'apply your changes to the latest version and try again' % node,
        500: "Internal error occurred: etcdserver: request timed out",
    }.get(code, "the test API server says %d" % code)


def check_patch(doc):
    """What is wrong with a node merge patch that may only touch metadata.labels."""
    if not isinstance(doc, dict):
        return ["the body is not a JSON object"]
    if set(doc) != {"metadata"}:
        return ["the patch touches %s, not only metadata" % sorted(doc)]
    md = doc["metadata"]
    if not isinstance(md, dict) or set(md) != {"labels"}:
        return ["the patch's metadata is not {\"labels\": ...}: %r" % (md,)]
    labels = md["labels"]
    if not isinstance(labels, dict):
        return ["metadata.labels is not an object: %r" % (labels,)]
    return ["label %r: value %r is neither a string nor null" % (k, v)
            for k, v in labels.items() if v is not None and not isinstance(v, str)]


def check_status_patch(doc, ctype):
    """What is wrong with a nodes/status patch that may only touch status.capacity."""
    if ctype == JSON_PATCH:
        if not isinstance(doc, list):
            return ["a JSON patch is not an array"]
        return ["op %r touches %r, not status.capacity" % (op.get("op"), op.get("path"))
                for op in doc if not isinstance(op, dict) or
                not str(op.get("path", "")).startswith("/status/capacity/")]
    if not isinstance(doc, dict) or set(doc) != {"status"}:
        return ["the patch touches %s, not only status" % (
            sorted(doc) if isinstance(doc, dict) else doc,)]
    st = doc["status"]
    if not isinstance(st, dict) or set(st) != {"capacity"}:
        return ["the patch's status is not {\"capacity\": ...}: %r" % (st,)]
    if not isinstance(st["capacity"], dict):
        return ["status.capacity is not an object: %r" % (st["capacity"],)]
    return []


def merge_patch(target, patch):
    """RFC 7386 in full: objects merge recursively, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


class PatchError(Exception):
    pass


def _pointer(path):
    """An RFC 6901 JSON pointer as its unescaped tokens ("~1" is "/", "~0" is "~")."""
    if path == "":
        return []
    if not isinstance(path, str) or not path.startswith("/"):
        raise PatchError("invalid JSON pointer %r" % (path,))
    return [t.replace("~1", "/").replace("~0", "~") for t in path[1:].split("/")]


def _parent(doc, tokens, path):
    cur = doc
    for t in tokens[:-1]:
        if isinstance(cur, dict) and t in cur:
            cur = cur[t]
        elif isinstance(cur, list) and t.isdigit() and int(t) < len(cur):
            cur = cur[int(t)]
        else:
            raise PatchError("doc is missing path: %s" % path)
    return cur


def json_patch(doc, ops):
    """RFC 6902 add, replace, remove and test on a copy of |doc|; raises PatchError."""
    doc = copy.deepcopy(doc)
    for op in ops:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise PatchError("invalid operation %r" % (op,))
        kind, path = op["op"], op["path"]
        tokens = _pointer(path)
        if not tokens:
            raise PatchError("cannot %s the whole document" % kind)
        parent, key = _parent(doc, tokens, path), tokens[-1]
        if kind in ("add", "replace", "test") and "value" not in op:
            raise PatchError("%s operation does not have a value: %s" % (kind, path))
        if isinstance(parent, list):
            if kind == "add" and key == "-":
                parent.append(copy.deepcopy(op["value"]))
                continue
            if not key.isdigit() or int(key) > len(parent) - (0 if kind == "add" else 1):
                raise PatchError("doc is missing path: %s" % path)
            i = int(key)
            if kind == "add":
                parent.insert(i, copy.deepcopy(op["value"]))
            elif kind == "remove":
                del parent[i]
            elif kind == "replace":
                parent[i] = copy.deepcopy(op["value"])
            elif kind == "test":
                if parent[i] != op["value"]:
                    raise PatchError("testing value %s failed" % path)
            else:
                raise PatchError("unsupported operation %r" % kind)
            continue
        if not isinstance(parent, dict):
            raise PatchError("doc is missing path: %s" % path)
        if kind == "add":
            parent[key] = copy.deepcopy(op["value"])
        elif kind == "remove":
            if key not in parent:
                raise PatchError("Unable to remove nonexistent key: %s: missing value" % key)
            del parent[key]
        elif kind == "replace":
            if key not in parent:
                raise PatchError("replace operation does not apply: doc is missing key: %s: "
                                 "missing value" % path)
            parent[key] = copy.deepcopy(op["value"])
        elif kind == "test":
            if parent.get(key, object()) != op["value"]:
                raise PatchError("testing value %s failed: test failed" % path)
        else:
            raise PatchError("unsupported operation %r" % kind)
    return doc


# resource.Quantity's grammar: sign, a decimal number, then a binary-SI, decimal-SI or exponent
# suffix (k8s.io/apimachinery/pkg/api/resource)
_QUANTITY = re.compile(r"^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))"
                       r"(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?[0-9]+|)$")
QUANTITY_RE_TEXT = "^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"


def parse_quantity(s):
    """A Kubernetes quantity string as an exact fractions.Fraction, or None when invalid."""
    if not isinstance(s, str):
        return None
    m = _QUANTITY.match(s)
    if not m:
        return None
    num, suffix = Fraction(m.group(1)), m.group(2)
    mult = {"": 1, "Ki": 2 ** 10, "Mi": 2 ** 20, "Gi": 2 ** 30, "Ti": 2 ** 40, "Pi": 2 ** 50,
            "Ei": 2 ** 60, "n": Fraction(1, 10 ** 9), "u": Fraction(1, 10 ** 6),
            "m": Fraction(1, 1000), "k": 10 ** 3, "M": 10 ** 6, "G": 10 ** 9, "T": 10 ** 12,
            "P": 10 ** 15, "E": 10 ** 18}.get(suffix)
    if mult is None:  # an exponent
        e = int(suffix[1:])
        mult = Fraction(10) ** e
    return num * mult


def is_extended_resource(name):
    """A name outside kubernetes.io (and not a native unprefixed one or requests.*)."""
    if "/" not in name:
        return False
    domain = name.split("/", 1)[0]
    return not (domain == "kubernetes.io" or domain.endswith(".kubernetes.io") or
                name.startswith("requests."))


def validate_status(node_name, status):
    """The real server's checks of status.capacity and status.allocatable: a list of
    (field, value, why)."""
    errs = []
    if not isinstance(status, dict):
        return [("status", status, "must be an object")]
    for part in ("capacity", "allocatable"):
        m = status.get(part)
        if m is None:
            continue
        if not isinstance(m, dict):
            errs.append(("status.%s" % part, m, "must be an object"))
            continue
        for k, v in sorted(m.items()):
            field = "status.%s[%s]" % (part, k)
            if k.count("/") > 1 or not re.match(r"^[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?$", k):
                errs.append((field, k, "must be a qualified name"))
                continue
            q = parse_quantity(v)
            if q is None:
                errs.append((field, v, "quantities must match the regular expression '%s'"
                             % QUANTITY_RE_TEXT))
            elif q < 0:
                errs.append((field, v, "must be greater than or equal to 0"))
            elif is_extended_resource(k) and q.denominator != 1:
                errs.append((field, v, "must be an integer"))
    return errs


def invalid_body(node, errs):
    """The 422 Status the real server sends for a failed validation, each cause naming its
    field."""
    causes = [{"reason": "FieldValueInvalid",
               "message": "Invalid value: %s: %s" % (json.dumps(v), why), "field": f}
              for f, v, why in errs]
    msg = 'Node "%s" is invalid: %s' % (node, ", ".join(
        "%s: Invalid value: %s: %s" % (f, json.dumps(v), why) for f, v, why in errs))
    return json.dumps({"kind": "Status", "apiVersion": "v1", "metadata": {},
                       "status": "Failure", "message": msg, "reason": "Invalid",
                       "details": {"name": node, "kind": "Node", "causes": causes},
                       "code": 422})


def merge_labels(labels, patch):
    """RFC 7386 on a flat string map: null deletes, a string sets."""
    out = dict(labels)
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = v
    return out


# ---- resource.k8s.io/v1 ResourceSlices ----

SLICES = "/apis/resource.k8s.io/v1/resourceslices"
CLAIMS = re.compile(r"^/apis/resource\.k8s\.io/v1/namespaces/([^/]+)/resourceclaims/([^/?]+)$")
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
C_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
                    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)"
                    r"(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
                    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$")
QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?([KMGTPE]i|[kMGTPE]|[eE][-+]?[0-9]+)?$")
SLICE_FIELDS = {"spec.driver": ("driver",), "spec.nodeName": ("nodeName",),
                "spec.pool.name": ("pool", "name")}


def check_qualified_name(name, where):
    """A device attribute or capacity name: C identifier (<= 32) with an optional domain."""
    domain, _, ident = name.rpartition("/")
    out = []
    if domain and (len(domain) > 63 or not DNS_SUBDOMAIN.match(domain)):
        out.append("%s: %r: the domain is not a DNS subdomain of at most 63 characters" % (
            where, name))
    if not C_IDENTIFIER.match(ident) or len(ident) > 32:
        out.append("%s: %r: not a C identifier of at most 32 characters" % (where, name))
    return out


def check_slice(obj, node=None):
    """What the API server's validation of a resource.k8s.io/v1 ResourceSlice would refuse (the
    rules a driver can break), as a list of strings."""
    out = []
    if not isinstance(obj, dict):
        return ["the body is not a JSON object"]
    if obj.get("apiVersion") != "resource.k8s.io/v1" or obj.get("kind") != "ResourceSlice":
        out.append("apiVersion/kind %r/%r" % (obj.get("apiVersion"), obj.get("kind")))
    md = obj.get("metadata") or {}
    for ref in md.get("ownerReferences") or []:
        if not all(ref.get(k) for k in ("apiVersion", "kind", "name", "uid")):
            out.append("ownerReference %r lacks apiVersion, kind, name or uid" % (ref,))
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return out + ["no spec"]
    known = {"driver", "pool", "nodeName", "nodeSelector", "allNodes", "devices",
             "perDeviceNodeSelection", "sharedCounters"}
    out += ["spec.%s: unknown field" % k for k in spec if k not in known]
    drv = spec.get("driver")
    if not isinstance(drv, str) or not DNS_SUBDOMAIN.match(drv) or len(drv) > 63:
        out.append("spec.driver %r: not a DNS subdomain of at most 63 characters" % (drv,))
    if sum(1 for k in ("nodeName", "nodeSelector", "allNodes", "perDeviceNodeSelection")
           if spec.get(k)) != 1:
        out.append("exactly one of spec.nodeName, nodeSelector, allNodes, "
                   "perDeviceNodeSelection must be set")
    pool = spec.get("pool")
    if not isinstance(pool, dict):
        out.append("no spec.pool")
    else:
        if not isinstance(pool.get("name"), str) or not pool["name"]:
            out.append("spec.pool.name is required")
        if not isinstance(pool.get("generation"), int) or pool["generation"] < 0:
            out.append("spec.pool.generation %r" % (pool.get("generation"),))
        if not isinstance(pool.get("resourceSliceCount"), int) or pool["resourceSliceCount"] < 1:
            out.append("spec.pool.resourceSliceCount %r" % (pool.get("resourceSliceCount"),))
    devices = spec.get("devices") or []
    if len(devices) > 128:
        out.append("spec.devices: %d devices, at most 128" % len(devices))
    names = set()
    for i, d in enumerate(devices):
        w = "spec.devices[%d]" % i
        name = d.get("name")
        if not isinstance(name, str) or not DNS_LABEL.match(name):
            out.append("%s.name %r: not a DNS label" % (w, name))
        if name in names:
            out.append("%s.name %r: duplicate" % (w, name))
        names.add(name)
        attrs = d.get("attributes") or {}
        caps = d.get("capacity") or {}
        if len(attrs) + len(caps) > 32:
            out.append("%s: more than 32 attributes and capacities" % w)
        for k, v in attrs.items():
            out += check_qualified_name(k, w + ".attributes")
            if not isinstance(v, dict) or len(v) != 1 or \
                    next(iter(v)) not in ("int", "bool", "string", "version"):
                out.append("%s.attributes[%s]: exactly one of int, bool, string, version: %r"
                           % (w, k, v))
                continue
            t, x = next(iter(v.items()))
            if (t == "int" and (not isinstance(x, int) or isinstance(x, bool))) or \
                    (t == "bool" and not isinstance(x, bool)) or \
                    (t in ("string", "version") and (not isinstance(x, str) or len(x) > 64)):
                out.append("%s.attributes[%s]: bad %s value %r" % (w, k, t, x))
            elif t == "version" and not SEMVER.match(x):
                out.append("%s.attributes[%s]: %r is not a semantic version" % (w, k, x))
        for k, v in caps.items():
            out += check_qualified_name(k, w + ".capacity")
            if not isinstance(v, dict) or not QUANTITY.match(str(v.get("value", ""))):
                out.append("%s.capacity[%s].value: not a quantity: %r" % (w, k, v))
                continue
            unknown = set(v) - {"value", "requestPolicy"}
            if unknown:
                out.append("%s.capacity[%s]: unknown fields %s" % (w, k, sorted(unknown)))
            rp = v.get("requestPolicy")
            if rp is not None:
                if d.get("allowMultipleAllocations") is not True:
                    out.append("%s.capacity[%s].requestPolicy needs allowMultipleAllocations"
                               % (w, k))
                unknown = set(rp) - {"default", "validValues", "validRange"}
                if unknown:
                    out.append("%s.capacity[%s].requestPolicy: unknown fields %s" % (
                        w, k, sorted(unknown)))
                if "validValues" in rp and "validRange" in rp:
                    out.append("%s.capacity[%s].requestPolicy: validValues and validRange" % (w, k))
                for q in [rp.get("default")] + list((rp.get("validRange") or {}).values()):
                    if q is not None and not QUANTITY.match(str(q)):
                        out.append("%s.capacity[%s].requestPolicy: not a quantity: %r" % (w, k, q))
        unknown = set(d) - {"name", "attributes", "capacity", "allowMultipleAllocations",
                            "consumesCounters", "nodeName", "nodeSelector", "allNodes", "taints",
                            "bindsToNode", "bindingConditions", "bindingFailureConditions"}
        if unknown:
            out.append("%s: unknown fields %s" % (w, sorted(unknown)))
    return out


# ---- the server ----

class FakeApiServer:
    """The test API server. start() binds 127.0.0.1:0 (see .port, .url); stop() ends it all.

    |cert| names a certificate of make_pki() (CERTS); |alpn| is the list the server offers
    (["h2"]; ["http/1.1"] for a server that will not speak HTTP/2; None for no ALPN at all);
    |port| 0 picks a free one; |capacity| adds to the node's status.capacity (DEFAULT_CAPACITY).
    """

    def __init__(self, pki, node="node-1", tokens=("token-1",), labels=None, cert="server",
                 alpn=("h2",), port=0, capacity=None):
        self.node = node
        self.node_path = "/api/v1/nodes/" + node
        self.cond = threading.Condition()
        self._tokens = set(tokens)
        self._labels = {"kubernetes.io/hostname": node, "kubernetes.io/os": "linux"}
        if labels:
            self._labels.update(labels)
        self._status = {"capacity": dict(DEFAULT_CAPACITY), "allocatable": dict(DEFAULT_CAPACITY)}
        if capacity:
            self._status["capacity"].update(capacity)
        self._resource_version = 1
        # for the next requests: (target, "status", code, message) / (target, "hang") /
        # (target, "close"); target None = any request, "labels" or "status" = that path only
        self._inject = []
        self.node_uid = str(uuid.uuid4())
        self.slices = {}  # name -> ResourceSlice object, as stored
        self.slice_rv = 1000  # resourceVersions of slices
        self.slice_history = []  # (name, verb, pool generation) for each successful write
        self.rbac_deny_slices = False  # 403 every resourceslices request
        self.claims = {}  # (namespace, name) -> ResourceClaim
        self._hang_tls = 0  # this many next connections never get a TLS handshake
        self.requests = []
        self.connections = []
        self.errors = []  # server-side failures (a test asserts there is none)
        self.pki = pki
        crt, key = pki.cert(cert)
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(crt, key)
        if alpn is not None:
            self.ctx.set_alpn_protocols(list(alpn))
        self._stopping = False
        self._threads = []
        self._socks = set()
        self.listener = None
        self.port = port

    @property
    def url(self):
        return "https://127.0.0.1:%d" % self.port

    # ---- life ----

    def start(self):
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", self.port))
        self.listener.listen(64)
        self.listener.settimeout(0.1)
        self.port = self.listener.getsockname()[1]
        self._spawn(self._accept_loop)
        return self

    def stop(self):
        with self.cond:
            self._stopping = True
            socks = list(self._socks)
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in self._threads:
            t.join(5)
        self.listener.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _spawn(self, fn, *args):
        t = threading.Thread(target=fn, args=args, daemon=True)
        self._threads.append(t)
        t.start()

    def _accept_loop(self):
        while not self._stopping:
            try:
                s, peer = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self.cond:
                c = Connection(len(self.connections) + 1, peer)
                self.connections.append(c)
                hang = self._hang_tls > 0
                if hang:
                    self._hang_tls -= 1
                self._socks.add(s)
                self.cond.notify_all()
            self._spawn(self._serve, s, c, hang)

    # ---- test controls ----

    def set_tokens(self, *tokens):
        """From now on only these bearer tokens are accepted."""
        with self.cond:
            self._tokens = set(tokens)

    def inject(self, code, count=1, message=None, target=None):
        """The next |count| requests (of |target|: None any, "labels" the node's path, "status"
        its status path) are answered |code| with a k8s Status body."""
        with self.cond:
            msg = message or default_message(code, self.node, status=target == "status")
            self._inject += [(target, "status", code, msg)] * count

    def inject_close(self, count=1, target=None):
        """The next |count| requests (of |target|) are read, then their connection is closed
        unanswered."""
        with self.cond:
            self._inject += [(target, "close")] * count

    def inject_hang(self, count=1, target=None):
        """The next |count| requests (of |target|) are read and never answered."""
        with self.cond:
            self._inject += [(target, "hang")] * count

    def hang_tls(self, count=1):
        """The next |count| connections are accepted and never get a TLS handshake."""
        with self.cond:
            self._hang_tls += count

    def clear_injections(self):
        with self.cond:
            self._inject = []
            self._hang_tls = 0

    def labels(self):
        with self.cond:
            return dict(self._labels)

    def set_label(self, key, value):
        """Someone else changes the node: |value| None removes the label."""
        with self.cond:
            self._labels = merge_labels(self._labels, {key: value})
            self._resource_version += 1

    def capacity(self):
        """The node's status.capacity (a copy)."""
        with self.cond:
            return dict(self._status.get("capacity") or {})

    def allocatable(self):
        with self.cond:
            return dict(self._status.get("allocatable") or {})

    def set_capacity(self, key, value):
        """Someone else (a restarted kubelet) changes status.capacity: |value| None removes."""
        with self.cond:
            cap = self._status.setdefault("capacity", {})
            if value is None:
                cap.pop(key, None)
            else:
                cap[key] = value
            self._resource_version += 1
            self.cond.notify_all()

    def snapshot(self):
        """(requests, connections) as lists, copied under the lock."""
        with self.cond:
            return list(self.requests), list(self.connections)

    def wait_for(self, predicate, timeout, what):
        """Calls predicate(server) under the lock until it returns something true; returns it."""
        end = time.monotonic() + timeout
        with self.cond:
            while True:
                v = predicate(self)
                if v:
                    return v
                left = end - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        "timed out after %.1f s waiting for %s; requests: %s; connections: %s; "
                        "labels: %s; capacity: %s" % (
                            timeout, what, self.requests[-5:],
                            [(c.n, c.handshake, c.handshake_error, c.alpn)
                             for c in self.connections[-5:]], self._labels,
                            self._status.get("capacity")))
                self.cond.wait(min(left, 0.05))

    def wait_requests(self, n, timeout, since=0, status=None):
        """Waits for |n| requests from index |since| on (with that |status| if given, answered);
        returns them."""

        def got(s):
            rs = [r for r in s.requests[since:]
                  if status is None or r.status == status]
            return rs if len(rs) >= n else None

        return self.wait_for(got, timeout, "%d request(s)%s" % (
            n, "" if status is None else " answered %d" % status))

    def node_json(self):
        with self.cond:
            return self._node_json()

    def _node_json(self):
        return json.dumps({"kind": "Node", "apiVersion": "v1",
                           "metadata": {"name": self.node, "uid": self.node_uid,
                                        "labels": self._labels,
                                        "resourceVersion": str(self._resource_version)},
                           "status": self._status})

    # ---- ResourceSlices ----

    def our_slices(self, driver, node=None):
        """Copies of the stored slices of |driver| (and |node|), sorted by name."""
        with self.cond:
            return [json.loads(json.dumps(o)) for n, o in sorted(self.slices.items())
                    if o["spec"].get("driver") == driver and
                    (node is None or o["spec"].get("nodeName") == node)]

    def add_slice(self, obj):
        """Someone else creates a slice (another driver's, or a stale one of ours)."""
        with self.cond:
            return self._store_slice(json.loads(json.dumps(obj)), "create")

    def _store_slice(self, obj, verb):
        md = obj.setdefault("metadata", {})
        if verb == "create":
            if not md.get("name"):
                md["name"] = md["generateName"][:58] + "".join(
                    random.choice(string.ascii_lowercase + string.digits) for _ in range(5))
            md["uid"] = str(uuid.uuid4())
            md["creationTimestamp"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.slice_rv += 1
        md["resourceVersion"] = str(self.slice_rv)
        self.slices[md["name"]] = obj
        self.slice_history.append((md["name"], verb, obj["spec"]["pool"]["generation"]))
        self.cond.notify_all()
        return obj

    def add_claim(self, ns, name, uid=None, results=None, allocated=True):
        """Makes a ResourceClaim; |results| [(request, driver, pool, device)] for its allocation
        (none: not allocated). Returns it."""
        obj = {"apiVersion": "resource.k8s.io/v1", "kind": "ResourceClaim",
               "metadata": {"name": name, "namespace": ns, "uid": uid or str(uuid.uuid4()),
                            "resourceVersion": "1"},
               "spec": {"devices": {"requests": [{"name": r[0]} for r in results or []]}},
               "status": {}}
        if allocated and results is not None:
            obj["status"]["allocation"] = {"devices": {"results": [
                {"request": r[0], "driver": r[1], "pool": r[2], "device": r[3]}
                for r in results]}}
        with self.cond:
            self.claims[(ns, name)] = obj
        return obj

    def _slices(self, req):
        """The resourceslices collection (under the lock)."""
        if self.rbac_deny_slices:
            return self._finish(req, 403, status_body(403, "Forbidden", (
                'resourceslices.resource.k8s.io is forbidden: User "system:serviceaccount:'
                'kube-system:sgxdevplugin" cannot %s resource "resourceslices" in API group '
                '"resource.k8s.io" at the cluster scope') % {
                    "GET": "list", "POST": "create", "PUT": "update",
                    "DELETE": "delete"}.get(req.method, "get")))
        url = urllib.parse.urlsplit(req.path)
        name = url.path[len(SLICES) + 1:] if url.path.startswith(SLICES + "/") else None
        if req.method == "GET" and name is None:
            q = urllib.parse.parse_qs(url.query)
            want = {}
            for term in filter(None, ",".join(q.get("fieldSelector", [])).split(",")):
                k, _, v = term.partition("=")
                if k not in SLICE_FIELDS:
                    return self._finish(req, 400, status_body(400, "BadRequest", (
                        '"%s" is not a known field selector: only "spec.driver", '
                        '"spec.nodeName", "spec.pool.name"') % k))
                want[SLICE_FIELDS[k]] = v

            def field(o, path):
                for p in path:
                    o = (o or {}).get(p)
                return o

            items = [o for n, o in sorted(self.slices.items())
                     if all(field(o["spec"], p) == v for p, v in want.items())]
            req.listed = len(items)
            return self._finish(req, 200, json.dumps({
                "kind": "ResourceSliceList", "apiVersion": "resource.k8s.io/v1",
                "metadata": {"resourceVersion": str(self.slice_rv)}, "items": items}))
        if req.method == "GET":
            if name not in self.slices:
                return self._finish(req, 404, status_body(404, "NotFound", (
                    'resourceslices.resource.k8s.io "%s" not found') % name))
            return self._finish(req, 200, json.dumps(self.slices[name]))
        if req.method in ("POST", "PUT"):
            if req.headers.get("content-type") != "application/json":
                return self._finish(req, 415, status_body(415, "UnsupportedMediaType",
                                                          "content-type %r" % req.headers.get(
                                                              "content-type")))
            obj = req.json
            problems = check_slice(obj)
            if problems:
                req.problems += problems
                return self._finish(req, 422, status_body(422, "Invalid", "; ".join(problems)))
            md = obj.setdefault("metadata", {})
            if req.method == "POST":
                if name is not None or (not md.get("name") and not md.get("generateName")):
                    return self._finish(req, 400, status_body(400, "BadRequest",
                                                              "name or generateName is required"))
                if md.get("name") in self.slices:
                    return self._finish(req, 409, status_body(409, "AlreadyExists", (
                        'resourceslices.resource.k8s.io "%s" already exists') % md["name"]))
                md.pop("uid", None)
                md.pop("resourceVersion", None)
                return self._finish(req, 201, json.dumps(self._store_slice(obj, "create")))
            old = self.slices.get(name)
            if old is None:
                return self._finish(req, 404, status_body(404, "NotFound", (
                    'resourceslices.resource.k8s.io "%s" not found') % name))
            if md.get("name") != name:
                return self._finish(req, 400, status_body(400, "BadRequest",
                                                          "the name in the body does not match"))
            if md.get("resourceVersion") != old["metadata"]["resourceVersion"]:
                return self._finish(req, 409, status_body(409, "Conflict", (
                    'Operation cannot be fulfilled on resourceslices.resource.k8s.io "%s": the '
                    'object has been modified; please apply your changes to the latest version '
                    'and try again') % name))
            for k in ("uid", "creationTimestamp", "generateName"):
                if k in old["metadata"]:
                    md[k] = old["metadata"][k]
            return self._finish(req, 200, json.dumps(self._store_slice(obj, "update")))
        if req.method == "DELETE":
            old = self.slices.get(name)
            if old is None:
                return self._finish(req, 404, status_body(404, "NotFound", (
                    'resourceslices.resource.k8s.io "%s" not found') % name))
            pre = (req.json or {}).get("preconditions") or {}
            req.preconditions = pre
            for k in ("uid", "resourceVersion"):
                if k in pre and pre[k] != old["metadata"][k]:
                    return self._finish(req, 409, status_body(409, "Conflict", (
                        'Precondition failed: %s in precondition: %s, %s in object meta: %s') % (
                        k.capitalize(), pre[k], k.capitalize(), old["metadata"][k])))
            del self.slices[name]
            self.slice_history.append((name, "delete", None))
            self.cond.notify_all()
            return self._finish(req, 200, json.dumps(old))
        return self._finish(req, 405, status_body(405, "MethodNotAllowed", req.method))

    def _decide_dra(self, req):
        """GET of the node and the resourceslices collection (issue #12)."""
        problems = req.problems
        if req.headers.get(":scheme") != "https":
            problems.append(":scheme %r" % req.headers.get(":scheme"))
        if req.token is None:
            problems.append("no bearer token: authorization %r" % req.headers.get("authorization"))
        if req.method in ("GET",) and req.body:
            problems.append("a body with GET")
        if req.body:
            try:
                req.json = json.loads(req.body.decode("utf-8"))
            except (UnicodeDecodeError, ValueError) as e:
                problems.append("the body is not JSON: %s" % e)
        with self.cond:
            self.requests.append(req)
            self.cond.notify_all()
            target = ("slices" if req.path.startswith(SLICES) else
                      "claims" if CLAIMS.match(req.path) else "node")
            for n, inj in enumerate(self._inject):
                if inj[0] in (None, target):
                    del self._inject[n]
                    req.injected = True
                    if inj[1] in ("hang", "close"):
                        return inj[1], None
                    return self._finish(req, inj[2], status_body(
                        inj[2], REASONS.get(inj[2], ""), inj[3]))
            if req.token not in self._tokens:
                return self._finish(req, 401, status_body(401, "Unauthorized", "Unauthorized"))
            if problems:
                return self._finish(req, 400, status_body(400, "BadRequest", "; ".join(problems)))
            if req.path.startswith(SLICES):
                return self._slices(req)
            m = CLAIMS.match(req.path)
            if m:
                obj = self.claims.get((m.group(1), m.group(2)))
                if req.method != "GET":
                    return self._finish(req, 405, status_body(405, "MethodNotAllowed",
                                                              req.method))
                if obj is None:
                    return self._finish(req, 404, status_body(404, "NotFound", (
                        'resourceclaims.resource.k8s.io "%s" not found') % m.group(2)))
                return self._finish(req, 200, json.dumps(obj))
            if req.path != self.node_path:
                return self._finish(req, 404, status_body(404, "NotFound", 'nodes "%s" not found'
                                                          % req.path[len("/api/v1/nodes/"):]))
            return self._finish(req, 200, self._node_json())

    # ---- one connection ----

    def _serve(self, s, c, hang_tls):
        # as every TCP connection of Go's net package (the real kube-apiserver's): without it an
        # answer written behind an unacknowledged small segment waits ~40 ms for a delayed ACK
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        tls = None
        try:
            if hang_tls:
                self._hold(s)
                return
            tls = self._handshake(s, c)
            if tls is None:
                return
            if c.alpn == "h2":
                self._serve_h2(tls, c)
            else:
                self._serve_other(tls, c)
        except Exception as e:  # a bug of the test server itself
            with self.cond:
                self.errors.append("connection %d: %r" % (c.n, e))
        finally:
            with self.cond:
                c.closed = time.monotonic()
                self._socks.discard(s)
                self._socks.discard(tls)
                self.cond.notify_all()
            for sock in (tls, s):  # s is detached once wrapped
                try:
                    if sock is not None:
                        sock.close()
                except OSError:
                    pass

    def _hold(self, s):
        """Reads and drops whatever comes until the peer closes or the server stops."""
        s.settimeout(0.1)
        while not self._stopping:
            try:
                if not s.recv(4096):
                    return
            except socket.timeout:
                continue
            except OSError:
                return

    def _handshake(self, s, c):
        s.settimeout(0.1)
        try:
            tls = self.ctx.wrap_socket(s, server_side=True, do_handshake_on_connect=False)
        except OSError as e:
            # the client went away before the handshake (a daemon stopped while connecting):
            # Python refuses to wrap a socket no longer connected. The client's doing, not ours.
            with self.cond:
                c.handshake = False
                c.handshake_error = str(e)
                self.cond.notify_all()
            return None
        with self.cond:
            self._socks.discard(s)
            self._socks.add(tls)
        done = False
        try:
            done = self._handshake_done(tls, c)
        finally:
            if not done:
                tls.close()
                with self.cond:
                    self._socks.discard(tls)
        return tls if done else None

    def _handshake_done(self, tls, c):
        """Runs the server side of the handshake; True when it completed."""
        while True:
            try:
                tls.do_handshake()
                break
            except socket.timeout:
                if self._stopping:
                    return False
            except (ssl.SSLError, OSError) as e:
                with self.cond:
                    c.handshake = False
                    c.handshake_error = str(e)
                    self.cond.notify_all()
                return False
        with self.cond:
            c.handshake = True
            c.alpn = tls.selected_alpn_protocol()
            self.cond.notify_all()
        return True

    def _recv(self, tls):
        """Bytes, or b"" at the end (peer closed, reset or server stopping)."""
        while not self._stopping:
            try:
                return tls.recv(65536)
            except socket.timeout:
                continue
            except ssl.SSLWantReadError:
                continue
            except (ssl.SSLError, OSError):
                return b""
        return b""

    def _serve_other(self, tls, c):
        """No h2 negotiated: keep the first bytes, answer as an HTTP/1.1 server would."""
        data = self._recv(tls)
        with self.cond:
            c.raw = data[:200]
            self.cond.notify_all()
        if data:
            msg = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            try:
                tls.sendall(msg)
            except OSError:
                pass

    def _serve_h2(self, tls, c):
        conn = h2.connection.H2Connection(h2.config.H2Configuration(
            client_side=False, header_encoding="utf-8"))
        conn.initiate_connection()
        conn.pending_bodies = {}  # stream id -> answer bytes not sent yet (flow control)
        tls.sendall(conn.data_to_send())
        streams = {}
        while True:
            data = self._recv(tls)
            if not data:
                return
            try:
                events = conn.receive_data(data)
            except h2.exceptions.ProtocolError as e:
                with self.cond:
                    self.errors.append("connection %d: HTTP/2 protocol error from the client: %s"
                                       % (c.n, e))
                tls.sendall(conn.data_to_send())
                return
            drop = False  # an injected close
            for ev in events:
                if isinstance(ev, h2.events.RequestReceived):
                    hs = {}
                    for k, v in ev.headers:
                        hs[k] = hs[k] + ", " + v if k in hs else v
                    streams[ev.stream_id] = (hs, bytearray())
                    if ev.stream_ended:
                        drop |= self._answer(conn, c, ev.stream_id,
                                             streams.pop(ev.stream_id))
                elif isinstance(ev, h2.events.DataReceived):
                    conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                    if ev.stream_id in streams:
                        streams[ev.stream_id][1].extend(ev.data)
                    if ev.stream_ended and ev.stream_id in streams:
                        drop |= self._answer(conn, c, ev.stream_id,
                                             streams.pop(ev.stream_id))
                elif isinstance(ev, h2.events.StreamEnded):
                    if ev.stream_id in streams:
                        drop |= self._answer(conn, c, ev.stream_id,
                                             streams.pop(ev.stream_id))
                elif isinstance(ev, h2.events.StreamReset):
                    streams.pop(ev.stream_id, None)
                    conn.pending_bodies.pop(ev.stream_id, None)
                elif isinstance(ev, h2.events.WindowUpdated):
                    self._flush(conn)
                elif isinstance(ev, h2.events.ConnectionTerminated):
                    tls.sendall(conn.data_to_send())
                    return
            if drop:
                return
            out = conn.data_to_send()
            if out:
                try:
                    tls.sendall(out)
                except OSError:
                    return

    def _answer(self, conn, c, stream_id, stream):
        """Answers one request; returns True when the connection is to be closed unanswered."""
        headers, body = stream
        req = Request(c.n, headers, body)
        code, answer = self._decide(req)
        if code == "hang":
            return False  # never answered
        if code == "close":
            return True
        data = answer.encode()
        conn.send_headers(stream_id, [(":status", str(code)),
                                      ("content-type", "application/json"),
                                      ("content-length", str(len(data)))])
        # a body larger than a frame or the client's window (a list of ResourceSlices) goes out
        # as flow control allows: _flush() sends what fits now and again on WINDOW_UPDATE
        if not data:
            conn.send_data(stream_id, b"", end_stream=True)
            return False
        conn.pending_bodies[stream_id] = bytearray(data)
        self._flush(conn)
        return False

    @staticmethod
    def _flush(conn):
        for sid in list(conn.pending_bodies):
            body = conn.pending_bodies[sid]
            while body:
                n = min(len(body), conn.local_flow_control_window(sid),
                        conn.max_outbound_frame_size)
                if n <= 0:
                    break
                conn.send_data(sid, bytes(body[:n]), end_stream=n == len(body))
                del body[:n]
            if not body:
                del conn.pending_bodies[sid]

    def _decide(self, req):
        """Checks |req|, applies it, records it; returns (status, body), or ("hang" or "close",
        None) for an injected non-answer."""
        if req.path and (req.path.startswith(SLICES) or CLAIMS.match(req.path) or (
                req.method == "GET" and req.path.startswith("/api/v1/nodes/"))):
            return self._decide_dra(req)
        problems = req.problems
        req.status_path = bool(req.path) and req.path.startswith("/api/v1/nodes/") and \
            req.path.endswith("/status")
        allowed = (MERGE_PATCH, JSON_PATCH) if req.status_path else (MERGE_PATCH,)
        if req.method != "PATCH":
            problems.append("method %r, not PATCH" % req.method)
        ctype = req.headers.get("content-type")
        if ctype not in allowed:
            problems.append("content-type %r, not %s" % (ctype, " or ".join(map(repr, allowed))))
        if req.headers.get(":scheme") != "https":
            problems.append(":scheme %r" % req.headers.get(":scheme"))
        if not req.headers.get(":authority"):
            problems.append("no :authority")
        if req.token is None:
            problems.append("no bearer token: authorization %r" % req.headers.get("authorization"))
        elif req.token != req.token.strip() or not req.token:
            problems.append("the token is not trimmed: %r" % req.token)
        try:
            req.json = json.loads(req.body.decode("utf-8"))
            problems += (check_status_patch(req.json, ctype) if req.status_path
                         else check_patch(req.json))
        except (UnicodeDecodeError, ValueError) as e:
            problems.append("the body is not JSON: %s" % e)
        with self.cond:
            self.requests.append(req)
            self.cond.notify_all()
            target = "status" if req.status_path else "labels"
            for n, inj in enumerate(self._inject):
                if inj[0] in (None, target):
                    del self._inject[n]
                    req.injected = True
                    if inj[1] in ("hang", "close"):
                        return inj[1], None
                    return self._finish(req, inj[2], status_body(
                        inj[2], REASONS.get(inj[2], ""), inj[3]))
            if not req.path or not req.path.startswith("/api/v1/nodes/"):
                return self._finish(req, 404, status_body(
                    404, "NotFound", "the server could not find the requested resource"))
            if req.path not in (self.node_path, self.node_path + "/status"):
                name = req.path[len("/api/v1/nodes/"):].split("/")[0]
                if name == self.node:  # a subresource we do not serve
                    return self._finish(req, 404, status_body(
                        404, "NotFound", "the server could not find the requested resource"))
                return self._finish(req, 404, status_body(404, "NotFound",
                                                          'nodes "%s" not found' % name))
            if req.token not in self._tokens:
                return self._finish(req, 401, status_body(401, "Unauthorized", "Unauthorized"))
            if req.method != "PATCH":
                return self._finish(req, 405, status_body(405, "MethodNotAllowed",
                                                          "the server does not allow this "
                                                          "method on the requested resource"))
            if ctype not in allowed:
                return self._finish(req, 415, status_body(
                    415, "UnsupportedMediaType", "the body of the request was in an unknown "
                    "format - accepted media types include: application/json-patch+json, "
                    "application/merge-patch+json, application/apply-patch+yaml"))
            if req.status_path:
                return self._patch_status(req, ctype)
            if problems:
                return self._finish(req, 422, status_body(422, "Invalid", "; ".join(problems)))
            self._labels = merge_labels(self._labels, req.json["metadata"]["labels"])
            self._resource_version += 1
            req.labels = dict(self._labels)
            req.capacity = dict(self._status.get("capacity") or {})
            return self._finish(req, 200, self._node_json())

    def _patch_status(self, req, ctype):
        """Applies a merge or JSON patch to the node's status (under the lock), validates the
        result as the real server does, and keeps it when valid."""
        if req.json is None:
            return self._finish(req, 400, status_body(400, "BadRequest",
                                                      "the body is not JSON"))
        doc = {"status": copy.deepcopy(self._status)}
        try:
            if ctype == JSON_PATCH:
                if not isinstance(req.json, list):
                    raise PatchError("a JSON patch must be an array of operations")
                out = json_patch(doc, req.json)
            else:
                if not isinstance(req.json, dict):
                    raise PatchError("a merge patch must be a JSON object")
                out = merge_patch(doc, req.json)
        except PatchError as e:
            return self._finish(req, 422, status_body(
                422, "Invalid", "the server rejected our request due to an error in our "
                "request: %s" % e))
        errs = validate_status(self.node, out.get("status", {}))
        if errs:
            return self._finish(req, 422, invalid_body(self.node, errs))
        self._status = out.get("status", {})
        self._resource_version += 1
        req.labels = dict(self._labels)
        req.capacity = dict(self._status.get("capacity") or {})
        return self._finish(req, 200, self._node_json())

    def _finish(self, req, code, body):
        req.status = code
        req.answer = body
        self.cond.notify_all()
        return code, body


# ---- a minimal client, for the server's own self-test ----

def h2_request(port, ca, token, body, path, server_hostname="localhost", method="PATCH",
               content_type=MERGE_PATCH, timeout=5.0):
    """One HTTP/2 request over TLS to 127.0.0.1:|port|; returns (status, body str). Raises
    ssl.SSLError when the certificate does not verify, RuntimeError when h2 is not negotiated."""
    ctx = ssl.create_default_context(cafile=ca)
    ctx.set_alpn_protocols(["h2"])
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as raw:
        with ctx.wrap_socket(raw, server_hostname=server_hostname) as tls:
            if tls.selected_alpn_protocol() != "h2":
                raise RuntimeError("ALPN selected %r" % tls.selected_alpn_protocol())
            conn = h2.connection.H2Connection(h2.config.H2Configuration(
                client_side=True, header_encoding="utf-8"))
            conn.initiate_connection()
            sid = conn.get_next_available_stream_id()
            data = body.encode() if isinstance(body, str) else body
            conn.send_headers(sid, [(":method", method), (":scheme", "https"),
                                    (":authority", "127.0.0.1:%d" % port), (":path", path),
                                    ("authorization", "Bearer " + token),
                                    ("content-type", content_type),
                                    ("content-length", str(len(data)))])
            conn.send_data(sid, data, end_stream=True)
            tls.sendall(conn.data_to_send())
            status, answer = None, bytearray()
            while True:
                chunk = tls.recv(65536)
                if not chunk:
                    raise RuntimeError("the server closed the connection")
                for ev in conn.receive_data(chunk):
                    if isinstance(ev, h2.events.ResponseReceived):
                        status = int(dict(ev.headers)[":status"])
                    elif isinstance(ev, h2.events.DataReceived):
                        answer.extend(ev.data)
                        conn.acknowledge_received_data(ev.flow_controlled_length, sid)
                    elif isinstance(ev, h2.events.StreamEnded):
                        return status, answer.decode()
                tls.sendall(conn.data_to_send())
