#!/usr/bin/python3
"""fake_dra_kubelet.py - a test kubelet for DRA: the plugin manager and the DRA manager of a real
kubelet, in Python (Debian's python3-grpcio, stubs generated from our proto/pluginregistration.proto,
proto/dra_v1.proto and proto/dra_v1beta1.proto).

It behaves like the kubelet's plugin manager (pkg/kubelet/pluginmanager, 1.34 and later):

  * watches the registry dir (polled every 20 ms: the kubelet uses fsnotify; a socket is new when
    its name or its inode is), and for each new socket dials it, calls GetInfo and validates the
    answer the way the DRA handler does: type "DRAPlugin", a name (the driver we expect when
    given), an absolute endpoint that is a socket, and a supported version it speaks
    ("v1.DRAPlugin" preferred, else "v1beta1.DRAPlugin");
  * answers NotifyRegistrationStatus: registered, or refused with a reason (reject());
  * forgets a plugin whose registration socket vanished (the kubelet deregisters it);
  * calls NodePrepareResources / NodeUnprepareResources on the registered endpoint with the
    version it chose (or one asked for), dialing the endpoint afresh like the kubelet's client;
  * when the plugin lists "v1.DRAResourceHealth", reads its NodeWatchResources stream
    (watch_health()), keeping every update, as the kubelet's health manager (1.36) does.
  * restart() wipes the registry dir (rm -rf and mkdir), and starts the next kubelet instance,
    which finds every socket again.

Protocol violations by the plugin are recorded in `errors` (the integration fixtures fail a test
that leaves any). Importable; runnable as a script:
    /usr/bin/python3 tests/kubelet/fake_dra_kubelet.py --registry /tmp/reg
"""

import argparse
import importlib
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
PROTO_DIR = os.path.join(REPO, "proto")
PROTOS = ("pluginregistration", "dra_v1", "dra_v1beta1", "dra_health_v1")
GEN_DIR = os.path.join(REPO, "tests", "integration", "gen")

PLUGIN_TYPE = "DRAPlugin"
VERSIONS = ("v1.DRAPlugin", "v1beta1.DRAPlugin")  # the kubelet's preference order
HEALTH_SERVICE = "v1.DRAResourceHealth"  # listed by a plugin that streams device health

grpc = None
mods = {}  # "dra_v1" -> (pb2, pb2_grpc)


def load_api(gen_dir=GEN_DIR):
    """Generates <name>_pb2 / _pb2_grpc for each of PROTOS into |gen_dir| (when missing or older
    than the proto), imports them and returns (grpc, {name: (pb2, pb2_grpc)})."""
    global grpc
    if mods:
        return grpc, mods
    import grpc as _grpc

    os.makedirs(gen_dir, exist_ok=True)
    for name in PROTOS:
        proto = os.path.join(PROTO_DIR, name + ".proto")
        out = os.path.join(gen_dir, name + "_pb2.py")
        out_grpc = os.path.join(gen_dir, name + "_pb2_grpc.py")
        if (os.path.exists(out) and os.path.exists(out_grpc)
                and os.path.getmtime(out) >= os.path.getmtime(proto)):
            continue
        # Generate into a private dir, then rename: two runs at once never see half a file.
        tmp = tempfile.mkdtemp(prefix=".gen-", dir=gen_dir)
        try:
            cmd = [sys.executable, "-m", "grpc_tools.protoc", "-I" + PROTO_DIR,
                   "--python_out=" + tmp, "--grpc_python_out=" + tmp, proto]
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode != 0:
                raise RuntimeError("grpc_tools.protoc failed: " + r.stderr.strip())
            os.replace(os.path.join(tmp, name + "_pb2_grpc.py"), out_grpc)
            os.replace(os.path.join(tmp, name + "_pb2.py"), out)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    if gen_dir not in sys.path:
        sys.path.insert(0, gen_dir)
    importlib.invalidate_caches()
    grpc = _grpc
    for name in PROTOS:
        mods[name] = (importlib.import_module(name + "_pb2"),
                      importlib.import_module(name + "_pb2_grpc"))
    return grpc, mods


def dial(path, timeout=5.0):
    """A channel of its own to a unix socket, ready (or grpc.FutureTimeoutError)."""
    ch = grpc.insecure_channel("unix://" + path, options=[("grpc.use_local_subchannel_pool", 1)])
    grpc.channel_ready_future(ch).result(timeout=timeout)
    return ch


class Plugin:
    """One registered DRA plugin: its GetInfo answer and the version the kubelet chose."""

    def __init__(self, generation, socket, inode, info, version):
        self.generation = generation
        self.socket = socket
        self.inode = inode
        self.info = info
        self.name = info.name
        self.endpoint = info.endpoint
        self.version = version  # "v1" or "v1beta1"
        self.time = time.monotonic()


