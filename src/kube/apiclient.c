/*
 * apiclient.c - a blocking client for the Kubernetes API server, meant for a worker thread:
 * parses --apiserver (or the in-cluster environment) into a struct api_config, and sends one
 * request per connection: getaddrinfo, non-blocking connect, OpenSSL TLS 1.2+ verified against the
 * configured CA file only (IP SANs for an address, the host name otherwise; SNI for names), ALPN
 * "h2" only, then one HTTP/2 request through an nghttp2 client session (struct api_h2, which
 * never touches a socket: see apiclient_internal.h). Every wait is a poll() on the socket and the
 * caller's cancel fd, bounded by what is left of the request's timeout.
 *
 * TLS runs over memory BIOs: we move the bytes between them and the socket ourselves, with
 * MSG_NOSIGNAL, so a server hanging up never raises SIGPIPE in the caller's process.
 * The only state kept between requests is a struct api_client's TLS context (the CA store, read
 * once and again when the CA file changes) and OpenSSL's own, initialised once without its
 * configuration file. No logging: errors come back as -errno and one line.
 */
#include "apiclient.h"
#include "apiclient_internal.h"
#include "clock.h"
#include "log.h"
#include "text.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#define USER_AGENT "sgxdevplugin/" SGXDEVPLUGIN_VERSION
#define TOKEN_MAX (64u * 1024) /* a service-account token is a few KiB */
#define IO_CHUNK 16384
#define BODY_MIN_ALLOC 4096

/* ------------------------------------------------------------------------------------------ */
/* Small helpers */

/* strerror() is not thread-safe in every libc; the description table is. */
static const char *errstr(int e) {
        const char *s = strerrordesc_np(e);

        return s ? s : "unknown error";
}

/* |in| for an error line: at most 80 bytes, control and non-ASCII bytes as '?'. */
static void printable(const char *in, char *out, size_t outsz) {
        (void) text_printable(in, strnlen(in, 81), out, outsz < 85 ? outsz : 85);
}

/* ------------------------------------------------------------------------------------------ */
/* Configuration */

static bool is_port(const char *s, size_t len) {
        uint64_t v;

        return len <= 5 && text_parse_u64n(s, len, 65535, &v) == 0 && v >= 1;
}

/* A DNS name (letters, digits, '-', '.', '_') or an IPv4 address. */
static bool is_host_name(const char *s, size_t len) {
        if (len == 0 || len >= sizeof(((struct api_config *) 0)->host))
                return false;
        for (size_t i = 0; i < len; i++)
                if (!isalnum((unsigned char) s[i]) && s[i] != '-' && s[i] != '.' && s[i] != '_')
                        return false;
        return s[0] != '.' && s[0] != '-';
}

static bool is_ipv6(const char *s, size_t len) {
        char buf[INET6_ADDRSTRLEN + 1];
        struct in6_addr a;

        if (len == 0 || len >= sizeof(buf))
                return false;
        memcpy(buf, s, len);
        buf[len] = '\0';
        return inet_pton(AF_INET6, buf, &a) == 1;
}

static void set_host(struct api_config *c, const char *s, size_t len) {
        struct in_addr a4;
        struct in6_addr a6;

        memcpy(c->host, s, len);
        c->host[len] = '\0';
        c->host_is_ip =
                inet_pton(AF_INET, c->host, &a4) == 1 || inet_pton(AF_INET6, c->host, &a6) == 1;
}

static int parse_url(struct api_config *c, const char *url, char *err, size_t errsz) {
        static const char scheme[] = "https://";
        char shown[96];
        const char *auth, *end, *host, *port = NULL;
        size_t host_len, port_len = 0;

        printable(url, shown, sizeof(shown));
        if (strncasecmp(url, scheme, sizeof(scheme) - 1) != 0) {
                errline(err, errsz, "--apiserver %s: not an https:// URL", shown);
                return -EINVAL;
        }
        auth = url + sizeof(scheme) - 1;
        end = auth + strcspn(auth, "/?#");
        if (*end == '?' || *end == '#' || (*end == '/' && end[1] != '\0')) {
                errline(err, errsz, "--apiserver %s: a path, query or fragment is not allowed",
                        shown);
                return -EINVAL;
        }
        if (memchr(auth, '@', (size_t) (end - auth))) {
                errline(err, errsz, "--apiserver %s: user information is not allowed", shown);
                return -EINVAL;
        }
        if (auth[0] == '[') {
                const char *close = memchr(auth, ']', (size_t) (end - auth));

                if (!close || !is_ipv6(auth + 1, (size_t) (close - auth - 1))) {
                        errline(err, errsz, "--apiserver %s: not an IPv6 address in [ ]", shown);
                        return -EINVAL;
                }
                host = auth + 1;
                host_len = (size_t) (close - host);
                if (close + 1 != end) {
                        if (close[1] != ':') {
                                errline(err, errsz, "--apiserver %s: junk after ']'", shown);
                                return -EINVAL;
                        }
                        port = close + 2;
                }
        } else {
                const char *colon = memchr(auth, ':', (size_t) (end - auth));

                host = auth;
                host_len = (size_t) ((colon ? colon : end) - auth);
                if (colon)
                        port = colon + 1;
                if (!is_host_name(host, host_len)) {
                        errline(err, errsz,
                                "--apiserver %s: not a host name or address (IPv6 goes in [ ])",
                                shown);
                        return -EINVAL;
                }
        }
        if (port) {
                port_len = (size_t) (end - port);
                if (!is_port(port, port_len)) {
                        errline(err, errsz, "--apiserver %s: the port must be 1 to 65535", shown);
                        return -EINVAL;
                }
                memcpy(c->port, port, port_len);
                c->port[port_len] = '\0';
        } else {
                strcpy(c->port, "443");
        }
        set_host(c, host, host_len);
        return 0;
}

