/*
 * test_grpc_frame.c - unit tests for src/grpc_frame.c: the deframer and its receive limit, prefix
 * encoding, grpc-timeout parsing and formatting, grpc-message percent-encoding, the content-type
 * check and the byte queue. No sockets.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "grpc_frame.h"
#include "grpc_status.h"
#include "unit.h"

/* Collects what the deframer hands over. */
struct got {
        int n;
        size_t len[8];
        uint8_t flags[8];
        char data[8][64];
        int fail_at; /* return -ECANCELED for this message number (1-based), 0: never */
};

static int collect(const uint8_t *msg, size_t len, uint8_t flags, void *userdata) {
        struct got *g = userdata;

        if (g->n < 8) {
                g->len[g->n] = len;
                g->flags[g->n] = flags;
                memcpy(g->data[g->n], msg, len < 63 ? len : 63);
        }
        g->n++;
        if (g->fail_at == g->n)
                return -ECANCELED;
        return 0;
}

/* Writes prefix + body into |out|, returns the total length. */
static size_t frame(uint8_t *out, uint8_t flags, const char *body) {
        size_t n = strlen(body);

        grpc_frame_encode_prefix(out, flags & 1, (uint32_t) n);
        memcpy(out + GRPC_PREFIX_LEN, body, n);
        return GRPC_PREFIX_LEN + n;
}

static void test_grpc_frame_prefix_encoding(void) {
        uint8_t p[5];

        grpc_frame_encode_prefix(p, false, 0x01020304);
        CHECK(p[0] == 0 && p[1] == 1 && p[2] == 2 && p[3] == 3 && p[4] == 4);
        grpc_frame_encode_prefix(p, true, 7);
        CHECK(p[0] == 1 && p[1] == 0 && p[2] == 0 && p[3] == 0 && p[4] == 7);
}

static void test_grpc_frame_deframer_whole_messages(void) {
        struct grpc_deframer d;
        struct got g = {0};
        uint8_t buf[64];
        size_t n;

        grpc_deframer_init(&d, 100);
        n = frame(buf, 0, "hello");
        n += frame(buf + n, 0, "");
        n += frame(buf + n, 1, "xyz");
        CHECK_INT(grpc_deframer_feed(&d, buf, n, collect, &g), 0);
        CHECK_INT(g.n, 3);
        CHECK_INT(g.len[0], 5);
        CHECK(memcmp(g.data[0], "hello", 5) == 0);
        CHECK_INT(g.len[1], 0);
        CHECK_INT(g.len[2], 3);
        CHECK_INT(g.flags[2], GRPC_FLAG_COMPRESSED);
        CHECK(!grpc_deframer_has_partial(&d));
        grpc_deframer_done(&d);
}

static void test_grpc_frame_deframer_byte_by_byte(void) {
        struct grpc_deframer d;
        struct got g = {0};
        uint8_t buf[64];
        size_t n;

        grpc_deframer_init(&d, 100);
        n = frame(buf, 0, "split across feeds");
        n += frame(buf + n, 0, "");
        for (size_t i = 0; i < n; i++) {
                CHECK_INT(grpc_deframer_feed(&d, buf + i, 1, collect, &g), 0);
                /* Partial everywhere except right after each message's last byte. */
                if (i == n - 1 || i == n - GRPC_PREFIX_LEN - 1)
                        CHECK(!grpc_deframer_has_partial(&d));
                else
                        CHECK(grpc_deframer_has_partial(&d));
        }
        CHECK_INT(g.n, 2);
        CHECK_INT(g.len[0], strlen("split across feeds"));
        CHECK(memcmp(g.data[0], "split across feeds", g.len[0]) == 0);
        CHECK_INT(g.len[1], 0);
        grpc_deframer_done(&d);
}

