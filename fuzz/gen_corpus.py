#!/usr/bin/python3
"""gen_corpus.py - writes the seed corpus of the fuzz targets into fuzz/corpus/<target>/.

Run it with Debian's python (/usr/bin/python3: python3-grpcio, python3-grpc-tools,
python3-protobuf, python3-h2) after changing proto/api.proto or a target's input format:

    /usr/bin/python3 fuzz/gen_corpus.py

Seeds are real requests:
  fuzz_h2_server  the bytes grpcio's client (grpc-core, as the kubelet's grpc-go speaks the same
                  protocol) sends for each v1beta1 call, captured on a unix socket, and requests
                  crafted with python3-h2 for what grpcio never sends (oversized prefix, bad
                  content-type, compression, two messages, deadlines, RST_STREAM, HTTP/1.1...)
  fuzz_h2_client  the bytes grpcio's server sends answering a Register (OK, an error status,
                  an unknown method), captured, and answers crafted with python3-h2 (trailers-only,
                  oversized prefix, two messages, bad :status or grpc-status, RST_STREAM, GOAWAY)
  fuzz_handlers   AllocateRequest / PreferredAllocationRequest / PreStartContainerRequest bytes
                  encoded by python3-protobuf, behind the 2-byte header fuzz_handlers.c reads
  fuzz_deframer   framed message streams behind fuzz_deframer.c's header
  fuzz_frame_misc grpc-timeout values, grpc-message strings, content-types
  fuzz_cli        argv sets, NUL-separated
Files are named by content (sha1), and the directories are replaced as a whole, so a seed no longer
generated goes away. Two runs give the same files; the grpcio captures change with grpc-core's
version (its user-agent, its SETTINGS).
"""

import hashlib
import importlib
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

import h2.config
import h2.connection
import h2.settings

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
PROTO = os.path.join(REPO, "proto", "api.proto")
CORPUS = os.path.join(HERE, "corpus")

SVC = "/v1beta1.DevicePlugin/"
KUBELET_OLD_AUTHORITY = "/var/lib/kubelet/device-plugins/kubelet.sock"


def load_api(tmp):
    """api_pb2 / api_pb2_grpc generated from proto/api.proto into |tmp|."""
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", "-I" + os.path.dirname(PROTO),
                    "--python_out=" + tmp, "--grpc_python_out=" + tmp, PROTO], check=True)
    sys.path.insert(0, tmp)
    return importlib.import_module("api_pb2"), importlib.import_module("api_pb2_grpc")


