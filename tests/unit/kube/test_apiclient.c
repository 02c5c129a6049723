/*
 * test_apiclient.c - src/apiclient.c: --apiserver and in-cluster configuration, the Status
 * message of error answers, the HTTP/2 half driven from memory against an nghttp2 server session,
 * and real requests against a TLS + HTTP/2 server on a thread of this test (a CA, a server
 * certificate for IP 127.0.0.1 and DNS localhost, an unrelated CA and a certificate for another
 * name, all made here with OpenSSL): headers, token and body as the server saw them, the token
 * re-read, wrong CA, name and IP mismatches, no h2 in ALPN, refused, a server that never answers,
 * cancel, an oversized answer, and a 403 with a Status body.
 *
 * APICLIENT_SEED_DIR=DIR also writes the server's bytes of a few answers there (the seeds of
 * fuzz/corpus/fuzz_apiclient/).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "apiclient.h"
#include "apiclient_internal.h"
#include "unit.h"

/* ------------------------------------------------------------------------------------------ */
/* Configuration */

static void test_apiclient_config_url_good(void) {
        struct api_config c;
        char err[256];

        CHECK_INT(api_config_init(&c, "https://10.96.0.1", NULL, NULL, 0, err, sizeof(err)), 0);
        CHECK_STR(c.host, "10.96.0.1");
        CHECK_STR(c.port, "443");
        CHECK(c.host_is_ip);
        CHECK_STR(c.token_file, API_DEFAULT_SA_DIR "/token");
        CHECK_STR(c.ca_file, API_DEFAULT_SA_DIR "/ca.crt");
        CHECK_INT(c.timeout_ms, API_DEFAULT_TIMEOUT_MS);

        CHECK_INT(api_config_init(&c, "https://api.example.com:6443/", "/t", "/c", 500, err,
                                  sizeof(err)),
                  0);
        CHECK_STR(c.host, "api.example.com");
        CHECK_STR(c.port, "6443");
        CHECK(!c.host_is_ip);
        CHECK_STR(c.token_file, "/t");
        CHECK_STR(c.ca_file, "/c");
        CHECK_INT(c.timeout_ms, 500);

        CHECK_INT(api_config_init(&c, "https://[::1]:6443", NULL, NULL, 0, err, sizeof(err)), 0);
        CHECK_STR(c.host, "::1");
        CHECK_STR(c.port, "6443");
        CHECK(c.host_is_ip);

        CHECK_INT(api_config_init(&c, "HTTPS://[fd00:10:96::1]", NULL, NULL, 0, err, sizeof(err)),
                  0);
        CHECK_STR(c.host, "fd00:10:96::1");
        CHECK_STR(c.port, "443");
        CHECK(c.host_is_ip);

        CHECK_INT(api_config_init(&c, "https://localhost:65535", NULL, NULL, 0, err, sizeof(err)),
                  0);
        CHECK_STR(c.port, "65535");
}

static void test_apiclient_config_url_bad(void) {
        static const char *const bad[] = {
                "http://10.0.0.1",
                "https://",
                "https://x/api",
                "https://x:6443/a",
                "https://u@x",
                "https://u:p@x:443",
                "https://x:0",
                "https://x:65536",
                "https://x:",
                "https://x:abc",
                "https://x:-1",
                "https://x:443443",
                "https://::1",
                "https://[::1",
                "https://[zz]:1",
                "https://[::1]x",
                "https://[::1]:",
                "https://[]:443",
                "https://x?y",
                "https://x#y",
                "x",
                "",
                "https://a b",
                "https://a\nb",
                "ftp://x",
                "https:///x",
                "https://-x",
                "https://[10.0.0.1]",
        };
        struct api_config c;

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                char err[256] = "";
                int r = api_config_init(&c, bad[i], NULL, NULL, 0, err, sizeof(err));

                if (r != -EINVAL)
                        fprintf(stderr, "accepted: \"%s\"\n", bad[i]);
                CHECK_INT(r, -EINVAL);
                CHECK(err[0] != '\0');
                CHECK(strchr(err, '\n') == NULL);
        }
}

static void test_apiclient_config_in_cluster(void) {
        struct api_config c;
        char err[256] = "";

        unsetenv("KUBERNETES_SERVICE_HOST");
        unsetenv("KUBERNETES_SERVICE_PORT");
        CHECK_INT(api_config_init(&c, NULL, NULL, NULL, 0, err, sizeof(err)), -EINVAL);
        CHECK_STR(err, "not running in a cluster: set --apiserver, or KUBERNETES_SERVICE_HOST and "
                       "KUBERNETES_SERVICE_PORT");

        setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
        CHECK_INT(api_config_init(&c, NULL, NULL, NULL, 0, err, sizeof(err)), -EINVAL);
        setenv("KUBERNETES_SERVICE_PORT", "443", 1);
        CHECK_INT(api_config_init(&c, NULL, NULL, NULL, 0, err, sizeof(err)), 0);
        CHECK_STR(c.host, "10.96.0.1");
        CHECK_STR(c.port, "443");
        CHECK(c.host_is_ip);
        CHECK_STR(c.token_file, API_DEFAULT_SA_DIR "/token");

        setenv("KUBERNETES_SERVICE_HOST", "fd00:10:96::1", 1);
        setenv("KUBERNETES_SERVICE_PORT", "6443", 1);
        CHECK_INT(api_config_init(&c, NULL, "/tok", NULL, 0, err, sizeof(err)), 0);
        CHECK_STR(c.host, "fd00:10:96::1");
        CHECK_STR(c.port, "6443");
        CHECK(c.host_is_ip);
        CHECK_STR(c.token_file, "/tok");

        setenv("KUBERNETES_SERVICE_PORT", "https", 1);
        CHECK_INT(api_config_init(&c, NULL, NULL, NULL, 0, err, sizeof(err)), -EINVAL);
        CHECK(strstr(err, "KUBERNETES_SERVICE_PORT=https") != NULL);
        setenv("KUBERNETES_SERVICE_PORT", "443", 1);
        setenv("KUBERNETES_SERVICE_HOST", "a/b", 1);
        CHECK_INT(api_config_init(&c, NULL, NULL, NULL, 0, err, sizeof(err)), -EINVAL);
        unsetenv("KUBERNETES_SERVICE_HOST");
        unsetenv("KUBERNETES_SERVICE_PORT");

        /* --apiserver wins over the environment, and needs none. */
        CHECK_INT(api_config_init(&c, "https://k8s:8443", NULL, NULL, 0, err, sizeof(err)), 0);
        CHECK_STR(c.host, "k8s");
}