static void test_grpc_frame_deframer_partial_at_end(void) {
        struct grpc_deframer d;
        struct got g = {0};
        uint8_t buf[64];
        size_t n;

        grpc_deframer_init(&d, 100);
        n = frame(buf, 0, "abcdef");
        CHECK_INT(grpc_deframer_feed(&d, buf, n - 2, collect, &g), 0);
        CHECK_INT(g.n, 0);
        CHECK(grpc_deframer_has_partial(&d));
        grpc_deframer_done(&d);

        /* Only part of a prefix. */
        grpc_deframer_init(&d, 100);
        CHECK_INT(grpc_deframer_feed(&d, buf, 3, collect, &g), 0);
        CHECK(grpc_deframer_has_partial(&d));
        grpc_deframer_done(&d);
}

static void test_grpc_frame_deframer_limit_reported_at_prefix(void) {
        struct grpc_deframer d;
        struct got g = {0};
        uint8_t p[GRPC_PREFIX_LEN];
        uint8_t body[16] = {0};

        grpc_deframer_init(&d, 10);
        /* Exactly the limit is fine. */
        grpc_frame_encode_prefix(p, false, 10);
        CHECK_INT(grpc_deframer_feed(&d, p, sizeof(p), collect, &g), 0);
        CHECK_INT(grpc_deframer_feed(&d, body, 10, collect, &g), 0);
        CHECK_INT(g.n, 1);

        /* One over: reported by the prefix alone, no body needed, nothing buffered. */
        grpc_frame_encode_prefix(p, false, 11);
        CHECK_INT(grpc_deframer_feed(&d, p, sizeof(p), collect, &g), -EMSGSIZE);
        CHECK_INT(d.msg_len, 11);
        CHECK(d.msg == NULL);
        CHECK(!grpc_deframer_has_partial(&d));
        /* The rest is swallowed. */
        CHECK_INT(grpc_deframer_feed(&d, body, sizeof(body), collect, &g), -EMSGSIZE);
        CHECK_INT(g.n, 1);
        grpc_deframer_done(&d);

        /* A 4 GiB announcement with a small limit. */
        grpc_deframer_init(&d, 4u * 1024 * 1024);
        grpc_frame_encode_prefix(p, false, UINT32_MAX);
        CHECK_INT(grpc_deframer_feed(&d, p, sizeof(p), collect, &g), -EMSGSIZE);
        grpc_deframer_done(&d);
}

static void test_grpc_frame_deframer_callback_error_stops(void) {
        struct grpc_deframer d;
        struct got g = {.fail_at = 1};
        uint8_t buf[64];
        size_t n;

        grpc_deframer_init(&d, 100);
        n = frame(buf, 0, "one");
        n += frame(buf + n, 0, "two");
        CHECK_INT(grpc_deframer_feed(&d, buf, n, collect, &g), -ECANCELED);
        CHECK_INT(g.n, 1);
        grpc_deframer_done(&d);
}

static void test_grpc_frame_deframer_large_message_grows(void) {
        struct grpc_deframer d;
        struct got g = {0};
        size_t len = 300000;
        uint8_t *buf = malloc(GRPC_PREFIX_LEN + len);

        CHECK(buf != NULL);
        if (!buf)
                return;
        grpc_frame_encode_prefix(buf, false, (uint32_t) len);
        for (size_t i = 0; i < len; i++)
                buf[GRPC_PREFIX_LEN + i] = (uint8_t) i;
        grpc_deframer_init(&d, len);
        /* Fed in uneven chunks, so the body is buffered and grown. */
        for (size_t off = 0; off < GRPC_PREFIX_LEN + len;) {
                size_t k = 7777;

                if (k > GRPC_PREFIX_LEN + len - off)
                        k = GRPC_PREFIX_LEN + len - off;
                CHECK_INT(grpc_deframer_feed(&d, buf + off, k, collect, &g), 0);
                off += k;
        }
        CHECK_INT(g.n, 1);
        CHECK_INT(g.len[0], len);
        CHECK(d.msg_cap <= len);
        CHECK((uint8_t) g.data[0][5] == 5);
        grpc_deframer_done(&d);
        free(buf);
}

