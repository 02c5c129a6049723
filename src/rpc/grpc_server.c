/*
 * grpc_server.c - the server side of gRPC over HTTP/2 on a unix socket: accepts connections,
 * runs one nghttp2 server session per connection from the event loop, checks the protocol duties
 * (method, content-type, encoding, timeout, message limits), routes whole request messages to the
 * handlers it was given by method path, and streams their answers back. Knows no service.
 *
 * State comes in three layers, like nghttp2's libevent example: struct grpc_server (the listening
 * socket) -> struct grpc_conn (one accepted socket and its nghttp2 session) -> struct grpc_call
 * (one HTTP/2 stream).
 *
 * Re-entrancy rules, which everything below relies on:
 *  - nghttp2 callbacks only change our state and submit frames; they never run service code and
 *    never call nghttp2_session_mem_send/mem_recv.
 *  - Service code (handlers, on_call_closed) runs only from conn_pump(), which runs outside any
 *    nghttp2 call, with the connection marked busy. While a connection is busy, grpc_call_*()
 *    on its calls only queue and set want_flush; the pump flushes once the service returns.
 *    grpc_call_send() from an unrelated loop callback flushes right away.
 *  - Nothing a busy connection owns is freed under it: grpc_server_free() from a handler or from
 *    on_call_closed marks the connection dead, and conn_leave() frees it when the stack unwinds.
 */
#include "grpc_server.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>

#include "grpc_frame.h"
#include "grpc_io.h"
#include "log.h"
#include "loop.h"

/* Connections per server beyond which new ones are refused. */
#define MAX_CONNECTIONS 64
/* SETTINGS_MAX_CONCURRENT_STREAMS we announce; nghttp2 refuses streams beyond it. */
#define MAX_STREAMS 100
/* Our receive windows (stream and connection): a 4 MiB message needs few round trips. */
#define RECV_WINDOW (1 << 20)
/* Longest :path we keep; longer ones are simply unknown methods. */
#define MAX_PATH_LEN 1024
/* Shortest deadline timer: a "0n" grpc-timeout still expires from the loop. */
#define MIN_DEADLINE_USEC 1000
/* Reads per readiness event, so one busy peer cannot starve the others. */
#define READS_PER_EVENT 8
#define READ_CHUNK 16384
/* Accepts per readiness event, and the pause after accept() runs out of descriptors. */
#define ACCEPTS_PER_EVENT 16
#define ACCEPT_PAUSE_USEC (1000 * 1000)

struct grpc_conn;

struct grpc_call {
        struct grpc_call *prev, *next; /* in conn->calls */
        struct grpc_conn *conn;        /* owner */
        int32_t stream_id;
        char *path;                       /* :path as received (owned), NULL if none */
        const struct grpc_method *method; /* matched method, borrowed from the config */
        void *userdata;                   /* the service's, see grpc_call_set_userdata() */

        /* Request headers, as seen by on_header(). */
        bool method_seen, method_post;
        bool content_type_ok;
        bool encoding_bad;
        bool timeout_seen, timeout_bad;
        uint64_t timeout_usec;

        /* Request body. */
        struct grpc_deframer deframer;
        uint8_t *req; /* the one request message (owned) until the handler runs */
        size_t req_len;
        unsigned n_msgs;
        bool remote_closed; /* the client half-closed (END_STREAM seen) */

        /* Life cycle. */
        bool ready;              /* request complete and valid; the handler is due */
        bool handler_ran;        /* the handler was called: on_call_closed is owed */
        bool finished;           /* final status submitted (by the service, the deadline or us) */
        bool ended;              /* no more sending: finished, closed, or the connection died */
        bool trailers_sent;      /* the END_STREAM HEADERS went out */
        bool rst_after_response; /* rejected while the client still sends: RST_STREAM(NO_ERROR)
                                    once our response is out, to stop the rest of its request */
        bool stream_closed;      /* nghttp2 closed the stream; dispatch notifies and frees */
        bool reset_by_us;        /* we reset the stream (deadline inside a message): the close
                                    is not the peer's doing, and no trailers may follow */
        bool notified;           /* on_call_closed ran */

        /* Response. */
        bool headers_submitted;       /* response HEADERS (or a trailers-only response) submitted */
        bool deferred;                /* the data provider returned NGHTTP2_ERR_DEFERRED */
        struct grpc_buf out;          /* framed messages not yet taken by nghttp2 */
        size_t out_started;           /* bytes at the front of |out| left of the message nghttp2
                                         has begun to take; 0: |out| starts with a whole one */
        enum grpc_status status;      /* final status once finished */
        char *message;                /* final grpc-message, percent-encoded (owned), or NULL */
        uint64_t deadline_usec;       /* grpc-timeout as loop_now_usec() time, 0: none (the
                                         server's one deadline timer expires it) */
};

struct grpc_conn {
        struct grpc_conn *prev, *next; /* in server->conns */
        struct grpc_server *server;    /* owner */
        uint64_t id;                   /* for debug lines */
        int fd;                        /* owned */
        struct loop_source *io;        /* owned */
        uint32_t events;               /* current epoll mask of |io| */
        nghttp2_session *session;      /* owned */
        struct grpc_buf out;           /* bytes from nghttp2 the socket has not taken yet */
        struct grpc_call *calls;       /* owned, oldest first */
        struct grpc_call *calls_tail;  /* the newest call */
        unsigned busy;                 /* our frames on the stack for this connection */
        bool want_flush;               /* output was queued while busy */
        bool dead;                     /* closed; freed when no longer busy */
        char last_error[128];          /* last error nghttp2 reported, for the closing line */
};

