"""test_06_grpc.py - our gRPC layer on the wire (issue #2 sections 4 and 5): SETTINGS at accept,
framing and trailers, and each bad input: HTTP/1.1 or garbage, a wrong content-type, grpc-encoding,
unknown methods, oversized and undecodable messages, the compressed flag, grpc-timeout. Raw
HTTP/2 comes from h2raw.py (python3-h2) where grpcio will not send the input."""

import os
import time

import pytest

import sdp
from sdp import T, res, specs
import h2.events
from h2raw import RawH2, grpc_frame, settings_frame_first, wait_closed

grpc = sdp.grpc
pb = sdp.pb
DP = "/v1beta1.DevicePlugin/"
OPTIONS, LAW, ALLOC = DP + "GetDevicePluginOptions", DP + "ListAndWatch", DP + "Allocate"
SGX, DCAP = res("sgx"), res("dcap")
MiB = 1024 * 1024


def alloc_body(ids=("dcap-0",)):
    req = pb.AllocateRequest()
    req.container_requests.add().devices_ids.extend(ids)
    return req.SerializeToString()


def raw_unary(path, method, body):
    """grpcio call with bytes in and bytes out."""
    ch = sdp.channel(path)
    try:
        return ch.unary_unary(method)(body, timeout=T(5))
    finally:
        ch.close()


@pytest.fixture
def served(node):
    """An in-kernel node plus a ListAndWatch stream of our own on the dcap socket, to show that
    a bad client affects nobody else."""
    nd = node("inkernel")
    w = sdp.Watcher(nd.socket("dcap"))
    w.wait(sdp.all_health(110), T(5), "the first list")
    yield nd
    try:
        assert w.ended is None, "a bystander's ListAndWatch stream ended: %s" % (w.ended,)
        nd.dev.remove("sgx_enclave")
        w.wait(sdp.all_health(110, "Unhealthy"), T(1), "a change to reach the bystander")
        nd.wait_devices(DCAP, 0, 110, timeout=T(1))
        ids = sorted(nd.kubelet.devices(DCAP))[:1]
        with pytest.raises(grpc.RpcError):
            nd.kubelet.allocate(DCAP, ids)
        nd.dev.mknod("sgx_enclave", *sdp.ENCLAVE)
        nd.wait_devices(DCAP, 110, 110, timeout=T(1))
        assert specs(nd.kubelet.allocate(DCAP, ids))
    finally:
        w.close()


# 06_01: the server sends its SETTINGS as soon as a connection is accepted (grpc-go waits for it)
def test_06_01_settings_at_accept(served):
    s = sdp.unix_connect(served.socket("sgx"))
    try:
        length, ftype, flags, stream = settings_frame_first(s, T(1))
        assert ftype == 0x4 and stream == 0 and not flags & 0x1, (ftype, flags, stream)
        assert length % 6 == 0
    finally:
        s.close()


# 06_02: a plain gRPC call on the wire: 200, application/grpc, one message, grpc-status 0
def test_06_02_unary_on_the_wire(served):
    c = RawH2(served.socket("dcap"))
    try:
        r = c.call(ALLOC, grpc_frame(alloc_body()))
        assert r.status == "200", r
        assert r.headers.get("content-type", "").startswith("application/grpc"), r
        assert r.grpc_status == 0, r
        msgs = r.messages()
        assert len(msgs) == 1 and msgs[0][0] == 0
        resp = pb.AllocateResponse.FromString(msgs[0][1])
        assert len(resp.container_responses[0].devices) == 4
    finally:
        c.close()


# 06_03: :authority may be the socket path (kubelets before 1.26) or anything else
@pytest.mark.parametrize("authority", ["/var/lib/kubelet/device-plugins/kubelet.sock",
                                       "localhost", "%2Fvar%2Flib%2Fkubelet", "unix"])