class FakeDraKubelet:
    """The kubelet's plugin manager watching |registry|. Thread-safe; times are monotonic."""

    def __init__(self, registry, driver=None, dial_timeout=5.0, verbose=False):
        load_api()
        self.registry = os.path.abspath(registry)
        self.driver = driver  # the name a plugin must give, when set
        self.dial_timeout = dial_timeout
        self.verbose = verbose
        self.lock = threading.Condition()
        self.generation = 0
        self.plugins = {}  # name -> Plugin, the current registrations
        self.events = []  # (time, generation, socket, what) for each registration attempt
        self.errors = []  # protocol violations by the plugin
        self._seen = {}  # socket name -> inode handled by this instance
        self._reject = []  # reasons for the next registrations to refuse
        self._stop = None
        self._thread = None

    # ---- lifetime ----

    def start(self):
        os.makedirs(self.registry, exist_ok=True)
        with self.lock:
            self.generation += 1
            self._seen = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, args=(self._stop,), daemon=True)
        self._thread.start()

    def stop(self):
        if self._stop is not None:
            self._stop.set()
            self._thread.join(10)
            self._stop = None
        with self.lock:
            self.plugins = {}

    def restart(self, wipe=True):
        """Stops, wipes the registry dir (rm -rf, mkdir) and starts the next instance."""
        self.stop()
        if wipe:
            # at once: renamed away, then deleted (a plugin re-creating its socket meanwhile
            # must not keep the directory alive)
            tmp = self.registry + ".old"
            os.rename(self.registry, tmp)
            shutil.rmtree(tmp, ignore_errors=True)
            os.makedirs(self.registry, exist_ok=True)
        self.start()

    def reject(self, reason, count=1):
        """The next |count| registrations are refused with |reason|."""
        with self.lock:
            self._reject += [reason] * count

    # ---- the plugin watcher ----

    def _watch(self, stop):
        while not stop.is_set():
            try:
                entries = list(os.scandir(self.registry))
            except OSError:
                entries = []
            now = {}
            for e in entries:
                try:
                    st = e.stat(follow_symlinks=False)
                except OSError:
                    continue
                if stat.S_ISSOCK(st.st_mode) and not e.name.startswith("."):
                    now[e.name] = st.st_ino
            with self.lock:
                gone = [n for n in self._seen if n not in now]
                for n in gone:
                    del self._seen[n]
                    for name, p in list(self.plugins.items()):
                        if os.path.basename(p.socket) == n:
                            del self.plugins[name]  # the kubelet deregisters it
                            self.lock.notify_all()
                new = [(n, ino) for n, ino in now.items() if self._seen.get(n) != ino]
                for n, ino in new:
                    self._seen[n] = ino
            for n, ino in new:
                self._register(os.path.join(self.registry, n), ino)
            stop.wait(0.02)

    def _event(self, socket, what):
        with self.lock:
            self.events.append((time.monotonic(), self.generation, socket, what))
            self.lock.notify_all()
        if self.verbose:
            print("dra-kubelet %d: %s: %s" % (self.generation, socket, what), flush=True)

    def _error(self, msg):
        with self.lock:
            self.errors.append(msg)
            self.lock.notify_all()

    def _validate(self, info):
        """Why the kubelet's DRA handler would refuse |info|, or None; and the version chosen."""
        if info.type != PLUGIN_TYPE:
            return "plugin type %r is not %r" % (info.type, PLUGIN_TYPE), None
        if not info.name:
            return "empty plugin name", None
        if self.driver and info.name != self.driver:
            return "plugin name %r is not the driver %r" % (info.name, self.driver), None
        if not os.path.isabs(info.endpoint):
            return "endpoint %r is not an absolute path" % info.endpoint, None
        try:
            if not stat.S_ISSOCK(os.stat(info.endpoint).st_mode):
                return "endpoint %s is not a socket" % info.endpoint, None
        except OSError as e:
            return "endpoint %s: %s" % (info.endpoint, e.strerror), None
        for v in VERSIONS:
            if v in info.supported_versions:
                return None, v.split(".")[0]
        return "none of the versions %s is supported" % list(info.supported_versions), None

    def _register(self, socket, inode):
        reg_pb, reg_grpc = mods["pluginregistration"]
        try:
            ch = dial(socket, self.dial_timeout)
        except grpc.FutureTimeoutError:
            self._event(socket, "dial failed")
            return
        try:
            stub = reg_grpc.RegistrationStub(ch)
            try:
                info = stub.GetInfo(reg_pb.InfoRequest(), timeout=self.dial_timeout)
            except grpc.RpcError as e:
                self._error("%s: GetInfo failed: %s %s" % (socket, e.code().name, e.details()))
                return
            why, version = self._validate(info)
            with self.lock:
                if why is None and self._reject:
                    why = self._reject.pop(0)
                    forced = True
                else:
                    forced = False
            if why is not None and not forced:
                self._error("%s: GetInfo answer refused: %s" % (socket, why))
            status = reg_pb.RegistrationStatus(plugin_registered=why is None, error=why or "")
            try:
                stub.NotifyRegistrationStatus(status, timeout=self.dial_timeout)
            except grpc.RpcError as e:
                self._error("%s: NotifyRegistrationStatus failed: %s %s" % (
                    socket, e.code().name, e.details()))
                return
            if why is not None:
                self._event(socket, "refused: " + why)
                return
            with self.lock:
                self.plugins[info.name] = Plugin(self.generation, socket, inode, info, version)
            self._event(socket, "registered %s %s via %s" % (info.name, info.endpoint, version))
        finally:
            ch.close()

    # ---- queries ----

    def wait_for(self, predicate, timeout, what):
        end = time.monotonic() + timeout
        with self.lock:
            while True:
                v = predicate()
                if v:
                    return v
                left = end - time.monotonic()
                if left <= 0:
                    raise AssertionError("timed out after %.1f s waiting for %s; events: %s" % (
                        timeout, what, [e[1:] for e in self.events[-5:]]))
                self.lock.wait(min(left, 0.05))

    def wait_registered(self, name, timeout=10.0, generation=None):
        """Waits until |name| is registered (with this kubelet instance, or |generation|)."""
        gen = generation or self.generation
        return self.wait_for(lambda: self.plugins.get(name) if (
            name in self.plugins and self.plugins[name].generation == gen) else None,
            timeout, "DRA plugin %s registered with kubelet instance %d" % (name, gen))

    def refusals(self):
        with self.lock:
            return [e for e in self.events if e[3].startswith("refused")]

    # ---- calls ----

    def _call(self, name, method, claims, version, timeout):
        with self.lock:
            p = self.plugins.get(name)
        if p is None:
            raise AssertionError("DRA plugin %s is not registered" % name)
        pb, pb_grpc = mods["dra_" + (version or p.version)]
        req_cls = pb.NodePrepareResourcesRequest if method == "NodePrepareResources" \
            else pb.NodeUnprepareResourcesRequest
        req = req_cls(claims=[pb.Claim(namespace=ns, uid=uid, name=n) for ns, uid, n in claims])
        ch = dial(p.endpoint, self.dial_timeout)
        try:
            return getattr(pb_grpc.DRAPluginStub(ch), method)(req, timeout=timeout)
        finally:
            ch.close()

    def watch_health(self, name):
        """Opens NodeWatchResources on |name|'s endpoint (it must list HEALTH_SERVICE)."""
        with self.lock:
            p = self.plugins.get(name)
        if p is None:
            raise AssertionError("DRA plugin %s is not registered" % name)
        if HEALTH_SERVICE not in p.info.supported_versions:
            raise AssertionError("%s does not list %s" % (name, HEALTH_SERVICE))
        return HealthWatch(p.endpoint, self.dial_timeout)

    def prepare(self, name, claims, version=None, timeout=45.0):
        """NodePrepareResources for [(namespace, uid, name)]; the kubelet's timeout is 45 s."""
        return self._call(name, "NodePrepareResources", claims, version, timeout)

    def unprepare(self, name, claims, version=None, timeout=45.0):
        return self._call(name, "NodeUnprepareResources", claims, version, timeout)