struct grpc_server {
        struct loop *loop;                /* borrowed */
        char *path;                       /* owned */
        int fd;                           /* listening socket (owned), -1 once closed */
        struct loop_source *listen_src;   /* owned */
        struct loop_source *accept_retry; /* re-enables accept() after EMFILE (owned); made with
                                           * the server: no timerfd can be made without fds */
        bool accept_paused;               /* listen_src is disarmed until accept_retry fires */
        struct loop_source *deadlines;    /* one timer for every call's deadline (owned), made
                                           * with the server: a call needs no descriptor */
        uint64_t deadlines_at;            /* when |deadlines| fires (loop_now_usec), 0: disarmed */
        dev_t dev;                        /* the bound socket's identity */
        ino_t ino;
        struct grpc_server_config cfg;        /* copy; methods and log_resource borrowed */
        nghttp2_session_callbacks *callbacks; /* owned, shared by every session */
        nghttp2_option *option;               /* owned, shared by every session */
        struct grpc_conn *conns;              /* owned */
        uint64_t next_conn_id;
        bool freed;   /* grpc_server_free() ran; the last busy connection frees the rest */
        bool freeing; /* grpc_server_free() is on the stack: it frees the server itself */
};

static void conn_pump(struct grpc_conn *c);
static void conn_close(struct grpc_conn *c, bool by_peer);

/* ---------------------------------------------------------------------------------------------
 * Small helpers
 */

static const char *res(const struct grpc_server *s) {
        return s->cfg.log_resource;
}

static bool streq(const uint8_t *v, size_t len, const char *lit) {
        return len == strlen(lit) && memcmp(v, lit, len) == 0;
}

static const char *call_name(const struct grpc_call *call) {
        return call->method ? call->method->path : call->path ? call->path : "(no path)";
}

/* ---------------------------------------------------------------------------------------------
 * Calls
 */

static struct grpc_call *call_new(struct grpc_conn *c, int32_t stream_id) {
        struct grpc_call *call = calloc(1, sizeof(*call));

        if (!call)
                return NULL;
        call->conn = c;
        call->stream_id = stream_id;
        grpc_deframer_init(&call->deframer, c->server->cfg.max_recv_msg);
        /* Appended, so handlers made ready by one read run in arrival order. */
        call->prev = c->calls_tail;
        if (c->calls_tail)
                c->calls_tail->next = call;
        else
                c->calls = call;
        c->calls_tail = call;
        return call;
}

/* Frees a call without telling the service; see call_notify_closed(). */
static void call_free(struct grpc_call *call) {
        struct grpc_conn *c = call->conn;

        if (!call->stream_closed)
                (void) nghttp2_session_set_stream_user_data(c->session, call->stream_id, NULL);
        call->deadline_usec = 0;
        grpc_deframer_done(&call->deframer);
        grpc_buf_free(&call->out);
        free(call->req);
        free(call->path);
        free(call->message);
        if (call->prev)
                call->prev->next = call->next;
        else
                c->calls = call->next;
        if (call->next)
                call->next->prev = call->prev;
        else
                c->calls_tail = call->prev;
        free(call);
}

/* Runs the service's on_call_closed once, if its handler ran. */
static void call_notify_closed(struct grpc_call *call, bool by_peer) {
        struct grpc_server *s = call->conn->server;

        call->ended = true;
        if (!call->handler_ran || call->notified)
                return;
        call->notified = true;
        log_debug(res(s), s->path, "call %s on connection %" PRIu64 " closed%s", call_name(call),
                  call->conn->id, by_peer ? " by the peer" : "");
        if (s->cfg.on_call_closed)
                s->cfg.on_call_closed(call, by_peer, s->cfg.userdata);
}

/*
 * Submits a response without messages: HEADERS with END_STREAM carrying |http_status| and, when
 * |status| >= 0, grpc-status and grpc-message (|message| already percent-encoded).
 */
static int call_submit_trailers_only(struct grpc_call *call, int http_status, int status,
                                     const char *message) {
        char http[8], code[12];
        nghttp2_nv nva[4];
        size_t n = 0;

        snprintf(http, sizeof(http), "%d", http_status);
        nva[n++] = grpc_io_nv(":status", http);
        nva[n++] = grpc_io_nv("content-type", "application/grpc");
        if (status >= 0) {
                snprintf(code, sizeof(code), "%d", status);
                nva[n++] = grpc_io_nv("grpc-status", code);
                if (message)
                        nva[n++] = grpc_io_nv("grpc-message", message);
        }
        call->headers_submitted = true;
        return nghttp2_submit_response(call->conn->session, call->stream_id, nva, n, NULL);
}

/*
 * Rejects a call before its handler runs (or when its deadline expires first): a trailers-only
 * response, then, once it is sent, RST_STREAM(NO_ERROR) if the client is still sending, so the
 * rest of its request is discarded (RFC 9113 8.1). The connection stays. Safe inside nghttp2
 * callbacks.
 */
