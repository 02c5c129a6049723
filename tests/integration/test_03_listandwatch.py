"""test_03_listandwatch.py - what the kubelet sees on ListAndWatch (issue #2 sections 2-4):
--max-pods Healthy slots per present class, none for a class never seen, Unhealthy at once when a
device node vanishes and Healthy when it returns, hotplug, large lists, and every open stream
getting each change."""

import os
import time

import pytest

import sdp
from sdp import T, res, all_health

SGX, DCAP, IAS = (res(k) for k in sdp.KINDS)

# "At once": well under any periodic rescan, which is the slow safety net only.
AT_ONCE = 1.0


# 03_01: each present class advertises --max-pods unique Healthy IDs of at most 63 characters
def test_03_01_max_pods_healthy_ids(node):
    nd = node("inkernel", ["--max-pods", "7"])
    seen = set()
    for r in (SGX, DCAP):
        devs = nd.kubelet.devices(r)
        assert len(devs) == 7 and all(h == "Healthy" for h in devs.values()), devs
        assert all(0 < len(i) <= 63 for i in devs), devs
        seen |= set(devs)
    assert len(seen) == 14, "device IDs repeat across resources: %s" % sorted(seen)


# 03_02: device IDs are the same on every start (the kubelet checkpoints allocations by ID)
def test_03_02_ids_deterministic(node):
    nd = node("dcap_ias", ["--max-pods", "5"])
    before = {r: sorted(nd.kubelet.devices(r)) for r in sdp.RESOURCES}
    nd.restart_daemon()
    after = {r: sorted(nd.kubelet.devices(r)) for r in sdp.RESOURCES}
    assert before == after


# 03_03: a class not present since start advertises no devices (a DCAP-only node has no ias slots)
def test_03_03_absent_class_no_devices(node):
    nd = node("inkernel")
    k = nd.kubelet
    assert k.updates(IAS), "ias got no first ListAndWatch answer"
    assert k.capacity(IAS) == 0 and k.allocatable(IAS) == 0
    assert k.allocatable(DCAP) == 110


# 03_04: with no SGX device at all every resource advertises nothing
@pytest.mark.parametrize("layout", ["none", "provision_only", "not_chardev", "dangling"])
def test_03_04_no_sgx_device(node, layout):
    nd = node(layout, ["--provision-resource"], resources=sdp.RESOURCES + [res("provision")])
    for r in nd.resources:
        if r == res("provision") and layout == "provision_only":
            continue  # the provisioning device alone is there; it is no SGX enclave though
        assert nd.kubelet.capacity(r) == 0, "%s advertises %d devices on layout %s" % (
            r, nd.kubelet.capacity(r), layout)


# 03_05: the enclave node vanishing turns the slots Unhealthy at once; returning, Healthy again
@pytest.mark.parametrize("layout,node_name", [("inkernel", "sgx_enclave"),
                                              ("dcapdriver", "sgx/enclave"),
                                              ("legacy", "sgx"),
                                              ("sgxdir", "sgx/sgx_enclave")])
def test_03_05_device_vanishes_and_returns(node, layout, node_name):
    nd = node(layout)
    k = nd.kubelet
    t0 = time.monotonic()
    nd.dev.remove(node_name)
    nd.wait_devices(DCAP, 0, 110, timeout=T(AT_ONCE))
    nd.wait_devices(SGX, 0, 110, timeout=T(AT_ONCE))
    print("Unhealthy after %.1f ms" % ((time.monotonic() - t0) * 1000))
    assert all(h == "Unhealthy" for h in k.devices(DCAP).values())
    nd.dev.mknod(node_name, *sdp.ENCLAVE)
    nd.wait_devices(DCAP, 110, 110, timeout=T(AT_ONCE))
    nd.wait_devices(SGX, 110, 110, timeout=T(AT_ONCE))
    assert k.capacity(IAS) == 0


# 03_06: an IAS device loaded after start (class never seen) appears on ias and sgx at once
def test_03_06_hotplug_ias(node):
    nd = node("none")
    nd.dev.mknod("isgx", *sdp.ISGX)
    nd.wait_devices(IAS, 110, 110, timeout=T(AT_ONCE))
    nd.wait_devices(SGX, 110, 110, timeout=T(AT_ONCE))
    assert nd.kubelet.capacity(DCAP) == 0


# 03_07: the in-kernel driver loaded after start: dcap and sgx appear at once
def test_03_07_hotplug_dcap(node):
    nd = node("none")
    nd.dev.apply("inkernel")
    nd.wait_devices(DCAP, 110, 110, timeout=T(AT_ONCE))
    nd.wait_devices(SGX, 110, 110, timeout=T(AT_ONCE))
    assert nd.kubelet.capacity(IAS) == 0


