/*
 * apiclient.h - a small, blocking client for the Kubernetes API server: TLS through OpenSSL
 * (certificate verification always on: IP SANs for an IP address, the host name otherwise),
 * HTTP/2 through nghttp2, negotiated by ALPN (a server that will not speak h2 is an error),
 * a bearer token re-read from its file for every request, one request per connection, every
 * step bounded by a timeout and abandoned when a cancel fd becomes readable.
 * Meant to run on a thread of its own (labeler.c): it never touches the event loop.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#define API_DEFAULT_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"
#define API_MAX_BODY (1u << 20)       /* a response body larger than this is an error */
#define API_DEFAULT_TIMEOUT_MS 10000u /* api_config_init() with timeout_ms 0 */

struct api_config {
        char host[256];  /* "10.96.0.1", "api.example.com", "::1" (no brackets) */
        char port[8];    /* "443" */
        bool host_is_ip; /* verify against IP SANs */
        char token_file[4096];
        char ca_file[4096];
        unsigned timeout_ms; /* the whole request: connect, handshake, send, answer (not the
                                name lookup, which getaddrinfo() does not bound) */
};

/*
 * Fills |ret| from --apiserver |url| ("https://HOST[:PORT]", IPv6 as "[::1]:6443", no path) or,
 * when |url| is NULL, from the in-cluster environment (KUBERNETES_SERVICE_HOST, _PORT); token and
 * CA files default to the service account's under API_DEFAULT_SA_DIR; |timeout_ms| 0 is
 * API_DEFAULT_TIMEOUT_MS. A trailing "/" is accepted; a path, query, fragment, user information,
 * another scheme or a port outside 1..65535 is not. Returns 0, or -EINVAL with one line in |err|
 * (a malformed URL, no in-cluster environment).
 */
int api_config_init(struct api_config *ret, const char *url, const char *token_file,
                    const char *ca_file, unsigned timeout_ms, char *err, size_t errsz);

struct api_response {
        int status; /* HTTP status, e.g. 200, 403 */
        char *body; /* NUL-terminated, malloc'd (may be empty); free with api_response_clear */
        size_t body_len;
        char message[512]; /* the k8s Status "message" of an error answer, else "" */
};

void api_response_clear(struct api_response *r);

/*
 * One request: |method| |path| with |body| (may be NULL) of |content_type|, "Authorization:
 * Bearer <token>" from the token file read now. Blocks at most cfg->timeout_ms; returns early
 * with -ECANCELED when |cancel_fd| (>= 0) becomes readable.
 * Returns 0 with *ret filled (any HTTP status), or -errno with one line in |err| saying what
 * failed, e.g.: -ENOENT/-EACCES (token or CA file), -EINVAL (an empty token, a CA file with no
 * certificate), -EFBIG (a token over 64 KiB), -EHOSTUNREACH (name lookup), -ECONNREFUSED,
 * -ETIMEDOUT ("API server HOST:PORT did not answer within 1.0 s", naming the step),
 * -EPROTO ("TLS handshake with HOST:PORT failed: certificate verify failed: ..."; also a reset
 * stream or broken HTTP/2), -EPROTONOSUPPORT ("HOST:PORT does not speak HTTP/2 (ALPN: the server
 * chose http/1.1)"), -ECONNRESET (closed before the answer), -EMSGSIZE (body over API_MAX_BODY),
 * -ECANCELED. Safe to call from any thread; |body| need only live during the call.
 */
int api_request(const struct api_config *cfg, const char *method, const char *path,
                const char *content_type, const char *body, size_t body_len, int cancel_fd,
                struct api_response *ret, char *err, size_t errsz);

struct api_client;

/*
 * A client for repeated requests to one API server (|cfg| copied): the TLS context, with the CA
 * store read from cfg->ca_file, is built at the first request and kept; it is built again only
 * when the CA file changed (stat(): another inode, size, mtime or ctime), so a rotated CA is
 * still picked up. One thread at a time. Returns 0 or -ENOMEM.
 */
int api_client_new(const struct api_config *cfg, struct api_client **ret);

/* Frees the client and its TLS context. Accepts NULL, returns NULL. */
struct api_client *api_client_free(struct api_client *cl);

/* api_request() on |cl|'s configuration, reusing its TLS context. */
int api_client_request(struct api_client *cl, const char *method, const char *path,
                       const char *content_type, const char *body, size_t body_len, int cancel_fd,
                       struct api_response *ret, char *err, size_t errsz);

/*
 * Pure (fuzz target): the "message" of a k8s Status JSON body into |buf| (control bytes
 * replaced, truncated to fit); "" when the body is not such a document. Returns the length.
 */
size_t api_status_message(const char *body, size_t len, char *buf, size_t bufsz);