def write(target, data, seen):
    d = os.path.join(seen["_out"], target)
    os.makedirs(d, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()
    seen.setdefault(target, set()).add(name)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def grpc_frame(msg, compressed=False, length=None):
    return struct.pack(">BI", 1 if compressed else 0, len(msg) if length is None else length) + msg


# fuzz_h2_server.c's harness frames (type 0xf0, never written to the server): flags say what to do.
FLIP_NODE, FLIP_READING, FLIP_GLUE, RELISTEN, HANG_UP = 0x01, 0x02, 0x04, 0x08, 0x10


def harness(flags):
    return b"\0\0\0\xf0" + bytes([flags]) + b"\0\0\0\0"  # length 0, type, flags, stream 0


# ---- HTTP/2 bytes captured from grpcio ----

def capture(path, call):
    """Runs |call| (a function of a grpc channel) against a recorder on unix socket |path| that
    answers with an empty SETTINGS frame and a SETTINGS ACK, and returns every byte the client
    sent until it stayed quiet for 0.3 s."""
    import grpc
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    if os.path.exists(path):
        os.unlink(path)
    srv.bind(path)
    srv.listen(1)
    got = bytearray()
    done = threading.Event()

    def serve():
        conn, _ = srv.accept()
        conn.sendall(b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")  # SETTINGS, empty
        conn.settimeout(0.3)
        acked = False
        while True:
            try:
                d = conn.recv(65536)
            except socket.timeout:
                break
            if not d:
                break
            got.extend(d)
            if not acked and len(got) >= 24 + 9:
                conn.sendall(b"\x00\x00\x00\x04\x01\x00\x00\x00\x00")  # SETTINGS ACK
                acked = True
        done.set()
        conn.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    ch = grpc.insecure_channel("unix:" + path, options=[("grpc.enable_retries", 0)])
    fut = call(ch)
    done.wait(5)
    try:
        fut.cancel()
    except Exception:
        pass
    ch.close()
    srv.close()
    os.unlink(path)
    return bytes(got)


def h2_seeds(pb, pb_grpc, tmp, seen):
    sock = os.path.join(tmp, "rec.sock")
    stub = lambda ch: pb_grpc.DevicePluginStub(ch)  # noqa: E731
    alloc = pb.AllocateRequest(container_requests=[
        pb.ContainerAllocateRequest(devices_ids=["dcap-0"])])
    alloc2 = pb.AllocateRequest(container_requests=[
        pb.ContainerAllocateRequest(devices_ids=["dcap-1", "dcap-109"]),
        pb.ContainerAllocateRequest(devices_ids=["dcap-7"])])
    pref = pb.PreferredAllocationRequest(container_requests=[
        pb.ContainerPreferredAllocationRequest(available_deviceIDs=["dcap-3", "dcap-4", "dcap-5"],
                                               must_include_deviceIDs=["dcap-4"],
                                               allocation_size=2)])
    pre = pb.PreStartContainerRequest(devices_ids=["dcap-0"])

    captured = [
        lambda ch: stub(ch).GetDevicePluginOptions.future(pb.Empty()),
        lambda ch: stub(ch).Allocate.future(alloc),
        lambda ch: stub(ch).Allocate.future(alloc2),
        lambda ch: stub(ch).GetPreferredAllocation.future(pref),
        lambda ch: stub(ch).PreStartContainer.future(pre),
        lambda ch: stub(ch).ListAndWatch(pb.Empty()),
    ]
    for call in captured:
        data = capture(sock, call)
        if len(data) > 24:
            write("fuzz_h2_server", data, seen)
        else:
            print("warning: nothing captured from grpcio", file=sys.stderr)

    # Crafted with python3-h2: what grpcio never sends.
    def conn():
        c = h2.connection.H2Connection(h2.config.H2Configuration(
            client_side=True, header_encoding="utf-8", validate_outbound_headers=False,
            normalize_outbound_headers=False, validate_inbound_headers=False))
        c.initiate_connection()
        return c

    def req(c, method, body=None, ctype="application/grpc", authority="localhost", extra=(),
            end=True, timeout=None):
        sid = c.get_next_available_stream_id()
        hs = [(":method", "POST"), (":scheme", "http"), (":path", SVC + method),
              (":authority", authority)]
        if ctype is not None:
            hs.append(("content-type", ctype))
        hs.append(("te", "trailers"))
        if timeout:
            hs.append(("grpc-timeout", timeout))
        hs += list(extra)
        c.send_headers(sid, hs, end_stream=body is None and end)
        if body is not None:
            n = c.max_outbound_frame_size
            parts = [body[i:i + n] for i in range(0, len(body), n)] or [b""]
            for i, part in enumerate(parts):
                c.send_data(sid, part, end_stream=end and i == len(parts) - 1)
        return sid

    empty = grpc_frame(b"")
    a = grpc_frame(alloc.SerializeToString())
    cases = []

    # Several calls on one connection, as a kubelet makes them, with a PING between.
    c = conn()
    req(c, "GetDevicePluginOptions", empty, authority=KUBELET_OLD_AUTHORITY)
    ls = req(c, "ListAndWatch", empty)
    c.ping(b"12345678")
    req(c, "Allocate", a)
    req(c, "GetPreferredAllocation", grpc_frame(pref.SerializeToString()))
    req(c, "PreStartContainer", grpc_frame(pre.SerializeToString()))
    c.increment_flow_control_window(1 << 20)
    c.reset_stream(ls)
    cases.append(c.data_to_send())

    # ListAndWatch while the device vanishes and returns, an Allocate while it is gone, GOAWAY.
    c = conn()
    req(c, "ListAndWatch", empty)
    out = c.data_to_send() + harness(FLIP_NODE)
    req(c, "Allocate", a)
    out += c.data_to_send() + harness(FLIP_NODE)
    c.close_connection()
    cases.append(out + c.data_to_send())

    # Three streams and a client that stops reading while updates pile up, then reads again.
    c = conn()
    c.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0x7fffffff})
    c.increment_flow_control_window(0x7fffffff - 65535)
    for _ in range(3):
        req(c, "ListAndWatch", empty)
    cases.append(c.data_to_send() + harness(FLIP_READING) + harness(FLIP_NODE) * 8 +
                 harness(FLIP_READING))

    # The same, but the client hangs up while the server still has answers to send; then a new
    # connection asks again.
    c = conn()
    req(c, "ListAndWatch", empty)
    req(c, "ListAndWatch", empty)
    out = c.data_to_send() + harness(FLIP_READING) + harness(FLIP_NODE) * 6
    out += harness(HANG_UP | FLIP_READING)
    c = conn()
    req(c, "ListAndWatch", empty)
    cases.append(out + c.data_to_send())

    # HEADERS and DATA read at once (glue), with deadlines: a stream whose deadline expires after
    # its first answer, a request whose deadline expires before its message is complete.
    c = conn()
    out = c.data_to_send() + harness(FLIP_GLUE)
    req(c, "ListAndWatch", empty, timeout="1m")
    out += c.data_to_send() + harness(FLIP_GLUE)
    req(c, "Allocate", a[:4], end=False, timeout="0n")
    req(c, "Allocate", a, timeout="99999999H")
    cases.append(out + c.data_to_send())

    # A burst of requests read at once, then the service relistens (a kubelet restart) and a new
    # connection calls again.
    c = conn()
    out = c.data_to_send() + harness(FLIP_GLUE)
    req(c, "ListAndWatch", empty)
    req(c, "Allocate", a)
    req(c, "GetDevicePluginOptions", empty)
    out += c.data_to_send() + harness(FLIP_GLUE) + harness(RELISTEN)
    c = conn()
    req(c, "Allocate", a)
    cases.append(out + c.data_to_send())

    # A 24 KiB Allocate read at once: the server's reads come in full 16 KiB chunks.
    c = conn()
    out = c.data_to_send() + harness(FLIP_GLUE)
    big = pb.AllocateRequest(container_requests=[
        pb.ContainerAllocateRequest(devices_ids=["dcap-%d" % (i % 110) for i in range(3000)])])
    req(c, "Allocate", grpc_frame(big.SerializeToString()))
    cases.append(out + c.data_to_send() + harness(FLIP_GLUE))

    # A message over the 4 MiB limit announced by its prefix alone; then a good call.
    c = conn()
    req(c, "Allocate", grpc_frame(b"", length=5 * 1024 * 1024), end=False)
    req(c, "Allocate", a)
    cases.append(c.data_to_send())

    # A request split over DATA frames, the prefix itself cut in two.
    c = conn()
    sid = req(c, "Allocate", a[:3], end=False)
    c.send_data(sid, a[3:9])
    c.send_data(sid, a[9:], end_stream=True)
    cases.append(c.data_to_send())

    # Bad requests: content-type, compression, encoding, two messages, no message, cut message,
    # unknown method, malformed timeout.
    c = conn()
    req(c, "Allocate", a, ctype="application/json")
    req(c, "Allocate", grpc_frame(alloc.SerializeToString(), compressed=True))
    req(c, "Allocate", a, extra=[("grpc-encoding", "gzip")])
    req(c, "Allocate", a + a)
    req(c, "Allocate", None)
    req(c, "Allocate", a[:-2])
    req(c, "Frobnicate", empty)
    req(c, "Allocate", a, timeout="1x")
    cases.append(c.data_to_send())

    c = conn()
    sid = c.get_next_available_stream_id()
    c.send_headers(sid, [(":method", "GET"), (":scheme", "http"), (":path", SVC + "Allocate"),
                         (":authority", "localhost"), ("content-type", "application/grpc")],
                   end_stream=True)
    cases.append(c.data_to_send())

    # Allocate of IDs this resource does not have, and an undecodable message.
    c = conn()
    bad = pb.AllocateRequest(container_requests=[
        pb.ContainerAllocateRequest(devices_ids=["sgx-0", "dcap-110", "dcap-01"])])
    req(c, "Allocate", grpc_frame(bad.SerializeToString()))
    req(c, "Allocate", grpc_frame(b"\x0a\xff\xff\xff\xff\x0f"))
    cases.append(c.data_to_send())

    # Paths holding a NUL (found by fuzzing: test_grpc_server_fuzz_path_with_nul).
    c = conn()
    for path in ("\0", "\0/v1beta1.DevicePlugin/Allocate", "/v1beta1.DevicePlugin/Allocate\0"):
        sid = c.get_next_available_stream_id()
        c.send_headers(sid, [(":method", "POST"), (":scheme", "http"), (":path", path),
                             (":authority", "localhost"), ("content-type", "application/grpc")])
        c.send_data(sid, a, end_stream=True)
    cases.append(c.data_to_send())

    # The client ends the request with RST_STREAM before the message is complete.
    c = conn()
    sid = req(c, "Allocate", a[:7], end=False)
    c.reset_stream(sid)
    cases.append(c.data_to_send())

    for data in cases:
        write("fuzz_h2_server", data, seen)

    # Not HTTP/2 at all.
    write("fuzz_h2_server", b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n", seen)
    write("fuzz_h2_server", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", seen)


# ---- answers to our Register client ----

REGISTER = "/v1beta1.Registration/Register"


def h2_client_request(pb, path=REGISTER):
    """The bytes of a client sending one RegisterRequest, as grpc_client.c does."""
    c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True,
                                                             header_encoding="utf-8"))
    c.initiate_connection()
    body = grpc_frame(pb.RegisterRequest(version="v1beta1", endpoint="sgxdevplugin-dcap.sock",
                                         resource_name="sgx.k8s.io/dcap").SerializeToString())
    c.send_headers(1, [(":method", "POST"), (":scheme", "http"), (":path", path),
                       (":authority", "localhost"), ("content-type", "application/grpc"),
                       ("te", "trailers")])
    c.send_data(1, body, end_stream=True)
    return c.data_to_send()