static int parse_env(struct api_config *c, char *err, size_t errsz) {
        const char *host = getenv("KUBERNETES_SERVICE_HOST");
        const char *port = getenv("KUBERNETES_SERVICE_PORT");
        char shown[96];
        size_t len;

        if (!host || !*host || !port || !*port) {
                errline(err, errsz,
                        "not running in a cluster: set --apiserver, or KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT");
                return -EINVAL;
        }
        len = strlen(host);
        if (strchr(host, ':') ? !is_ipv6(host, len) : !is_host_name(host, len)) {
                printable(host, shown, sizeof(shown));
                errline(err, errsz, "KUBERNETES_SERVICE_HOST=%s is not a host name or address",
                        shown);
                return -EINVAL;
        }
        if (!is_port(port, strlen(port))) {
                printable(port, shown, sizeof(shown));
                errline(err, errsz, "KUBERNETES_SERVICE_PORT=%s is not a port (1 to 65535)", shown);
                return -EINVAL;
        }
        set_host(c, host, len);
        strcpy(c->port, port);
        return 0;
}

static int set_path(char *dst, size_t dstsz, const char *path, const char *dflt, const char *what,
                    char *err, size_t errsz) {
        int n = path ? snprintf(dst, dstsz, "%s", path)
                     : snprintf(dst, dstsz, "%s/%s", API_DEFAULT_SA_DIR, dflt);

        if (n < 0 || (size_t) n >= dstsz || (path && !*path)) {
                errline(err, errsz, "the %s path is empty or too long", what);
                return -EINVAL;
        }
        return 0;
}

