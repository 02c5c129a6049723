/*
 * grpc_server.h - the server side of gRPC over HTTP/2 (nghttp2) on a unix socket, driven by the
 * event loop. Unary and server-streaming calls. The transport knows no service: it routes by
 * method path to the handlers it is given and hands them whole, deframed request messages.
 *
 * Protocol duties handled here (the service never sees them): HTTP/2 SETTINGS sent as soon as a
 * connection is accepted; :method POST, content-type application/grpc[+proto] (else HTTP 415);
 * any :authority accepted (kubelets before 1.26 send the socket path); grpc-encoding other than
 * identity -> UNIMPLEMENTED; compressed flag without grpc-encoding -> INTERNAL; grpc-timeout ->
 * DEADLINE_EXCEEDED when it expires (RST_STREAM(CANCEL) instead if a message is half sent, so no
 * client sees a truncated message); a message over the receive limit -> RESOURCE_EXHAUSTED
 * without buffering it; unknown path -> UNIMPLEMENTED; garbage or HTTP/1.1 -> connection closed and
 * logged. A peer that stops reading never blocks anyone: every socket is non-blocking.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "grpc_status.h"

struct loop;
struct grpc_server;
struct grpc_call;

#define GRPC_DEFAULT_MAX_RECV_MSG (4u * 1024 * 1024)

/*
 * Called once per call, from the loop, when the request message is complete and the client has
 * half-closed its side. |req| is valid only during the callback. A unary handler answers with
 * grpc_call_reply() or grpc_call_fail(), now or later; a streaming handler sends with
 * grpc_call_send() for as long as it likes and ends with grpc_call_finish().
 */
typedef void (*grpc_handler_fn)(struct grpc_call *call, const uint8_t *req, size_t len,
                                void *userdata);

/*
 * Called once for every call whose handler ran, when the call ends for any reason: the peer reset
 * the stream or closed the connection, the deadline expired, the server is freed, or the call
 * was finished by us and its last frame went out. |by_peer| is true when the peer ended it before
 * we finished it. The call is freed right after this returns.
 */
typedef void (*grpc_call_closed_fn)(struct grpc_call *call, bool by_peer, void *userdata);

struct grpc_method {
        const char *path; /* "/v1beta1.DevicePlugin/Allocate" */
        bool server_streaming;
        grpc_handler_fn on_request;
};

struct grpc_server_config {
        const struct grpc_method *methods; /* borrowed; must outlive the server */
        size_t n_methods;
        grpc_call_closed_fn on_call_closed; /* may be NULL */
        void *userdata;                     /* passed to every handler */
        size_t max_recv_msg;                /* 0: GRPC_DEFAULT_MAX_RECV_MSG */
        const char *log_resource;           /* resource name for log lines; borrowed, may be NULL */
};

/*
 * Binds and listens on the unix socket |path| (a stale socket file there is replaced), and
 * serves it from |l|. Remembers the bound socket's st_dev/st_ino. Returns 0, -ENAMETOOLONG,
 * -errno of socket/bind/listen, -ENOMEM.
 */
int grpc_server_new(struct loop *l, const char *path, const struct grpc_server_config *cfg,
                    struct grpc_server **ret);

/*
 * Ends every call (on_call_closed with by_peer=false), closes every connection and the listening
 * socket, and unlinks the path only if it is still the socket we bound (same st_dev/st_ino).
 * Accepts NULL, returns NULL.
 */
struct grpc_server *grpc_server_free(struct grpc_server *s);

/* True when |path| still names the socket this server bound (same st_dev/st_ino). */
bool grpc_server_owns_path(const struct grpc_server *s);

/* Number of open connections (for tests and logs). */
size_t grpc_server_n_connections(const struct grpc_server *s);

/* Per-call userdata for the service (NULL until set). */
void grpc_call_set_userdata(struct grpc_call *call, void *userdata);
void *grpc_call_get_userdata(const struct grpc_call *call);
const char *grpc_call_method(const struct grpc_call *call);

/*
 * Queues one response message (copied) on a call and flushes it as soon as flow control allows.
 * Safe to call from any loop callback, including from inside another call's handler.
 * Returns 0, -EPIPE if the call has ended, -ENOMEM.
 */
int grpc_call_send(struct grpc_call *call, const uint8_t *msg, size_t len);

/*
 * Like grpc_call_send(), for streams whose every message is the whole state (ListAndWatch):
 * queued messages that nghttp2 has not begun to send are dropped first, so a peer that stops
 * reading costs at most the message on the wire plus this one, and gets the newest when it
 * reads again. Returns as grpc_call_send().
 */
int grpc_call_send_latest(struct grpc_call *call, const uint8_t *msg, size_t len);

/* Ends a call with trailers grpc-status (and grpc-message, percent-encoded, if non-NULL). */
int grpc_call_finish(struct grpc_call *call, enum grpc_status status, const char *message);

/* Unary helpers: one message then OK; or no message and an error status. */
int grpc_call_reply(struct grpc_call *call, const uint8_t *msg, size_t len);
int grpc_call_fail(struct grpc_call *call, enum grpc_status status, const char *message);