# 03_08: the DCAP driver's sgx/ directory created after start is watched too
def test_03_08_hotplug_sgx_subdir(node):
    nd = node("none")
    os.mkdir(nd.dev.path("sgx"))
    nd.dev.mknod("sgx/enclave", *sdp.ENCLAVE)
    nd.dev.mknod("sgx/provision", *sdp.PROVISION)
    nd.wait_devices(DCAP, 110, 110, timeout=T(2 * AT_ONCE))
    # ... and changes inside it are seen at once afterwards.
    nd.dev.remove("sgx/enclave")
    nd.wait_devices(DCAP, 0, 110, timeout=T(AT_ONCE))
    nd.dev.mknod("sgx/enclave", *sdp.ENCLAVE)
    nd.wait_devices(DCAP, 110, 110, timeout=T(AT_ONCE))


# 03_09: the whole sgx/ directory removed (driver unloaded) and recreated
def test_03_09_sgx_subdir_removed_and_recreated(node):
    nd = node("dcapdriver")
    nd.dev.remove("sgx")
    nd.wait_devices(DCAP, 0, 110, timeout=T(AT_ONCE))
    nd.dev.apply("dcapdriver")
    nd.wait_devices(DCAP, 110, 110, timeout=T(2 * AT_ONCE))
    nd.dev.remove("sgx/enclave")
    nd.wait_devices(DCAP, 0, 110, timeout=T(AT_ONCE))


# 03_10: sgx stays Healthy while either class is present
def test_03_10_sgx_healthy_while_either_present(node):
    nd = node("dcap_ias")
    k = nd.kubelet
    n_sgx = len(k.updates(SGX))
    nd.dev.remove("sgx_enclave")
    nd.wait_devices(DCAP, 0, 110, timeout=T(AT_ONCE))
    assert k.allocatable(IAS) == 110
    assert k.allocatable(SGX) == 110
    t_isgx_gone = time.monotonic()
    nd.dev.remove("isgx")
    nd.wait_devices(IAS, 0, 110, timeout=T(AT_ONCE))
    nd.wait_devices(SGX, 0, 110, timeout=T(AT_ONCE))
    # The sgx stream is in order: every update before the one that ended it came before isgx
    # went, and all of them were Healthy.
    ups = k.updates(SGX)[n_sgx:]
    first_down = next(i for i, (_, d) in enumerate(ups) if sdp.healthy(d) == 0)
    assert ups[first_down][0] > t_isgx_gone, "sgx turned Unhealthy while IAS was present"
    assert all(sdp.healthy(d) == 110 for _, d in ups[:first_down])
    nd.dev.mknod("isgx", *sdp.ISGX)
    nd.wait_devices(SGX, 110, 110, timeout=T(AT_ONCE))
    nd.wait_devices(IAS, 110, 110, timeout=T(AT_ONCE))
    assert k.allocatable(DCAP) == 0


# 03_11: a device node replaced by a regular file is gone (only character devices count)
def test_03_11_node_replaced_by_file(node):
    nd = node("ias")
    nd.dev.remove("isgx")
    nd.dev.mkfile("isgx")
    nd.wait_devices(IAS, 0, 110, timeout=T(AT_ONCE))
    nd.dev.remove("isgx")
    nd.dev.mknod("isgx", *sdp.ISGX)
    nd.wait_devices(IAS, 110, 110, timeout=T(AT_ONCE))


# 03_12: removing a udev link while the real node stays changes nothing; the node going does
def test_03_12_udev_link_removed(node):
    nd = node("udev")
    k = nd.kubelet
    n = len(k.updates(DCAP))
    nd.dev.remove("sgx/enclave")
    nd.dev.remove("sgx_enclave")
    nd.wait_devices(DCAP, 0, 110, timeout=T(AT_ONCE))
    ups = k.updates(DCAP)[n:]
    assert all(sdp.healthy(d) in (0, 110) for _, d in ups)
    assert sdp.healthy(ups[-1][1]) == 0


# 03_13: an unrelated change under the dev root sends nothing; a relevant one sends one update
def test_03_13_no_update_without_change(node):
    nd = node("inkernel")
    k = nd.kubelet
    n = len(k.updates(DCAP))
    nd.dev.mknod("tty9", 4, 9)
    nd.dev.mkfile("sgx_enclave.bak")
    nd.dev.remove("tty9")
    nd.dev.remove("sgx_enclave")
    nd.wait_devices(DCAP, 0, 110, timeout=T(AT_ONCE))
    ups = k.updates(DCAP)[n:]
    assert len(ups) == 1, "want one update for one change, got %d: %s" % (
        len(ups), [sdp.summary(d) for _, d in ups])


# 03_14: --max-pods 10000: the first answer comes quickly with every slot
def test_03_14_max_pods_10000(node):
    nd = node("dcap_ias", ["--max-pods", "10000"], wait=False)
    nd.wait_registered(timeout=T(10))
    for r in sdp.RESOURCES:
        nd.wait_devices(r, 10000, 10000, timeout=T(5))
    first = {r: nd.kubelet.updates(r)[0] for r in sdp.RESOURCES}
    for r, (t, devs) in first.items():
        assert len(devs) == 10000, "%s: first answer has %d devices" % (r, len(devs))
    # Changes reach big lists at once, too.
    nd.dev.remove("isgx")
    nd.wait_devices(IAS, 0, 10000, timeout=T(2 * AT_ONCE))