int api_config_init(struct api_config *ret, const char *url, const char *token_file,
                    const char *ca_file, unsigned timeout_ms, char *err, size_t errsz) {
        struct api_config c;
        int r;

        memset(&c, 0, sizeof(c));
        r = url ? parse_url(&c, url, err, errsz) : parse_env(&c, err, errsz);
        if (r < 0)
                return r;
        r = set_path(c.token_file, sizeof(c.token_file), token_file, "token", "token file", err,
                     errsz);
        if (r < 0)
                return r;
        r = set_path(c.ca_file, sizeof(c.ca_file), ca_file, "ca.crt", "CA file", err, errsz);
        if (r < 0)
                return r;
        c.timeout_ms = timeout_ms ? timeout_ms : API_DEFAULT_TIMEOUT_MS;
        *ret = c;
        return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Responses */

void api_response_clear(struct api_response *r) {
        if (!r)
                return;
        free(r->body);
        memset(r, 0, sizeof(*r));
}

size_t api_status_message(const char *body, size_t len, char *buf, size_t bufsz) {
        json_t *doc, *kind, *msg;
        const char *s;
        size_t n = 0, slen;

        if (!buf || bufsz == 0)
                return 0;
        buf[0] = '\0';
        if (!body || len == 0)
                return 0;
        doc = json_loadb(body, len, JSON_ALLOW_NUL, NULL);
        if (!doc)
                return 0;
        kind = json_object_get(doc, "kind");
        msg = json_object_get(doc, "message");
        if (!json_is_object(doc) || !json_is_string(msg) ||
            (kind && !(json_is_string(kind) && strcmp(json_string_value(kind), "Status") == 0)))
                goto out;
        s = json_string_value(msg);
        slen = json_string_length(msg);
        for (size_t i = 0; i < slen && n + 1 < bufsz; i++) {
                unsigned char ch = (unsigned char) s[i];

                buf[n++] = (ch < 0x20 || ch == 0x7f) ? '?' : (char) ch;
        }
        /* Do not end inside a UTF-8 sequence (jansson's strings are valid UTF-8). */
        if (n < slen) {
                size_t k = n;

                while (k > 0 && ((unsigned char) buf[k - 1] & 0xc0) == 0x80)
                        k--;
                if (k > 0 && ((unsigned char) buf[k - 1] & 0x80)) {
                        unsigned char lead = (unsigned char) buf[k - 1];
                        size_t need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : 2;

                        if (n - (k - 1) < need)
                                n = k - 1;
                }
        }
        buf[n] = '\0';
out:
        json_decref(doc);
        return n;
}

/* ------------------------------------------------------------------------------------------ */
/* HTTP/2: one request on a client session, bytes in and out through memory */

struct api_h2 {
        nghttp2_session *session; /* owned */
        int32_t stream_id;
        const char *body; /* request body (borrowed) */
        size_t body_len;
        size_t body_off;

        int status; /* the last :status seen (a final one overrides 1xx) */
        char *resp; /* response body (owned until api_h2_result) */
        size_t resp_len, resp_cap;
        bool complete; /* END_STREAM from the server */
        bool stream_closed;
        bool eof; /* the server closed the connection */
        int err;  /* first failure, or 0 */
        char errline[256];
        char h2_error[128]; /* nghttp2's last connection error message, or "" */
};

static void h2_fail(struct api_h2 *h, int e, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static void h2_fail(struct api_h2 *h, int e, const char *fmt, ...) {
        va_list ap;

        if (h->err)
                return;
        h->err = e;
        va_start(ap, fmt);
        vsnprintf(h->errline, sizeof(h->errline), fmt, ap);
        va_end(ap);
}

static ssize_t on_read_body(nghttp2_session *session, int32_t stream_id, uint8_t *buf,
                            size_t length, uint32_t *data_flags, nghttp2_data_source *source,
                            void *user_data) {
        struct api_h2 *h = user_data;
        size_t n = h->body_len - h->body_off;

        if (n > length)
                n = length;
        if (n)
                memcpy(buf, h->body + h->body_off, n);
        h->body_off += n;
        if (h->body_off == h->body_len)
                *data_flags |= NGHTTP2_DATA_FLAG_EOF;
        return (ssize_t) n;
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *user_data) {
        struct api_h2 *h = user_data;

        if (frame->hd.stream_id != h->stream_id || frame->hd.type != NGHTTP2_HEADERS)
                return 0;
        if (namelen == 7 && memcmp(name, ":status", 7) == 0) {
                uint64_t v;

                /* three digits, 100..999 */
                if (valuelen != 3 || value[0] == '0' ||
                    text_parse_u64n((const char *) value, valuelen, 999, &v) < 0)
                        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* resets the stream */
                h->status = (int) v;
        }
        return 0;
}

static int on_data_chunk(nghttp2_session *session, uint8_t flags, int32_t stream_id,
                         const uint8_t *data, size_t len, void *user_data) {
        struct api_h2 *h = user_data;

        if (stream_id != h->stream_id || h->err)
                return 0;
        if (len > API_MAX_BODY - h->resp_len) {
                h2_fail(h, -EMSGSIZE, "the answer's body is larger than %u bytes", API_MAX_BODY);
                nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, stream_id, NGHTTP2_CANCEL);
                return 0;
        }
        if (h->resp_len + len + 1 > h->resp_cap) {
                size_t cap = h->resp_cap ? h->resp_cap : BODY_MIN_ALLOC;
                char *p;

                while (cap < h->resp_len + len + 1)
                        cap *= 2;
                if (cap > API_MAX_BODY + 1)
                        cap = API_MAX_BODY + 1;
                p = realloc(h->resp, cap);
                if (!p) {
                        h2_fail(h, -ENOMEM, "out of memory for the answer's body");
                        return NGHTTP2_ERR_CALLBACK_FAILURE;
                }
                h->resp = p;
                h->resp_cap = cap;
        }
        memcpy(h->resp + h->resp_len, data, len);
        h->resp_len += len;
        h->resp[h->resp_len] = '\0';
        return 0;
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user_data) {
        struct api_h2 *h = user_data;

        if (frame->hd.stream_id == h->stream_id && (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) &&
            (frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA))
                h->complete = true;
        if (frame->hd.type == NGHTTP2_GOAWAY && frame->goaway.error_code != NGHTTP2_NO_ERROR)
                h2_fail(h, -EPROTO, "the server ended the HTTP/2 connection (GOAWAY %s)",
                        nghttp2_http2_strerror(frame->goaway.error_code));
        return 0;
}

static int on_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code,
                           void *user_data) {
        struct api_h2 *h = user_data;

        if (stream_id != h->stream_id)
                return 0;
        h->stream_closed = true;
        if (!h->complete)
                h2_fail(h, -EPROTO, "the server reset the stream (%s)",
                        nghttp2_http2_strerror(error_code));
        return 0;
}

static int on_error(nghttp2_session *session, int lib_error_code, const char *msg, size_t len,
                    void *user_data) {
        struct api_h2 *h = user_data;
        size_t n = len < sizeof(h->h2_error) - 1 ? len : sizeof(h->h2_error) - 1;

        memcpy(h->h2_error, msg, n);
        h->h2_error[n] = '\0';
        for (size_t i = 0; i < n; i++)
                if ((unsigned char) h->h2_error[i] < 0x20 || (unsigned char) h->h2_error[i] >= 0x7f)
                        h->h2_error[i] = '?';
        return 0;
}