/* ------------------------------------------------------------------------------------------ */
/* api_status_message */

static void test_apiclient_status_message(void) {
        static const char good[] =
                "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":"
                "\"Failure\",\"message\":\"nodes \\\"n1\\\" is forbidden: User \\\"x\\\" cannot "
                "patch resource \\\"nodes\\\"\",\"reason\":\"Forbidden\",\"code\":403}";
        char buf[512], small[8];
        char *huge;
        size_t n, hlen;

        n = api_status_message(good, strlen(good), buf, sizeof(buf));
        CHECK_STR(buf, "nodes \"n1\" is forbidden: User \"x\" cannot patch resource \"nodes\"");
        CHECK_INT(n, strlen(buf));

        /* Not such a document: "". */
        CHECK_INT(api_status_message("<html>403</html>", 16, buf, sizeof(buf)), 0);
        CHECK_STR(buf, "");
        CHECK_INT(api_status_message("{\"kind\":\"Node\",\"message\":\"m\"}", 29, buf, sizeof(buf)),
                  0);
        CHECK_INT(api_status_message("{\"message\":42}", 14, buf, sizeof(buf)), 0);
        CHECK_INT(api_status_message("[\"message\"]", 11, buf, sizeof(buf)), 0);
        CHECK_INT(api_status_message("", 0, buf, sizeof(buf)), 0);
        CHECK_INT(api_status_message(NULL, 0, buf, sizeof(buf)), 0);
        CHECK_STR(buf, "");
        /* Only |len| bytes count: the same document cut short is not JSON. */
        CHECK_INT(api_status_message(good, 40, buf, sizeof(buf)), 0);

        /* A Status without kind still has its message. */
        CHECK_INT(api_status_message("{\"message\":\"m\"}", 15, buf, sizeof(buf)), 1);
        CHECK_STR(buf, "m");

        /* Control bytes, NUL included, become '?': the line stays one line. */
        n = api_status_message("{\"message\":\"a\\nb\\u0000c\\td\\u007f\"}", 34, buf, sizeof(buf));
        CHECK_STR(buf, "a?b?c?d?");
        CHECK_INT(n, 8);

        /* Truncated to the buffer. */
        CHECK_INT(api_status_message("{\"message\":\"abcdefghij\"}", 24, small, sizeof(small)), 7);
        CHECK_STR(small, "abcdefg");
        /* Never inside a UTF-8 sequence: "abcdef" + "é" (2 bytes) does not fit in 7. */
        CHECK_INT(api_status_message("{\"message\":\"abcdef\\u00e9x\"}", 27, small, sizeof(small)),
                  6);
        CHECK_STR(small, "abcdef");

        /* A huge message: cut to the buffer, no overflow. */
        hlen = 200000;
        huge = malloc(hlen + 32);
        CHECK(huge != NULL);
        if (!huge)
                return;
        memcpy(huge, "{\"message\":\"", 12);
        memset(huge + 12, 'x', hlen);
        memcpy(huge + 12 + hlen, "\"}", 3);
        n = api_status_message(huge, hlen + 14, buf, sizeof(buf));
        CHECK_INT(n, sizeof(buf) - 1);
        CHECK_INT(strlen(buf), sizeof(buf) - 1);
        free(huge);
}

/* ------------------------------------------------------------------------------------------ */
/* A test HTTP/2 server session: records the request, answers as told */

enum answer {
        ANSWER,       /* :status and body */
        ANSWER_RST,   /* RST_STREAM(INTERNAL_ERROR) instead of an answer */
        ANSWER_NONE,  /* never answers */
        ANSWER_GOAWAY /* GOAWAY(INTERNAL_ERROR) instead of an answer */
};

struct h2srv {
        nghttp2_session *session;
        enum answer answer;
        int status;
        const char *resp; /* borrowed */
        size_t resp_len, resp_off;

        /* What arrived. */
        bool request_done;
        char method[16], path[128], scheme[16], authority[128], authorization[128];
        char content_type[64], accept[64], user_agent[64];
        char body[1024];
        size_t body_len;
};

static void copy_value(char *dst, size_t dstsz, const uint8_t *v, size_t len) {
        if (len >= dstsz)
                len = dstsz - 1;
        memcpy(dst, v, len);
        dst[len] = '\0';
}

static int srv_on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                         size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                         void *user_data) {
        struct h2srv *s = user_data;
        static const struct {
                const char *name;
                size_t off, size;
        } map[] = {
#define F(n, f) {n, offsetof(struct h2srv, f), sizeof(((struct h2srv *) 0)->f)}
                F(":method", method),
                F(":path", path),
                F(":scheme", scheme),
                F(":authority", authority),
                F("authorization", authorization),
                F("content-type", content_type),
                F("accept", accept),
                F("user-agent", user_agent),
#undef F
        };

        for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
                if (strlen(map[i].name) == namelen && memcmp(map[i].name, name, namelen) == 0)
                        copy_value((char *) s + map[i].off, map[i].size, value, valuelen);
        return 0;
}

static int srv_on_data(nghttp2_session *session, uint8_t flags, int32_t stream_id,
                       const uint8_t *data, size_t len, void *user_data) {
        struct h2srv *s = user_data;
        size_t n = len;

        if (n > sizeof(s->body) - s->body_len)
                n = sizeof(s->body) - s->body_len;
        memcpy(s->body + s->body_len, data, n);
        s->body_len += n;
        return 0;
}

static ssize_t srv_read_resp(nghttp2_session *session, int32_t stream_id, uint8_t *buf,
                             size_t length, uint32_t *data_flags, nghttp2_data_source *source,
                             void *user_data) {
        struct h2srv *s = user_data;
        size_t n = s->resp_len - s->resp_off;

        if (n > length)
                n = length;
        memcpy(buf, s->resp + s->resp_off, n);
        s->resp_off += n;
        if (s->resp_off == s->resp_len)
                *data_flags |= NGHTTP2_DATA_FLAG_EOF;
        return (ssize_t) n;
}

