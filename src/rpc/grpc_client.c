/*
 * grpc_client.c - the client side of gRPC over HTTP/2 on a unix socket: one connection and one
 * nghttp2 client session per call, driven by the event loop (non-blocking connect, reads and
 * writes). Unary calls for services; a lower-level entry point (grpc_client_internal.h) adds
 * unusual requests and server streaming for tests and diagnostics. Knows no service.
 *
 * Like the server, nghttp2 callbacks only record what arrived; the done callback runs from the
 * loop callback after nghttp2 returns. A call is freed only when none of our frames for it are on
 * the stack (busy == 0), so cancelling from inside on_message is safe.
 */
#include "grpc_client.h"
#include "grpc_client_internal.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>

#include "grpc_frame.h"
#include "grpc_io.h"
#include "log.h"
#include "loop.h"
#include "text.h"

#define RECV_WINDOW (1 << 20)
/* Largest response message accepted, as grpc-go clients do by default. */
#define MAX_RECV_MSG (4u * 1024 * 1024)
#define READS_PER_EVENT 8
#define READ_CHUNK 16384
/* Request headers we send ourselves, plus room for the extra ones of tests. */
#define MAX_EXTRA_HEADERS 16
/* Delay of a failure reported from the loop instead of from grpc_client_call_start(). */
#define DEFER_USEC 1000
#define USER_AGENT "sgxdevplugin/" SGXDEVPLUGIN_VERSION

struct grpc_client_call {
        struct loop *loop;         /* borrowed */
        char *socket_path;         /* owned */
        char *method;              /* owned */
        int fd;                    /* owned */
        struct loop_source *io;    /* owned */
        uint32_t events;           /* current epoll mask of |io| */
        struct loop_source *timer; /* timeout, or the deferred start failure (owned) */
        nghttp2_session *session;  /* owned */
        int32_t stream_id;
        struct grpc_buf body; /* request DATA not yet taken by nghttp2 */
        struct grpc_buf out;  /* bytes the socket has not taken yet */
        bool connecting;      /* connect() in progress: wait for EPOLLOUT */
        int start_err;        /* connect failed at once: reported by the timer */

        /* Response. */
        int http_status;
        bool have_status;
        int status;
        char *message; /* decoded grpc-message (owned), or NULL */
        struct grpc_deframer deframer;
        uint8_t *resp; /* the unary response message (owned) */
        size_t resp_len;
        unsigned n_msgs;
        int err; /* a fatal error seen in a callback, or 0 */
        bool stream_closed;
        uint32_t close_error;

        /* Options. */
        grpc_client_message_fn on_message;
        int *ret_http_status;

        grpc_client_done_fn done;
        void *userdata;
        unsigned busy; /* our frames on the stack for this call */
        bool over;     /* done ran or the call was cancelled: free when idle */
};

static void call_free(struct grpc_client_call *c) {
        c->io = loop_source_free(c->io);
        c->timer = loop_source_free(c->timer);
        if (c->fd >= 0)
                close(c->fd);
        nghttp2_session_del(c->session);
        grpc_buf_free(&c->body);
        grpc_buf_free(&c->out);
        grpc_deframer_done(&c->deframer);
        free(c->resp);
        free(c->message);
        free(c->socket_path);
        free(c->method);
        free(c);
}

static void call_enter(struct grpc_client_call *c) {
        c->busy++;
}

static void call_leave(struct grpc_client_call *c) {
        if (--c->busy == 0 && c->over)
                call_free(c);
}

