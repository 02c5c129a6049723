"""test_02_registration.py - living with the kubelet (issue #2 sections 3 and 4): registration of
every resource on its own socket, a late kubelet, kubelet restarts, rejected Registers, the kubelet
dropping a stream, and one successful Register per resource per kubelet instance (that last one is
also checked after every test by the `node` fixture)."""

import os
import socket
import stat
import time

import pytest

import sdp
from sdp import T, res
from fake_kubelet import KUBELET_OLD_AUTHORITY

AUTHORITIES = [None, KUBELET_OLD_AUTHORITY]
AUTH_IDS = ["authority-default", "authority-socket-path"]


# 02_01: sgx, dcap and ias register once each, on DIR/sgxdevplugin-<kind>.sock, as v1beta1
@pytest.mark.parametrize("authority", AUTHORITIES, ids=AUTH_IDS)
def test_02_01_registers_three_resources(node, authority):
    nd = node("inkernel", authority=authority)
    k = nd.kubelet
    assert sorted(k.resources) == sorted(sdp.RESOURCES)
    for kind in sdp.KINDS:
        r = res(kind)
        req = k.request(r)
        assert req.version == "v1beta1"
        assert req.endpoint == "sgxdevplugin-%s.sock" % kind
        assert stat.S_ISSOCK(os.stat(nd.socket(kind)).st_mode)
        assert k.register_count(r) == 1
        assert k.register_count(r, ok=False) == 1, "a failed Register before the good one"


# 02_02: the options sent with Register match GetDevicePluginOptions: nothing advertised
def test_02_02_register_options(node):
    nd = node("inkernel")
    for r in sdp.RESOURCES:
        o = nd.kubelet.request(r).options
        assert not o.pre_start_required and not o.get_preferred_allocation_available
        o = nd.kubelet.options(r)
        assert not o.pre_start_required and not o.get_preferred_allocation_available


# 02_03: --provision-resource registers a fourth resource, D/provision, on its own socket
def test_02_03_provision_resource(node):
    four = sdp.RESOURCES + [res("provision")]
    nd = node("inkernel", ["--provision-resource"], resources=four)
    assert sorted(nd.kubelet.resources) == sorted(four)
    assert nd.kubelet.endpoint(res("provision")) == "sgxdevplugin-provision.sock"
    assert stat.S_ISSOCK(os.stat(nd.socket("provision")).st_mode)
    nd.wait_devices(res("provision"), 110, 110)


# 02_04: --resource-domain changes the resource names
def test_02_04_resource_domain(node):
    names = [res(k, "sgx.example.com") for k in sdp.KINDS]
    nd = node("inkernel", ["--resource-domain", "sgx.example.com"], resources=names)
    assert sorted(nd.kubelet.resources) == sorted(names)
    nd.wait_devices(res("dcap", "sgx.example.com"), 110, 110)


# 02_05: a kubelet that starts after the daemon is registered with as soon as kubelet.sock appears
def test_02_05_late_kubelet(node):
    nd = node("inkernel", kubelet=False)
    os.makedirs(nd.kdir)
    time.sleep(T(0.5))  # setup, not an assertion: let the daemon settle into waiting
    assert nd.daemon.alive()
    t0 = time.monotonic()
    nd.kubelet.start()
    nd.wait_registered(timeout=T(5))
    took = nd.kubelet.restart_latency(sdp.RESOURCES)
    assert took < T(1.0), "registration took %.2f s after kubelet.sock appeared: " \
                          "not driven by inotify?" % took
    assert time.monotonic() - t0 < T(5)
    for r in sdp.RESOURCES:
        assert nd.kubelet.register_count(r) == 1