static int srv_on_frame(nghttp2_session *session, const nghttp2_frame *frame, void *user_data) {
        struct h2srv *s = user_data;
        char status[8];
        nghttp2_data_provider prd = {.read_callback = srv_read_resp};

        if (!(frame->hd.flags & NGHTTP2_FLAG_END_STREAM) ||
            (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA))
                return 0;
        s->request_done = true;
        switch (s->answer) {
        case ANSWER: {
                nghttp2_nv nv[] = {
                        {(uint8_t *) ":status", (uint8_t *) status, 7, 0, NGHTTP2_NV_FLAG_NONE},
                        {(uint8_t *) "content-type", (uint8_t *) "application/json", 12, 16,
                         NGHTTP2_NV_FLAG_NONE},
                };

                snprintf(status, sizeof(status), "%d", s->status);
                nv[0].valuelen = strlen(status);
                nghttp2_submit_response(session, frame->hd.stream_id, nv, 2, s->resp ? &prd : NULL);
                break;
        }
        case ANSWER_RST:
                nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, frame->hd.stream_id,
                                          NGHTTP2_INTERNAL_ERROR);
                break;
        case ANSWER_GOAWAY:
                nghttp2_session_terminate_session(session, NGHTTP2_INTERNAL_ERROR);
                break;
        case ANSWER_NONE:
                break;
        }
        return 0;
}

static void h2srv_init(struct h2srv *s, enum answer answer, int status, const char *resp,
                       size_t resp_len) {
        nghttp2_session_callbacks *cb;
        nghttp2_settings_entry iv = {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 10};

        memset(s, 0, sizeof(*s));
        s->answer = answer;
        s->status = status;
        s->resp = resp;
        s->resp_len = resp_len;
        CHECK_INT(nghttp2_session_callbacks_new(&cb), 0);
        nghttp2_session_callbacks_set_on_header_callback(cb, srv_on_header);
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, srv_on_data);
        nghttp2_session_callbacks_set_on_frame_recv_callback(cb, srv_on_frame);
        CHECK_INT(nghttp2_session_server_new(&s->session, cb, s), 0);
        nghttp2_session_callbacks_del(cb);
        CHECK_INT(nghttp2_submit_settings(s->session, NGHTTP2_FLAG_NONE, &iv, 1), 0);
}

static void h2srv_fini(struct h2srv *s) {
        nghttp2_session_del(s->session);
        s->session = NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* The HTTP/2 half from memory: the client's session against h2srv, no socket */

struct capture {
        uint8_t *data; /* everything the server sent (owned) */
        size_t len;
};

/* Runs |h| against |s| until the client is done or nothing moves; records the server's bytes. */
static void pump(struct api_h2 *h, struct h2srv *s, struct capture *cap) {
        for (int round = 0; round < 1000 && !api_h2_done(h); round++) {
                const uint8_t *d;
                ssize_t n;
                bool moved = false;

                while ((n = api_h2_send(h, &d)) > 0) {
                        CHECK_INT(nghttp2_session_mem_recv(s->session, d, (size_t) n), n);
                        moved = true;
                }
                while ((n = nghttp2_session_mem_send(s->session, &d)) > 0) {
                        if (cap) {
                                cap->data = realloc(cap->data, cap->len + (size_t) n);
                                memcpy(cap->data + cap->len, d, (size_t) n);
                                cap->len += (size_t) n;
                        }
                        api_h2_recv(h, d, (size_t) n);
                        moved = true;
                        if (api_h2_done(h))
                                break;
                }
                if (!moved)
                        break;
        }
}

/*
 * Writes |cap| as a seed of fuzz/fuzz_apiclient.c: byte 0 (chunking: 0, all at once), bytes 1-2
 * the length of the tail for api_status_message (the answer's body when the bytes end with it),
 * then the server's bytes.
 */
static void write_seed(const char *name, const struct capture *cap, const char *resp,
                       size_t resp_len) {
        const char *dir = getenv("APICLIENT_SEED_DIR");
        uint8_t head[3] = {0, 0, 0};
        char path[512];
        FILE *f;

        if (!dir)
                return;
        if (resp && resp_len <= 0xffff && resp_len <= cap->len &&
            memcmp(cap->data + cap->len - resp_len, resp, resp_len) == 0) {
                head[1] = (uint8_t) (resp_len & 0xff);
                head[2] = (uint8_t) (resp_len >> 8);
        }
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        f = fopen(path, "wb");
        CHECK(f != NULL);
        if (!f)
                return;
        CHECK_INT(fwrite(head, 1, sizeof(head), f), sizeof(head));
        CHECK_INT(fwrite(cap->data, 1, cap->len, f), cap->len);
        fclose(f);
}

static int h2_run(enum answer answer, int status, const char *resp, size_t resp_len,
                  const char *seed, struct api_response *ret, char *err, size_t errsz) {
        static const char body[] = "{\"metadata\":{\"labels\":{\"sgx.k8s.io/sgx\":\"true\"}}}";
        struct capture cap = {NULL, 0};
        struct api_h2 *h;
        struct h2srv s;
        int r;

        h2srv_init(&s, answer, status, resp, resp_len);
        CHECK_INT(api_h2_new("10.96.0.1:443", "PATCH", "/api/v1/nodes/n1",
                             "application/merge-patch+json", "tok", body, sizeof(body) - 1, &h),
                  0);
        pump(h, &s, &cap);
        if (!api_h2_done(h))
                api_h2_eof(h);
        r = api_h2_result(h, ret, err, errsz);
        CHECK_STR(s.method, "PATCH");
        CHECK_INT(s.body_len, sizeof(body) - 1);
        if (seed)
                write_seed(seed, &cap, resp, resp_len);
        free(cap.data);
        api_h2_free(h);
        h2srv_fini(&s);
        return r;
}

static void test_apiclient_h2_answers_from_memory(void) {
        static const char node[] = "{\"kind\":\"Node\",\"metadata\":{\"name\":\"n1\"}}";
        static const char status403[] =
                "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\",\"message\":"
                "\"nodes \\\"n1\\\" is forbidden\",\"reason\":\"Forbidden\",\"code\":403}";
        struct api_response resp;
        char err[256] = "";

        CHECK_INT(h2_run(ANSWER, 200, node, sizeof(node) - 1, "ok-200", &resp, err, sizeof(err)),
                  0);
        CHECK_INT(resp.status, 200);
        CHECK_STR(resp.body, node);
        CHECK_STR(resp.message, "");
        api_response_clear(&resp);
        CHECK(resp.body == NULL);

        CHECK_INT(h2_run(ANSWER, 403, status403, sizeof(status403) - 1, "status-403", &resp, err,
                         sizeof(err)),
                  0);
        CHECK_INT(resp.status, 403);
        CHECK_STR(resp.message, "nodes \"n1\" is forbidden");
        api_response_clear(&resp);

        /* No body at all: an empty string, not NULL. */
        CHECK_INT(h2_run(ANSWER, 204, NULL, 0, "no-body-204", &resp, err, sizeof(err)), 0);
        CHECK_INT(resp.status, 204);
        CHECK(resp.body != NULL && resp.body[0] == '\0');
        CHECK_INT(resp.body_len, 0);
        api_response_clear(&resp);

        CHECK_INT(h2_run(ANSWER_RST, 0, NULL, 0, "rst-stream", &resp, err, sizeof(err)), -EPROTO);
        CHECK(strstr(err, "reset the stream") != NULL);
        CHECK(resp.body == NULL);

        CHECK_INT(h2_run(ANSWER_GOAWAY, 0, NULL, 0, "goaway", &resp, err, sizeof(err)), -EPROTO);
        CHECK(strstr(err, "GOAWAY") != NULL);

        CHECK_INT(h2_run(ANSWER_NONE, 0, NULL, 0, NULL, &resp, err, sizeof(err)), -ECONNRESET);
        CHECK(strstr(err, "closed the connection") != NULL);
}

static void test_apiclient_h2_oversized_from_memory(void) {
        char *big = malloc(API_MAX_BODY + 1);
        struct api_response resp;
        char err[256] = "";

        CHECK(big != NULL);
        if (!big)
                return;
        memset(big, 'x', API_MAX_BODY + 1);
        CHECK_INT(h2_run(ANSWER, 200, big, API_MAX_BODY, NULL, &resp, err, sizeof(err)), 0);
        CHECK_INT(resp.body_len, API_MAX_BODY);
        CHECK_INT(strlen(resp.body), API_MAX_BODY);
        api_response_clear(&resp);
        CHECK_INT(h2_run(ANSWER, 200, big, API_MAX_BODY + 1, NULL, &resp, err, sizeof(err)),
                  -EMSGSIZE);
        CHECK(strstr(err, "larger than") != NULL);
        free(big);
}

static void test_apiclient_h2_garbage_is_eproto(void) {
        static const uint8_t junk[] = "HTTP/1.1 400 Bad Request\r\n\r\n";
        struct api_response resp;
        struct api_h2 *h;
        const uint8_t *d;
        char err[256] = "";

        CHECK_INT(api_h2_new("h:1", "GET", "/", NULL, "t", NULL, 0, &h), 0);
        while (api_h2_send(h, &d) > 0)
                ;
        api_h2_recv(h, junk, sizeof(junk) - 1);
        /* The client answers with GOAWAY; once that is out, the session is over. */
        while (!api_h2_done(h) && api_h2_send(h, &d) > 0)
                ;
        CHECK(api_h2_done(h));
        CHECK_INT(api_h2_result(h, &resp, err, sizeof(err)), -EPROTO);
        CHECK(strstr(err, "ended before the answer") != NULL);
        api_h2_free(h);
}

/* ------------------------------------------------------------------------------------------ */
/* Certificates made here */

struct cert {
        X509 *x;
        EVP_PKEY *key;
};

static struct cert ca1, ca2, srv_cert, other_cert;
static char tmp_dir[64], ca1_path[128], ca2_path[128], token_path[128], junk_ca_path[128];

static void add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value) {
        X509_EXTENSION *e = X509V3_EXT_nconf_nid(NULL, ctx, nid, value);

        CHECK(e != NULL);
        if (!e)
                return;
        CHECK_INT(X509_add_ext(x, e, -1), 1);
        X509_EXTENSION_free(e);
}