/* Ends the call with |err| (0: use what the server answered) and runs done once. */
static void call_complete(struct grpc_client_call *c, int err) {
        enum grpc_status status = GRPC_STATUS_UNKNOWN;
        const uint8_t *resp = NULL;
        size_t len = 0;

        if (c->over)
                return;
        c->over = true;
        /* The socket goes now; the memory once the stack unwinds. */
        c->io = loop_source_free(c->io);
        c->timer = loop_source_free(c->timer);

        if (err == 0 && c->err < 0)
                err = c->err;
        if (err == 0 && !c->stream_closed)
                err = -ECONNRESET;
        if (err == 0 && c->http_status != 200) {
                log_debug(NULL, c->socket_path, "call %s: HTTP status %d", c->method,
                          c->http_status);
                err = c->http_status == 0 && c->close_error ? -ECONNRESET : -EPROTO;
        }
        if (err == 0 && !c->have_status)
                err = c->close_error ? -ECONNRESET : -EPROTO;
        if (err == 0 && grpc_deframer_has_partial(&c->deframer))
                err = -EPROTO;
        if (err == 0 && !c->on_message && c->status == GRPC_STATUS_OK && c->n_msgs != 1)
                err = -EPROTO;
        if (err == 0) {
                status = (enum grpc_status) c->status;
                if (status == GRPC_STATUS_OK && !c->on_message) {
                        resp = c->resp;
                        len = c->resp_len;
                }
        }
        if (err < 0)
                log_debug(NULL, c->socket_path, "call %s failed: %s", c->method, strerror(-err));
        else
                log_debug(NULL, c->socket_path, "call %s: %s%s%s", c->method,
                          grpc_status_name(status), c->message ? ": " : "",
                          c->message ? c->message : "");

        if (c->ret_http_status)
                *c->ret_http_status = c->http_status;
        c->done(err, status, err == 0 ? c->message : NULL, resp, len, c->userdata);
}

/* ---------------------------------------------------------------------------------------------
 * nghttp2 callbacks: record what arrived, nothing more.
 */

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *user_data) {
        struct grpc_client_call *c = user_data;

        if (frame->hd.type != NGHTTP2_HEADERS || frame->hd.stream_id != c->stream_id)
                return 0;
        if (namelen == 7 && memcmp(name, ":status", 7) == 0) {
                if (frame->headers.cat != NGHTTP2_HCAT_RESPONSE)
                        return 0;
                uint64_t v;

                /* three digits, 100..999 */
                if (valuelen != 3 || value[0] == '0' ||
                    text_parse_u64n((const char *) value, valuelen, 999, &v) < 0) {
                        c->err = -EPROTO;
                        return 0;
                }
                c->http_status = (int) v;
        } else if (namelen == 11 && memcmp(name, "grpc-status", 11) == 0) {
                uint64_t v;

                if (valuelen > 4 || text_parse_u64n((const char *) value, valuelen, 9999, &v) < 0) {
                        c->err = -EPROTO;
                        return 0;
                }
                c->status = (int) v;
                c->have_status = true;
        } else if (namelen == 12 && memcmp(name, "grpc-message", 12) == 0) {
                free(c->message);
                c->message = grpc_message_decode((const char *) value, valuelen);
                if (!c->message)
                        c->err = -ENOMEM;
        }
        return 0;
}

/* grpc_deframer_fn: keeps the unary answer, or passes every message on. */
static int on_message(const uint8_t *msg, size_t len, uint8_t flags, void *userdata) {
        struct grpc_client_call *c = userdata;

        if (flags & GRPC_FLAG_COMPRESSED)
                return -EPROTO; /* we never offer compression */
        c->n_msgs++;
        if (c->on_message) {
                c->on_message(msg, len, c->userdata);
                return 0;
        }
        if (c->n_msgs > 1)
                return -EPROTO;
        c->resp = malloc(len > 0 ? len : 1);
        if (!c->resp)
                return -ENOMEM;
        memcpy(c->resp, msg, len);
        c->resp_len = len;
        return 0;
}

static int on_data_chunk_recv(nghttp2_session *session, uint8_t flags, int32_t stream_id,
                              const uint8_t *data, size_t len, void *user_data) {
        struct grpc_client_call *c = user_data;
        int r;

        if (stream_id != c->stream_id || c->err < 0 || c->over || c->http_status != 200)
                return 0;
        r = grpc_deframer_feed(&c->deframer, data, len, on_message, c);
        if (r == -EMSGSIZE)
                log_debug(NULL, c->socket_path, "call %s: response message over %u bytes",
                          c->method, MAX_RECV_MSG);
        if (r < 0)
                c->err = r == -ENOMEM ? r : -EPROTO; /* grpc_client.h: a malformed answer */
        return 0;
}

static int on_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code,
                           void *user_data) {
        struct grpc_client_call *c = user_data;

        if (stream_id != c->stream_id)
                return 0;
        c->stream_closed = true;
        c->close_error = error_code;
        return 0;
}

