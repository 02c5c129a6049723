/*
 * grpc_frame.c - gRPC message framing (5-byte length prefixes, a deframer with a receive limit),
 * grpc-timeout parsing and formatting, grpc-message percent-encoding and the content-type check.
 * Pure functions over buffers: no sockets, no nghttp2, no loop, no logging.
 */
#include "grpc_frame.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "text.h"

/* First allocation for a message body; it doubles up to the announced length. */
#define BODY_MIN_CAP 256u

void grpc_deframer_init(struct grpc_deframer *d, size_t limit) {
        *d = (struct grpc_deframer){.limit = limit};
}

void grpc_deframer_done(struct grpc_deframer *d) {
        free(d->msg);
        grpc_deframer_init(d, d->limit);
}

bool grpc_deframer_has_partial(const struct grpc_deframer *d) {
        return !d->failed && (d->prefix_len > 0 || d->in_body);
}

/* Makes room for |need| body bytes in total, growing by doubling. Returns 0 or -ENOMEM. */
static int body_reserve(struct grpc_deframer *d, size_t need) {
        size_t cap;
        uint8_t *p;

        if (need <= d->msg_cap)
                return 0;
        cap = d->msg_cap ? d->msg_cap : BODY_MIN_CAP;
        while (cap < need)
                cap *= 2;
        if (cap > d->msg_len)
                cap = d->msg_len;
        p = realloc(d->msg, cap);
        if (!p)
                return -ENOMEM;
        d->msg = p;
        d->msg_cap = cap;
        return 0;
}

/* Ends the current message: the next byte starts a prefix. Keeps the body buffer for reuse. */
static void message_reset(struct grpc_deframer *d) {
        d->prefix_len = 0;
        d->msg_len = 0;
        d->msg_fill = 0;
        d->in_body = false;
}

