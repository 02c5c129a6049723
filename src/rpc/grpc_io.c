/*
 * grpc_io.c - the non-blocking socket and nghttp2 session plumbing shared by grpc_server.c and
 * grpc_client.c (see grpc_io.h). Knows no calls, methods or services; never logs.
 */
#include "grpc_io.h"

#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

nghttp2_nv grpc_io_nv(const char *name, const char *value) {
        return (nghttp2_nv){
                .name = (uint8_t *) name,
                .value = (uint8_t *) value,
                .namelen = strlen(name),
                .valuelen = strlen(value),
                .flags = NGHTTP2_NV_FLAG_NONE,
        };
}

int grpc_io_set_events(struct loop_source *src, uint32_t *cur, uint32_t events) {
        int r;

        if (*cur == events)
                return 0;
        r = loop_io_set_events(src, events);
        if (r < 0)
                return r;
        *cur = events;
        return 0;
}

int grpc_io_flush(int fd, nghttp2_session *session, struct grpc_buf *out, struct loop_source *src,
                  uint32_t *events, int *ret_h2_error) {
        for (;;) {
                while (grpc_buf_pending(out) > 0) {
                        ssize_t n = send(fd, grpc_buf_head(out), grpc_buf_pending(out),
                                         MSG_NOSIGNAL | MSG_DONTWAIT);
                        if (n < 0) {
                                if (errno == EINTR)
                                        continue;
                                if (errno == EAGAIN || errno == EWOULDBLOCK)
                                        return grpc_io_set_events(src, events, EPOLLIN | EPOLLOUT);
                                return -errno;
                        }
                        grpc_buf_consume(out, (size_t) n);
                }

                const uint8_t *data;
                ssize_t n = nghttp2_session_mem_send(session, &data);
                if (n < 0) {
                        if (ret_h2_error)
                                *ret_h2_error = (int) n;
                        return -EPROTO;
                }
                if (n == 0)
                        break;
                if (grpc_buf_append(out, data, (size_t) n) < 0)
                        return -ENOMEM;
        }
        return grpc_io_set_events(src, events, EPOLLIN);
}

ssize_t grpc_io_recv(int fd, nghttp2_session *session, uint8_t *buf, size_t size,
                     int *ret_h2_error) {
        ssize_t n, rv;

        do
                n = recv(fd, buf, size, MSG_DONTWAIT);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
        if (n == 0)
                return -ECONNRESET;
        rv = nghttp2_session_mem_recv(session, buf, (size_t) n);
        if (rv < 0) {
                if (ret_h2_error)
                        *ret_h2_error = (int) rv;
                return -EPROTO;
        }
        return n;
}
