#!/usr/bin/python3
"""fake_kubelet.py - a test kubelet: the device-manager half of a real kubelet, in Python.

It serves v1beta1.Registration/Register on DIR/kubelet.sock (Debian's python3-grpcio, stubs
generated from our proto/api.proto) and behaves like the kubelet's device manager
(pkg/kubelet/cm/devicemanager, 1.24 and later):

  * Register checks the version ("v1beta1"), the resource name and the endpoint, then dials the
    plugin back on unix://DIR/<endpoint> and calls GetDevicePluginOptions BEFORE it answers. A
    plugin that blocks its event loop while waiting for that answer deadlocks here: the dial-back
    times out, the Register fails and the failure is recorded in `errors`.
  * After answering it reads ListAndWatch in a background thread and keeps, per resource, the
    devices (ID -> health) and every update with its time. allocatable() counts the Healthy
    devices, capacity() all of them, as `kubectl get node -o jsonpath='{.status.allocatable}'`
    and '{.status.capacity}' would.
  * Resources are tracked by name, like the kubelet does: an update from any stream of a resource
    sets its devices, and a stream of that resource that the plugin ends makes the kubelet drop the
    resource's *current* registration (all devices Unhealthy, allocatable 0), even when the ended
    stream belonged to an older registration.
  * restart() stops, wipes every file in DIR (but the checkpoint file) and recreates kubelet.sock,
    like a kubelet restart, and records how long the plugin took to register every resource again.
  * reject() makes the next Register calls fail; drop() ends a resource's ListAndWatch stream from
    the kubelet's side (the kubelet dropped the plugin), after which a plugin should register again.
  * authority: kubelets before 1.26 dial the plugin with the socket path as :authority
    (kubernetes PR #112597); pass authority=KUBELET_OLD_AUTHORITY to behave like them.

Importable (tests/integration, tests/demo.py) and runnable as a script:
    /usr/bin/python3 tests/kubelet/fake_kubelet.py --dir /tmp/kubelet [--old-authority]
"""

import argparse
import importlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent import futures

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
PROTO = os.path.join(REPO, "proto", "api.proto")
GEN_DIR = os.path.join(REPO, "tests", "integration", "gen")

KUBELET_SOCKET = "kubelet.sock"
CHECKPOINT = "kubelet_internal_checkpoint"
KUBELET_OLD_AUTHORITY = "/var/lib/kubelet/device-plugins/kubelet.sock"
API_VERSION = "v1beta1"
MAX_MSG = 4 * 1024 * 1024  # the kubelet's gRPC receive limit

_print_lock = threading.Lock()
grpc = None
pb = None
pb_grpc = None


def load_api(gen_dir=GEN_DIR):
    """Generates api_pb2 / api_pb2_grpc from proto/api.proto into |gen_dir| (when missing or older
    than the proto) with grpc_tools.protoc, imports them and returns (grpc, api_pb2, api_pb2_grpc).
    """
    global grpc, pb, pb_grpc
    if pb is not None:
        return grpc, pb, pb_grpc
    import grpc as _grpc

    out = os.path.join(gen_dir, "api_pb2.py")
    out_grpc = os.path.join(gen_dir, "api_pb2_grpc.py")
    stale = (not os.path.exists(out) or not os.path.exists(out_grpc)
             or os.path.getmtime(out) < os.path.getmtime(PROTO))
    if stale:
        os.makedirs(gen_dir, exist_ok=True)
        # Generate into a private dir, then rename: two runs at once never see half a file.
        tmp = tempfile.mkdtemp(prefix=".gen-", dir=gen_dir)
        try:
            cmd = [sys.executable, "-m", "grpc_tools.protoc", "-I" + os.path.dirname(PROTO),
                   "--python_out=" + tmp, "--grpc_python_out=" + tmp, PROTO]
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode != 0:
                raise RuntimeError("grpc_tools.protoc failed: " + r.stderr.strip())
            os.replace(os.path.join(tmp, "api_pb2_grpc.py"), out_grpc)
            os.replace(os.path.join(tmp, "api_pb2.py"), out)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    if gen_dir not in sys.path:
        sys.path.insert(0, gen_dir)
    importlib.invalidate_caches()
    grpc = _grpc
    pb = importlib.import_module("api_pb2")
    pb_grpc = importlib.import_module("api_pb2_grpc")
    return grpc, pb, pb_grpc