static ssize_t read_body(nghttp2_session *session, int32_t stream_id, uint8_t *buf, size_t length,
                         uint32_t *data_flags, nghttp2_data_source *source, void *user_data) {
        struct grpc_client_call *c = user_data;
        size_t n = grpc_buf_pending(&c->body);

        if (n > length)
                n = length;
        if (n > 0) {
                memcpy(buf, grpc_buf_head(&c->body), n);
                grpc_buf_consume(&c->body, n);
        }
        if (grpc_buf_pending(&c->body) == 0)
                *data_flags |= NGHTTP2_DATA_FLAG_EOF;
        return (ssize_t) n;
}

/* ---------------------------------------------------------------------------------------------
 * I/O
 */

/* Writes what nghttp2 has to say until the socket would block. Returns 0 or -errno. */
static int call_flush(struct grpc_client_call *c) {
        int r = grpc_io_flush(c->fd, c->session, &c->out, c->io, &c->events, NULL);

        return r == -EPIPE ? -ECONNRESET : r;
}

static void call_on_io(struct loop_source *src, int fd, uint32_t events, void *userdata) {
        struct grpc_client_call *c = userdata;
        uint8_t buf[READ_CHUNK];
        int r;

        call_enter(c);
        if (c->connecting) {
                int soerr = 0;
                socklen_t sl = sizeof(soerr);

                if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
                        soerr = errno;
                if (soerr != 0) {
                        call_complete(c, -soerr);
                        goto out_leave;
                }
                c->connecting = false;
        }

        if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                for (int i = 0; i < READS_PER_EVENT && !c->over; i++) {
                        int h2_error = 0;
                        ssize_t n = grpc_io_recv(c->fd, c->session, buf, sizeof(buf), &h2_error);

                        if (n == 0)
                                break;
                        if (n == -EPROTO) {
                                log_debug(NULL, c->socket_path, "call %s: HTTP/2 error: %s",
                                          c->method, nghttp2_strerror(h2_error));
                                call_complete(c, -EPROTO);
                                goto out_leave;
                        }
                        if (n < 0) {
                                /* A peer closing after a complete answer is fine. */
                                call_complete(c, c->stream_closed ? 0 : -ECONNRESET);
                                goto out_leave;
                        }
                        if (c->stream_closed || c->err < 0) {
                                call_complete(c, 0);
                                goto out_leave;
                        }
                        if ((size_t) n < sizeof(buf))
                                break;
                }
        }
        if (c->over)
                goto out_leave;
        r = call_flush(c);
        if (r < 0)
                call_complete(c, r);
        else if (c->stream_closed)
                call_complete(c, 0);
out_leave:
        call_leave(c);
}

static void call_on_timer(struct loop_source *src, void *userdata) {
        struct grpc_client_call *c = userdata;

        call_enter(c);
        call_complete(c, c->start_err < 0 ? c->start_err : -ETIMEDOUT);
        call_leave(c);
}

/* ---------------------------------------------------------------------------------------------
 * Starting a call
 */

static int call_setup_session(struct grpc_client_call *c, const char *authority,
                              uint64_t timeout_usec, const struct grpc_client_options *opts) {
        nghttp2_settings_entry iv[] = {
                {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
                {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, RECV_WINDOW},
        };
        nghttp2_session_callbacks *cb;
        nghttp2_nv nva[8 + MAX_EXTRA_HEADERS];
        nghttp2_data_provider prd = {.read_callback = read_body};
        char timeout[GRPC_TIMEOUT_MAX];
        size_t n = 0;
        int r;

        if (nghttp2_session_callbacks_new(&cb) < 0)
                return -ENOMEM;
        nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk_recv);
        nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
        r = nghttp2_session_client_new(&c->session, cb, c);
        nghttp2_session_callbacks_del(cb);
        if (r < 0)
                return -ENOMEM;

        r = nghttp2_submit_settings(c->session, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0]));
        if (r < 0)
                return -ENOMEM;
        r = nghttp2_session_set_local_window_size(c->session, NGHTTP2_FLAG_NONE, 0, RECV_WINDOW);
        if (r < 0)
                return -ENOMEM;

        nva[n++] = grpc_io_nv(":method", "POST");
        nva[n++] = grpc_io_nv(":scheme", "http");
        nva[n++] = grpc_io_nv(":path", c->method);
        nva[n++] = grpc_io_nv(":authority", authority ? authority : "localhost");
        nva[n++] = grpc_io_nv("content-type",
                              opts && opts->content_type ? opts->content_type : "application/grpc");
        nva[n++] = grpc_io_nv("user-agent", USER_AGENT);
        nva[n++] = grpc_io_nv("te", "trailers");
        if (timeout_usec > 0) {
                r = grpc_timeout_format(timeout_usec, timeout, sizeof(timeout));
                if (r < 0)
                        return r;
                nva[n++] = grpc_io_nv("grpc-timeout", timeout);
        }
        if (opts && opts->extra_headers)
                for (size_t i = 0; opts->extra_headers[i] && opts->extra_headers[i + 1]; i += 2) {
                        if (n == sizeof(nva) / sizeof(nva[0]))
                                return -E2BIG;
                        nva[n++] = grpc_io_nv(opts->extra_headers[i], opts->extra_headers[i + 1]);
                }

        /* nghttp2 copies the headers: the stack buffers above may go. */
        c->stream_id = nghttp2_submit_request(c->session, NULL, nva, n, &prd, c);
        if (c->stream_id < 0)
                return c->stream_id == NGHTTP2_ERR_NOMEM ? -ENOMEM : -EINVAL;
        return 0;
}

