/*
 * grpc_client_internal.h - a lower-level entry point into grpc_client.c, for unit tests and
 * diagnostics: it can send malformed or unusual requests (other content-types, extra headers, a
 * raw DATA payload) and receive server-streaming answers. Not a service API: services use
 * grpc_client.h.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "grpc_client.h"

/* Called for each response message; runs inside the client's HTTP/2 processing, so it may only
 * look at the message and cancel the call. |msg| is valid only during the call. */
typedef void (*grpc_client_message_fn)(const uint8_t *msg, size_t len, void *userdata);

struct grpc_client_options {
        const char *content_type;          /* NULL: "application/grpc" */
        const char *const *extra_headers;  /* name, value, name, value..., NULL; or NULL */
        bool raw_body;                     /* send |req| as the DATA payload as is, unframed */
        grpc_client_message_fn on_message; /* non-NULL: every message goes here, and done gets
                                               resp == NULL (any number of messages is fine) */
        int *ret_http_status;              /* if non-NULL, set to the :status before done runs
                                              (0 if none was received) */
};

/*
 * Like grpc_client_unary(), with |opts| (may be NULL, then it is grpc_client_unary()). Everything
 * |opts| points to is needed only during this call, except |ret_http_status|, which must stay
 * valid until done runs or the call is cancelled.
 */
int grpc_client_call_start(struct loop *l, const char *socket_path, const char *authority,
                           const char *method, const uint8_t *req, size_t len,
                           uint64_t timeout_usec, const struct grpc_client_options *opts,
                           grpc_client_done_fn done, void *userdata, struct grpc_client_call **ret);