class Registration:
    """One successful Register: the plugin's endpoint, the channel the kubelet dialed back on, the
    options it answered and the ListAndWatch stream read on that channel."""

    def __init__(self, kubelet, request, generation, channel, options):
        self.kubelet = kubelet
        self.request = request  # the RegisterRequest
        self.resource = request.resource_name
        self.endpoint = request.endpoint
        self.generation = generation
        self.channel = channel
        self.stub = pb_grpc.DevicePluginStub(channel)
        self.options = options
        self.time = time.monotonic()
        self.call = None
        self.cancelled = False  # the kubelet ended it (stop, restart, drop)
        self.ended = None  # why the stream ended, when it did
        self.thread = None

    def close(self):
        self.cancelled = True
        if self.call is not None:
            self.call.cancel()
        self.channel.close()


class Resource:
    """What the kubelet knows about one extended resource, by name."""

    def __init__(self, name):
        self.name = name
        self.devices = {}  # ID -> "Healthy" / "Unhealthy"
        self.updates = []  # (monotonic time, {ID: health}) per ListAndWatch message
        self.with_topology = 0  # devices listed with a TopologyInfo, over every message
        self.current = None  # the Registration the kubelet talks to
        self.stopped = False  # dropped after its stream ended: all devices Unhealthy
        self.register_ok = 0  # successful Register calls, all kubelet instances
        self.register_calls = 0  # every Register call, failed ones too