class HealthWatch:
    """A NodeWatchResources stream on a plugin's endpoint, read in a thread: `updates` holds
    (monotonic time, {device: (health name, last_updated_time, message)})."""

    def __init__(self, endpoint, timeout=5.0):
        pb, pb_grpc = mods["dra_health_v1"]
        self.cond = threading.Condition()
        self.updates = []
        self.ended = None
        self.channel = dial(endpoint, timeout)
        self.call = pb_grpc.DRAResourceHealthStub(self.channel).NodeWatchResources(
            pb.NodeWatchResourcesRequest())
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        pb = mods["dra_health_v1"][0]
        try:
            for resp in self.call:
                with self.cond:
                    self.updates.append((time.monotonic(), {
                        d.device.device_name: (pb.HealthStatus.Name(d.health),
                                               d.last_updated_time, d.message)
                        for d in resp.devices}))
                    self.cond.notify_all()
            why = ("OK", "")
        except grpc.RpcError as e:
            why = (e.code().name, e.details())
        with self.cond:
            self.ended = why
            self.cond.notify_all()

    def wait(self, want, timeout, what=None):
        """Waits until the latest update maps each device to the health names of |want|."""
        end = time.monotonic() + timeout
        with self.cond:
            while True:
                if self.updates and {k: v[0] for k, v in self.updates[-1][1].items()} == want:
                    return self.updates[-1][1]
                if self.ended is not None:
                    raise AssertionError("health stream ended (%s) waiting for %s" % (
                        self.ended, want))
                left = end - time.monotonic()
                if left <= 0:
                    raise AssertionError("timed out waiting for %s; last: %s" % (
                        what or want, self.updates[-1][1] if self.updates else None))
                self.cond.wait(min(left, 0.05))

    def close(self):
        self.call.cancel()
        self.thread.join(5)
        self.channel.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--registry", required=True)
    ap.add_argument("--driver")
    a = ap.parse_args()
    k = FakeDraKubelet(a.registry, driver=a.driver, verbose=True)
    k.start()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        k.stop()


if __name__ == "__main__":
    main()