# 03_15: every open ListAndWatch stream of a resource gets each change at once
def test_03_15_all_streams_get_changes(node):
    nd = node("inkernel")
    ws = [sdp.Watcher(nd.socket("dcap")) for _ in range(4)]
    try:
        for w in ws:
            w.wait(all_health(110), T(5), "the first list on an extra stream")
        nd.dev.remove("sgx_enclave")
        for w in ws:
            w.wait(all_health(110, "Unhealthy"), T(AT_ONCE), "Unhealthy on every stream")
        nd.wait_devices(DCAP, 0, 110, timeout=T(AT_ONCE))
        nd.dev.mknod("sgx_enclave", *sdp.ENCLAVE)
        for w in ws:
            w.wait(all_health(110), T(AT_ONCE), "Healthy again on every stream")
    finally:
        for w in ws:
            w.close()
    # Our extra streams ending is no reason to register again (checked on teardown) and the
    # kubelet's stream keeps working.
    nd.dev.remove("sgx_enclave")
    nd.wait_devices(DCAP, 0, 110, timeout=T(AT_ONCE))


# 03_16: a stream opened while a class is Unhealthy starts with the Unhealthy list
def test_03_16_new_stream_sees_current_state(node):
    nd = node("ias")
    nd.dev.remove("isgx")
    nd.wait_devices(IAS, 0, 110, timeout=T(AT_ONCE))
    w = sdp.Watcher(nd.socket("ias"))
    try:
        w.wait(all_health(110, "Unhealthy"), T(5), "an Unhealthy first list")
        assert len(w.updates) == 1
    finally:
        w.close()


# 03_17: a provisioning device alone is no SGX; the enclave joining it makes dcap Healthy
def test_03_17_provision_then_enclave(node):
    nd = node("provision_only")
    assert nd.kubelet.capacity(DCAP) == 0 and nd.kubelet.capacity(SGX) == 0
    nd.dev.mknod("sgx_enclave", *sdp.ENCLAVE)
    nd.wait_devices(DCAP, 110, 110, timeout=T(AT_ONCE))
    nd.wait_devices(SGX, 110, 110, timeout=T(AT_ONCE))


# 03_18: --provision-resource: the provision slots follow the provisioning device
def test_03_18_provision_resource_health(node):
    prov = res("provision")
    nd = node("inkernel", ["--provision-resource"], resources=sdp.RESOURCES + [prov])
    nd.wait_devices(prov, 110, 110)
    nd.dev.remove("sgx_provision")
    nd.wait_devices(prov, 0, 110, timeout=T(AT_ONCE))
    assert nd.kubelet.allocatable(DCAP) == 110, "dcap needs the enclave, not the provisioning"
    with pytest.raises(sdp.grpc.RpcError) as e:
        nd.kubelet.allocate(prov, sorted(nd.kubelet.devices(prov))[:1])
    assert e.value.code() == sdp.grpc.StatusCode.FAILED_PRECONDITION, e.value
    nd.dev.mknod("sgx_provision", *sdp.PROVISION)
    nd.wait_devices(prov, 110, 110, timeout=T(AT_ONCE))


# 03_19: a device flapping fast ends in the right state on the stream
@pytest.mark.parametrize("end_present", [True, False], ids=["ends-present", "ends-absent"])
def test_03_19_flapping_device(node, end_present):
    nd = node("inkernel")
    for _ in range(25):
        nd.dev.remove("sgx_enclave")
        nd.dev.mknod("sgx_enclave", *sdp.ENCLAVE)
    if not end_present:
        nd.dev.remove("sgx_enclave")
    want = 110 if end_present else 0
    nd.wait_devices(DCAP, want, 110, timeout=T(2 * AT_ONCE))
    # The daemon is not behind: after one more change has come through (inotify keeps order),
    # a new stream's first list is the current state.
    nd.dev.mknod("isgx", *sdp.ISGX)
    nd.wait_devices(IAS, 110, 110, timeout=T(AT_ONCE))
    w = sdp.Watcher(nd.socket("dcap"))
    try:
        w.wait(lambda d: True, T(5), "the first list")
        assert sdp.healthy(w.updates[0][1]) == want, sdp.summary(w.updates[0][1])
    finally:
        w.close()
    nd.wait_devices(DCAP, want, 110, timeout=T(AT_ONCE))


# 03_20: the dev root itself removed and created again (a remount): seen as gone, then back
def test_03_20_dev_root_recreated(node):
    nd = node("inkernel")
    nd.dev.remove("")  # the whole dev root
    nd.wait_devices(DCAP, 0, 110, timeout=T(AT_ONCE))
    os.makedirs(nd.dev.root)
    nd.dev.apply("inkernel")
    nd.wait_devices(DCAP, 110, 110, timeout=T(2 * AT_ONCE))
    nd.dev.remove("sgx_enclave")
    nd.wait_devices(DCAP, 0, 110, timeout=T(AT_ONCE))