/* A session that will neither read nor write any more has ended, answered or not. */
static void h2_check_ended(struct api_h2 *h) {
        if (!h->stream_closed && !h->err && !nghttp2_session_want_read(h->session) &&
            !nghttp2_session_want_write(h->session))
                h2_fail(h, -EPROTO, "the HTTP/2 session ended before the answer was complete%s%s%s",
                        h->h2_error[0] ? " (" : "", h->h2_error, h->h2_error[0] ? ")" : "");
}

int api_h2_new(const char *authority, const char *method, const char *path,
               const char *content_type, const char *token, const char *body, size_t body_len,
               struct api_h2 **ret) {
        nghttp2_session_callbacks *cb = NULL;
        nghttp2_settings_entry iv[] = {
                {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
                {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, API_MAX_BODY},
        };
        nghttp2_data_provider prd = {.read_callback = on_read_body};
        char *auth = NULL;
        char clen[24];
        nghttp2_nv nv[9];
        size_t n = 0;
        struct api_h2 *h;
        int r = -ENOMEM;

#define NV(k, v)                                                                           \
        nv[n++] = (nghttp2_nv){(uint8_t *) (k), (uint8_t *) (v), sizeof(k) - 1, strlen(v), \
                               NGHTTP2_NV_FLAG_NONE}

        h = calloc(1, sizeof(*h));
        if (!h)
                return -ENOMEM;
        h->body = body;
        h->body_len = body ? body_len : 0;
        if (nghttp2_session_callbacks_new(&cb) != 0)
                goto out_free;
        nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
        nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
        nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
        nghttp2_session_callbacks_set_error_callback2(cb, on_error);
        if (nghttp2_session_client_new(&h->session, cb, h) != 0)
                goto out_free;
        if (nghttp2_submit_settings(h->session, NGHTTP2_FLAG_NONE, iv, 2) != 0)
                goto out_free;
        /* The connection's window as large as the stream's, so a 1 MiB answer needs no wait. */
        if (nghttp2_session_set_local_window_size(h->session, NGHTTP2_FLAG_NONE, 0,
                                                  (int32_t) API_MAX_BODY) != 0)
                goto out_free;
        if (asprintf(&auth, "Bearer %s", token) < 0) {
                auth = NULL;
                goto out_free;
        }
        snprintf(clen, sizeof(clen), "%zu", h->body_len);
        NV(":method", method);
        NV(":path", path);
        NV(":scheme", "https");
        NV(":authority", authority);
        NV("authorization", auth);
        NV("accept", "application/json");
        NV("user-agent", USER_AGENT);
        if (content_type)
                NV("content-type", content_type);
        if (body)
                NV("content-length", clen);
        h->stream_id = nghttp2_submit_request(h->session, NULL, nv, n, body ? &prd : NULL, h);
        if (h->stream_id < 0) {
                r = h->stream_id == NGHTTP2_ERR_NOMEM ? -ENOMEM : -EINVAL;
                goto out_free;
        }
        explicit_bzero(auth, strlen(auth));
        free(auth);
        nghttp2_session_callbacks_del(cb);
        *ret = h;
        return 0;
#undef NV

out_free:
        if (auth)
                explicit_bzero(auth, strlen(auth));
        free(auth);
        nghttp2_session_callbacks_del(cb);
        api_h2_free(h);
        return r;
}

struct api_h2 *api_h2_free(struct api_h2 *h) {
        if (!h)
                return NULL;
        nghttp2_session_del(h->session);
        free(h->resp);
        free(h);
        return NULL;
}

ssize_t api_h2_send(struct api_h2 *h, const uint8_t **ret_data) {
        ssize_t n;

        if (h->err && h->err != -EMSGSIZE)
                return 0;
        n = nghttp2_session_mem_send(h->session, ret_data);
        if (n < 0) {
                h2_fail(h, n == NGHTTP2_ERR_NOMEM ? -ENOMEM : -EPROTO, "HTTP/2: %s",
                        nghttp2_strerror((int) n));
                return h->err;
        }
        if (n == 0)
                h2_check_ended(h);
        return n;
}

int api_h2_recv(struct api_h2 *h, const uint8_t *data, size_t len) {
        ssize_t n;

        if (api_h2_done(h))
                return h->err;
        n = nghttp2_session_mem_recv(h->session, data, len);
        if (n < 0) {
                h2_fail(h, n == NGHTTP2_ERR_NOMEM ? -ENOMEM : -EPROTO,
                        "the server broke the HTTP/2 protocol (%s)", nghttp2_strerror((int) n));
                return h->err;
        }
        h2_check_ended(h);
        return h->err;
}

void api_h2_eof(struct api_h2 *h) {
        h->eof = true;
        if (!h->stream_closed && !h->complete)
                h2_fail(h, -ECONNRESET, "the server closed the connection before answering");
}

bool api_h2_done(const struct api_h2 *h) {
        return h->err != 0 || h->stream_closed || h->complete || h->eof;
}

int api_h2_result(struct api_h2 *h, struct api_response *ret, char *err, size_t errsz) {
        memset(ret, 0, sizeof(*ret));
        if (!h->err && !h->complete)
                h2_fail(h, -ECONNRESET, "the server closed the connection before answering");
        if (!h->err && h->status == 0)
                h2_fail(h, -EPROTO, "the answer has no :status");
        if (h->err) {
                errline(err, errsz, "%s", h->errline);
                return h->err;
        }
        if (!h->resp) {
                h->resp = calloc(1, 1);
                if (!h->resp) {
                        errline(err, errsz, "out of memory for the answer's body");
                        return -ENOMEM;
                }
        }
        ret->status = h->status;
        ret->body = h->resp;
        ret->body_len = h->resp_len;
        h->resp = NULL;
        h->resp_len = h->resp_cap = 0;
        if (ret->status < 200 || ret->status > 299)
                api_status_message(ret->body, ret->body_len, ret->message, sizeof(ret->message));
        return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Transport: socket, TLS over memory BIOs, waits bounded by the deadline and the cancel fd */

struct api_client {
        struct api_config cfg;
        SSL_CTX *ctx;      /* NULL until the first request */
        struct stat ca_st; /* the CA file |ctx| was built from */
};

struct conn {
        const struct api_config *cfg;
        char name[300]; /* "HOST:PORT", "[::1]:PORT" */
        int fd;
        int cancel_fd;
        uint64_t deadline_ms; /* CLOCK_MONOTONIC */
        SSL *ssl;
        BIO *rbio, *wbio; /* owned by |ssl| once set */
        char *err;
        size_t errsz;
};

/*
 * Waits until |c->fd| has |events|, the deadline passes or the cancel fd is readable; |step|
 * names what was waited for in the timeout's line. Returns 0, -ETIMEDOUT, -ECANCELED or -errno.
 */
static int conn_wait(struct conn *c, short events, const char *step) {
        for (;;) {
                struct pollfd p[2] = {{.fd = c->fd, .events = events},
                                      {.fd = c->cancel_fd, .events = POLLIN}};
                uint64_t now = monotonic_ms();
                int r;

                if (now >= c->deadline_ms) {
                        errline(c->err, c->errsz, "API server %s %s within %u.%u s", c->name, step,
                                c->cfg->timeout_ms / 1000, c->cfg->timeout_ms % 1000 / 100);
                        return -ETIMEDOUT;
                }
                r = poll(p, c->cancel_fd >= 0 ? 2 : 1, (int) (c->deadline_ms - now));
                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        r = -errno;
                        errline(c->err, c->errsz, "request to API server %s: poll: %s", c->name,
                                errstr(-r));
                        return r;
                }
                if (c->cancel_fd >= 0 && p[1].revents) {
                        errline(c->err, c->errsz, "request to API server %s cancelled", c->name);
                        return -ECANCELED;
                }
                if (p[0].revents)
                        return 0;
        }
}

static int conn_connect(struct conn *c) {
        struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
                                 .ai_flags = AI_NUMERICSERV |
                                             (c->cfg->host_is_ip ? AI_NUMERICHOST : 0)};
        struct addrinfo *ai = NULL, *a;
        int r, e = ECONNREFUSED;

        r = getaddrinfo(c->cfg->host, c->cfg->port, &hints, &ai);
        if (r != 0) {
                errline(c->err, c->errsz, "cannot resolve API server %s: %s", c->name,
                        r == EAI_SYSTEM ? errstr(errno) : gai_strerror(r));
                return r == EAI_AGAIN ? -EAGAIN : -EHOSTUNREACH;
        }
        for (a = ai; a; a = a->ai_next) {
                socklen_t len = sizeof(e);

                c->fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                               a->ai_protocol);
                if (c->fd < 0) {
                        e = errno;
                        continue;
                }
                if (connect(c->fd, a->ai_addr, a->ai_addrlen) == 0)
                        break;
                e = errno;
                if (e == EINPROGRESS) {
                        r = conn_wait(c, POLLOUT, "did not accept the connection");
                        if (r < 0) {
                                freeaddrinfo(ai);
                                return r;
                        }
                        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &e, &len) < 0)
                                e = errno;
                        if (e == 0)
                                break;
                }
                close(c->fd);
                c->fd = -1;
        }
        freeaddrinfo(ai);
        if (c->fd < 0) {
                errline(c->err, c->errsz, "cannot connect to API server %s: %s", c->name,
                        errstr(e));
                return -e;
        }
        return 0;
}

