/*
 * apiclient_internal.h - the HTTP/2 half of apiclient.c without a socket or TLS: one request on
 * an nghttp2 client session that takes the server's bytes (after TLS) from memory and yields the
 * bytes to send and, at the end, the response. api_request() drives it over TLS; the fuzz target
 * (fuzz/fuzz_apiclient.c) and the unit tests drive it from buffers. Not a service API.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "apiclient.h"

struct api_h2;

/*
 * A client session with SETTINGS and the request queued: |method| |path| with :scheme https,
 * :authority |authority|, "authorization: Bearer |token|", |content_type| (NULL: none), accept
 * application/json, our user-agent, and |body| (NULL: no body). |body| is borrowed and must stay
 * valid until api_h2_free(); the strings are copied by nghttp2 at once.
 * Returns 0 with *ret set, -ENOMEM, or -EINVAL (nghttp2 refused the request).
 */
int api_h2_new(const char *authority, const char *method, const char *path,
               const char *content_type, const char *token, const char *body, size_t body_len,
               struct api_h2 **ret);

/* Destroys the session; accepts NULL; returns NULL. */
struct api_h2 *api_h2_free(struct api_h2 *h);

/*
 * The next bytes for the server in *ret_data (valid until the next call on |h|): returns their
 * length, 0 when nothing is pending, or -errno (the session failed; see api_h2_result()).
 */
ssize_t api_h2_send(struct api_h2 *h, const uint8_t **ret_data);

/* Feeds |len| bytes the server sent. Returns 0, or -errno when the session failed. */
int api_h2_recv(struct api_h2 *h, const uint8_t *data, size_t len);

/* The server closed the connection: an answer not complete by now is an error. */
void api_h2_eof(struct api_h2 *h);

/* True when nothing more is to be read: the answer is complete, or the request failed. */
bool api_h2_done(const struct api_h2 *h);

/*
 * The outcome: 0 with *ret filled (status, the body handed over, the Status message of a non-2xx
 * answer), or -errno with one line in |err| (without the server's name: the caller adds it):
 * -EMSGSIZE (body over API_MAX_BODY), -EPROTO (reset stream, GOAWAY, bad frames), -ECONNRESET
 * (closed before the answer was complete), -ENOMEM. Call once, when api_h2_done() (or after
 * api_h2_eof()); *ret is left cleared on an error.
 */
int api_h2_result(struct api_h2 *h, struct api_response *ret, char *err, size_t errsz);
