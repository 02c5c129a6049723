/*
 * floor.c - the benchmark's floor: an ideal gRPC endpoint on a unix socket that answers every
 * Allocate with canned bytes over nghttp2, and every other call with an empty message. No
 * decoding, no checks, no logging: what is left of a call's latency is the client's own cost,
 * the kernel's and nghttp2's. One thread, one epoll loop, like the daemon.
 *
 *   floor SOCKET
 *
 * Not part of the product and not built by meson: bench/build.sh compiles it with cc against
 * libnghttp2 (pkg-config). SIGTERM or SIGINT ends it with exit 0 (so LD_PRELOAD probes can write
 * their results from a destructor).
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>

#define READ_CHUNK 16384

/* One canned gRPC message: the 5-byte prefix and the protobuf bytes. */
struct canned {
        uint8_t bytes[512];
        size_t len;
};

static struct canned alloc_answer, empty_answer;
static volatile sig_atomic_t stopping;

/* ---- the canned AllocateResponse, encoded by hand (what sgxdevplugin answers for sgx) ---- */

static size_t put_varint(uint8_t *p, size_t v) {
        size_t n = 0;

        while (v >= 0x80) {
                p[n++] = (uint8_t) (v | 0x80);
                v >>= 7;
        }
        p[n++] = (uint8_t) v;
        return n;
}

static size_t put_bytes(uint8_t *p, unsigned field, const void *data, size_t len) {
        size_t n = put_varint(p, (size_t) field << 3 | 2);

        n += put_varint(p + n, len);
        memcpy(p + n, data, len);
        return n + len;
}

static size_t put_str(uint8_t *p, unsigned field, const char *s) {
        return put_bytes(p, field, s, strlen(s));
}

static void make_canned(void) {
        static const char *const specs[4][2] = {
                {"/dev/sgx_enclave", "/dev/sgx_enclave"},
                {"/dev/sgx/enclave", "/dev/sgx_enclave"},
                {"/dev/sgx_provision", "/dev/sgx_provision"},
                {"/dev/sgx/provision", "/dev/sgx_provision"},
        };
        uint8_t container[400], spec[100], *msg = alloc_answer.bytes + 5;
        size_t clen = 0, mlen;

        for (size_t i = 0; i < 4; i++) {
                size_t slen = 0;

                slen += put_str(spec + slen, 1, specs[i][0]); /* container_path */
                slen += put_str(spec + slen, 2, specs[i][1]); /* host_path */
                slen += put_str(spec + slen, 3, "rw");        /* permissions */
                clen += put_bytes(container + clen, 3, spec, slen); /* devices */
        }
        mlen = put_bytes(msg, 1, container, clen); /* container_responses */
        alloc_answer.bytes[0] = 0;
        alloc_answer.bytes[1] = (uint8_t) (mlen >> 24);
        alloc_answer.bytes[2] = (uint8_t) (mlen >> 16);
        alloc_answer.bytes[3] = (uint8_t) (mlen >> 8);
        alloc_answer.bytes[4] = (uint8_t) mlen;
        alloc_answer.len = 5 + mlen;
        memset(empty_answer.bytes, 0, 5);
        empty_answer.len = 5;
}

/* ---- streams and connections ---- */

struct stream {
        const struct canned *answer;
        size_t off;
};

struct conn {
        int fd;
        nghttp2_session *session;
        uint8_t *out; /* bytes nghttp2 gave us that the socket has not taken */
        size_t out_len, out_cap;
        bool want_out; /* EPOLLOUT armed */
};

static int epfd;

static ssize_t read_answer(nghttp2_session *session, int32_t stream_id, uint8_t *buf,
                           size_t length, uint32_t *data_flags, nghttp2_data_source *source,
                           void *user_data) {
        struct stream *st = source->ptr;
        size_t n = st->answer->len - st->off;
        nghttp2_nv trailer = {(uint8_t *) "grpc-status", (uint8_t *) "0", 11, 1,
                              NGHTTP2_NV_FLAG_NONE};

        if (n > length)
                n = length;
        memcpy(buf, st->answer->bytes + st->off, n);
        st->off += n;
        if (st->off == st->answer->len) {
                *data_flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
                if (nghttp2_submit_trailer(session, stream_id, &trailer, 1) < 0)
                        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        }
        return (ssize_t) n;
}

static int on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame, void *user_data) {
        struct stream *st;

        if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
                return 0;
        st = calloc(1, sizeof(*st));
        if (!st)
                return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        st->answer = &empty_answer;
        return nghttp2_session_set_stream_user_data(session, frame->hd.stream_id, st);
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *user_data) {
        static const char allocate[] = "/v1beta1.DevicePlugin/Allocate";
        struct stream *st = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);

        if (st && namelen == 5 && memcmp(name, ":path", 5) == 0 &&
            valuelen == sizeof(allocate) - 1 && memcmp(value, allocate, valuelen) == 0)
                st->answer = &alloc_answer;
        return 0;
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user_data) {
        static const nghttp2_nv headers[] = {
                {(uint8_t *) ":status", (uint8_t *) "200", 7, 3, NGHTTP2_NV_FLAG_NONE},
                {(uint8_t *) "content-type", (uint8_t *) "application/grpc", 12, 16,
                 NGHTTP2_NV_FLAG_NONE},
        };
        struct stream *st;
        nghttp2_data_provider prd;

        if ((frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) ||
            !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
                return 0;
        st = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
        if (!st)
                return 0;
        prd.source.ptr = st;
        prd.read_callback = read_answer;
        if (nghttp2_submit_response(session, frame->hd.stream_id, headers, 2, &prd) < 0)
                return NGHTTP2_ERR_CALLBACK_FAILURE;
        return 0;
}

static int on_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code,
                           void *user_data) {
        free(nghttp2_session_get_stream_user_data(session, stream_id));
        return 0;
}