/* Sends everything TLS has written to the memory BIO. */
static int conn_flush(struct conn *c, const char *step) {
        uint8_t buf[IO_CHUNK];
        int n;

        while ((n = BIO_read(c->wbio, buf, sizeof(buf))) > 0) {
                size_t off = 0;

                while (off < (size_t) n) {
                        ssize_t w = send(c->fd, buf + off, (size_t) n - off,
                                         MSG_NOSIGNAL | MSG_DONTWAIT);
                        int r;

                        if (w >= 0) {
                                off += (size_t) w;
                                continue;
                        }
                        if (errno == EINTR)
                                continue;
                        if (errno != EAGAIN) {
                                r = -errno;
                                errline(c->err, c->errsz, "sending to API server %s: %s", c->name,
                                        errstr(-r));
                                return r;
                        }
                        r = conn_wait(c, POLLOUT, step);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

/* Waits for bytes from the server and hands them to TLS. Returns 0, -ECONNRESET at EOF. */
static int conn_fill(struct conn *c, const char *step) {
        uint8_t buf[IO_CHUNK];

        for (;;) {
                ssize_t n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
                int r;

                if (n > 0) {
                        if (BIO_write(c->rbio, buf, (int) n) != (int) n) {
                                errline(c->err, c->errsz, "out of memory for TLS input");
                                return -ENOMEM;
                        }
                        return 0;
                }
                if (n == 0) {
                        errline(c->err, c->errsz, "API server %s closed the connection", c->name);
                        return -ECONNRESET;
                }
                if (errno == EINTR)
                        continue;
                if (errno != EAGAIN) {
                        r = -errno;
                        errline(c->err, c->errsz, "receiving from API server %s: %s", c->name,
                                errstr(-r));
                        return r;
                }
                r = conn_wait(c, POLLIN, step);
                if (r < 0)
                        return r;
        }
}

static int tls_error(struct conn *c, const char *what) {
        long v = SSL_get_verify_result(c->ssl);
        unsigned long e = ERR_peek_last_error();
        char reason[256];

        if (v != X509_V_OK) {
                errline(c->err, c->errsz, "%s %s failed: certificate verify failed: %s", what,
                        c->name, X509_verify_cert_error_string(v));
                return -EPROTO;
        }
        if (ERR_GET_LIB(e) == ERR_LIB_SSL &&
            ERR_GET_REASON(e) == SSL_R_TLSV1_ALERT_NO_APPLICATION_PROTOCOL) {
                errline(c->err, c->errsz,
                        "%s does not speak HTTP/2 (ALPN: the server accepts no h2)", c->name);
                return -EPROTONOSUPPORT;
        }
        if (e)
                ERR_error_string_n(e, reason, sizeof(reason));
        else
                snprintf(reason, sizeof(reason), "connection closed");
        errline(c->err, c->errsz, "%s %s failed: %s", what, c->name, reason);
        return -EPROTO;
}

/*
 * OpenSSL's process-wide initialisation, once, without the configuration file: nothing in it is
 * ours to honour (ctx_new() sets the protocol floor and the security level itself), and parsing
 * it costs memory. The error strings stay: an operator reads them in our log lines.
 */
static pthread_once_t tls_once = PTHREAD_ONCE_INIT;
static int tls_init_ok;

static void tls_init(void) {
        tls_init_ok = OPENSSL_init_ssl(OPENSSL_INIT_NO_LOAD_CONFIG, NULL);
}

/* The TLS client context: TLS 1.2+, peer verification against |ca_file| only. */
static int ctx_new(const char *ca_file, SSL_CTX **ret, char *err, size_t errsz) {
        SSL_CTX *ctx;
        int fd;

        fd = open(ca_file, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
                int r = -errno;

                errline(err, errsz, "cannot read CA file %s: %s", ca_file, errstr(-r));
                return r;
        }
        close(fd);
        pthread_once(&tls_once, tls_init);
        if (!tls_init_ok) {
                errline(err, errsz, "cannot initialise OpenSSL");
                return -ENOMEM;
        }
        ctx = SSL_CTX_new(TLS_client_method());
        if (!ctx) {
                errline(err, errsz, "out of memory for TLS");
                return -ENOMEM;
        }
        SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
        if (SSL_CTX_get_security_level(ctx) < 2)
                SSL_CTX_set_security_level(ctx, 2); /* 112-bit keys at least, as Debian's default */
        SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS); /* no idle 16 KiB record buffers */
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        if (SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
                char reason[256];

                ERR_error_string_n(ERR_peek_last_error(), reason, sizeof(reason));
                errline(err, errsz, "CA file %s holds no usable certificate: %s", ca_file, reason);
                SSL_CTX_free(ctx);
                return -EINVAL;
        }
        *ret = ctx;
        return 0;
}

/*
 * The client's context, built at the first request and again whenever the CA file changed
 * (another inode, size, mtime or ctime: a rotated ConfigMap or Secret swaps a symlink).
 */
static int client_ctx(struct api_client *cl, char *err, size_t errsz) {
        struct stat st;
        SSL_CTX *ctx = NULL;
        int r;

        if (stat(cl->cfg.ca_file, &st) < 0) {
                r = -errno;
                errline(err, errsz, "cannot read CA file %s: %s", cl->cfg.ca_file, errstr(-r));
                return r;
        }
        if (cl->ctx && st.st_dev == cl->ca_st.st_dev && st.st_ino == cl->ca_st.st_ino &&
            st.st_size == cl->ca_st.st_size && st.st_mtim.tv_sec == cl->ca_st.st_mtim.tv_sec &&
            st.st_mtim.tv_nsec == cl->ca_st.st_mtim.tv_nsec &&
            st.st_ctim.tv_sec == cl->ca_st.st_ctim.tv_sec &&
            st.st_ctim.tv_nsec == cl->ca_st.st_ctim.tv_nsec)
                return 0;
        r = ctx_new(cl->cfg.ca_file, &ctx, err, errsz);
        if (r < 0)
                return r;
        SSL_CTX_free(cl->ctx);
        cl->ctx = ctx;
        cl->ca_st = st;
        return 0;
}

/* The connection's TLS object on the client's context: host check, SNI, ALPN h2. */
static int tls_setup(struct conn *c, SSL_CTX *ctx) {
        static const unsigned char alpn[] = "\x02h2";

        c->ssl = SSL_new(ctx);
        if (!c->ssl)
                goto out_nomem;
        c->rbio = BIO_new(BIO_s_mem());
        c->wbio = BIO_new(BIO_s_mem());
        if (!c->rbio || !c->wbio) {
                BIO_free(c->rbio);
                BIO_free(c->wbio);
                c->rbio = c->wbio = NULL;
                goto out_nomem;
        }
        SSL_set_bio(c->ssl, c->rbio, c->wbio);
        if (c->cfg->host_is_ip) {
                if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), c->cfg->host) != 1)
                        goto out_invalid;
        } else {
                SSL_set_hostflags(c->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
                if (SSL_set1_host(c->ssl, c->cfg->host) != 1 ||
                    SSL_set_tlsext_host_name(c->ssl, c->cfg->host) != 1)
                        goto out_invalid;
        }
        if (SSL_set_alpn_protos(c->ssl, alpn, sizeof(alpn) - 1) != 0) /* 0 is success here */
                goto out_nomem;
        SSL_set_connect_state(c->ssl);
        return 0;

out_invalid:
        errline(c->err, c->errsz, "cannot verify API server %s: bad host for TLS", c->name);
        return -EINVAL;
out_nomem:
        errline(c->err, c->errsz, "out of memory for TLS");
        return -ENOMEM;
}