/* A certificate for |cn| signed by |issuer| (NULL: a self-signed CA); |san| for a leaf. */
static struct cert make_cert(const char *cn, const struct cert *issuer, const char *san) {
        static long serial = 1;
        struct cert c = {X509_new(), EVP_EC_gen("P-256")};
        X509V3_CTX ctx;
        X509_NAME *name;

        CHECK(c.x && c.key);
        X509_set_version(c.x, 2);
        ASN1_INTEGER_set(X509_get_serialNumber(c.x), serial++);
        X509_gmtime_adj(X509_getm_notBefore(c.x), -3600);
        X509_gmtime_adj(X509_getm_notAfter(c.x), 86400);
        X509_set_pubkey(c.x, c.key);
        name = X509_get_subject_name(c.x);
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *) cn, -1, -1, 0);
        X509_set_issuer_name(c.x, issuer ? X509_get_subject_name(issuer->x) : name);
        X509V3_set_ctx(&ctx, issuer ? issuer->x : c.x, c.x, NULL, NULL, 0);
        add_ext(c.x, &ctx, NID_subject_key_identifier, "hash");
        if (!issuer) {
                add_ext(c.x, &ctx, NID_basic_constraints, "critical,CA:TRUE");
                add_ext(c.x, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign");
        } else {
                add_ext(c.x, &ctx, NID_basic_constraints, "CA:FALSE");
                add_ext(c.x, &ctx, NID_key_usage, "critical,digitalSignature");
                add_ext(c.x, &ctx, NID_ext_key_usage, "serverAuth");
                add_ext(c.x, &ctx, NID_authority_key_identifier, "keyid");
                add_ext(c.x, &ctx, NID_subject_alt_name, san);
        }
        CHECK(X509_sign(c.x, issuer ? issuer->key : c.key, EVP_sha256()) > 0);
        return c;
}

static void write_pem(const char *path, X509 *x) {
        FILE *f = fopen(path, "w");

        CHECK(f != NULL);
        if (!f)
                return;
        CHECK_INT(PEM_write_X509(f, x), 1);
        fclose(f);
}

static void write_file(const char *path, const char *text) {
        FILE *f = fopen(path, "w");

        CHECK(f != NULL);
        if (!f)
                return;
        fputs(text, f);
        fclose(f);
}

static void certs_make(void) {
        strcpy(tmp_dir, "/tmp/test_apiclient.XXXXXX");
        CHECK(mkdtemp(tmp_dir) != NULL);
        ca1 = make_cert("sgxdevplugin test CA 1", NULL, NULL);
        ca2 = make_cert("sgxdevplugin test CA 2", NULL, NULL);
        srv_cert = make_cert("apiserver", &ca1, "IP:127.0.0.1,DNS:localhost");
        other_cert = make_cert("other", &ca1, "DNS:other.example,IP:10.1.2.3");
        snprintf(ca1_path, sizeof(ca1_path), "%s/ca1.crt", tmp_dir);
        snprintf(ca2_path, sizeof(ca2_path), "%s/ca2.crt", tmp_dir);
        snprintf(token_path, sizeof(token_path), "%s/token", tmp_dir);
        snprintf(junk_ca_path, sizeof(junk_ca_path), "%s/junk.crt", tmp_dir);
        write_pem(ca1_path, ca1.x);
        write_pem(ca2_path, ca2.x);
        write_file(token_path, "tok-1\n");
        write_file(junk_ca_path, "not a certificate\n");
}

static void cert_free(struct cert *c) {
        X509_free(c->x);
        EVP_PKEY_free(c->key);
}

