/*
 * test_grpc_io.c - src/grpc_io.c over a socketpair: the flush waits for EPOLLOUT only while the
 * socket is full, the epoll mask is set only when it changes, and a read tells "would block",
 * "closed by the peer" and "not HTTP/2" apart.
 */
#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>

#include "grpc_frame.h"
#include "grpc_io.h"
#include "loop.h"
#include "unit.h"

static void on_io(struct loop_source *s, int fd, uint32_t events, void *userdata) {
}

struct pair {
        struct loop *loop;
        int fd[2]; /* [0] ours, [1] the peer's */
        struct loop_source *io;
        uint32_t events;
        nghttp2_session *session;
        struct grpc_buf out;
};

static void pair_open(struct pair *p) {
        nghttp2_session_callbacks *cb;

        memset(p, 0, sizeof(*p));
        CHECK_INT(loop_new(&p->loop), 0);
        CHECK_INT(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, p->fd), 0);
        CHECK_INT(loop_add_io(p->loop, p->fd[0], EPOLLIN, on_io, p, &p->io), 0);
        p->events = EPOLLIN;
        CHECK_INT(nghttp2_session_callbacks_new(&cb), 0);
        CHECK_INT(nghttp2_session_server_new(&p->session, cb, p), 0);
        nghttp2_session_callbacks_del(cb);
}

static void pair_close(struct pair *p) {
        p->io = loop_source_free(p->io);
        nghttp2_session_del(p->session);
        grpc_buf_free(&p->out);
        close(p->fd[0]);
        if (p->fd[1] >= 0)
                close(p->fd[1]);
        p->loop = loop_free(p->loop);
}

static void test_grpc_io_set_events_only_on_change(void) {
        struct pair p;

        pair_open(&p);
        CHECK_INT(grpc_io_set_events(p.io, &p.events, EPOLLIN), 0);
        CHECK_INT(p.events, EPOLLIN);
        CHECK_INT(grpc_io_set_events(p.io, &p.events, EPOLLIN | EPOLLOUT), 0);
        CHECK_INT(p.events, EPOLLIN | EPOLLOUT);
        /* A stale record is trusted: nothing is asked of epoll, so a freed source is not used. */
        CHECK_INT(grpc_io_set_events(NULL, &p.events, EPOLLIN | EPOLLOUT), 0);
        pair_close(&p);
}

static void test_grpc_io_flush_waits_for_epollout_when_full(void) {
        static uint8_t junk[64 * 1024];
        nghttp2_settings_entry iv = {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 1};
        struct pair p;
        uint8_t buf[65536];
        int sndbuf = 4096;

        pair_open(&p);
        /* Nothing queued but our SETTINGS: all goes out, the mask stays EPOLLIN. */
        CHECK_INT(nghttp2_submit_settings(p.session, NGHTTP2_FLAG_NONE, &iv, 1), 0);
        CHECK_INT(grpc_io_flush(p.fd[0], p.session, &p.out, p.io, &p.events, NULL), 0);
        CHECK_INT(grpc_buf_pending(&p.out), 0);
        CHECK_INT(p.events, EPOLLIN);
        CHECK(recv(p.fd[1], buf, sizeof(buf), MSG_DONTWAIT) >= 9);

        /* A full socket: what is left waits in |out|, and the mask asks for EPOLLOUT. */
        CHECK_INT(setsockopt(p.fd[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)), 0);
        while (send(p.fd[0], junk, sizeof(junk), MSG_DONTWAIT) > 0)
                ;
        CHECK_INT(grpc_buf_append(&p.out, junk, 100), 0);
        CHECK_INT(grpc_io_flush(p.fd[0], p.session, &p.out, p.io, &p.events, NULL), 0);
        CHECK_INT(grpc_buf_pending(&p.out), 100);
        CHECK_INT(p.events, EPOLLIN | EPOLLOUT);

        /* The peer reads everything: the rest goes, the mask drops EPOLLOUT. */
        while (recv(p.fd[1], buf, sizeof(buf), MSG_DONTWAIT) > 0)
                ;
        CHECK_INT(grpc_io_flush(p.fd[0], p.session, &p.out, p.io, &p.events, NULL), 0);
        CHECK_INT(grpc_buf_pending(&p.out), 0);
        CHECK_INT(p.events, EPOLLIN);

        /* A peer gone: the send() error comes back as it is. */
        close(p.fd[1]);
        p.fd[1] = -1;
        CHECK_INT(grpc_buf_append(&p.out, junk, 100), 0);
        CHECK_INT(grpc_io_flush(p.fd[0], p.session, &p.out, p.io, &p.events, NULL), -EPIPE);
        pair_close(&p);
}

static void test_grpc_io_recv_tells_results_apart(void) {
        static const char preface[] = NGHTTP2_CLIENT_MAGIC;
        uint8_t buf[256];
        struct pair p;
        int h2_error = 0;

        pair_open(&p);
        CHECK_INT(grpc_io_recv(p.fd[0], p.session, buf, sizeof(buf), &h2_error), 0);
        CHECK_INT(send(p.fd[1], preface, strlen(preface), 0), (ssize_t) strlen(preface));
        CHECK_INT(grpc_io_recv(p.fd[0], p.session, buf, sizeof(buf), &h2_error),
                  (ssize_t) strlen(preface));
        CHECK_INT(h2_error, 0);
        close(p.fd[1]);
        p.fd[1] = -1;
        CHECK_INT(grpc_io_recv(p.fd[0], p.session, buf, sizeof(buf), &h2_error), -ECONNRESET);
        pair_close(&p);

        /* Not HTTP/2: -EPROTO, with nghttp2's reason. */
        pair_open(&p);
        CHECK_INT(send(p.fd[1], "GET / HTTP/1.1\r\n\r\n", 18, 0), 18);
        CHECK_INT(grpc_io_recv(p.fd[0], p.session, buf, sizeof(buf), &h2_error), -EPROTO);
        CHECK_INT(h2_error, NGHTTP2_ERR_BAD_CLIENT_MAGIC);
        pair_close(&p);
}

int main(void) {
        RUN(test_grpc_io_set_events_only_on_change);
        RUN(test_grpc_io_flush_waits_for_epollout_when_full);
        RUN(test_grpc_io_recv_tells_results_apart);
        return unit_done();
}