static int tls_handshake(struct conn *c) {
        static const char step[] = "did not finish the TLS handshake";
        const unsigned char *proto = NULL;
        unsigned proto_len = 0;

        for (;;) {
                int r = SSL_do_handshake(c->ssl), e = SSL_get_error(c->ssl, r), f;

                /* Send what TLS wrote, an alert included; a handshake error takes precedence. */
                f = conn_flush(c, step);
                if (r == 1) {
                        if (f < 0)
                                return f;
                        break;
                }
                if (e != SSL_ERROR_WANT_READ)
                        return tls_error(c, "TLS handshake with");
                if (f < 0)
                        return f;
                f = conn_fill(c, step);
                if (f == -ECONNRESET)
                        return tls_error(c, "TLS handshake with");
                if (f < 0)
                        return f;
        }
        SSL_get0_alpn_selected(c->ssl, &proto, &proto_len);
        if (proto_len != 2 || memcmp(proto, "h2", 2) != 0) {
                char shown[64];

                if (proto_len == 0)
                        snprintf(shown, sizeof(shown), "the server chose no protocol");
                else
                        snprintf(shown, sizeof(shown), "the server chose %.*s",
                                 (int) (proto_len > 32 ? 32 : proto_len), (const char *) proto);
                printable(shown, shown, sizeof(shown));
                errline(c->err, c->errsz, "%s does not speak HTTP/2 (ALPN: %s)", c->name, shown);
                return -EPROTONOSUPPORT;
        }
        return 0;
}