static void call_reject(struct grpc_call *call, int http_status, enum grpc_status status,
                        const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void call_reject(struct grpc_call *call, int http_status, enum grpc_status status,
                        const char *fmt, ...) {
        struct grpc_conn *c = call->conn;
        struct grpc_server *s = c->server;
        char text[256], *encoded;
        va_list ap;

        if (call->finished || call->ended)
                return;
        va_start(ap, fmt);
        vsnprintf(text, sizeof(text), fmt, ap);
        va_end(ap);
        log_debug(res(s), s->path, "call %s on connection %" PRIu64 " rejected: HTTP %d, %s: %s",
                  call_name(call), c->id, http_status, grpc_status_name(status), text);

        call->finished = call->ended = true;
        call->ready = false;
        call->status = status;
        call->deadline_usec = 0;
        grpc_deframer_done(&call->deframer);
        free(call->req);
        call->req = NULL;

        encoded = grpc_message_encode(text);
        if (call_submit_trailers_only(call, http_status, status, encoded ? encoded : "error") < 0)
                (void) nghttp2_submit_rst_stream(c->session, NGHTTP2_FLAG_NONE, call->stream_id,
                                                 NGHTTP2_INTERNAL_ERROR);
        else
                /* Not now: nghttp2 drops a stream's queued HEADERS once RST_STREAM is queued. */
                call->rst_after_response = !call->remote_closed;
        free(encoded);
        c->want_flush = true;
}

/* Asks nghttp2 to call the data provider again after it deferred. */
static void call_resume(struct grpc_call *call) {
        if (!call->deferred)
                return;
        call->deferred = false;
        (void) nghttp2_session_resume_data(call->conn->session, call->stream_id);
}

/* Lets a connection send what was queued: now if nothing of ours is on its stack, else later. */
static void conn_enter(struct grpc_conn *c);
static void conn_leave(struct grpc_conn *c);

static void conn_kick(struct grpc_conn *c) {
        c->want_flush = true;
        if (c->busy > 0)
                return;
        conn_enter(c);
        conn_pump(c);
        conn_leave(c);
}

/* The call's deadline passed: it ends with DEADLINE_EXCEEDED, or its stream is reset. */
static void call_expire(struct grpc_call *call) {
        struct grpc_conn *c = call->conn;

        conn_enter(c);
        call->deadline_usec = 0;
        if (!call->finished && !call->ended) {
                if (!call->headers_submitted)
                        call_reject(call, 200, GRPC_STATUS_DEADLINE_EXCEEDED, "deadline exceeded");
                else if (call->out_started > 0) {
                        /*
                         * nghttp2 has sent part of a message and the rest is still ours (flow
                         * control, perhaps a peer that no longer reads). Trailers now would
                         * follow a truncated message; finishing it first could hold the stream
                         * past its deadline for as long as the peer does not read. We reset the
                         * stream with CANCEL, as grpc-go servers do when a deadline expires
                         * (http2_server.go arms a timer that closes the stream with
                         * RST_STREAM(CANCEL)); the client's own deadline reports the status.
                         */
                        log_debug(res(c->server), c->server->path,
                                  "call %s on connection %" PRIu64 ": deadline exceeded inside a message, resetting the stream",
                                  call_name(call), c->id);
                        grpc_buf_free(&call->out);
                        call->out_started = 0;
                        call->finished = call->ended = true;
                        call->reset_by_us = true;
                        call->status = GRPC_STATUS_DEADLINE_EXCEEDED;
                        (void) nghttp2_submit_rst_stream(c->session, NGHTTP2_FLAG_NONE,
                                                         call->stream_id, NGHTTP2_CANCEL);
                } else {
                        /* Messages not yet taken by nghttp2 are dropped: the status goes now. */
                        log_debug(res(c->server), c->server->path,
                                  "call %s on connection %" PRIu64 ": deadline exceeded",
                                  call_name(call), c->id);
                        grpc_buf_free(&call->out);
                        call->out_started = 0;
                        call->finished = call->ended = true;
                        call->status = GRPC_STATUS_DEADLINE_EXCEEDED;
                        call->message = grpc_message_encode("deadline exceeded");
                        call_resume(call);
                }
        }
        c->want_flush = true;
        conn_pump(c);
        conn_leave(c);
}

/* Arms the server's deadline timer for |at| (loop_now_usec time) unless it fires earlier. */
static int server_arm_deadlines(struct grpc_server *s, uint64_t at) {
        uint64_t now = loop_now_usec();
        int r;

        if (s->deadlines_at != 0 && s->deadlines_at <= at)
                return 0;
        r = loop_timer_arm(s->deadlines, at > now ? at - now : 1, 0);
        if (r < 0)
                return r;
        s->deadlines_at = at;
        return 0;
}

/*
 * The deadline timer fired: arms it for the next deadline first, then expires one call whose
 * deadline passed (another one due makes the timer fire again at once). Expiring comes last and
 * nothing is touched after it: ending a call may end its connection, or the server itself.
 */
static void server_on_deadlines(struct loop_source *src, void *userdata) {
        struct grpc_server *s = userdata;
        struct grpc_call *due = NULL;
        uint64_t now = loop_now_usec(), next = 0;

        s->deadlines_at = 0;
        for (struct grpc_conn *c = s->conns; c; c = c->next) {
                if (c->dead)
                        continue;
                for (struct grpc_call *call = c->calls; call; call = call->next) {
                        if (call->deadline_usec == 0)
                                continue;
                        if (!due && call->deadline_usec <= now)
                                due = call;
                        else if (next == 0 || call->deadline_usec < next)
                                next = call->deadline_usec;
                }
        }
        if (next != 0 && server_arm_deadlines(s, next) < 0)
                log_warn(res(s), s->path, "cannot arm the deadline timer, deadlines are late");
        if (due)
                call_expire(due);
}

/* The request HEADERS are complete: check them, route the call, arm its deadline. */
static void call_on_request_headers(struct grpc_call *call) {
        struct grpc_conn *c = call->conn;
        struct grpc_server *s = c->server;
        int r;

        if (!call->path) {
                (void) nghttp2_submit_rst_stream(c->session, NGHTTP2_FLAG_NONE, call->stream_id,
                                                 NGHTTP2_PROTOCOL_ERROR);
                call->finished = call->ended = true;
                c->want_flush = true;
                return;
        }
        if (!call->content_type_ok) {
                call_reject(call, 415, GRPC_STATUS_INVALID_ARGUMENT,
                            "invalid gRPC request content-type");
                return;
        }
        if (!call->method_post) {
                call_reject(call, 405, GRPC_STATUS_INTERNAL, "method must be POST");
                return;
        }
        if (call->timeout_bad) {
                call_reject(call, 200, GRPC_STATUS_INTERNAL, "malformed grpc-timeout");
                return;
        }
        if (call->encoding_bad) {
                call_reject(call, 200, GRPC_STATUS_UNIMPLEMENTED,
                            "grpc-encoding not supported, only identity");
                return;
        }
        for (size_t i = 0; i < s->cfg.n_methods; i++)
                if (strcmp(s->cfg.methods[i].path, call->path) == 0) {
                        call->method = &s->cfg.methods[i];
                        break;
                }
        if (!call->method) {
                call_reject(call, 200, GRPC_STATUS_UNIMPLEMENTED, "unknown method %s", call->path);
                return;
        }

        if (call->timeout_seen) {
                call->deadline_usec = loop_now_usec() + (call->timeout_usec > MIN_DEADLINE_USEC
                                                                 ? call->timeout_usec
                                                                 : MIN_DEADLINE_USEC);
                r = server_arm_deadlines(s, call->deadline_usec);
                if (r < 0) {
                        call->deadline_usec = 0;
                        call_reject(call, 200, GRPC_STATUS_RESOURCE_EXHAUSTED,
                                    "cannot arm deadline timer: %s", strerror(-r));
                        return;
                }
        }
}

/* The client half-closed: the request is complete, or broken. */
static void call_on_request_end(struct grpc_call *call) {
        call->remote_closed = true;
        if (call->finished || call->ended)
                return;
        if (grpc_deframer_has_partial(&call->deframer)) {
                call_reject(call, 200, GRPC_STATUS_INTERNAL,
                            "request stream ended inside a message");
                return;
        }
        if (call->n_msgs != 1) {
                call_reject(call, 200, GRPC_STATUS_INTERNAL, "missing request message");
                return;
        }
        call->ready = true;
}

/* grpc_deframer_fn: keeps the one request message. */
static int call_on_message(const uint8_t *msg, size_t len, uint8_t flags, void *userdata) {
        struct grpc_call *call = userdata;

        if (flags & GRPC_FLAG_COMPRESSED)
                return -EBADMSG;
        if (call->n_msgs > 0)
                return -ENOTUNIQ;
        call->req = malloc(len > 0 ? len : 1);
        if (!call->req)
                return -ENOMEM;
        memcpy(call->req, msg, len);
        call->req_len = len;
        call->n_msgs++;
        return 0;
}

/* ---------------------------------------------------------------------------------------------
 * nghttp2 callbacks. They change state and submit frames, nothing more (see the top comment).
 */

static struct grpc_call *stream_call(nghttp2_session *session, int32_t stream_id) {
        return nghttp2_session_get_stream_user_data(session, stream_id);
}

static int on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame, void *user_data) {
        struct grpc_conn *c = user_data;
        struct grpc_call *call;

        if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
                return 0;
        call = call_new(c, frame->hd.stream_id);
        if (!call)
                return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        if (nghttp2_session_set_stream_user_data(session, frame->hd.stream_id, call) < 0) {
                call->stream_closed = true;
                call_free(call);
                return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        }
        return 0;
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *user_data) {
        struct grpc_call *call;

        if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
                return 0;
        call = stream_call(session, frame->hd.stream_id);
        if (!call)
                return 0;

        if (streq(name, namelen, ":method")) {
                call->method_seen = true;
                call->method_post = streq(value, valuelen, "POST");
        } else if (streq(name, namelen, ":path")) {
                /* Kept only if sane; an absurd path is an unknown method all the same. */
                if (!call->path && valuelen > 0) {
                        size_t n = valuelen <= MAX_PATH_LEN ? valuelen : MAX_PATH_LEN;

                        /* All n bytes (not strndup): the '?' never lands on the NUL. */
                        call->path = malloc(n + 1);
                        if (!call->path)
                                return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
                        memcpy(call->path, value, n);
                        call->path[n] = '\0';
                        if (n != valuelen || memchr(value, '\0', n)) {
                                /* Truncated or holding a NUL: it matches no method. */
                                call->path[0] = '?';
                        }
                }
        } else if (streq(name, namelen, "content-type"))
                call->content_type_ok = grpc_content_type_is_grpc((const char *) value, valuelen);
        else if (streq(name, namelen, "grpc-encoding"))
                call->encoding_bad = !streq(value, valuelen, "identity");
        else if (streq(name, namelen, "grpc-timeout")) {
                call->timeout_seen = true;
                call->timeout_bad =
                        grpc_timeout_parse((const char *) value, valuelen, &call->timeout_usec) < 0;
        }
        return 0;
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user_data) {
        struct grpc_call *call;

        if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA)
                return 0;
        call = stream_call(session, frame->hd.stream_id);
        if (!call)
                return 0;
        if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST)
                call_on_request_headers(call);
        if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)
                call_on_request_end(call);
        return 0;
}