int grpc_deframer_feed(struct grpc_deframer *d, const uint8_t *data, size_t len,
                       grpc_deframer_fn fn, void *userdata) {
        int r;

        if (d->failed)
                return -EMSGSIZE;

        while (len > 0) {
                if (!d->in_body) {
                        size_t n = GRPC_PREFIX_LEN - d->prefix_len;

                        if (n > len)
                                n = len;
                        memcpy(d->prefix + d->prefix_len, data, n);
                        d->prefix_len += n;
                        data += n;
                        len -= n;
                        if (d->prefix_len < GRPC_PREFIX_LEN)
                                break;

                        d->msg_len = (uint32_t) d->prefix[1] << 24 | (uint32_t) d->prefix[2] << 16 |
                                     (uint32_t) d->prefix[3] << 8 | (uint32_t) d->prefix[4];
                        if (d->msg_len > d->limit) {
                                d->failed = true;
                                free(d->msg);
                                d->msg = NULL;
                                d->msg_cap = 0;
                                return -EMSGSIZE;
                        }
                        d->in_body = true;
                        d->msg_fill = 0;
                }

                /* A whole body already in the input: hand it over without copying. */
                if (d->msg_fill == 0 && len >= d->msg_len) {
                        uint8_t flags = d->prefix[0];
                        size_t n = d->msg_len;

                        message_reset(d);
                        r = fn(data, n, flags, userdata);
                        if (r < 0)
                                return r;
                        data += n;
                        len -= n;
                        continue;
                }

                /* The prefix ended the input: the body comes with a later feed. */
                if (len == 0)
                        break;
                size_t n = d->msg_len - d->msg_fill;
                if (n > len)
                        n = len;
                r = body_reserve(d, d->msg_fill + n);
                if (r < 0)
                        return r;
                memcpy(d->msg + d->msg_fill, data, n);
                d->msg_fill += n;
                data += n;
                len -= n;
                if (d->msg_fill == d->msg_len) {
                        uint8_t flags = d->prefix[0];
                        size_t fill = d->msg_fill;

                        message_reset(d);
                        r = fn(d->msg, fill, flags, userdata);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

void grpc_frame_encode_prefix(uint8_t *out, bool compressed, uint32_t len) {
        out[0] = compressed ? GRPC_FLAG_COMPRESSED : 0;
        out[1] = (uint8_t) (len >> 24);
        out[2] = (uint8_t) (len >> 16);
        out[3] = (uint8_t) (len >> 8);
        out[4] = (uint8_t) len;
}

int grpc_timeout_parse(const char *s, size_t len, uint64_t *ret_usec) {
        uint64_t v = 0, usec;

        /* TimeoutValue: 1 to 8 ASCII digits (the gRPC over HTTP/2 spec) */
        if (len < 2 || len > 9 || text_parse_u64n(s, len - 1, 99999999, &v) < 0)
                return -EINVAL;

        /* 99999999 hours is 3.6e17 us: no unit can overflow 64 bits. */
        switch (s[len - 1]) {
        case 'H':
                usec = v * 3600 * 1000000;
                break;
        case 'M':
                usec = v * 60 * 1000000;
                break;
        case 'S':
                usec = v * 1000000;
                break;
        case 'm':
                usec = v * 1000;
                break;
        case 'u':
                usec = v;
                break;
        case 'n':
                usec = (v + 999) / 1000;
                break;
        default:
                return -EINVAL;
        }
        *ret_usec = usec;
        return 0;
}

int grpc_timeout_format(uint64_t usec, char *buf, size_t size) {
        static const struct {
                uint64_t usec;
                char unit;
        } units[] = {
                {1, 'u'},
                {1000, 'm'},
                {1000000, 'S'},
                {60ull * 1000000, 'M'},
                {3600ull * 1000000, 'H'},
        };
        const uint64_t max_digits = 99999999;

        if (size < GRPC_TIMEOUT_MAX)
                return -EINVAL;
        for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
                uint64_t v = usec / units[i].usec + (usec % units[i].usec ? 1 : 0);

                if (v <= max_digits) {
                        char *p = buf + GRPC_TIMEOUT_MAX - 1;

                        /* Digits right to left, then move them to the front. */
                        *p = '\0';
                        *--p = units[i].unit;
                        do {
                                *--p = (char) ('0' + v % 10);
                                v /= 10;
                        } while (v > 0);
                        memmove(buf, p, (size_t) (buf + GRPC_TIMEOUT_MAX - p));
                        return 0;
                }
        }
        return -ERANGE;
}

static bool needs_escape(unsigned char c) {
        return c < 0x20 || c > 0x7e || c == '%';
}

char *grpc_message_encode(const char *s) {
        static const char hex[] = "0123456789ABCDEF";
        size_t n = 0;
        char *out, *p;

        for (const unsigned char *q = (const unsigned char *) s; *q; q++)
                n += needs_escape(*q) ? 3 : 1;
        out = malloc(n + 1);
        if (!out)
                return NULL;
        p = out;
        for (const unsigned char *q = (const unsigned char *) s; *q; q++) {
                if (needs_escape(*q)) {
                        *p++ = '%';
                        *p++ = hex[*q >> 4];
                        *p++ = hex[*q & 0xf];
                } else
                        *p++ = (char) *q;
        }
        *p = '\0';
        return out;
}

static int hexval(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

char *grpc_message_decode(const char *s, size_t len) {
        char *out = malloc(len + 1), *p = out;

        if (!out)
                return NULL;
        for (size_t i = 0; i < len; i++) {
                int hi, lo;

                if (s[i] == '%' && i + 2 < len && (hi = hexval(s[i + 1])) >= 0 &&
                    (lo = hexval(s[i + 2])) >= 0) {
                        *p++ = (char) (hi << 4 | lo);
                        i += 2;
                } else
                        *p++ = s[i];
        }
        *p = '\0';
        return out;
}

bool grpc_content_type_is_grpc(const char *v, size_t len) {
        static const char base[] = "application/grpc";
        static const char proto[] = "+proto";
        const size_t nbase = sizeof(base) - 1, nproto = sizeof(proto) - 1;
        size_t rest;

        if (len < nbase || strncasecmp(v, base, nbase) != 0)
                return false;
        v += nbase;
        rest = len - nbase;
        if (rest >= nproto && strncasecmp(v, proto, nproto) == 0) {
                v += nproto;
                rest -= nproto;
        }
        return rest == 0 || v[0] == ';';
}

int grpc_buf_append(struct grpc_buf *b, const void *p, size_t n) {
        if (n == 0)
                return 0;
        if (b->off > 0 && b->off == b->len)
                b->off = b->len = 0;
        if (b->cap - b->len < n) {
                size_t pending = b->len - b->off, cap;
                uint8_t *d;

                /* Reclaim the consumed front first when that is enough room. */
                if (b->off > 0 && b->cap - pending >= n && pending <= b->cap / 2) {
                        memmove(b->data, b->data + b->off, pending);
                        b->off = 0;
                        b->len = pending;
                } else {
                        if (n > SIZE_MAX / 2 - b->len)
                                return -ENOMEM;
                        cap = b->cap ? b->cap : 1024;
                        while (cap - b->len < n)
                                cap *= 2;
                        d = realloc(b->data, cap);
                        if (!d)
                                return -ENOMEM;
                        b->data = d;
                        b->cap = cap;
                }
        }
        memcpy(b->data + b->len, p, n);
        b->len += n;
        return 0;
}

int grpc_buf_append_message(struct grpc_buf *b, const uint8_t *msg, size_t len) {
        uint8_t prefix[GRPC_PREFIX_LEN];
        size_t old_len = b->len;
        int r;

        if (len > UINT32_MAX)
                return -EMSGSIZE;
        grpc_frame_encode_prefix(prefix, false, (uint32_t) len);
        r = grpc_buf_append(b, prefix, sizeof(prefix));
        if (r < 0)
                return r;
        r = grpc_buf_append(b, msg, len);
        if (r < 0) {
                b->len = old_len;
                return r;
        }
        return 0;
}

void grpc_buf_consume(struct grpc_buf *b, size_t n) {
        b->off += n;
        if (b->off >= b->len)
                b->off = b->len = 0;
}

void grpc_buf_free(struct grpc_buf *b) {
        free(b->data);
        *b = (struct grpc_buf){0};
}