int grpc_client_call_start(struct loop *l, const char *socket_path, const char *authority,
                           const char *method, const uint8_t *req, size_t len,
                           uint64_t timeout_usec, const struct grpc_client_options *opts,
                           grpc_client_done_fn done, void *userdata,
                           struct grpc_client_call **ret) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        struct grpc_client_call *c;
        uint64_t first_tick = 0;
        int r;

        if (strlen(socket_path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        memcpy(sa.sun_path, socket_path, strlen(socket_path) + 1);

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->loop = l;
        c->fd = -1;
        c->done = done;
        c->userdata = userdata;
        grpc_deframer_init(&c->deframer, MAX_RECV_MSG);
        if (opts) {
                c->on_message = opts->on_message;
                c->ret_http_status = opts->ret_http_status;
        }
        c->socket_path = strdup(socket_path);
        c->method = strdup(method);
        if (!c->socket_path || !c->method) {
                r = -ENOMEM;
                goto out_free_call;
        }
        r = opts && opts->raw_body ? grpc_buf_append(&c->body, req, len)
                                   : grpc_buf_append_message(&c->body, req, len);
        if (r < 0)
                goto out_free_call;
        r = call_setup_session(c, authority, timeout_usec, opts);
        if (r < 0)
                goto out_free_call;

        c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (c->fd < 0) {
                r = -errno;
                goto out_free_call;
        }
        r = loop_add_timer(l, call_on_timer, c, &c->timer);
        if (r < 0)
                goto out_free_call;

        if (connect(c->fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
                if (errno == EINPROGRESS)
                        c->connecting = true;
                else {
                        /* Reported from the loop, never from in here. EAGAIN: backlog full. */
                        c->start_err = -errno;
                        first_tick = DEFER_USEC;
                }
        }
        if (c->start_err == 0) {
                r = loop_add_io(l, c->fd, EPOLLOUT, call_on_io, c, &c->io);
                if (r < 0)
                        goto out_free_call;
                c->events = EPOLLOUT;
                first_tick = timeout_usec;
        }
        if (first_tick > 0) {
                r = loop_timer_arm(c->timer, first_tick, 0);
                if (r < 0)
                        goto out_free_call;
        }

        *ret = c;
        return 0;

out_free_call:
        call_free(c);
        return r;
}

int grpc_client_unary(struct loop *l, const char *socket_path, const char *authority,
                      const char *method, const uint8_t *req, size_t len, uint64_t timeout_usec,
                      grpc_client_done_fn done, void *userdata, struct grpc_client_call **ret) {
        return grpc_client_call_start(l, socket_path, authority, method, req, len, timeout_usec,
                                      NULL, done, userdata, ret);
}

struct grpc_client_call *grpc_client_call_cancel(struct grpc_client_call *c) {
        if (!c || c->over)
                return NULL;
        c->over = true;
        c->io = loop_source_free(c->io);
        c->timer = loop_source_free(c->timer);
        if (c->busy == 0)
                call_free(c);
        return NULL;
}