static int on_data_chunk_recv(nghttp2_session *session, uint8_t flags, int32_t stream_id,
                              const uint8_t *data, size_t len, void *user_data) {
        struct grpc_call *call = stream_call(session, stream_id);
        int r;

        if (!call || call->finished || call->ended)
                return 0; /* rejected already: the rest of the stream is discarded */
        r = grpc_deframer_feed(&call->deframer, data, len, call_on_message, call);
        switch (r) {
        case 0:
                break;
        case -EMSGSIZE:
                call_reject(call, 200, GRPC_STATUS_RESOURCE_EXHAUSTED,
                            "grpc: received message larger than max (%" PRIu32 " vs. %zu)",
                            call->deframer.msg_len, call->deframer.limit);
                break;
        case -EBADMSG:
                call_reject(call, 200, GRPC_STATUS_INTERNAL,
                            "compressed message without grpc-encoding");
                break;
        case -ENOTUNIQ:
                call_reject(call, 200, GRPC_STATUS_INTERNAL,
                            "more than one request message for a unary-request method");
                break;
        default:
                call_reject(call, 200, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
                break;
        }
        return 0;
}

static int on_frame_send(nghttp2_session *session, const nghttp2_frame *frame, void *user_data) {
        struct grpc_call *call;

        if (frame->hd.type != NGHTTP2_HEADERS || !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
                return 0;
        call = stream_call(session, frame->hd.stream_id);
        if (!call)
                return 0;
        call->trailers_sent = true;
        if (call->rst_after_response && !call->remote_closed)
                (void) nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, frame->hd.stream_id,
                                                 NGHTTP2_NO_ERROR);
        call->rst_after_response = false;
        return 0;
}

static int on_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code,
                           void *user_data) {
        struct grpc_call *call = stream_call(session, stream_id);

        if (!call)
                return 0;
        (void) nghttp2_session_set_stream_user_data(session, stream_id, NULL);
        call->stream_closed = true;
        call->ended = true;
        call->ready = false;
        call->deadline_usec = 0;
        return 0;
}