def test_06_03_any_authority(served, authority):
    c = RawH2(served.socket("sgx"))
    try:
        r = c.call(OPTIONS, grpc_frame(b""), authority=authority)
        assert r.status == "200" and r.grpc_status == 0, r
    finally:
        c.close()


# 06_04: application/grpc+proto is accepted as a content-type
def test_06_04_grpc_proto_content_type(served):
    c = RawH2(served.socket("sgx"))
    try:
        r = c.call(OPTIONS, grpc_frame(b""), content_type="application/grpc+proto")
        assert r.status == "200" and r.grpc_status == 0, r
    finally:
        c.close()


# 06_05: HTTP/1.1 on the socket: the connection is closed and logged, nobody else affected
def test_06_05_http1_closed(served):
    path = served.socket("dcap")
    m = served.daemon.mark()
    s = sdp.unix_connect(path)
    try:
        s.sendall(b"POST /v1beta1.DevicePlugin/Allocate HTTP/1.1\r\nHost: x\r\n"
                  b"Content-Type: application/grpc\r\nContent-Length: 0\r\n\r\n")
        wait_closed(s, T(2))
    finally:
        s.close()
    served.daemon.wait_log(lambda l: l.get("path") == path and "clos" in l.get("msg", "")
                           and l.get("level") in ("warn", "error"),
                           T(2), since=m, what="a warning about closing the connection")


# 06_06: garbage bytes on the socket: closed and logged, nobody else affected
@pytest.mark.parametrize("garbage", [b"\x00" * 64, os.urandom(300), b"PRI * HTTP/2.0\r\n\r\nXX\r\n"
                                     + b"\xff" * 40], ids=["zeros", "random", "bad-preface"])
def test_06_06_garbage_closed(served, garbage):
    path = served.socket("sgx")
    m = served.daemon.mark()
    s = sdp.unix_connect(path)
    try:
        s.sendall(garbage)
        wait_closed(s, T(2))
    finally:
        s.close()
    served.daemon.wait_log(lambda l: l.get("path") == path and "clos" in l.get("msg", "")
                           and l.get("level") in ("warn", "error"),
                           T(2), since=m, what="a warning about closing the connection")


# 06_07: garbage after a good preface (a broken HTTP/2 frame) closes only that connection
def test_06_07_broken_frame_after_preface(served):
    c = RawH2(served.socket("dcap"))
    try:
        c.wait(lambda: c.conn.remote_settings is not None, T(1), "SETTINGS")
        # A DATA frame on stream 0 is a connection error.
        c.sendall(b"\x00\x00\x04\x00\x00\x00\x00\x00\x00" + b"abcd")
        wait_closed(c.sock, T(2))
    finally:
        c.close()


# 06_08: a content-type other than application/grpc[+proto] is answered with HTTP 415
@pytest.mark.parametrize("ctype", ["text/plain", "application/json", "application/grpc+json",
                                   "application/grpc-web", None])
def test_06_08_wrong_content_type_415(served, ctype):
    c = RawH2(served.socket("dcap"))
    try:
        r = c.call(ALLOC, grpc_frame(alloc_body()), content_type=ctype)
        assert r.status == "415", r
        # The connection stays usable.
        r = c.call(OPTIONS, grpc_frame(b""))
        assert r.grpc_status == 0, r
    finally:
        c.close()


# 06_09: grpc-encoding other than identity is UNIMPLEMENTED at once, before any message
@pytest.mark.parametrize("enc", ["gzip", "deflate", "snappy"])
def test_06_09_grpc_encoding_unimplemented(served, enc):
    c = RawH2(served.socket("dcap"))
    try:
        sid = c.request(ALLOC, b"", end_stream=False, extra=[("grpc-encoding", enc)])
        r = c.response(sid, T(2))
        assert r.grpc_status == 12, r
    finally:
        c.close()