static void certs_free(void) {
        cert_free(&ca1);
        cert_free(&ca2);
        cert_free(&srv_cert);
        cert_free(&other_cert);
        unlink(ca1_path);
        unlink(ca2_path);
        unlink(token_path);
        unlink(junk_ca_path);
        rmdir(tmp_dir);
}

/* ------------------------------------------------------------------------------------------ */
/* A TLS + HTTP/2 server on a thread */

enum srv_mode {
        SRV_H2,          /* TLS, ALPN h2, then h2srv answers */
        SRV_HANG_TCP,    /* accepts, never reads */
        SRV_HTTP11,      /* ALPN: only http/1.1 (the client's h2 is not acknowledged) */
        SRV_HTTP11_ALERT /* ALPN: only http/1.1, no_application_protocol alert */
};

struct server {
        enum srv_mode mode;
        enum answer answer;
        int status;
        const char *resp;
        size_t resp_len;
        struct cert *cert;

        int listen_fd;
        int stop_fd;
        char port[8];
        pthread_t thread;
        SSL_CTX *ctx;

        /* What happened (read after the join). */
        unsigned n_conns, n_handshakes, n_requests;
        struct h2srv last; /* the last request, session gone */
};

static int on_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                   const unsigned char *in, unsigned inlen, void *arg) {
        struct server *s = arg;
        const unsigned char *want = s->mode == SRV_H2 ? (const unsigned char *) "\x02h2"
                                                      : (const unsigned char *) "\x08http/1.1";
        unsigned char *sel = NULL;

        if (SSL_select_next_proto(&sel, outlen, want, want[0] + 1u, in, inlen) !=
            OPENSSL_NPN_NEGOTIATED)
                return s->mode == SRV_HTTP11_ALERT ? SSL_TLSEXT_ERR_ALERT_FATAL
                                                   : SSL_TLSEXT_ERR_NOACK;
        *out = sel;
        return SSL_TLSEXT_ERR_OK;
}

/* Waits until |fd| is readable or the test stops the server; returns false on stop. */
static bool srv_wait(struct server *s, int fd) {
        struct pollfd p[2] = {{.fd = fd, .events = POLLIN}, {.fd = s->stop_fd, .events = POLLIN}};

        /* A negative fd is ignored by poll(): then only the stop is waited for. */
        if (poll(p, 2, 5000) <= 0)
                return false;
        return !p[1].revents && p[0].revents;
}

static void srv_conn(struct server *s, int fd) {
        struct timeval tv = {.tv_sec = 2};
        struct h2srv h;
        uint8_t buf[16384];
        SSL *ssl;

        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        ssl = SSL_new(s->ctx);
        SSL_set_fd(ssl, fd);
        if (SSL_accept(ssl) != 1) {
                SSL_free(ssl);
                return;
        }
        s->n_handshakes++;
        h2srv_init(&h, s->answer, s->status, s->resp, s->resp_len);
        for (;;) {
                const uint8_t *d;
                ssize_t n;
                int r;

                while ((n = nghttp2_session_mem_send(h.session, &d)) > 0)
                        if (SSL_write(ssl, d, (int) n) != (int) n)
                                goto out;
                if (h.request_done && s->answer == ANSWER_NONE) {
                        srv_wait(s, -1); /* until the test stops us */
                        break;
                }
                if (!nghttp2_session_want_read(h.session) && !nghttp2_session_want_write(h.session))
                        break;
                r = SSL_read(ssl, buf, sizeof(buf));
                if (r <= 0)
                        break;
                if (nghttp2_session_mem_recv(h.session, buf, (size_t) r) < 0)
                        break;
        }
out:
        if (h.request_done)
                s->n_requests++;
        h2srv_fini(&h);
        s->last = h;
        SSL_free(ssl);
}

static void *srv_main(void *arg) {
        struct server *s = arg;
        sigset_t pipe;

        /* The server writes through OpenSSL's socket BIO: a client that hung up must give EPIPE
         * here, not kill the test. The client (the main thread) keeps SIGPIPE deadly, so a
         * write of apiclient.c without MSG_NOSIGNAL would still fail the test. */
        sigemptyset(&pipe);
        sigaddset(&pipe, SIGPIPE);
        pthread_sigmask(SIG_BLOCK, &pipe, NULL);

        while (srv_wait(s, s->listen_fd)) {
                int fd = accept(s->listen_fd, NULL, NULL);

                if (fd < 0)
                        continue;
                s->n_conns++;
                if (s->mode == SRV_HANG_TCP)
                        srv_wait(s, -1);
                else
                        srv_conn(s, fd);
                close(fd);
        }
        ERR_clear_error();
        OPENSSL_thread_stop();
        return NULL;
}

static void server_start(struct server *s, enum srv_mode mode, struct cert *cert) {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof(a);

        s->mode = mode;
        s->cert = cert ? cert : &srv_cert;
        s->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        CHECK(s->listen_fd >= 0);
        CHECK_INT(bind(s->listen_fd, (struct sockaddr *) &a, sizeof(a)), 0);
        CHECK_INT(listen(s->listen_fd, 8), 0);
        CHECK_INT(getsockname(s->listen_fd, (struct sockaddr *) &a, &len), 0);
        snprintf(s->port, sizeof(s->port), "%u", ntohs(a.sin_port));
        s->stop_fd = eventfd(0, EFD_CLOEXEC);
        CHECK(s->stop_fd >= 0);
        s->ctx = SSL_CTX_new(TLS_server_method());
        CHECK(s->ctx != NULL);
        SSL_CTX_set_min_proto_version(s->ctx, TLS1_2_VERSION);
        CHECK_INT(SSL_CTX_use_certificate(s->ctx, s->cert->x), 1);
        CHECK_INT(SSL_CTX_use_PrivateKey(s->ctx, s->cert->key), 1);
        SSL_CTX_set_alpn_select_cb(s->ctx, on_alpn, s);
        CHECK_INT(pthread_create(&s->thread, NULL, srv_main, s), 0);
}

static void server_stop(struct server *s) {
        uint64_t one = 1;

        CHECK_INT(write(s->stop_fd, &one, sizeof(one)), sizeof(one));
        CHECK_INT(pthread_join(s->thread, NULL), 0);
        close(s->listen_fd);
        close(s->stop_fd);
        SSL_CTX_free(s->ctx);
}

static void client_config(struct api_config *c, const char *host, const char *port, const char *ca,
                          unsigned timeout_ms) {
        char url[128], err[256];

        snprintf(url, sizeof(url), "https://%s:%s", host, port);
        CHECK_INT(api_config_init(c, url, token_path, ca, timeout_ms, err, sizeof(err)), 0);
}