# 02_06: a kubelet restart (dir wiped, kubelet.sock recreated) gets every resource again, once
@pytest.mark.parametrize("authority", AUTHORITIES, ids=AUTH_IDS)
def test_02_06_kubelet_restart(node, restart_figures, request, authority):
    nd = node("inkernel", authority=authority)
    k = nd.kubelet
    k.restart()
    nd.wait_registered(timeout=T(5))
    took = k.restart_latency(sdp.RESOURCES)
    restart_figures.append((request.node.name, took))
    print("kubelet restart: all resources registered again %.1f ms after kubelet.sock appeared"
          % (took * 1000))
    for kind in sdp.KINDS:
        assert stat.S_ISSOCK(os.stat(nd.socket(kind)).st_mode)
        assert k.register_count(res(kind), generation=2) == 1
        nd.wait_devices(res(kind), 110 if kind != "ias" else 0)
    resp = k.allocate(res("dcap"), ["dcap-0"])
    assert len(resp.container_responses) == 1


# 02_07: several kubelet restarts in a row: one registration per resource per kubelet instance
def test_02_07_kubelet_restarts_in_a_row(node, restart_figures, request):
    nd = node("dcap_ias")
    for _ in range(4):
        nd.kubelet.restart()
        nd.wait_registered(timeout=T(5))
        restart_figures.append((request.node.name,
                                nd.kubelet.restart_latency(sdp.RESOURCES)))
    gen = nd.kubelet.generation
    for r in sdp.RESOURCES:
        assert nd.kubelet.register_count(r, generation=gen) == 1
        nd.wait_devices(r, 110, 110)


# 02_08: the kubelet gone for a while (dir wiped, no kubelet.sock): the daemon waits, then registers
def test_02_08_kubelet_down_then_up(node):
    nd = node("inkernel")
    k = nd.kubelet
    m = nd.daemon.mark()
    k.stop()
    k.wipe()
    ksock = os.path.join(nd.kdir, "kubelet.sock")
    nd.daemon.wait_log(lambda l: l.get("path") == ksock and l.get("level") != "debug", T(5),
                       since=m, what="a log line about the kubelet going away")
    assert nd.daemon.alive()
    k.start()
    nd.wait_registered(timeout=T(5))
    for r in sdp.RESOURCES:
        assert k.register_count(r, generation=2) == 1


# 02_09: a stale kubelet.sock nobody listens on: Register fails and is retried until one answers
def test_02_09_stale_kubelet_socket(node):
    nd = node("inkernel", kubelet=False)
    os.makedirs(nd.kdir)
    s = socket.socket(socket.AF_UNIX)
    s.bind(os.path.join(nd.kdir, "kubelet.sock"))
    s.close()  # the file stays: connect gets ECONNREFUSED
    nd.daemon.wait_log(lambda l: l.get("level") in ("warn", "error") and
                       "retry" in l.get("msg", "").lower(), T(5),
                       what="a warning that Register failed and will be retried")
    assert nd.daemon.alive()
    nd.kubelet.start()  # replaces the stale socket
    nd.wait_registered(timeout=T(10))


# 02_10: a rejected Register is retried with growing (capped) backoff; other resources unaffected
def test_02_10_register_rejected_retried(node):
    nd = node("inkernel", kubelet=False)
    k = nd.kubelet
    dcap = res("dcap")
    k.reject(2, resource=dcap)
    k.start()
    nd.wait_registered([res("sgx"), res("ias")], timeout=T(5))
    nd.wait_registered([dcap], timeout=T(20))
    failed = k.register_times(dcap, ok=False)
    ok = k.register_times(dcap, ok=True)
    assert len(failed) == 2 and len(ok) == 1, k.describe_events()
    g1, g2 = failed[1] - failed[0], ok[0] - failed[1]
    assert g1 >= 0.05, "retried after %.3f s: no backoff" % g1
    assert g2 >= g1 * 0.8, "second wait %.3f s shorter than the first %.3f s: no backoff" % (g2,
                                                                                               g1)
    nd.daemon.wait_log(lambda l: l.get("resource") == dcap and l.get("level") in (
        "warn", "error") and "retry" in l.get("msg", "").lower(), T(1),
                       what="a warning for dcap saying it retries")
    for r in (res("sgx"), res("ias")):
        assert k.register_count(r, ok=False) == 1, "%s was registered again" % r
    nd.wait_devices(dcap, 110, 110)


