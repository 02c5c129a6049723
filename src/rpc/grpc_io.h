/*
 * grpc_io.h - the non-blocking socket and nghttp2 session plumbing shared by grpc_server.c and
 * grpc_client.c: the epoll mask set only when it changes, nghttp2's output flushed through a
 * byte queue to the socket until it would block, and socket input fed to nghttp2. Knows no
 * calls, methods or services, and never logs.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <nghttp2/nghttp2.h>

#include "grpc_frame.h"
#include "loop.h"

/* A header field from two NUL-terminated strings, borrowed (nghttp2 copies them on submit). */
nghttp2_nv grpc_io_nv(const char *name, const char *value);

/* Sets the epoll mask of |src| to |events| if *|cur| differs, then records it. 0 or -errno. */
int grpc_io_set_events(struct loop_source *src, uint32_t *cur, uint32_t events);

/*
 * Writes what |session| has to say, through |out|, to the non-blocking socket |fd| until the
 * socket would block (then the mask of |src| becomes EPOLLIN | EPOLLOUT) or nothing is left
 * (EPOLLIN). Must not run inside an nghttp2 callback of |session|. Returns 0; -EPROTO when
 * nghttp2 fails (its error code in *|ret_h2_error| if non-NULL); -ENOMEM; or the send() -errno.
 */
int grpc_io_flush(int fd, nghttp2_session *session, struct grpc_buf *out, struct loop_source *src,
                  uint32_t *events, int *ret_h2_error);

/*
 * Reads once from the non-blocking socket |fd| into |buf| (|size| bytes; EINTR is retried) and
 * feeds what came to |session|. Returns the number of bytes read and fed (> 0); 0 when the
 * socket would block; -ECONNRESET when the peer closed it; the recv() -errno; or -EPROTO when
 * nghttp2 rejects the input (its error code in *|ret_h2_error| if non-NULL).
 */
ssize_t grpc_io_recv(int fd, nghttp2_session *session, uint8_t *buf, size_t size,
                     int *ret_h2_error);