/* Runs |h| over TLS until the answer is complete or something fails. */
static int h2_exchange(struct conn *c, struct api_h2 *h) {
        static const char step[] = "did not answer";
        uint8_t buf[IO_CHUNK];

        while (!api_h2_done(h)) {
                const uint8_t *data;
                ssize_t n;
                int r, e;

                while ((n = api_h2_send(h, &data)) > 0) {
                        if (SSL_write(c->ssl, data, (int) n) != (int) n)
                                return tls_error(c, "TLS write to");
                }
                if (n < 0)
                        return 0; /* the session's error, from api_h2_result() */
                r = conn_flush(c, step);
                if (r < 0)
                        return r;
                if (api_h2_done(h))
                        break;
                ERR_clear_error();
                r = SSL_read(c->ssl, buf, sizeof(buf));
                if (r > 0) {
                        api_h2_recv(h, buf, (size_t) r);
                        continue;
                }
                e = SSL_get_error(c->ssl, r);
                if (e == SSL_ERROR_ZERO_RETURN) {
                        api_h2_eof(h);
                        break;
                }
                if (e != SSL_ERROR_WANT_READ)
                        return tls_error(c, "TLS read from");
                /* TLS may have written (a key update); send it before waiting. */
                r = conn_flush(c, step);
                if (r < 0)
                        return r;
                r = conn_fill(c, step);
                if (r == -ECONNRESET) {
                        api_h2_eof(h);
                        break;
                }
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Reads the token: trailing whitespace trimmed, not empty, only bytes a header value may hold. */
static int read_token(const char *path, char **ret, char *err, size_t errsz) {
        char *buf;
        size_t len = 0;
        int fd, r;

        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
                r = -errno;
                errline(err, errsz, "cannot read token file %s: %s", path, errstr(-r));
                return r;
        }
        buf = malloc(TOKEN_MAX + 1);
        if (!buf) {
                close(fd);
                errline(err, errsz, "out of memory for the token");
                return -ENOMEM;
        }
        for (;;) {
                ssize_t n = read(fd, buf + len, TOKEN_MAX + 1 - len);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        r = -errno;
                        errline(err, errsz, "cannot read token file %s: %s", path, errstr(-r));
                        goto out_free;
                }
                if (n == 0)
                        break;
                len += (size_t) n;
                if (len > TOKEN_MAX) {
                        errline(err, errsz, "token file %s is larger than %u bytes", path,
                                TOKEN_MAX);
                        r = -EFBIG;
                        goto out_free;
                }
        }
        while (len > 0 && isspace((unsigned char) buf[len - 1]))
                len--;
        buf[len] = '\0';
        if (len == 0) {
                errline(err, errsz, "token file %s is empty", path);
                r = -EINVAL;
                goto out_free;
        }
        for (size_t i = 0; i < len; i++) {
                unsigned char ch = (unsigned char) buf[i];

                if (ch <= 0x20 || ch >= 0x7f) {
                        errline(err, errsz,
                                "token file %s holds a byte a token cannot have (0x%02x at %zu)",
                                path, ch, i);
                        r = -EINVAL;
                        goto out_free;
                }
        }
        close(fd);
        *ret = buf;
        return 0;

out_free:
        close(fd);
        explicit_bzero(buf, TOKEN_MAX + 1);
        free(buf);
        return r;
}