static uint64_t parse(const char *s, int *r) {
        uint64_t v = 12345;

        *r = grpc_timeout_parse(s, strlen(s), &v);
        return v;
}

static void test_grpc_frame_timeout_parse(void) {
        int r;

        CHECK_INT(parse("1H", &r), 3600ull * 1000000);
        CHECK_INT(r, 0);
        CHECK_INT(parse("2M", &r), 120ull * 1000000);
        CHECK_INT(parse("3S", &r), 3000000);
        CHECK_INT(parse("250m", &r), 250000);
        CHECK_INT(parse("17u", &r), 17);
        CHECK_INT(parse("1500n", &r), 2); /* rounded up */
        CHECK_INT(parse("1n", &r), 1);
        CHECK_INT(parse("0m", &r), 0);
        CHECK_INT(r, 0);
        CHECK_INT(parse("99999999H", &r), 99999999ull * 3600 * 1000000);
        CHECK_INT(r, 0);

        parse("123456789S", &r); /* 9 digits */
        CHECK_INT(r, -EINVAL);
        parse("S", &r);
        CHECK_INT(r, -EINVAL);
        parse("10", &r);
        CHECK_INT(r, -EINVAL);
        parse("10s", &r); /* lowercase s is not a unit */
        CHECK_INT(r, -EINVAL);
        parse("-1S", &r);
        CHECK_INT(r, -EINVAL);
        parse("1 S", &r);
        CHECK_INT(r, -EINVAL);
        parse("", &r);
        CHECK_INT(r, -EINVAL);
        /* Not NUL-terminated: only |len| bytes count. */
        {
                uint64_t v = 0;
                CHECK_INT(grpc_timeout_parse("5S9", 2, &v), 0);
                CHECK_INT(v, 5000000);
        }
}

static void test_grpc_frame_timeout_format(void) {
        char buf[GRPC_TIMEOUT_MAX];
        uint64_t v;

        CHECK_INT(grpc_timeout_format(1, buf, sizeof(buf)), 0);
        CHECK_STR(buf, "1u");
        CHECK_INT(grpc_timeout_format(99999999, buf, sizeof(buf)), 0);
        CHECK_STR(buf, "99999999u");
        CHECK_INT(grpc_timeout_format(100000000, buf, sizeof(buf)), 0);
        CHECK_STR(buf, "100000m");
        CHECK_INT(grpc_timeout_format(100000001, buf, sizeof(buf)), 0);
        CHECK_STR(buf, "100001m"); /* rounded up, never shorter */
        CHECK_INT(grpc_timeout_format(0, buf, sizeof(buf)), 0);
        CHECK_STR(buf, "0u");
        CHECK_INT(grpc_timeout_format(99999999ull * 3600 * 1000000, buf, sizeof(buf)), 0);
        CHECK_STR(buf, "99999999H");
        CHECK_INT(grpc_timeout_format(UINT64_MAX, buf, sizeof(buf)), -ERANGE);
        CHECK_INT(grpc_timeout_format(1, buf, 4), -EINVAL);

        /* Round trip: what we format parses back to at least the value. */
        CHECK_INT(grpc_timeout_format(123456789012ull, buf, sizeof(buf)), 0);
        CHECK_INT(grpc_timeout_parse(buf, strlen(buf), &v), 0);
        CHECK(v >= 123456789012ull && v < 123456789012ull + 1000000);
}

static void test_grpc_frame_message_encoding(void) {
        char *e, *d;

        e = grpc_message_encode("plain text: ok");
        CHECK_STR(e, "plain text: ok");
        free(e);
        e = grpc_message_encode("100% sure\nnext\xc3\xa9");
        CHECK_STR(e, "100%25 sure%0Anext%C3%A9");
        d = grpc_message_decode(e, strlen(e));
        CHECK_STR(d, "100% sure\nnext\xc3\xa9");
        free(d);
        free(e);

        /* Invalid sequences are kept, never an error. */
        d = grpc_message_decode("bad %zz and %4", strlen("bad %zz and %4"));
        CHECK_STR(d, "bad %zz and %4");
        free(d);
        d = grpc_message_decode("%41%", 4);
        CHECK_STR(d, "A%");
        free(d);
        /* Only |len| bytes. */
        d = grpc_message_decode("ab%41", 2);
        CHECK_STR(d, "ab");
        free(d);
}