def capture_answer(pb, tmp, behaviour, path=REGISTER):
    """What grpcio's server sends back to one Register on a unix socket, until it is quiet for
    0.3 s. |behaviour| is "ok" or "error"."""
    import grpc
    from concurrent import futures

    def register(request, context):
        if behaviour == "error":
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          "unsupported version \"v0\": 100% wrong\nretry")
        return pb.Empty()

    sock_path = os.path.join(tmp, "kubelet.sock")
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
        "v1beta1.Registration", {"Register": grpc.unary_unary_rpc_method_handler(
            register, request_deserializer=pb.RegisterRequest.FromString,
            response_serializer=pb.Empty.SerializeToString)}),))
    server.add_insecure_port("unix:" + sock_path)
    server.start()
    try:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(sock_path)
        s.sendall(h2_client_request(pb, path))
        s.settimeout(0.3)
        got = bytearray()
        while True:
            try:
                d = s.recv(65536)
            except socket.timeout:
                break
            if not d:
                break
            got.extend(d)
        s.close()
        return bytes(got)
    finally:
        server.stop(0)


def client_seeds(pb, tmp, seen):
    for behaviour, path in (("ok", REGISTER), ("error", REGISTER),
                            ("ok", "/v1beta1.Registration/Nope")):
        data = capture_answer(pb, tmp, behaviour, path)
        if data:
            write("fuzz_h2_client", data, seen)
        else:
            print("warning: nothing captured from grpcio's server", file=sys.stderr)

    empty = grpc_frame(pb.Empty().SerializeToString())
    ok_headers = [(":status", "200"), ("content-type", "application/grpc")]

    def server():
        srv = h2.connection.H2Connection(h2.config.H2Configuration(
            client_side=False, header_encoding="utf-8", validate_outbound_headers=False,
            normalize_outbound_headers=False, validate_inbound_headers=False))
        srv.initiate_connection()
        srv.receive_data(h2_client_request(pb))
        return srv

    def answer(headers=ok_headers, body=None, trailers=(("grpc-status", "0"),), split=None):
        srv = server()
        out = srv.data_to_send()
        srv.send_headers(1, list(headers), end_stream=body is None and not trailers)
        if body is not None:
            parts = [body[i:i + split] for i in range(0, len(body), split)] if split else [body]
            for part in parts:
                srv.send_data(1, part)
        if trailers:
            srv.send_headers(1, list(trailers), end_stream=True)
        return out + srv.data_to_send()

    cases = [
        answer(body=empty),
        answer(body=empty, split=2),
        answer(body=empty, trailers=(("grpc-status", "0"), ("grpc-message", "fine%20thanks"))),
        # Trailers-only error, with a percent-encoded message (some of it broken).
        answer(headers=ok_headers + [("grpc-status", "3"),
                                     ("grpc-message", "bad%20version%zz%4")], trailers=()),
        answer(body=grpc_frame(b"", length=5 * 1024 * 1024), trailers=()),
        answer(body=empty + empty),
        answer(body=grpc_frame(b"\x00", compressed=True)),
        answer(body=empty, trailers=()),  # no grpc-status, stream not ended
        answer(headers=[(":status", "503")], trailers=(("grpc-status", "14"),)),
        answer(body=empty, trailers=(("grpc-status", "x1"),)),
        answer(body=empty, trailers=(("grpc-status", "99999"),)),
        answer(body=empty[:3], trailers=(("grpc-status", "0"),)),
    ]
    # RST_STREAM instead of an answer; GOAWAY; an answer and then the client cancels; a server
    # that stops reading; a hang-up in the middle of the answer.
    srv = server()
    srv.reset_stream(1, error_code=7)
    cases.append(srv.data_to_send())
    srv = server()
    srv.close_connection(error_code=2)
    cases.append(srv.data_to_send())
    srv = server()
    srv.send_headers(1, ok_headers)
    cases.append(srv.data_to_send() + harness(0x08) + harness(0x02))
    srv = server()
    srv.send_headers(1, ok_headers)
    srv.send_data(1, empty[:2])
    cases.append(srv.data_to_send() + harness(0x01))
    srv = server()
    out = srv.data_to_send() + harness(FLIP_GLUE)
    srv.send_headers(1, ok_headers)
    srv.send_data(1, empty)
    srv.send_headers(1, [("grpc-status", "0")], end_stream=True)
    cases.append(out + srv.data_to_send() + harness(FLIP_GLUE))
    for data in cases:
        write("fuzz_h2_client", data, seen)