# 02_11: Register rejected for every resource at once: all are retried and register
def test_02_11_register_rejected_all(node):
    nd = node("dcap_ias", kubelet=False)
    nd.kubelet.reject(3)  # the first three calls, whichever resources they are for
    nd.kubelet.start()
    nd.wait_registered(timeout=T(20))
    for r in sdp.RESOURCES:
        assert nd.kubelet.register_count(r) == 1


# 02_12: the kubelet ends a ListAndWatch stream (drops the plugin): that resource registers again
def test_02_12_kubelet_drops_stream(node):
    nd = node("inkernel")
    nd.allow_reregister = True
    k = nd.kubelet
    dcap = res("dcap")
    # Drop only once the daemon has the kubelet's answer (02_17 drops before it on purpose).
    nd.daemon.wait_log(lambda l: l.get("resource") == dcap and l.get("level") == "info" and
                       "registered" in l.get("msg", ""), T(2),
                       what="the daemon's log of the registration")
    m = nd.daemon.mark()
    k.drop(dcap)
    k.wait_for(lambda: k.register_count(dcap, generation=1) == 2, T(10),
               "dcap registered again after the kubelet ended its stream")
    nd.wait_registered(timeout=T(5))
    nd.wait_devices(dcap, 110, 110)
    for r in (res("sgx"), res("ias")):
        assert k.register_count(r) == 1, "%s was registered again" % r
    # The kubelet dropping it again is handled again (once the daemon has its answer).
    nd.daemon.wait_log(lambda l: l.get("resource") == dcap and l.get("level") == "info" and
                       "registered" in l.get("msg", ""), T(2), since=m,
                       what="the daemon's log of the second registration")
    k.drop(dcap)
    k.wait_for(lambda: k.register_count(dcap, generation=1) == 3, T(10),
               "dcap registered again after a second drop")
    nd.wait_devices(dcap, 110, 110)
    assert k.allocate(dcap, ["dcap-1"]).container_responses[0].devices


# 02_13: the sockets are recreated after a kubelet restart even when the daemon saw no deletion
# race: wiped and recreated between two reads of the directory
def test_02_13_fast_wipe_and_recreate(node):
    nd = node("inkernel")
    k = nd.kubelet
    for _ in range(3):
        k.restart()
    nd.wait_registered(timeout=T(5))
    for kind in sdp.KINDS:
        assert stat.S_ISSOCK(os.stat(nd.socket(kind)).st_mode)
        assert k.register_count(res(kind), generation=k.generation) == 1
    assert k.allocate(res("sgx"), ["sgx-0"]).container_responses[0].devices


# 02_14: a kubelet restart while a device is gone: the new kubelet is told the slots, Unhealthy
def test_02_14_restart_while_unhealthy(node):
    nd = node("inkernel")
    dcap = res("dcap")
    nd.dev.remove("sgx_enclave")
    nd.wait_devices(dcap, 0, 110, timeout=T(1))
    nd.kubelet.restart()
    nd.wait_registered(timeout=T(5))
    nd.wait_devices(dcap, 0, 110, timeout=T(1))
    assert nd.kubelet.capacity(res("ias")) == 0
    nd.dev.mknod("sgx_enclave", *sdp.ENCLAVE)
    nd.wait_devices(dcap, 110, 110, timeout=T(1))