class FakeKubelet:
    """The kubelet's device manager, serving DIR/kubelet.sock. Thread-safe; every query takes the
    lock. Times are time.monotonic()."""

    def __init__(self, directory, authority=None, dial_timeout=5.0, verbose=False):
        load_api()
        self.dir = os.path.abspath(directory)
        self.socket = os.path.join(self.dir, KUBELET_SOCKET)
        self.authority = authority
        self.dial_timeout = dial_timeout
        self.verbose = verbose
        self.lock = threading.Condition()
        self.server = None
        self.generation = 0  # kubelet instance; restart() starts the next one
        self.socket_created = None  # monotonic time kubelet.sock was created, per generation
        self.resources = {}
        self.events = []  # (time, generation, resource, what) for every Register call, ok or not
        self.errors = []  # protocol violations by the plugin, or failed dial-backs
        self.stream_ends = []  # (time, resource, why): streams the plugin ended while we ran
        self.restart_latencies = []  # seconds from kubelet.sock creation to all re-registered
        self._reject = []  # [resource or None, remaining count, grpc code, message]
        self.register_delay = 0.0  # seconds each Register waits before the dial-back
        self.reply_delay = 0.0  # seconds between starting ListAndWatch and answering Register
        self._registrations = []  # every Registration of this instance

    # ---- lifetime ----

    def start(self):
        """Creates DIR and kubelet.sock and serves Registration. kubelet.sock appears already
        listening, as with the kubelet's net.Listen: grpcio binds at add_insecure_port but
        listens only at start(), so it serves a socket made elsewhere that is then renamed in."""
        os.makedirs(self.dir, exist_ok=True)
        self.generation += 1
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=16),
                             options=[("grpc.so_reuseport", 0)])
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
            "v1beta1.Registration", {
                "Register": grpc.unary_unary_rpc_method_handler(
                    self._register, request_deserializer=pb.RegisterRequest.FromString,
                    response_serializer=pb.Empty.SerializeToString),
            }),))
        tmpdir = tempfile.mkdtemp(prefix=".kubelet-", dir=os.path.dirname(self.dir))
        tmp = os.path.join(tmpdir, "k.sock")
        try:
            if server.add_insecure_port("unix:" + tmp) == 0:
                raise RuntimeError("cannot listen on " + tmp)
            server.start()
            with self.lock:
                self.server = server
                self.socket_created = time.monotonic()
                os.rename(tmp, self.socket)
                self.lock.notify_all()
        finally:
            shutil.rmtree(tmpdir, ignore_errors=True)
        self._say("kubelet %d serving %s" % (self.generation, self.socket))

    def stop(self):
        """Stops serving, ends every ListAndWatch stream and removes kubelet.sock (the kubelet
        process exits)."""
        with self.lock:
            server, self.server = self.server, None
            regs, self._registrations = self._registrations, []
            for r in self.resources.values():
                r.current = None
        for reg in regs:
            reg.close()
        if server is not None:
            server.stop(0).wait(5)
        for reg in regs:
            if reg.thread is not None and reg.thread.ident is not None:  # started
                reg.thread.join(5)
        try:
            os.unlink(self.socket)
        except FileNotFoundError:
            pass

    def wipe(self):
        """Removes every file in DIR but the checkpoint, as the kubelet does when it starts."""
        for name in os.listdir(self.dir):
            p = os.path.join(self.dir, name)
            if name == CHECKPOINT or (os.path.isdir(p) and not os.path.islink(p)):
                continue
            os.unlink(p)

    def restart(self):
        """A kubelet restart: stop, wipe DIR, recreate kubelet.sock. Use wait_registered() and
        then restart_latency() for the time the plugin took to register every resource again."""
        self.stop()
        self.wipe()
        self.start()

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    # ---- behaviour switches ----

    def reject(self, count, resource=None, code=None, message="rejected by the test kubelet"):
        """Fails the next |count| Register calls (of |resource|, or of any) with |code|
        (default UNKNOWN, what the kubelet's plain Go errors become)."""
        with self.lock:
            self._reject.append([resource, count, code or grpc.StatusCode.UNKNOWN, message])

    def drop(self, resource):
        """Ends |resource|'s current ListAndWatch stream from the kubelet's side and marks the
        resource stopped, as the kubelet does when it disconnects a plugin."""
        with self.lock:
            r = self.resources[resource]
            reg, r.current = r.current, None
            self._stop_resource(r)
        if reg is not None:
            reg.close()

    # ---- Registration service ----

    def _register(self, req, context):
        res = req.resource_name
        gen = self.generation
        with self.lock:
            r = self.resources.setdefault(res, Resource(res))
            r.register_calls += 1
            rule = next((x for x in self._reject if x[1] > 0 and x[0] in (None, res)), None)
            if rule is not None:
                rule[1] -= 1
            if self.server is None:
                rule = ["", 1, grpc.StatusCode.UNAVAILABLE, "kubelet is stopping"]
        bad = self._check_request(req)
        if bad:
            self._fail(res, gen, bad, error=True)
            context.abort(grpc.StatusCode.UNKNOWN, bad)
        if rule is not None:
            self._fail(res, gen, "rejected: " + rule[3])
            context.abort(rule[2], rule[3])

        if self.register_delay:
            time.sleep(self.register_delay)
        # Dial back and ask for the options before answering, as the kubelet does.
        target = "unix://" + os.path.join(self.dir, req.endpoint)
        # A connection of its own, as each of the kubelet's dials is: grpcio would otherwise reuse
        # a live connection to the same path, which may reach a previous plugin process.
        opts = [("grpc.max_receive_message_length", MAX_MSG),
                ("grpc.use_local_subchannel_pool", 1)]
        if self.authority is not None:
            opts.append(("grpc.default_authority", self.authority))
        channel = grpc.insecure_channel(target, options=opts)
        try:
            # wait_for_ready: dial and wait for the connection, like grpc.WithBlock()
            options = pb_grpc.DevicePluginStub(channel).GetDevicePluginOptions(
                pb.Empty(), timeout=self.dial_timeout, wait_for_ready=True)
        except grpc.RpcError as e:
            channel.close()
            why = "GetDevicePluginOptions on %s failed: %s: %s" % (target, e.code().name,
                                                                   e.details())
            if e.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                why = ("dial-back to %s timed out after %.1f s (does the plugin block its event "
                       "loop while it waits for Register?)" % (target, self.dial_timeout))
            self._fail(res, gen, why, error=True)
            context.abort(grpc.StatusCode.UNKNOWN, why)

        reg = Registration(self, req, gen, channel, options)
        with self.lock:
            if self.server is None or gen != self.generation:
                channel.close()
                context.abort(grpc.StatusCode.UNAVAILABLE, "kubelet is stopping")
            r.current = reg
            r.stopped = False
            r.register_ok += 1
            self._registrations.append(reg)
            self.events.append((reg.time, gen, res, "registered"))
            self.lock.notify_all()
        reg.thread = threading.Thread(target=self._watch, args=(reg,), daemon=True,
                                      name="ListAndWatch " + res)
        reg.thread.start()
        self._say("registered %s at %s" % (res, req.endpoint))
        if self.reply_delay:
            # The kubelet's ListAndWatch goroutine may well run before its answer is sent.
            time.sleep(self.reply_delay)
        return pb.Empty()

    def _check_request(self, req):
        if req.version != API_VERSION:
            return "version %r is not supported, want %r" % (req.version, API_VERSION)
        name = req.resource_name
        domain, _, kind = name.partition("/")
        if not domain or not kind or "/" in kind or "kubernetes.io" in domain:
            return "resource name %r is not an extended resource name" % name
        if not req.endpoint or "/" in req.endpoint:
            return "endpoint %r is not a file name in %s" % (req.endpoint, self.dir)
        return None

    def _fail(self, res, gen, why, error=False):
        with self.lock:
            self.events.append((time.monotonic(), gen, res, why))
            if error:
                self.errors.append("%s: %s" % (res, why))
            self.lock.notify_all()
        self._say("Register %s failed: %s" % (res, why))

    def _watch(self, reg):
        """Reads one registration's ListAndWatch stream until it ends."""
        try:
            reg.call = reg.stub.ListAndWatch(pb.Empty())
            if reg.cancelled:
                reg.call.cancel()
            for resp in reg.call:
                devices = {d.ID: d.health for d in resp.devices}
                topology = sum(1 for d in resp.devices if d.HasField("topology"))
                now = time.monotonic()
                with self.lock:
                    r = self.resources[reg.resource]
                    r.with_topology += topology
                    r.updates.append((now, devices))
                    r.devices = dict(devices)
                    self.lock.notify_all()
                self._say("%s: %d devices, %d healthy" % (
                    reg.resource, len(devices),
                    sum(1 for h in devices.values() if h == "Healthy")))
            why = "the plugin ended the stream with OK"
        except grpc.RpcError as e:
            why = "%s: %s" % (e.code().name, e.details())
        except ValueError as e:  # the channel was closed under us
            why = str(e)
        with self.lock:
            reg.ended = why
            if reg.cancelled:
                self.lock.notify_all()
                return
            # The plugin ended it. The kubelet disconnects the resource's current client by name.
            self.stream_ends.append((time.monotonic(), reg.resource, why))
            r = self.resources[reg.resource]
            cur, r.current = r.current, None
            self._stop_resource(r)
            self.lock.notify_all()
        if cur is not None and cur is not reg:
            cur.close()
        self._say("%s: ListAndWatch ended: %s" % (reg.resource, why))

    def _stop_resource(self, r):
        r.stopped = True
        r.devices = {k: "Unhealthy" for k in r.devices}
        self.lock.notify_all()

    # ---- queries ----

    def wait_for(self, predicate, timeout, what="condition"):
        """Waits until predicate() (called under the lock) is true; returns its value or raises
        AssertionError naming |what| after |timeout| seconds."""
        end = time.monotonic() + timeout
        with self.lock:
            while True:
                v = predicate()
                if v:
                    return v
                left = end - time.monotonic()
                if left <= 0:
                    raise AssertionError("test kubelet: timed out after %.1f s waiting for %s; "
                                         "Register events: %s; errors: %s" % (
                                             timeout, what, self.describe_events(),
                                             self.errors))
                self.lock.wait(min(left, 0.05))

    def registered(self, resources, generation=None):
        """True when every resource has a live registration of |generation| (default current)."""
        gen = generation or self.generation
        for name in resources:
            r = self.resources.get(name)
            if r is None or r.current is None or r.current.generation != gen:
                return False
        return True

    def wait_registered(self, resources, timeout, listed=True):
        """Waits for every resource to be registered with this kubelet instance and, with
        |listed|, for its first ListAndWatch answer on that registration."""

        def ok():
            if not self.registered(resources):
                return False
            if listed:
                for name in resources:
                    r = self.resources[name]
                    if not r.updates or r.updates[-1][0] < r.current.time:
                        return False
            return True

        self.wait_for(ok, timeout, "registration of %s" % ", ".join(resources))

    def restart_latency(self, resources):
        """Seconds from the last kubelet.sock creation to the last of |resources| registered."""
        with self.lock:
            t = max(self.resources[n].current.time for n in resources)
            return t - self.socket_created

    def register_count(self, resource, generation=None, ok=True):
        """Register calls of |resource| seen by kubelet instance |generation| (None: all), only
        the successful ones when |ok|."""
        with self.lock:
            n = 0
            for (_, gen, res, what) in self.events:
                if res == resource and (generation is None or gen == generation) and \
                        (what == "registered" or not ok):
                    n += 1
            return n

    def register_times(self, resource, ok=None):
        """Times of Register calls of |resource|: all (None), successful (True), failed (False)."""
        with self.lock:
            return [t for (t, _, res, what) in self.events if res == resource and
                    (ok is None or (what == "registered") == ok)]

    def describe_events(self):
        return ["gen%d %s %s" % (g, r, w) for (_, g, r, w) in self.events][-12:]

    def devices(self, resource):
        with self.lock:
            r = self.resources.get(resource)
            return dict(r.devices) if r else {}

    def with_topology(self, resource):
        """How many listed devices of |resource| carried a TopologyInfo (over every message)."""
        with self.lock:
            r = self.resources.get(resource)
            return r.with_topology if r else 0

    def updates(self, resource):
        with self.lock:
            r = self.resources.get(resource)
            return list(r.updates) if r else []

    def allocatable(self, resource):
        """Healthy devices of |resource| (0 when unknown or dropped)."""
        with self.lock:
            r = self.resources.get(resource)
            if r is None or r.stopped:
                return 0
            return sum(1 for h in r.devices.values() if h == "Healthy")

    def capacity(self, resource):
        """All devices of |resource|, healthy or not."""
        with self.lock:
            r = self.resources.get(resource)
            return len(r.devices) if r else 0

    def options(self, resource):
        with self.lock:
            return self.resources[resource].current.options

    def endpoint(self, resource):
        with self.lock:
            return self.resources[resource].current.endpoint

    def request(self, resource):
        """The RegisterRequest of |resource|'s current registration."""
        with self.lock:
            return self.resources[resource].current.request

    def max_registrations(self, since=0):
        """The most successful Register calls any resource made to one kubelet instance (from
        event |since| on), and the counts per (generation, resource)."""
        with self.lock:
            n = {}
            for (_, gen, res, what) in self.events[since:]:
                if what == "registered":
                    n[(gen, res)] = n.get((gen, res), 0) + 1
            return max(n.values(), default=0), n

    # ---- calls to the plugin, on the channel the kubelet registered ----

    def stub(self, resource):
        with self.lock:
            r = self.resources.get(resource)
            if r is None or r.current is None:
                raise AssertionError("test kubelet: %s is not registered" % resource)
            return r.current.stub

    def allocate(self, resource, *containers, timeout=5.0):
        """Allocate with one ContainerAllocateRequest per list of device IDs."""
        req = pb.AllocateRequest()
        for ids in containers:
            req.container_requests.add().devices_ids.extend(ids)
        return self.stub(resource).Allocate(req, timeout=timeout)

    def preferred(self, resource, available, must_include=(), size=1, timeout=5.0):
        req = pb.PreferredAllocationRequest()
        c = req.container_requests.add()
        c.available_deviceIDs.extend(available)
        c.must_include_deviceIDs.extend(must_include)
        c.allocation_size = size
        return self.stub(resource).GetPreferredAllocation(req, timeout=timeout)

    def prestart(self, resource, ids, timeout=5.0):
        req = pb.PreStartContainerRequest()
        req.devices_ids.extend(ids)
        return self.stub(resource).PreStartContainer(req, timeout=timeout)

    def _say(self, msg):
        if self.verbose:
            with _print_lock:
                sys.stdout.write("[kubelet] %s\n" % msg)
                sys.stdout.flush()


def main():
    ap = argparse.ArgumentParser(description="Serve a test kubelet's Registration on DIR.")
    ap.add_argument("--dir", required=True, help="device-plugin dir (kubelet.sock goes there)")
    ap.add_argument("--old-authority", action="store_true",
                    help="dial plugins with the socket path as :authority (kubelet < 1.26)")
    args = ap.parse_args()
    k = FakeKubelet(args.dir, authority=KUBELET_OLD_AUTHORITY if args.old_authority else None,
                    verbose=True)
    k.start()
    done = threading.Event()
    signal.signal(signal.SIGINT, lambda *a: done.set())
    signal.signal(signal.SIGTERM, lambda *a: done.set())
    last = None
    while not done.wait(1):
        with k.lock:
            now = {n: (sum(1 for h in r.devices.values() if h == "Healthy") if not r.stopped
                       else 0, len(r.devices)) for n, r in k.resources.items()}
        if now != last:
            k._say("allocatable/capacity: " + ", ".join(
                "%s=%d/%d" % (n, a, c) for n, (a, c) in sorted(now.items())))
            last = now
    k.stop()
    for e in k.errors:
        print("error: " + e, file=sys.stderr)
    return 1 if k.errors else 0


if __name__ == "__main__":
    sys.exit(main())