static nghttp2_session_callbacks *callbacks;
static nghttp2_option *option;

static void conn_free(struct conn *c) {
        epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        nghttp2_session_del(c->session);
        free(c->out);
        free(c);
}

/* Writes what nghttp2 has to send; returns -1 when the connection must go. */
static int conn_flush(struct conn *c) {
        for (;;) {
                while (c->out_len > 0) {
                        ssize_t n = send(c->fd, c->out, c->out_len, MSG_NOSIGNAL | MSG_DONTWAIT);

                        if (n < 0 && errno == EINTR)
                                continue;
                        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                                struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT,
                                                         .data.ptr = c};

                                if (!c->want_out)
                                        epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
                                c->want_out = true;
                                return 0;
                        }
                        if (n < 0)
                                return -1;
                        memmove(c->out, c->out + n, c->out_len - (size_t) n);
                        c->out_len -= (size_t) n;
                }
                const uint8_t *data;
                ssize_t n = nghttp2_session_mem_send(c->session, &data);

                if (n < 0)
                        return -1;
                if (n == 0)
                        break;
                if (c->out_len + (size_t) n > c->out_cap) {
                        size_t cap = (c->out_len + (size_t) n) * 2;
                        uint8_t *p = realloc(c->out, cap);

                        if (!p)
                                return -1;
                        c->out = p;
                        c->out_cap = cap;
                }
                memcpy(c->out + c->out_len, data, (size_t) n);
                c->out_len += (size_t) n;
        }
        if (c->want_out) {
                struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};

                epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
                c->want_out = false;
        }
        return 0;
}

static void conn_on_io(struct conn *c, uint32_t events) {
        uint8_t buf[READ_CHUNK];

        if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                for (;;) {
                        ssize_t n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);

                        if (n < 0 && errno == EINTR)
                                continue;
                        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                                break;
                        if (n <= 0 || nghttp2_session_mem_recv(c->session, buf, (size_t) n) < 0) {
                                conn_free(c);
                                return;
                        }
                        if ((size_t) n < sizeof(buf))
                                break;
                }
        }
        if (conn_flush(c) < 0 ||
            (!nghttp2_session_want_read(c->session) && !nghttp2_session_want_write(c->session) &&
             c->out_len == 0))
                conn_free(c);
}

static void conn_new(int fd) {
        nghttp2_settings_entry iv[] = {
                {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 100},
                {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20},
        };
        struct epoll_event ev = {.events = EPOLLIN};
        struct conn *c = calloc(1, sizeof(*c));

        if (!c) {
                close(fd);
                return;
        }
        c->fd = fd;
        if (nghttp2_session_server_new2(&c->session, callbacks, c, option) < 0) {
                free(c);
                close(fd);
                return;
        }
        nghttp2_submit_settings(c->session, NGHTTP2_FLAG_NONE, iv, 2);
        nghttp2_session_set_local_window_size(c->session, NGHTTP2_FLAG_NONE, 0, 1 << 20);
        ev.data.ptr = c;
        if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0 || conn_flush(c) < 0)
                conn_free(c);
}

static void on_signal(int sig) {
        stopping = 1;
}

int main(int argc, char **argv) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        struct sigaction sact = {.sa_handler = on_signal};
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
        int lfd;

        if (argc != 2 || strlen(argv[1]) >= sizeof(sa.sun_path)) {
                fprintf(stderr, "usage: floor SOCKET\n");
                return 2;
        }
        make_canned();
        sigaction(SIGTERM, &sact, NULL);
        sigaction(SIGINT, &sact, NULL);
        signal(SIGPIPE, SIG_IGN);

        nghttp2_session_callbacks_new(&callbacks);
        nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks, on_begin_headers);
        nghttp2_session_callbacks_set_on_header_callback(callbacks, on_header);
        nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, on_frame_recv);
        nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, on_stream_close);
        nghttp2_option_new(&option);
        nghttp2_option_set_no_http_messaging(option, 1);

        memcpy(sa.sun_path, argv[1], strlen(argv[1]) + 1);
        unlink(argv[1]);
        lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (lfd < 0 || bind(lfd, (struct sockaddr *) &sa, sizeof(sa)) < 0 ||
            listen(lfd, SOMAXCONN) < 0) {
                perror("floor: listen");
                return 1;
        }
        epfd = epoll_create1(EPOLL_CLOEXEC);
        epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &ev);

        while (!stopping) {
                struct epoll_event events[32];
                int n = epoll_wait(epfd, events, 32, -1);

                for (int i = 0; i < n; i++) {
                        if (events[i].data.ptr == NULL) {
                                int fd;

                                while ((fd = accept4(lfd, NULL, NULL,
                                                     SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0)
                                        conn_new(fd);
                        } else
                                conn_on_io(events[i].data.ptr, events[i].events);
                }
        }
        unlink(argv[1]);
        return 0;
}