static int on_error(nghttp2_session *session, int lib_error_code, const char *msg, size_t len,
                    void *user_data) {
        struct grpc_conn *c = user_data;

        snprintf(c->last_error, sizeof(c->last_error), "%.*s", (int) len, msg);
        return 0;
}

/*
 * Notes that nghttp2 takes the next |k| bytes of |out|: walks the message boundaries (each
 * message in |out| is whole, so its prefix is there to read) to keep |out_started| right.
 */
static void call_track_taken(struct grpc_call *call, size_t k) {
        const uint8_t *p = grpc_buf_head(&call->out);

        while (k > 0) {
                size_t step;

                if (call->out_started == 0)
                        call->out_started = GRPC_PREFIX_LEN + ((size_t) p[1] << 24 |
                                                               (size_t) p[2] << 16 |
                                                               (size_t) p[3] << 8 | p[4]);
                step = k < call->out_started ? k : call->out_started;
                call->out_started -= step;
                p += step;
                k -= step;
        }
}

/* Data provider: hands nghttp2 the queued messages, then EOF and the trailers once finished. */
static ssize_t call_read_data(nghttp2_session *session, int32_t stream_id, uint8_t *buf,
                              size_t length, uint32_t *data_flags, nghttp2_data_source *source,
                              void *user_data) {
        struct grpc_call *call = source->ptr;
        size_t pending = grpc_buf_pending(&call->out);
        char code[12];
        nghttp2_nv nva[2];
        size_t n = 0;

        if (pending > 0) {
                size_t k = pending < length ? pending : length;

                memcpy(buf, grpc_buf_head(&call->out), k);
                call_track_taken(call, k);
                grpc_buf_consume(&call->out, k);
                return (ssize_t) k;
        }
        if (!call->finished || call->reset_by_us) {
                /* Reset by us: our RST_STREAM goes first and closes the stream; no trailers. */
                call->deferred = true;
                return NGHTTP2_ERR_DEFERRED;
        }
        *data_flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
        snprintf(code, sizeof(code), "%d", (int) call->status);
        nva[n++] = grpc_io_nv("grpc-status", code);
        if (call->message)
                nva[n++] = grpc_io_nv("grpc-message", call->message);
        if (nghttp2_submit_trailer(session, stream_id, nva, n) < 0)
                return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Connections
 */

static void conn_enter(struct grpc_conn *c) {
        c->busy++;
}

static void conn_free(struct grpc_conn *c);

/* Drops our mark; a connection closed meanwhile is freed once nothing of ours is on its stack. */
static void conn_leave(struct grpc_conn *c) {
        if (--c->busy == 0 && c->dead)
                conn_free(c);
}

static void server_destroy(struct grpc_server *s);

static void conn_free(struct grpc_conn *c) {
        struct grpc_server *s = c->server;

        while (c->calls)
                call_free(c->calls);
        c->io = loop_source_free(c->io);
        if (c->fd >= 0)
                close(c->fd);
        nghttp2_session_del(c->session);
        grpc_buf_free(&c->out);
        if (c->prev)
                c->prev->next = c->next;
        else
                s->conns = c->next;
        if (c->next)
                c->next->prev = c->prev;
        free(c);
        if (s->freed && !s->freeing && !s->conns)
                server_destroy(s);
}

/*
 * Closes a connection: every call still open ends (on_call_closed with |by_peer|), the socket is
 * closed now, and the memory goes when the connection is no longer busy.
 */
static void conn_close(struct grpc_conn *c, bool by_peer) {
        if (c->dead)
                return;
        c->dead = true;
        conn_enter(c);
        /* Nothing can free these calls while we hold the connection busy. */
        for (struct grpc_call *call = c->calls; call; call = call->next) {
                call->deadline_usec = 0;
                call_notify_closed(call, by_peer);
        }
        c->io = loop_source_free(c->io);
        if (c->fd >= 0)
                close(c->fd);
        c->fd = -1;
        conn_leave(c);
}

/*
 * Writes what nghttp2 has to say until the socket would block (then waits for EPOLLOUT).
 * Runs outside nghttp2 callbacks only. Returns 0 or -errno.
 */
static int conn_flush(struct grpc_conn *c) {
        int h2_error = 0, r;

        c->want_flush = false;
        r = grpc_io_flush(c->fd, c->session, &c->out, c->io, &c->events, &h2_error);
        if (r == -EPROTO)
                snprintf(c->last_error, sizeof(c->last_error), "%s", nghttp2_strerror(h2_error));
        return r;
}

/* The one line an operator sees when we drop a connection because of its peer. */
static void log_protocol_error(const struct grpc_conn *c, const char *reason) {
        log_warn(res(c->server), c->server->path,
                 "HTTP/2 error on connection: %s, closing connection", reason);
}

/* Runs one due piece of service work: a handler, or a closed call's notification. */
static bool conn_dispatch_one(struct grpc_conn *c) {
        struct grpc_server *s = c->server;

        for (struct grpc_call *call = c->calls; call; call = call->next) {
                if (call->stream_closed) {
                        call_notify_closed(call, !call->trailers_sent && !call->reset_by_us);
                        call_free(call);
                        return true;
                }
                if (call->ready && !call->finished && !call->ended) {
                        uint8_t *req = call->req;

                        call->ready = false;
                        call->handler_ran = true;
                        call->req = NULL;
                        log_debug(res(s), s->path, "call %s on connection %" PRIu64,
                                  call_name(call), c->id);
                        call->method->on_request(call, req, call->req_len, s->cfg.userdata);
                        free(req);
                        return true;
                }
        }
        return false;
}

/* Runs due service work and flushes, until there is nothing left to do. Needs busy. */
static void conn_pump(struct grpc_conn *c) {
        struct grpc_server *s = c->server;
        int r;

        while (!c->dead) {
                if (conn_dispatch_one(c))
                        continue;
                if (!c->want_flush)
                        break;
                r = conn_flush(c);
                if (r < 0) {
                        if (r == -EPROTO)
                                log_protocol_error(c, c->last_error);
                        else
                                log_debug(res(s), s->path,
                                          "connection %" PRIu64 ": write: %s, closing connection",
                                          c->id, strerror(-r));
                        conn_close(c, true);
                        return;
                }
        }
        if (c->dead)
                return;
        if (!nghttp2_session_want_read(c->session) && !nghttp2_session_want_write(c->session) &&
            grpc_buf_pending(&c->out) == 0) {
                if (c->last_error[0])
                        log_protocol_error(c, c->last_error);
                else
                        log_debug(res(s), s->path, "connection %" PRIu64 " done, closing", c->id);
                conn_close(c, true);
        }
}

static void conn_on_io(struct loop_source *src, int fd, uint32_t events, void *userdata) {
        struct grpc_conn *c = userdata;
        struct grpc_server *s = c->server;
        uint8_t buf[READ_CHUNK];

        conn_enter(c);
        if (events & EPOLLOUT)
                c->want_flush = true;
        if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                for (int i = 0; i < READS_PER_EVENT && !c->dead; i++) {
                        int h2_error = 0;
                        ssize_t n = grpc_io_recv(c->fd, c->session, buf, sizeof(buf), &h2_error);

                        if (n == 0)
                                break;
                        if (n == -EPROTO) {
                                if (h2_error == NGHTTP2_ERR_BAD_CLIENT_MAGIC)
                                        log_warn(res(s), s->path,
                                                 "invalid HTTP/2 client preface (not a gRPC client, or HTTP/1.x), closing connection");
                                else
                                        log_protocol_error(c, nghttp2_strerror(h2_error));
                                conn_close(c, true);
                                break;
                        }
                        if (n < 0) {
                                log_debug(res(s), s->path, "connection %" PRIu64 ": %s, closing",
                                          c->id,
                                          n == -ECONNRESET ? "closed by peer" : strerror((int) -n));
                                conn_close(c, true);
                                break;
                        }
                        c->want_flush = true;
                        /* Run handlers between reads, so their answers are not held back. */
                        conn_pump(c);
                        if ((size_t) n < sizeof(buf))
                                break;
                }
        }
        conn_pump(c);
        conn_leave(c);
}

