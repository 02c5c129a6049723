"""h2raw.py - a raw HTTP/2 client on a unix socket (Debian's python3-h2), for the gRPC inputs
grpcio will not send: wrong content-types, compression flags, oversized length prefixes, bare
grpc-timeout headers, requests left half-done."""

import select
import socket
import struct
import time

import h2.config
import h2.connection
import h2.events
import h2.exceptions

import sdp


def grpc_frame(msg, compressed=False, length=None):
    """The 5-byte gRPC message prefix plus |msg| (|length| overrides the declared length)."""
    return struct.pack(">BI", 1 if compressed else 0, len(msg) if length is None else length) + msg


def parse_frames(data):
    """gRPC messages in a response body: [(compressed flag, bytes)]."""
    out = []
    while len(data) >= 5:
        flag, n = struct.unpack(">BI", data[:5])
        out.append((flag, data[5:5 + n]))
        data = data[5 + n:]
    return out


class Response:
    def __init__(self):
        self.headers = {}  # response headers
        self.trailers = {}
        self.data = b""
        self.ended = False  # END_STREAM seen
        self.reset = None  # RST_STREAM error code
        self.events = []

    @property
    def status(self):
        return self.headers.get(":status")

    @property
    def grpc_status(self):
        """grpc-status from the trailers, or from a Trailers-Only response's headers."""
        v = self.trailers.get("grpc-status", self.headers.get("grpc-status"))
        return int(v) if v is not None else None

    @property
    def grpc_message(self):
        return self.trailers.get("grpc-message", self.headers.get("grpc-message", ""))

    def messages(self):
        return parse_frames(self.data)

    def __repr__(self):
        return "<Response headers=%s trailers=%s data=%d bytes reset=%s>" % (
            self.headers, self.trailers, len(self.data), self.reset)


class RawH2:
    """One HTTP/2 client connection to a unix socket path."""

    def __init__(self, path, settings=None, preface=True):
        self.sock = sdp.unix_connect(path)
        self.sock.setblocking(False)
        cfg = h2.config.H2Configuration(client_side=True, header_encoding="utf-8",
                                        validate_outbound_headers=False,
                                        normalize_outbound_headers=False,
                                        validate_inbound_headers=False)
        self.conn = h2.connection.H2Connection(cfg)
        self.streams = {}
        self.terminated = None  # ConnectionTerminated event
        self.closed = False  # EOF from the server
        self.auto_ack = True  # give back flow-control window for data we read
        if preface:
            self.conn.initiate_connection()
            if settings:
                self.conn.update_settings(settings)
            self.flush()

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sendall(data)

    def sendall(self, data):
        end = time.monotonic() + sdp.T(5)
        while data:
            try:
                n = self.sock.send(data)
                data = data[n:]
            except BlockingIOError:
                if time.monotonic() > end:
                    raise TimeoutError("server does not read")
                select.select([], [self.sock], [], 0.05)

    def request(self, path, body=b"", end_stream=True, content_type="application/grpc",
                authority="localhost", extra=(), timeout_header=None):
        """Sends a POST to |path|; |body| bytes as one DATA frame (none when empty). Returns the
        stream id."""
        sid = self.conn.get_next_available_stream_id()
        headers = [(":method", "POST"), (":scheme", "http"), (":path", path),
                   (":authority", authority)]
        if content_type is not None:
            headers.append(("content-type", content_type))
        headers.append(("te", "trailers"))
        if timeout_header:
            headers.append(("grpc-timeout", timeout_header))
        headers += list(extra)
        self.streams[sid] = Response()
        self.conn.send_headers(sid, headers, end_stream=end_stream and not body)
        self.flush()
        if body:
            self.send_data(sid, body, end_stream)
        return sid

    def send_data(self, sid, data, end_stream=False, chunk=None):
        chunk = chunk or self.conn.max_outbound_frame_size
        while data:
            part, data = data[:chunk], data[chunk:]
            while self.conn.local_flow_control_window(sid) < len(part):
                self.pump(sdp.T(5))
            self.conn.send_data(sid, part, end_stream=end_stream and not data)
            self.flush()

    def end(self, sid):
        self.conn.end_stream(sid)
        self.flush()

    def pump(self, timeout):
        """Reads what arrives within |timeout| (at most one read) and handles it. Returns False on
        EOF."""
        if self.closed:
            return False
        r, _, _ = select.select([self.sock], [], [], timeout)
        if not r:
            return True
        try:
            data = self.sock.recv(1 << 20)
        except (ConnectionResetError, BrokenPipeError):
            data = b""
        if not data:
            self.closed = True
            return False
        try:
            events = self.conn.receive_data(data)
        except h2.exceptions.ProtocolError as e:
            raise AssertionError("server broke HTTP/2: %s" % e)
        for ev in events:
            self._event(ev)
        try:
            self.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.closed = True
        return True

    def _event(self, ev):
        sid = getattr(ev, "stream_id", None)
        st = self.streams.get(sid) if sid else None
        if st is not None:
            st.events.append(ev)
        if isinstance(ev, h2.events.ResponseReceived):
            st.headers.update(dict(ev.headers))
        elif isinstance(ev, h2.events.TrailersReceived):
            st.trailers.update(dict(ev.headers))
        elif isinstance(ev, h2.events.DataReceived):
            st.data += ev.data
            if self.auto_ack and ev.flow_controlled_length:
                self.conn.acknowledge_received_data(ev.flow_controlled_length, sid)
        elif isinstance(ev, h2.events.StreamEnded):
            st.ended = True
        elif isinstance(ev, h2.events.StreamReset):
            if st is not None:
                st.reset = ev.error_code
        elif isinstance(ev, h2.events.ConnectionTerminated):
            self.terminated = ev

    def wait(self, predicate, timeout, what):
        end = time.monotonic() + timeout
        while not predicate():
            left = end - time.monotonic()
            if left <= 0:
                raise AssertionError("timed out after %.1f s waiting for %s" % (timeout, what))
            if not self.pump(min(left, 0.1)) and not predicate():
                raise AssertionError("connection closed while waiting for %s (goaway: %s)" % (
                    what, self.terminated))
        return True

    def response(self, sid, timeout=None):
        """Waits until stream |sid| ends (END_STREAM or RST_STREAM) and returns its Response."""
        st = self.streams[sid]
        self.wait(lambda: st.ended or st.reset is not None, timeout or sdp.T(5),
                  "the end of stream %d" % sid)
        return st

    def call(self, path, body, timeout=None, **kw):
        return self.response(self.request(path, body, **kw), timeout)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def wait_closed(sock, timeout):
    """Reads and discards until the server closes |sock|; returns the bytes read. Raises
    AssertionError if it stays open."""
    sock.setblocking(False)
    got = b""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        r, _, _ = select.select([sock], [], [], 0.05)
        if not r:
            continue
        try:
            data = sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            return got
        if not data:
            return got
        got += data
    raise AssertionError("the server kept the connection open for %.1f s" % timeout)


def settings_frame_first(sock, timeout):
    """Reads the first HTTP/2 frame header the server sends without being spoken to."""
    sock.settimeout(timeout)
    buf = b""
    while len(buf) < 9:
        try:
            d = sock.recv(9 - len(buf))
        except socket.timeout:
            raise AssertionError("the server sent nothing within %.1f s of accept" % timeout)
        if not d:
            raise AssertionError("the server closed the connection without SETTINGS")
        buf += d
    length = int.from_bytes(buf[:3], "big")
    ftype, flags = buf[3], buf[4]
    stream = int.from_bytes(buf[5:9], "big") & 0x7FFFFFFF
    return length, ftype, flags, stream