# ---- handlers ----

def handler_seeds(pb, seen):
    # Byte 0: kind (bits 0-1: sgx dcap ias provision), handler (bits 2-3: allocate, preferred,
    # prestart); byte 1: layout (bits 0-2), max_pods index (bits 3-5: 0 1 2 10 11 110 1000 100000),
    # provision (bit 6), aesmd (bit 7).
    kinds = ["sgx", "dcap", "ias", "provision"]
    pods110 = 5 << 3
    for k, kind in enumerate(kinds):
        ids = ["%s-%d" % (kind, i) for i in (0, 1, 109)]
        alloc = pb.AllocateRequest(container_requests=[
            pb.ContainerAllocateRequest(devices_ids=ids[:1]),
            pb.ContainerAllocateRequest(devices_ids=ids[1:])]).SerializeToString()
        pref = pb.PreferredAllocationRequest(container_requests=[
            pb.ContainerPreferredAllocationRequest(available_deviceIDs=ids,
                                                   must_include_deviceIDs=ids[2:],
                                                   allocation_size=2)]).SerializeToString()
        pre = pb.PreStartContainerRequest(devices_ids=ids).SerializeToString()
        for layout in (1, 3, 4, 7):
            cfg = pods110 | layout | 0x40 | (0x80 if layout == 1 else 0)
            write("fuzz_handlers", bytes([k, cfg]) + alloc, seen)
        write("fuzz_handlers", bytes([k | 4, pods110 | 1 | 0x40]) + pref, seen)
        write("fuzz_handlers", bytes([k | 8, pods110 | 1]) + pre, seen)
    bad = pb.AllocateRequest(container_requests=[
        pb.ContainerAllocateRequest(devices_ids=["dcap-007", "dcap-4294967296", "dcap--1"])])
    write("fuzz_handlers", bytes([1, pods110 | 1]) + bad.SerializeToString(), seen)
    write("fuzz_handlers", bytes([1 | 0x30, pods110]) + bad.SerializeToString(), seen)
    write("fuzz_handlers", bytes([1, pods110 | 1]), seen)  # no container requests
    big = pb.PreferredAllocationRequest(container_requests=[
        pb.ContainerPreferredAllocationRequest(
            available_deviceIDs=["dcap-%d" % i for i in range(0, 100000, 997)],
            must_include_deviceIDs=["dcap-99999", "dcap-99999"], allocation_size=50)])
    write("fuzz_handlers", bytes([1 | 4, (7 << 3) | 1]) + big.SerializeToString(), seen)