# 02_15: a kubelet restart while Registers are in flight: one registration per resource with the
# new kubelet, none lost
def test_02_15_restart_during_register(node):
    nd = node("dcap_ias", kubelet=False)
    k = nd.kubelet
    k.register_delay = 0.3
    k.start()
    k.wait_for(lambda: all(k.resources.get(r) and k.resources[r].register_calls for r in
                           sdp.RESOURCES), T(5), "Register calls in flight")
    k.register_delay = 0
    k.restart()
    nd.wait_registered(timeout=T(10))
    for r in sdp.RESOURCES:
        assert k.register_count(r, generation=k.generation) == 1
        nd.wait_devices(r, 110, 110)


# 02_16: the kubelet dir removed altogether while the kubelet is down, then created again by a
# new kubelet (kubeadm reset, reinstall): the daemon notices both at once
def test_02_16_kubelet_dir_recreated(node):
    nd = node("inkernel")
    k = nd.kubelet
    ksock = os.path.join(nd.kdir, "kubelet.sock")
    for kind in sdp.KINDS:  # our sockets go first, kubelet.sock last (the kubelet exits)...
        os.unlink(nd.socket(kind))
    m = nd.daemon.mark()
    k.stop()
    nd.daemon.wait_log(lambda l: l.get("path") == ksock and l.get("level") != "debug" and
                       ("gone" in l.get("msg", "") or "wait" in l.get("msg", "")), T(2),
                       since=m, what="a log line saying kubelet.sock is gone")
    m = nd.daemon.mark()
    os.rmdir(nd.kdir)  # ... then the directory itself
    nd.daemon.wait_log(lambda l: l.get("path") == nd.kdir and l.get("level") != "debug", T(2),
                       since=m, what="a log line about the kubelet dir going away")
    k.start()
    nd.wait_registered(timeout=T(5))
    for kind in sdp.KINDS:
        assert stat.S_ISSOCK(os.stat(nd.socket(kind)).st_mode)
        assert k.register_count(res(kind), generation=k.generation) == 1


# 02_17: the kubelet opens ListAndWatch before its Register answer is out (it does, in a
# goroutine) and drops that stream before the answer arrives: the daemon registers again
def test_02_17_dropped_before_register_answer(node):
    nd = node("inkernel")
    nd.allow_reregister = True
    k = nd.kubelet
    dcap = res("dcap")
    k.reply_delay = T(0.5)
    k.drop(dcap)  # -> the daemon registers again; the answer to that will be late
    k.wait_for(lambda: k.register_count(dcap) == 2 and k.resources[dcap].current is not None and
               k.resources[dcap].updates and
               k.resources[dcap].updates[-1][0] > k.resources[dcap].current.time, T(5),
               "the second registration's first list")
    k.drop(dcap)  # while the daemon still waits for the answer to Register
    k.reply_delay = 0
    k.wait_for(lambda: k.register_count(dcap) == 3, T(3),
               "dcap registered again after its stream was dropped before Register returned")
    nd.wait_registered(timeout=T(5))
    nd.wait_devices(dcap, 110, 110)


# 02_18: a refused connect is retried after 5 ms once (a new kubelet binds before it listens),
# then with the backoff proper (100 ms, doubling)
def test_02_18_refused_connect_retried_fast_once(node):
    nd = node("inkernel", kubelet=False)
    os.makedirs(nd.kdir)
    s = socket.socket(socket.AF_UNIX)
    s.bind(os.path.join(nd.kdir, "kubelet.sock"))  # bound, never listening: ECONNREFUSED
    try:
        def delays(resource):
            out = []
            for l in nd.daemon.lines():
                msg = l.get("msg", "")
                if l.get("resource") == resource and "register failed" in msg:
                    out.append(msg.rsplit("retrying in ", 1)[-1])
            return out
        dcap = res("dcap")
        sdp.poll(lambda: len(delays(dcap)) >= 3, T(5), "three failed Register attempts")
        d = delays(dcap)
        assert d[0] == "0.005 s", d
        assert d[1] == "0.1 s" and d[2] == "0.2 s", d
    finally:
        s.close()
    nd.kubelet.start()
    nd.wait_registered(timeout=T(10))