static void test_grpc_frame_content_type(void) {
        static const char *const good[] = {
                "application/grpc",
                "application/grpc+proto",
                "application/grpc; charset=utf-8",
                "application/grpc+proto;x=y",
                "Application/GRPC",
        };
        static const char *const bad[] = {
                "application/json",  "application/grpc-web", "application/grpc+json",
                "application/grpcx", "application/grp",      "",
                "text/plain",        "application/grpc+",    "application/grpc+protobuf",
        };

        for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
                CHECK(grpc_content_type_is_grpc(good[i], strlen(good[i])));
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                CHECK(!grpc_content_type_is_grpc(bad[i], strlen(bad[i])));
        /* Length-bounded: a prefix of a good value is judged on its own. */
        CHECK(!grpc_content_type_is_grpc("application/grpc", 10));
        CHECK(grpc_content_type_is_grpc("application/grpcXYZ", 16));
}

static void test_grpc_frame_buf_queue(void) {
        struct grpc_buf b = {0};
        uint8_t big[5000];

        memset(big, 'x', sizeof(big));
        CHECK_INT(grpc_buf_append(&b, "abc", 3), 0);
        CHECK_INT(grpc_buf_pending(&b), 3);
        grpc_buf_consume(&b, 2);
        CHECK_INT(grpc_buf_pending(&b), 1);
        CHECK(grpc_buf_head(&b)[0] == 'c');
        CHECK_INT(grpc_buf_append(&b, big, sizeof(big)), 0);
        CHECK_INT(grpc_buf_pending(&b), 1 + sizeof(big));
        CHECK(grpc_buf_head(&b)[0] == 'c' && grpc_buf_head(&b)[1] == 'x');
        grpc_buf_consume(&b, grpc_buf_pending(&b));
        CHECK_INT(grpc_buf_pending(&b), 0);
        CHECK_INT(grpc_buf_append_message(&b, (const uint8_t *) "hi", 2), 0);
        CHECK_INT(grpc_buf_pending(&b), 7);
        CHECK(memcmp(grpc_buf_head(&b), "\0\0\0\0\2hi", 7) == 0);
        grpc_buf_free(&b);
        CHECK_INT(grpc_buf_pending(&b), 0);
}

static void test_grpc_frame_status_names(void) {
        CHECK_STR(grpc_status_name(GRPC_STATUS_OK), "OK");
        CHECK_STR(grpc_status_name(GRPC_STATUS_RESOURCE_EXHAUSTED), "RESOURCE_EXHAUSTED");
        CHECK_STR(grpc_status_name(GRPC_STATUS_UNAUTHENTICATED), "UNAUTHENTICATED");
        CHECK_STR(grpc_status_name(17), "UNKNOWN");
        CHECK_STR(grpc_status_name(-1), "UNKNOWN");
}

int main(void) {
        RUN(test_grpc_frame_prefix_encoding);
        RUN(test_grpc_frame_deframer_whole_messages);
        RUN(test_grpc_frame_deframer_byte_by_byte);
        RUN(test_grpc_frame_deframer_partial_at_end);
        RUN(test_grpc_frame_deframer_limit_reported_at_prefix);
        RUN(test_grpc_frame_deframer_callback_error_stops);
        RUN(test_grpc_frame_deframer_large_message_grows);
        RUN(test_grpc_frame_timeout_parse);
        RUN(test_grpc_frame_timeout_format);
        RUN(test_grpc_frame_message_encoding);
        RUN(test_grpc_frame_content_type);
        RUN(test_grpc_frame_buf_queue);
        RUN(test_grpc_frame_status_names);
        return unit_done();
}