# ---- deframer, misc, cli ----

def deframer_seeds(seen):
    # Byte 0: limit index (low nibble) | failing message (high nibble); byte 1: k chunk sizes.
    msgs = grpc_frame(b"hello") + grpc_frame(b"") + grpc_frame(b"x" * 300, compressed=True)
    write("fuzz_deframer", bytes([14, 0]) + msgs, seen)
    write("fuzz_deframer", bytes([14, 3, 1, 7, 0]) + msgs, seen)
    write("fuzz_deframer", bytes([0x2e, 2, 2, 255]) + msgs, seen)
    write("fuzz_deframer", bytes([7, 1, 4]) + msgs + grpc_frame(b"", length=258), seen)
    write("fuzz_deframer", bytes([14, 0]) + msgs[:-10], seen)


def misc_seeds(seen):
    for t in (b"1H", b"100m", b"99999999S", b"5u", b"0n", b"1000000n", b"12x", b"123456789m"):
        write("fuzz_frame_misc", b"\x00" + t, seen)
    write("fuzz_frame_misc", b"\x01" + struct.pack("<Q", 1500000), seen)
    write("fuzz_frame_misc", b"\x01" + struct.pack("<Q", 2**64 - 1), seen)
    write("fuzz_frame_misc", b"\x02" + "unknown device ID \"dcap-9\"\n%\x7f".encode(), seen)
    write("fuzz_frame_misc", b"\x03" + b"a%20b%zz%4%41%", seen)
    for ct in (b"application/grpc", b"application/grpc+proto", b"Application/GRPC;charset=utf-8",
               b"application/grpc+json", b"application/grpcx"):
        write("fuzz_frame_misc", b"\x04" + ct, seen)
    write("fuzz_frame_misc", b"\x05" + bytes([3, 200, 150, 2, 201, 10]) + b"y" * 10, seen)
    write("fuzz_frame_misc", b"\x06" + struct.pack("<i", 13), seen)