# 06_10: grpc-encoding identity is fine
def test_06_10_grpc_encoding_identity(served):
    c = RawH2(served.socket("dcap"))
    try:
        r = c.call(OPTIONS, grpc_frame(b""), extra=[("grpc-encoding", "identity")])
        assert r.grpc_status == 0, r
    finally:
        c.close()


# 06_11: the compressed flag without grpc-encoding is INTERNAL
def test_06_11_compressed_flag_internal(served):
    c = RawH2(served.socket("dcap"))
    try:
        r = c.call(ALLOC, grpc_frame(alloc_body(), compressed=True))
        assert r.grpc_status == 13, r
        assert c.call(OPTIONS, grpc_frame(b"")).grpc_status == 0
    finally:
        c.close()


# 06_12: an unknown method or service is UNIMPLEMENTED (grpcio and raw)
@pytest.mark.parametrize("method", [DP + "Nope", "/v1beta1.Registration/Register",
                                    "/v1beta1.Nope/Allocate", "/", "/v1beta1.DevicePlugin/"])
def test_06_12_unknown_method(served, method):
    if method.count("/") == 2 and method.split("/")[2]:
        with pytest.raises(grpc.RpcError) as e:
            raw_unary(served.socket("sgx"), method, b"")
        assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED, e.value
    c = RawH2(served.socket("sgx"))
    try:
        r = c.call(method, grpc_frame(b""))
        assert r.grpc_status == 12, r
    finally:
        c.close()


# 06_13: a message over 4 MiB is RESOURCE_EXHAUSTED as soon as its length prefix arrives
def test_06_13_oversized_prefix_at_once(served):
    c = RawH2(served.socket("dcap"))
    try:
        sid = c.request(ALLOC, b"", end_stream=False)
        c.send_data(sid, grpc_frame(b"\x0a" * 16384, length=4 * MiB + 1))
        r = c.response(sid, T(2))
        assert r.grpc_status == 8, r
        assert c.call(OPTIONS, grpc_frame(b"")).grpc_status == 0, "the connection died"
    finally:
        c.close()