static const char patch_body[] = "{\"metadata\":{\"labels\":{\"sgx.k8s.io/sgx\":\"true\"}}}";

static int patch(const struct api_config *c, int cancel_fd, struct api_response *resp, char *err,
                 size_t errsz) {
        return api_request(c, "PATCH", "/api/v1/nodes/node-1", "application/merge-patch+json",
                           patch_body, sizeof(patch_body) - 1, cancel_fd, resp, err, errsz);
}

static unsigned elapsed_ms(const struct timespec *t0) {
        struct timespec t;

        clock_gettime(CLOCK_MONOTONIC, &t);
        return (unsigned) ((t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000);
}

/* ------------------------------------------------------------------------------------------ */
/* Real requests */

static void test_apiclient_request_200_headers_token_body(void) {
        static const char node[] = "{\"kind\":\"Node\"}";
        struct server s = {
                .answer = ANSWER, .status = 200, .resp = node, .resp_len = sizeof(node) - 1};
        struct api_config c;
        struct api_response resp;
        char err[256] = "", authority[64];

        write_file(token_path, "tok-1\n");
        server_start(&s, SRV_H2, NULL);
        client_config(&c, "127.0.0.1", s.port, ca1_path, 2000);
        CHECK_INT(patch(&c, -1, &resp, err, sizeof(err)), 0);
        CHECK_STR(err, "");
        CHECK_INT(resp.status, 200);
        CHECK_STR(resp.body, node);
        CHECK_INT(resp.body_len, sizeof(node) - 1);
        CHECK_STR(resp.message, "");
        api_response_clear(&resp);
        server_stop(&s);

        CHECK_INT(s.n_requests, 1);
        CHECK_STR(s.last.method, "PATCH");
        CHECK_STR(s.last.path, "/api/v1/nodes/node-1");
        CHECK_STR(s.last.scheme, "https");
        snprintf(authority, sizeof(authority), "127.0.0.1:%s", s.port);
        CHECK_STR(s.last.authority, authority);
        CHECK_STR(s.last.authorization, "Bearer tok-1");
        CHECK_STR(s.last.content_type, "application/merge-patch+json");
        CHECK_STR(s.last.accept, "application/json");
        CHECK_STR(s.last.user_agent, "sgxdevplugin/" SGXDEVPLUGIN_VERSION);
        CHECK_INT(s.last.body_len, sizeof(patch_body) - 1);
        CHECK(memcmp(s.last.body, patch_body, sizeof(patch_body) - 1) == 0);
}

/*
 * True when "localhost" resolves to 127.0.0.1 here. A bare root (a debootstrap chroot without
 * /etc/hosts) cannot look names up at all; the tests by name then say so and stop.
 */
static bool localhost_resolves(const char *test) {
        struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *ai = NULL;
        bool ok = getaddrinfo("localhost", NULL, &hints, &ai) == 0 && ai &&
                  ((struct sockaddr_in *) ai->ai_addr)->sin_addr.s_addr == htonl(INADDR_LOOPBACK);

        if (ai)
                freeaddrinfo(ai);
        if (!ok)
                fprintf(stderr,
                        "%s: skipped the part by name: \"localhost\" does not resolve to "
                        "127.0.0.1 here (no /etc/hosts?)\n",
                        test);
        return ok;
}

static void test_apiclient_request_by_name_localhost(void) {
        struct server s = {.answer = ANSWER, .status = 200};
        struct api_config c;
        struct api_response resp;
        char err[256] = "";

        if (!localhost_resolves(__func__))
                return;
        write_file(token_path, "tok-1");
        server_start(&s, SRV_H2, NULL);
        client_config(&c, "localhost", s.port, ca1_path, 2000);
        CHECK_INT(api_request(&c, "GET", "/api/v1/nodes/node-1", NULL, NULL, 0, -1, &resp, err,
                              sizeof(err)),
                  0);
        if (err[0])
                fprintf(stderr, "%s\n", err);
        CHECK_INT(resp.status, 200);
        api_response_clear(&resp);
        server_stop(&s);
        CHECK_STR(s.last.method, "GET");
        CHECK_INT(s.last.body_len, 0);
        CHECK_STR(s.last.content_type, "");
}

static void test_apiclient_request_token_reread(void) {
        struct server s = {.answer = ANSWER, .status = 200};
        struct api_config c;
        struct api_response resp;
        char err[256] = "";

        write_file(token_path, "tok-1\n");
        server_start(&s, SRV_H2, NULL);
        client_config(&c, "127.0.0.1", s.port, ca1_path, 2000);
        CHECK_INT(patch(&c, -1, &resp, err, sizeof(err)), 0);
        api_response_clear(&resp);
        /* Rotated between the two requests; trailing blanks are not part of it. */
        write_file(token_path, "tok-2 \t\r\n\n");
        CHECK_INT(patch(&c, -1, &resp, err, sizeof(err)), 0);
        api_response_clear(&resp);
        server_stop(&s);
        CHECK_INT(s.n_requests, 2);
        CHECK_INT(s.n_conns, 2);
        CHECK_STR(s.last.authorization, "Bearer tok-2");
}

static void test_apiclient_request_bad_token_sends_nothing(void) {
        struct server s = {.answer = ANSWER, .status = 200};
        struct api_config c;
        struct api_response resp;
        char err[256] = "";

        server_start(&s, SRV_H2, NULL);
        client_config(&c, "127.0.0.1", s.port, ca1_path, 2000);
        write_file(token_path, " \n\n");
        CHECK_INT(patch(&c, -1, &resp, err, sizeof(err)), -EINVAL);
        CHECK(strstr(err, "is empty") != NULL);
        write_file(token_path, "tok en\n");
        CHECK_INT(patch(&c, -1, &resp, err, sizeof(err)), -EINVAL);
        unlink(token_path);
        CHECK_INT(patch(&c, -1, &resp, err, sizeof(err)), -ENOENT);
        CHECK(strstr(err, token_path) != NULL);
        write_file(token_path, "tok-1\n");
        server_stop(&s);
        CHECK_INT(s.n_conns, 0);
}

static void test_apiclient_request_ca_file_problems(void) {
        struct server s = {.answer = ANSWER, .status = 200};
        struct api_config c;
        struct api_response resp;
        char err[256] = "", missing[160];

        server_start(&s, SRV_H2, NULL);
        snprintf(missing, sizeof(missing), "%s/missing.crt", tmp_dir);
        client_config(&c, "127.0.0.1", s.port, missing, 2000);
        CHECK_INT(patch(&c, -1, &resp, err, sizeof(err)), -ENOENT);
        CHECK(strstr(err, "missing.crt") != NULL);
        client_config(&c, "127.0.0.1", s.port, junk_ca_path, 2000);
        CHECK_INT(patch(&c, -1, &resp, err, sizeof(err)), -EINVAL);
        CHECK(strstr(err, "junk.crt") != NULL);
        server_stop(&s);
        CHECK_INT(s.n_requests, 0);
}

static void test_apiclient_request_wrong_ca_eproto(void) {
        struct server s = {.answer = ANSWER, .status = 200};
        struct api_config c;
        struct api_response resp;
        char err[256] = "", name[64];

        server_start(&s, SRV_H2, NULL);
        client_config(&c, "127.0.0.1", s.port, ca2_path, 2000);
        CHECK_INT(patch(&c, -1, &resp, err, sizeof(err)), -EPROTO);
        snprintf(name, sizeof(name), "127.0.0.1:%s", s.port);
        CHECK(strstr(err, name) != NULL);
        CHECK(strstr(err, "certificate verify failed: unable to get local issuer certificate") !=
              NULL);
        CHECK(resp.body == NULL);
        server_stop(&s);
        CHECK_INT(s.n_conns, 1);
        CHECK_INT(s.n_handshakes, 0);
        CHECK_INT(s.n_requests, 0);
}

/* A client keeps its TLS context between requests and builds it again when the CA file changes
 * (a ConfigMap rotation swaps a symlink): the wrong CA, the right one, the wrong one again. */
static void test_apiclient_client_reuses_context_and_rereads_a_changed_ca(void) {
        struct server s = {.answer = ANSWER, .status = 200};
        struct api_client *cl = NULL;
        struct api_config c;
        struct api_response resp;
        char err[256] = "", link[160];

        server_start(&s, SRV_H2, NULL);
        snprintf(link, sizeof(link), "%s/ca-link.crt", tmp_dir);
        unlink(link);
        CHECK_INT(symlink(ca2_path, link), 0);
        client_config(&c, "127.0.0.1", s.port, link, 2000);
        CHECK_INT(api_client_new(&c, &cl), 0);
        CHECK_INT(api_client_request(cl, "PATCH", "/api/v1/nodes/node-1",
                                     "application/merge-patch+json", patch_body,
                                     sizeof(patch_body) - 1, -1, &resp, err, sizeof(err)),
                  -EPROTO);
        CHECK(strstr(err, "certificate verify failed") != NULL);
        unlink(link);
        CHECK_INT(symlink(ca1_path, link), 0);
        for (int i = 0; i < 2; i++) {
                CHECK_INT(api_client_request(cl, "PATCH", "/api/v1/nodes/node-1",
                                             "application/merge-patch+json", patch_body,
                                             sizeof(patch_body) - 1, -1, &resp, err, sizeof(err)),
                          0);
                CHECK_INT(resp.status, 200);
                api_response_clear(&resp);
        }
        unlink(link);
        CHECK_INT(symlink(ca2_path, link), 0);
        CHECK_INT(api_client_request(cl, "PATCH", "/api/v1/nodes/node-1",
                                     "application/merge-patch+json", patch_body,
                                     sizeof(patch_body) - 1, -1, &resp, err, sizeof(err)),
                  -EPROTO);
        unlink(link);
        CHECK(api_client_free(cl) == NULL);
        CHECK(api_client_free(NULL) == NULL);
        server_stop(&s);
        CHECK_INT(s.n_requests, 2);
        CHECK_INT(s.n_handshakes, 2);
}

static void test_apiclient_request_ip_and_name_mismatch_eproto(void) {
        struct server s = {.answer = ANSWER, .status = 200};
        struct api_config c;
        struct api_response resp;
        char err[256] = "";

        /* A good chain, for other.example and 10.1.2.3. */
        server_start(&s, SRV_H2, &other_cert);
        client_config(&c, "127.0.0.1", s.port, ca1_path, 2000);
        CHECK_INT(patch(&c, -1, &resp, err, sizeof(err)), -EPROTO);
        CHECK(strstr(err, "IP address mismatch") != NULL);
        if (localhost_resolves(__func__)) {
                client_config(&c, "localhost", s.port, ca1_path, 2000);
                CHECK_INT(patch(&c, -1, &resp, err, sizeof(err)), -EPROTO);
                CHECK(strstr(err, "hostname mismatch") != NULL || strstr(err, "Hostname mismatch"));
        }
        server_stop(&s);
        CHECK_INT(s.n_requests, 0);
}

static void test_apiclient_request_no_h2_eprotonosupport(void) {
        struct server s = {.answer = ANSWER, .status = 200};
        struct api_config c;
        struct api_response resp;
        char err[256] = "";

        server_start(&s, SRV_HTTP11, NULL);
        client_config(&c, "127.0.0.1", s.port, ca1_path, 2000);
        CHECK_INT(patch(&c, -1, &resp, err, sizeof(err)), -EPROTONOSUPPORT);
        CHECK(strstr(err, "does not speak HTTP/2 (ALPN: the server chose no protocol)") != NULL);
        server_stop(&s);
        CHECK_INT(s.n_requests, 0);

        memset(&s, 0, sizeof(s));
        server_start(&s, SRV_HTTP11_ALERT, NULL);
        client_config(&c, "127.0.0.1", s.port, ca1_path, 2000);
        CHECK_INT(patch(&c, -1, &resp, err, sizeof(err)), -EPROTONOSUPPORT);
        CHECK(strstr(err, "does not speak HTTP/2") != NULL);
        server_stop(&s);
}

static void test_apiclient_request_refused(void) {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof(a);
        struct api_config c;
        struct api_response resp;
        char err[256] = "", port[8];
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        /* A port that was free a moment ago, with nobody listening now. */
        CHECK_INT(bind(fd, (struct sockaddr *) &a, sizeof(a)), 0);
        CHECK_INT(getsockname(fd, (struct sockaddr *) &a, &len), 0);
        snprintf(port, sizeof(port), "%u", ntohs(a.sin_port));
        close(fd);
        client_config(&c, "127.0.0.1", port, ca1_path, 2000);
        CHECK_INT(patch(&c, -1, &resp, err, sizeof(err)), -ECONNREFUSED);
        CHECK(strstr(err, "cannot connect to API server 127.0.0.1:") != NULL);
}

static void test_apiclient_request_silent_server_times_out(void) {
        struct server s = {.answer = ANSWER_NONE};
        struct api_config c;
        struct api_response resp;
        struct timespec t0;
        char err[256] = "";
        unsigned ms;

        /* Accepts and never reads: the TLS handshake is what times out. */
        server_start(&s, SRV_HANG_TCP, NULL);
        client_config(&c, "127.0.0.1", s.port, ca1_path, 300);
        clock_gettime(CLOCK_MONOTONIC, &t0);
        CHECK_INT(patch(&c, -1, &resp, err, sizeof(err)), -ETIMEDOUT);
        ms = elapsed_ms(&t0);
        CHECK(ms >= 290 && ms < 1500);
        CHECK(strstr(err, "did not finish the TLS handshake within 0.3 s") != NULL);
        server_stop(&s);

        /* Takes the request and never answers. */
        memset(&s, 0, sizeof(s));
        s.answer = ANSWER_NONE;
        server_start(&s, SRV_H2, NULL);
        client_config(&c, "127.0.0.1", s.port, ca1_path, 400);
        clock_gettime(CLOCK_MONOTONIC, &t0);
        CHECK_INT(patch(&c, -1, &resp, err, sizeof(err)), -ETIMEDOUT);
        ms = elapsed_ms(&t0);
        CHECK(ms >= 390 && ms < 1600);
        CHECK(strstr(err, "did not answer within 0.4 s") != NULL);
        CHECK(resp.body == NULL);
        server_stop(&s);
        CHECK_INT(s.n_requests, 1);
}

static void *cancel_later(void *arg) {
        uint64_t one = 1;
        struct timespec d = {0, 100 * 1000 * 1000};

        nanosleep(&d, NULL);
        if (write(*(int *) arg, &one, sizeof(one)) != sizeof(one))
                abort();
        return NULL;
}

static void test_apiclient_request_cancel(void) {
        struct server s = {.answer = ANSWER_NONE};
        struct api_config c;
        struct api_response resp;
        struct timespec t0;
        pthread_t t;
        char err[256] = "";
        int cfd = eventfd(0, EFD_CLOEXEC);
        unsigned ms;

        server_start(&s, SRV_H2, NULL);
        client_config(&c, "127.0.0.1", s.port, ca1_path, 5000);
        clock_gettime(CLOCK_MONOTONIC, &t0);
        CHECK_INT(pthread_create(&t, NULL, cancel_later, &cfd), 0);
        CHECK_INT(patch(&c, cfd, &resp, err, sizeof(err)), -ECANCELED);
        ms = elapsed_ms(&t0);
        CHECK(ms >= 90 && ms < 1000);
        CHECK(strstr(err, "cancelled") != NULL);
        pthread_join(t, NULL);
        /* Already readable: nothing is waited for. */
        server_stop(&s);

        memset(&s, 0, sizeof(s));
        s.answer = ANSWER_NONE;
        server_start(&s, SRV_HANG_TCP, NULL);
        client_config(&c, "127.0.0.1", s.port, ca1_path, 5000);
        clock_gettime(CLOCK_MONOTONIC, &t0);
        CHECK_INT(patch(&c, cfd, &resp, err, sizeof(err)), -ECANCELED);
        CHECK(elapsed_ms(&t0) < 500);
        server_stop(&s);
        close(cfd);
}

static void test_apiclient_request_oversized_emsgsize(void) {
        char *big = malloc(API_MAX_BODY + 1);
        struct server s = {
                .answer = ANSWER, .status = 200, .resp = big, .resp_len = API_MAX_BODY + 1};
        struct api_config c;
        struct api_response resp;
        char err[256] = "";

        CHECK(big != NULL);
        if (!big)
                return;
        memset(big, '7', API_MAX_BODY + 1);
        server_start(&s, SRV_H2, NULL);
        client_config(&c, "127.0.0.1", s.port, ca1_path, 3000);
        CHECK_INT(patch(&c, -1, &resp, err, sizeof(err)), -EMSGSIZE);
        CHECK(strstr(err, "larger than 1048576 bytes") != NULL);
        CHECK(resp.body == NULL);
        server_stop(&s);
        free(big);
}

static void test_apiclient_request_403_status_message(void) {
        static const char forbidden[] =
                "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\","
                "\"message\":\"nodes \\\"node-1\\\" is forbidden: User "
                "\\\"system:serviceaccount:kube-system:sgxdevplugin\\\" cannot patch resource "
                "\\\"nodes\\\" in API group \\\"\\\" at the cluster scope\",\"reason\":"
                "\"Forbidden\",\"details\":{\"name\":\"node-1\",\"kind\":\"nodes\"},\"code\":403}";
        struct server s = {.answer = ANSWER,
                           .status = 403,
                           .resp = forbidden,
                           .resp_len = sizeof(forbidden) - 1};
        struct api_config c;
        struct api_response resp;
        char err[256] = "";

        server_start(&s, SRV_H2, NULL);
        client_config(&c, "127.0.0.1", s.port, ca1_path, 2000);
        CHECK_INT(patch(&c, -1, &resp, err, sizeof(err)), 0);
        CHECK_INT(resp.status, 403);
        CHECK_STR(resp.message, "nodes \"node-1\" is forbidden: User "
                                "\"system:serviceaccount:kube-system:sgxdevplugin\" cannot patch "
                                "resource \"nodes\" in API group \"\" at the cluster scope");
        CHECK_STR(resp.body, forbidden);
        api_response_clear(&resp);
        server_stop(&s);
}

int main(void) {
        RUN(test_apiclient_config_url_good);
        RUN(test_apiclient_config_url_bad);
        RUN(test_apiclient_config_in_cluster);
        RUN(test_apiclient_status_message);
        RUN(test_apiclient_h2_answers_from_memory);
        RUN(test_apiclient_h2_oversized_from_memory);
        RUN(test_apiclient_h2_garbage_is_eproto);
        certs_make();
        RUN(test_apiclient_request_200_headers_token_body);
        RUN(test_apiclient_request_by_name_localhost);
        RUN(test_apiclient_request_token_reread);
        RUN(test_apiclient_request_bad_token_sends_nothing);
        RUN(test_apiclient_request_ca_file_problems);
        RUN(test_apiclient_client_reuses_context_and_rereads_a_changed_ca);
        RUN(test_apiclient_request_wrong_ca_eproto);
        RUN(test_apiclient_request_ip_and_name_mismatch_eproto);
        RUN(test_apiclient_request_no_h2_eprotonosupport);
        RUN(test_apiclient_request_refused);
        RUN(test_apiclient_request_silent_server_times_out);
        RUN(test_apiclient_request_cancel);
        RUN(test_apiclient_request_oversized_emsgsize);
        RUN(test_apiclient_request_403_status_message);
        certs_free();
        return unit_done();
}