static int conn_new(struct grpc_server *s, int fd) {
        nghttp2_settings_entry iv[] = {
                {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, MAX_STREAMS},
                {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, RECV_WINDOW},
        };
        struct grpc_conn *c;
        int r;

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->server = s;
        c->fd = fd;
        c->id = ++s->next_conn_id;
        r = nghttp2_session_server_new2(&c->session, s->callbacks, c, s->option);
        if (r < 0) {
                r = -ENOMEM;
                goto out_free_conn;
        }
        r = nghttp2_submit_settings(c->session, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0]));
        if (r < 0) {
                r = -ENOMEM;
                goto out_del_session;
        }
        r = nghttp2_session_set_local_window_size(c->session, NGHTTP2_FLAG_NONE, 0, RECV_WINDOW);
        if (r < 0) {
                r = -ENOMEM;
                goto out_del_session;
        }
        r = loop_add_io(s->loop, fd, EPOLLIN, conn_on_io, c, &c->io);
        if (r < 0)
                goto out_del_session;
        c->events = EPOLLIN;

        c->next = s->conns;
        if (s->conns)
                s->conns->prev = c;
        s->conns = c;
        log_debug(res(s), s->path, "connection %" PRIu64 " accepted", c->id);

        /* Our SETTINGS go out now: grpc-go clients wait for them before sending anything. */
        conn_kick(c);
        return 0;