# 06_14: a whole 5 MiB request through grpcio is RESOURCE_EXHAUSTED; exactly 4 MiB is not
def test_06_14_oversized_grpcio(served):
    big = alloc_body(["x" * (5 * MiB)])
    with pytest.raises(grpc.RpcError) as e:
        raw_unary(served.socket("dcap"), ALLOC, big)
    assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, e.value
    # An AllocateRequest of exactly 4 MiB is read and rejected for its unknown IDs instead.
    ids = ["nope-%07d" % i for i in range(4 * MiB // 14)]
    while len(alloc_body(ids)) > 4 * MiB:
        ids.pop()
    pad = 4 * MiB - len(alloc_body(ids + [""]))
    ids.append("p" * pad)
    while len(alloc_body(ids)) > 4 * MiB:
        ids[-1] = ids[-1][:-1]
    body = alloc_body(ids)
    assert len(body) == 4 * MiB, len(body)
    with pytest.raises(grpc.RpcError) as e:
        raw_unary(served.socket("dcap"), ALLOC, body)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, e.value


# 06_15: undecodable protobuf is INVALID_ARGUMENT
@pytest.mark.parametrize("method,body", [
    (ALLOC, b"\x0a\xff\xff\xff\xff\x0f"),
    (ALLOC, b"\xff\xff\xff"),
    (ALLOC, b"\x0a\x05\x0a\x03ab"),
    (DP + "GetPreferredAllocation", b"\x0a\x02\x18"),
    (DP + "PreStartContainer", b"\x0a\x10abc"),
], ids=["huge-length", "bad-tag", "truncated", "preferred", "prestart"])
def test_06_15_undecodable_protobuf(served, method, body):
    with pytest.raises(grpc.RpcError) as e:
        raw_unary(served.socket("dcap"), method, body)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, e.value


# 06_16: grpc-timeout on ListAndWatch (any unit): the server ends the stream, DEADLINE_EXCEEDED
@pytest.mark.parametrize("timeout,secs", [("300m", 0.3), ("300000u", 0.3), ("99999999n", 0.1)])
def test_06_16_grpc_timeout_listandwatch(served, timeout, secs):
    c = RawH2(served.socket("dcap"))
    try:
        t0 = time.monotonic()
        sid = c.request(LAW, grpc_frame(b""), timeout_header=timeout)
        r = c.response(sid, T(3))
        took = time.monotonic() - t0
        assert r.grpc_status == 4, r
        assert took >= secs * 0.8, "ended after %.3f s, before the deadline" % took
        assert len(r.messages()) >= 1, "no device list before the deadline"
    finally:
        c.close()


# 06_17: a grpcio ListAndWatch with a deadline ends with DEADLINE_EXCEEDED; the daemon goes on
def test_06_17_grpcio_deadline(served):
    ch = sdp.channel(served.socket("ias"))
    try:
        call = sdp.pb_grpc.DevicePluginStub(ch).ListAndWatch(pb.Empty(), timeout=0.3)
        with pytest.raises(grpc.RpcError) as e:
            for _ in call:
                pass
        assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    finally:
        ch.close()


# 06_18: a message split into 1-byte DATA frames (the prefix too) is put together
def test_06_18_split_message(served):
    c = RawH2(served.socket("dcap"))
    try:
        sid = c.request(ALLOC, b"", end_stream=False)
        c.send_data(sid, grpc_frame(alloc_body()), end_stream=True, chunk=1)
        r = c.response(sid)
        assert r.grpc_status == 0, r
        assert len(pb.AllocateResponse.FromString(r.messages()[0][1])
                   .container_responses[0].devices) == 4
    finally:
        c.close()


# 06_19: several calls multiplexed on one connection, streams and unary interleaved
def test_06_19_multiplexed(served):
    c = RawH2(served.socket("dcap"))
    try:
        s1 = c.request(LAW, grpc_frame(b""))
        s2 = c.request(ALLOC, b"", end_stream=False)
        s3 = c.request(LAW, grpc_frame(b""))
        s4 = c.request(OPTIONS, grpc_frame(b""))
        c.send_data(s2, grpc_frame(alloc_body()), end_stream=True)
        assert c.response(s4).grpc_status == 0
        assert c.response(s2).grpc_status == 0
        for sid in (s1, s3):
            st = c.streams[sid]
            c.wait(lambda: len(st.messages()) >= 1, T(2), "a list on stream %d" % sid)
            assert not st.ended
    finally:
        c.close()


# 06_20: a client resetting its ListAndWatch stream or vanishing mid-request harms nobody
def test_06_20_client_resets_and_vanishes(served):
    c = RawH2(served.socket("dcap"))
    sid = c.request(LAW, grpc_frame(b""))
    st = c.streams[sid]
    c.wait(lambda: len(st.messages()) >= 1, T(2), "the first list")
    c.conn.reset_stream(sid)
    c.flush()
    assert c.call(OPTIONS, grpc_frame(b"")).grpc_status == 0
    sid = c.request(ALLOC, b"", end_stream=False)
    c.send_data(sid, grpc_frame(alloc_body())[:7])
    c.close()
    s = sdp.unix_connect(served.socket("dcap"))
    s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
    s.close()
    assert served.daemon.alive()


# 06_21: HTTP/2 PING is answered (grpc-go clients may send keepalive pings)
def test_06_21_ping(served):
    c = RawH2(served.socket("sgx"))
    try:
        acks = []
        orig = c._event

        def spy(ev):
            if isinstance(ev, h2.events.PingAckReceived):
                acks.append(ev.ping_data)
            orig(ev)

        c._event = spy
        c.conn.ping(b"sgxping1")
        c.flush()
        c.wait(lambda: acks, T(1), "the PING ack")
        assert acks == [b"sgxping1"]
        assert c.call(OPTIONS, grpc_frame(b"")).grpc_status == 0
    finally:
        c.close()