def cli_seeds(seen):
    sets = [
        ["sgxdevplugin"],
        ["sgxdevplugin", "--kubelet-dir", "/var/lib/kubelet/device-plugins", "--dev-root", "/dev",
         "--max-pods", "110", "--resource-domain", "sgx.k8s.io"],
        ["sgxdevplugin", "--max-pods=100000", "--no-provision", "--provision-resource",
         "--aesmd-dir", "/var/run/aesmd", "--log-format", "json", "--log-level=debug"],
        ["sgxdevplugin", "probe", "--dev-root", "/tmp/dev", "--json"],
        ["sgxdevplugin", "--help"],
        ["sgxdevplugin", "--version"],
        ["sgxdevplugin", "--max-pods", "0"],
        ["sgxdevplugin", "--resource-domain", "Sgx..k8s.io-"],
        ["sgxdevplugin", "--", "probe"],
        ["sgxdevplugin", "--kubelet-dir", "/" + "d" * 120],
    ]
    for s in sets:
        write("fuzz_cli", b"\0".join(a.encode() for a in s), seen)


def main():
    targets = ("fuzz_h2_server", "fuzz_h2_client", "fuzz_handlers", "fuzz_deframer",
               "fuzz_frame_misc", "fuzz_cli")
    tmp = tempfile.mkdtemp(prefix="fuzz-gen-")
    # Written aside first; the corpus is replaced only when every seed was made.
    seen = {"_out": os.path.join(tmp, "corpus")}
    try:
        pb, pb_grpc = load_api(tmp)
        h2_seeds(pb, pb_grpc, tmp, seen)
        client_seeds(pb, tmp, seen)
        handler_seeds(pb, seen)
        deframer_seeds(seen)
        misc_seeds(seen)
        cli_seeds(seen)
        for target in targets:
            shutil.rmtree(os.path.join(CORPUS, target), ignore_errors=True)
            shutil.copytree(os.path.join(seen["_out"], target), os.path.join(CORPUS, target))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for target in targets:
        print("%s: %d seeds" % (target, len(seen[target])))


if __name__ == "__main__":
    main()