out_del_session:
        nghttp2_session_del(c->session);
out_free_conn:
        free(c);
        return r;
}

/* ---------------------------------------------------------------------------------------------
 * The listening socket
 */

static size_t server_count_open(const struct grpc_server *s) {
        size_t n = 0;

        for (const struct grpc_conn *c = s->conns; c; c = c->next)
                if (!c->dead)
                        n++;
        return n;
}

static void server_on_accept_retry(struct loop_source *src, void *userdata) {
        struct grpc_server *s = userdata;

        s->accept_paused = false;
        (void) loop_io_set_events(s->listen_src, EPOLLIN);
}

/*
 * accept() ran out of descriptors or memory (|err|). The listening socket is level-triggered:
 * armed, it would fire again at once and spin, so it is disarmed until accept_retry fires, and
 * one line says so per pause. The connections already open go on being served.
 */
static void server_pause_accepts(struct grpc_server *s, int err) {
        size_t n = server_count_open(s);
        int r;

        r = loop_io_set_events(s->listen_src, 0);
        if (r >= 0)
                r = loop_timer_arm(s->accept_retry, ACCEPT_PAUSE_USEC, 0);
        if (r < 0) {
                (void) loop_io_set_events(s->listen_src, EPOLLIN);
                log_warn(res(s), s->path,
                         "accept failed: %s, %zu connection%s open; cannot pause accepts: %s",
                         strerror(err), n, n == 1 ? "" : "s", strerror(-r));
                return;
        }
        s->accept_paused = true;
        log_warn(res(s), s->path,
                 "accept failed: %s, %zu connection%s open, pausing accepts for 1 s", strerror(err),
                 n, n == 1 ? "" : "s");
}

static void server_on_listen(struct loop_source *src, int fd, uint32_t events, void *userdata) {
        struct grpc_server *s = userdata;

        if (s->accept_paused)
                return; /* a stray event while disarmed (EPOLLERR and EPOLLHUP always report) */
        for (int i = 0; i < ACCEPTS_PER_EVENT; i++) {
                int cfd = accept4(s->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC), r;

                if (cfd < 0) {
                        if (errno == EINTR || errno == ECONNABORTED)
                                continue;
                        if (errno == EAGAIN || errno == EWOULDBLOCK)
                                return;
                        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
                            errno == ENOMEM) {
                                server_pause_accepts(s, errno);
                                return;
                        }
                        log_warn(res(s), s->path, "accept failed: %s, ignoring", strerror(errno));
                        return;
                }
                if (server_count_open(s) >= MAX_CONNECTIONS) {
                        log_warn(res(s), s->path, "too many connections (%d), refusing a new one",
                                 MAX_CONNECTIONS);
                        close(cfd);
                        continue;
                }
                r = conn_new(s, cfd);
                if (r < 0) {
                        log_warn(res(s), s->path, "cannot serve a new connection: %s, closing it",
                                 strerror(-r));
                        close(cfd);
                }
        }
}

static int server_setup_nghttp2(struct grpc_server *s) {
        nghttp2_session_callbacks *cb;

        if (nghttp2_session_callbacks_new(&s->callbacks) < 0)
                return -ENOMEM;
        cb = s->callbacks;
        nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
        nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
        nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk_recv);
        nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_frame_send);
        nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
        nghttp2_session_callbacks_set_error_callback2(cb, on_error);

        if (nghttp2_option_new(&s->option) < 0)
                return -ENOMEM;
        /*
         * Kubelets before 1.26 send the socket path as :authority, which nghttp2's HTTP
         * messaging checks reject (kubernetes PR #112597). We check what gRPC needs ourselves.
         */
        nghttp2_option_set_no_http_messaging(s->option, 1);
        return 0;
}

static void server_destroy(struct grpc_server *s) {
        nghttp2_session_callbacks_del(s->callbacks);
        nghttp2_option_del(s->option);
        free(s->path);
        free(s);
}

int grpc_server_new(struct loop *l, const char *path, const struct grpc_server_config *cfg,
                    struct grpc_server **ret) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        struct grpc_server *s;
        struct stat st;
        int r;

        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        memcpy(sa.sun_path, path, strlen(path) + 1);

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->loop = l;
        s->fd = -1;
        s->cfg = *cfg;
        if (s->cfg.max_recv_msg == 0)
                s->cfg.max_recv_msg = GRPC_DEFAULT_MAX_RECV_MSG;
        s->path = strdup(path);
        if (!s->path) {
                r = -ENOMEM;
                goto out_free_server;
        }
        r = server_setup_nghttp2(s);
        if (r < 0)
                goto out_free_server;

        s->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (s->fd < 0) {
                r = -errno;
                goto out_free_server;
        }
        /* A stale socket from an earlier run is ours to replace; anything else makes bind fail. */
        if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
                (void) unlink(path);
        if (bind(s->fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
                r = -errno;
                goto out_close_fd;
        }
        if (stat(path, &st) < 0) {
                r = -errno;
                goto out_unlink;
        }
        s->dev = st.st_dev;
        s->ino = st.st_ino;
        if (listen(s->fd, SOMAXCONN) < 0) {
                r = -errno;
                goto out_unlink;
        }
        r = loop_add_io(l, s->fd, EPOLLIN, server_on_listen, s, &s->listen_src);
        if (r < 0)
                goto out_unlink;
        r = loop_add_timer(l, server_on_accept_retry, s, &s->accept_retry);
        if (r < 0)
                goto out_free_listen;
        r = loop_add_timer(l, server_on_deadlines, s, &s->deadlines);
        if (r < 0)
                goto out_free_accept_retry;

        log_debug(res(s), s->path, "gRPC server listening");
        *ret = s;
        return 0;

out_free_accept_retry:
        s->accept_retry = loop_source_free(s->accept_retry);
out_free_listen:
        s->listen_src = loop_source_free(s->listen_src);
out_unlink:
        (void) unlink(path);
out_close_fd:
        close(s->fd);
out_free_server:
        server_destroy(s);
        return r;
}

