/*
 * grpc_client.h - the client side of gRPC over HTTP/2 (nghttp2) on a unix socket, for unary
 * calls, driven by the event loop and never blocking it (non-blocking connect, reads and writes).
 * Used for Register on the kubelet's socket, and by tools that call our own socket.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "grpc_status.h"

struct loop;
struct grpc_client_call;

/*
 * Called exactly once per call (unless cancelled), always from the loop and never from inside
 * grpc_client_unary() itself. |err| is 0 when the server answered with a gRPC status (then
 * |status|, |message| and, for OK, the response message |resp|/|len| are set), or -errno when
 * the transport failed: -ECONNREFUSED/-ENOENT on connect, -ETIMEDOUT when |timeout_usec|
 * expired, -ECONNRESET when the peer went away, -EPROTO for a malformed answer. The call is freed
 * after this returns; |message| and |resp| are valid only during the callback.
 */
typedef void (*grpc_client_done_fn)(int err, enum grpc_status status, const char *message,
                                    const uint8_t *resp, size_t len, void *userdata);

/*
 * Starts a unary call of |method| ("/v1beta1.Registration/Register") on the unix socket
 * |socket_path|, sending |req| (copied) with grpc-timeout derived from |timeout_usec|.
 * |authority| may be NULL ("localhost"). Returns 0 and sets *ret (a handle for cancelling,
 * valid until done runs), or -errno if the call could not even start (-ENAMETOOLONG, -ENOMEM).
 */
int grpc_client_unary(struct loop *l, const char *socket_path, const char *authority,
                      const char *method, const uint8_t *req, size_t len, uint64_t timeout_usec,
                      grpc_client_done_fn done, void *userdata, struct grpc_client_call **ret);

/* Cancels a call that has not completed: done is not called. Accepts NULL, returns NULL. */
struct grpc_client_call *grpc_client_call_cancel(struct grpc_client_call *c);
