"""test_05_options.py - the other DevicePlugin calls (issue #2 section 3):
GetDevicePluginOptions, GetPreferredAllocation (must_include, allocation_size, available) and
PreStartContainer."""

import pytest

import sdp
from sdp import T, res

SGX, DCAP, IAS = (res(k) for k in sdp.KINDS)
grpc = sdp.grpc


def ids_of(nd, r, n):
    return sorted(nd.kubelet.devices(r), key=lambda i: (len(i), i))[:n]


# 05_01: every resource's GetDevicePluginOptions advertises neither PreStart nor Preferred
@pytest.mark.parametrize("kind", ["sgx", "dcap", "ias", "provision"])
def test_05_01_options(node, kind):
    nd = node("dcap_ias", ["--provision-resource"], resources=sdp.RESOURCES + [res("provision")])
    ch = sdp.channel(nd.socket(kind))
    try:
        o = sdp.pb_grpc.DevicePluginStub(ch).GetDevicePluginOptions(sdp.pb.Empty(), timeout=T(5))
    finally:
        ch.close()
    assert o.pre_start_required is False and o.get_preferred_allocation_available is False
    assert o.SerializeToString() == b""


# 05_02: GetPreferredAllocation returns allocation_size IDs from available, must_include first
def test_05_02_preferred_must_include(node):
    nd = node("inkernel")
    avail = ids_of(nd, DCAP, 6)
    resp = nd.kubelet.preferred(DCAP, avail, must_include=[avail[4]], size=3)
    assert len(resp.container_responses) == 1
    got = list(resp.container_responses[0].deviceIDs)
    assert len(got) == 3 and len(set(got)) == 3, got
    assert avail[4] in got
    assert set(got) <= set(avail)


# 05_03: must_include as large as allocation_size is the answer
def test_05_03_preferred_only_must_include(node):
    nd = node("inkernel")
    avail = ids_of(nd, SGX, 5)
    resp = nd.kubelet.preferred(SGX, avail, must_include=[avail[1], avail[3]], size=2)
    assert sorted(resp.container_responses[0].deviceIDs) == sorted([avail[1], avail[3]])


# 05_04: allocation_size equal to the available count returns them all
def test_05_04_preferred_all_available(node):
    nd = node("ias")
    avail = ids_of(nd, IAS, 4)
    resp = nd.kubelet.preferred(IAS, avail, size=4)
    assert sorted(resp.container_responses[0].deviceIDs) == sorted(avail)


# 05_05: only IDs from available are chosen, even when others exist
def test_05_05_preferred_only_available(node):
    nd = node("inkernel")
    all_ids = ids_of(nd, DCAP, 110)
    avail = all_ids[50:53]
    resp = nd.kubelet.preferred(DCAP, avail, size=2)
    got = list(resp.container_responses[0].deviceIDs)
    assert len(got) == 2 and set(got) <= set(avail), got


# 05_06: one answer per container request, in order
def test_05_06_preferred_several_containers(node):
    nd = node("inkernel")
    avail = ids_of(nd, DCAP, 8)
    req = sdp.pb.PreferredAllocationRequest()
    for i, size in ((0, 1), (2, 3), (5, 2)):
        c = req.container_requests.add()
        c.available_deviceIDs.extend(avail[i:])
        c.must_include_deviceIDs.append(avail[i])
        c.allocation_size = size
    resp = nd.kubelet.stub(DCAP).GetPreferredAllocation(req, timeout=T(5))
    assert [len(c.deviceIDs) for c in resp.container_responses] == [1, 3, 2]
    for c, (i, _) in zip(resp.container_responses, ((0, 1), (2, 3), (5, 2))):
        assert avail[i] in c.deviceIDs
        assert set(c.deviceIDs) <= set(avail[i:])


# 05_07: an allocation_size that cannot be met (more than available, negative, below
# must_include) is INVALID_ARGUMENT, and the daemon keeps serving
@pytest.mark.parametrize("size,must", [(4, 0), (-1, 0), (1, 2)])
def test_05_07_preferred_bad_size(node, size, must):
    nd = node("inkernel")
    avail = ids_of(nd, DCAP, 3)
    with pytest.raises(grpc.RpcError) as e:
        nd.kubelet.preferred(DCAP, avail, must_include=avail[:must], size=size)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, e.value
    assert e.value.details()
    assert len(nd.kubelet.preferred(DCAP, avail, size=1).container_responses[0].deviceIDs) == 1


# 05_08: PreStartContainer answers an empty response
@pytest.mark.parametrize("kind", sdp.KINDS)
def test_05_08_prestart(node, kind):
    nd = node("dcap_ias")
    r = res(kind)
    resp = nd.kubelet.prestart(r, ids_of(nd, r, 2))
    assert resp.SerializeToString() == b""