bool grpc_server_owns_path(const struct grpc_server *s) {
        struct stat st;

        if (!s || lstat(s->path, &st) < 0)
                return false;
        return S_ISSOCK(st.st_mode) && st.st_dev == s->dev && st.st_ino == s->ino;
}

struct grpc_server *grpc_server_free(struct grpc_server *s) {
        if (!s || s->freed)
                return NULL;
        s->freed = true;
        s->freeing = true;

        s->listen_src = loop_source_free(s->listen_src);
        s->accept_retry = loop_source_free(s->accept_retry);
        s->deadlines = loop_source_free(s->deadlines);
        if (grpc_server_owns_path(s))
                (void) unlink(s->path);
        else
                log_debug(res(s), s->path, "socket path no longer ours, leaving it");
        close(s->fd);
        s->fd = -1;

        /*
         * conn_close() runs on_call_closed, which may even free other connections of ours:
         * rescan from the head each time. Busy connections stay listed, dead, until they unwind.
         */
        for (;;) {
                struct grpc_conn *c = s->conns;

                while (c && c->dead)
                        c = c->next;
                if (!c)
                        break;
                conn_close(c, false);
        }
        s->freeing = false;
        if (!s->conns)
                server_destroy(s);
        return NULL;
}

size_t grpc_server_n_connections(const struct grpc_server *s) {
        return s ? server_count_open(s) : 0;
}

/* ---------------------------------------------------------------------------------------------
 * The service's side of a call
 */

void grpc_call_set_userdata(struct grpc_call *call, void *userdata) {
        call->userdata = userdata;
}

void *grpc_call_get_userdata(const struct grpc_call *call) {
        return call->userdata;
}

const char *grpc_call_method(const struct grpc_call *call) {
        return call_name(call);
}

/* Submits the response HEADERS with our data provider, once. */
static int call_start_response(struct grpc_call *call) {
        nghttp2_nv nva[] = {
                grpc_io_nv(":status", "200"),
                grpc_io_nv("content-type", "application/grpc"),
        };
        nghttp2_data_provider prd = {.source.ptr = call, .read_callback = call_read_data};
        int r;

        if (call->headers_submitted)
                return 0;
        r = nghttp2_submit_response(call->conn->session, call->stream_id, nva,
                                    sizeof(nva) / sizeof(nva[0]), &prd);
        if (r < 0)
                return r == NGHTTP2_ERR_NOMEM ? -ENOMEM : -EPIPE;
        call->headers_submitted = true;
        return 0;
}

int grpc_call_send(struct grpc_call *call, const uint8_t *msg, size_t len) {
        int r;

        if (call->finished || call->ended)
                return -EPIPE;
        r = grpc_buf_append_message(&call->out, msg, len);
        if (r < 0)
                return r;
        if (!call->headers_submitted) {
                r = call_start_response(call);
                if (r < 0)
                        return r;
        } else
                call_resume(call);
        conn_kick(call->conn);
        return 0;
}

int grpc_call_send_latest(struct grpc_call *call, const uint8_t *msg, size_t len) {
        struct grpc_conn *c = call->conn;
        size_t pending = grpc_buf_pending(&call->out);

        if (call->finished || call->ended)
                return -EPIPE;
        if (pending > call->out_started) {
                log_debug(res(c->server), c->server->path,
                          "call %s on connection %" PRIu64 ": the peer is not reading, %zu queued bytes replaced by the newest message",
                          call_name(call), c->id, pending - call->out_started);
                /* Keep the rest of the message on the wire; an emptied queue starts afresh. */
                if (call->out_started > 0)
                        call->out.len = call->out.off + call->out_started;
                else
                        call->out.off = call->out.len = 0;
        }
        return grpc_call_send(call, msg, len);
}

int grpc_call_finish(struct grpc_call *call, enum grpc_status status, const char *message) {
        struct grpc_conn *c = call->conn;
        struct grpc_server *s = c->server;
        char *encoded = NULL;
        int r;

        if (call->finished || call->ended)
                return -EPIPE;
        if (message) {
                encoded = grpc_message_encode(message);
                if (!encoded)
                        return -ENOMEM;
        }
        call->finished = true;
        call->status = status;
        call->message = encoded;
        log_debug(res(s), s->path, "call %s on connection %" PRIu64 " finished: %s%s%s",
                  call_name(call), c->id, grpc_status_name(status), message ? ": " : "",
                  message ? message : "");
        if (!call->headers_submitted) {
                r = call_submit_trailers_only(call, 200, status, encoded);
                if (r < 0) {
                        (void) nghttp2_submit_rst_stream(c->session, NGHTTP2_FLAG_NONE,
                                                         call->stream_id, NGHTTP2_INTERNAL_ERROR);
                        call->ended = true;
                }
        } else
                call_resume(call);
        conn_kick(c);
        return 0;
}

int grpc_call_reply(struct grpc_call *call, const uint8_t *msg, size_t len) {
        int r = grpc_call_send(call, msg, len);

        if (r < 0)
                return r;
        return grpc_call_finish(call, GRPC_STATUS_OK, NULL);
}

int grpc_call_fail(struct grpc_call *call, enum grpc_status status, const char *message) {
        return grpc_call_finish(call, status, message);
}