int api_client_new(const struct api_config *cfg, struct api_client **ret) {
        struct api_client *cl = calloc(1, sizeof(*cl));

        if (!cl)
                return -ENOMEM;
        cl->cfg = *cfg;
        *ret = cl;
        return 0;
}

struct api_client *api_client_free(struct api_client *cl) {
        if (!cl)
                return NULL;
        SSL_CTX_free(cl->ctx);
        free(cl);
        return NULL;
}

int api_request(const struct api_config *cfg, const char *method, const char *path,
                const char *content_type, const char *body, size_t body_len, int cancel_fd,
                struct api_response *ret, char *err, size_t errsz) {
        struct api_client cl = {.cfg = *cfg};
        int r;

        r = api_client_request(&cl, method, path, content_type, body, body_len, cancel_fd, ret, err,
                               errsz);
        SSL_CTX_free(cl.ctx);
        return r;
}

int api_client_request(struct api_client *cl, const char *method, const char *path,
                       const char *content_type, const char *body, size_t body_len, int cancel_fd,
                       struct api_response *ret, char *err, size_t errsz) {
        const struct api_config *cfg = &cl->cfg;
        struct conn c = {.cfg = cfg, .fd = -1, .cancel_fd = cancel_fd, .err = err, .errsz = errsz};
        struct api_h2 *h = NULL;
        char *token = NULL;
        char line[256];
        int r;

        memset(ret, 0, sizeof(*ret));
        if (err && errsz)
                err[0] = '\0';
        c.deadline_ms = monotonic_ms() + cfg->timeout_ms;
        if (strchr(cfg->host, ':'))
                snprintf(c.name, sizeof(c.name), "[%s]:%s", cfg->host, cfg->port);
        else
                snprintf(c.name, sizeof(c.name), "%s:%s", cfg->host, cfg->port);
        ERR_clear_error();

        r = read_token(cfg->token_file, &token, err, errsz);
        if (r < 0)
                return r;
        r = api_h2_new(c.name, method, path, content_type, token, body, body_len, &h);
        explicit_bzero(token, strlen(token));
        free(token);
        if (r < 0) {
                errline(err, errsz, "cannot make the request %s %s: %s", method, path, errstr(-r));
                return r;
        }
        r = client_ctx(cl, err, errsz);
        if (r < 0)
                goto out;
        r = tls_setup(&c, cl->ctx);
        if (r < 0)
                goto out;
        r = conn_connect(&c);
        if (r < 0)
                goto out;
        r = tls_handshake(&c);
        if (r < 0)
                goto out;
        r = h2_exchange(&c, h);
        if (r < 0)
                goto out;
        r = api_h2_result(h, ret, line, sizeof(line));
        if (r < 0)
                errline(err, errsz, "API server %s: %s", c.name, line);
        else {
                /* A polite close_notify; the answer is in, so its fate does not matter. */
                c.err = NULL;
                SSL_shutdown(c.ssl);
                (void) conn_flush(&c, "did not take the close");
        }
out:
        api_h2_free(h);
        SSL_free(c.ssl); /* frees the BIOs */
        if (c.fd >= 0)
                close(c.fd);
        ERR_clear_error();
        return r;
}
