/*
 * fuzz_frame_misc.c - libFuzzer target for the small parsers and encoders of grpc_frame.h and
 * grpc_status.h that see peer bytes: grpc-timeout parsing (against a reference) and formatting
 * (round trip), grpc-message percent-encoding (round trip) and decoding, the content-type check,
 * the byte queue (against a shadow copy) and grpc_status_name. Every length-taking function gets
 * an exact-size heap copy, so ASan sees a read past the end.
 *
 * Input: byte 0 picks the function (mod 7); the rest is its argument.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "grpc_frame.h"
#include "grpc_status.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *copy(const uint8_t *p, size_t n) {
        char *c = malloc(n ? n : 1);

        if (!c)
                abort();
        if (n)
                memcpy(c, p, n);
        return c;
}

/* The grpc-timeout grammar, written independently: 1-8 digits, then one of H M S m u n. */
static int ref_timeout(const char *s, size_t n, uint64_t *ret) {
        uint64_t v = 0;

        if (n < 2 || n > 9)
                return -EINVAL;
        for (size_t i = 0; i + 1 < n; i++) {
                if (!strchr("0123456789", s[i]) || s[i] == '\0')
                        return -EINVAL;
                v = v * 10 + (uint64_t) (s[i] - '0');
        }
        switch (s[n - 1]) {
        case 'H':
                *ret = v * 3600000000ull;
                return 0;
        case 'M':
                *ret = v * 60000000ull;
                return 0;
        case 'S':
                *ret = v * 1000000ull;
                return 0;
        case 'm':
                *ret = v * 1000ull;
                return 0;
        case 'u':
                *ret = v;
                return 0;
        case 'n':
                *ret = v / 1000 + (v % 1000 ? 1 : 0);
                return 0;
        default:
                return -EINVAL;
        }
}

static void fuzz_timeout_parse(const uint8_t *p, size_t n) {
        char *s = copy(p, n);
        uint64_t got = 0, want = 0;
        int r = grpc_timeout_parse(s, n, &got), rr = ref_timeout(s, n, &want);

        if (r != rr || (r == 0 && got != want))
                abort();
        free(s);
}

static void fuzz_timeout_format(const uint8_t *p, size_t n) {
        static const uint64_t hour = 3600000000ull;
        char buf[GRPC_TIMEOUT_MAX];
        uint64_t usec = 0, back;
        size_t len;
        int r;

        memcpy(&usec, p, n < sizeof(usec) ? n : sizeof(usec));
        if (n > sizeof(usec) && p[8] & 1)
                usec %= 100000000ull * hour; /* mostly values that fit */
        r = grpc_timeout_format(usec, buf, sizeof(buf) - 1);
        if (r != -EINVAL && r != -ERANGE)
                abort();
        r = grpc_timeout_format(usec, buf, sizeof(buf));
        if (r == -ERANGE) {
                if (usec / hour + (usec % hour ? 1 : 0) <= 99999999)
                        abort(); /* it fits in hours */
                return;
        }
        if (r != 0)
                abort();
        len = strnlen(buf, sizeof(buf));
        if (len < 2 || len >= sizeof(buf))
                abort();
        if (grpc_timeout_parse(buf, len, &back) < 0)
                abort();
        /* Rounded up, by less than one unit; exact in microseconds when that fits. */
        if (back < usec || (usec <= 99999999 && back != usec))
                abort();
}

static void fuzz_message_encode(const uint8_t *p, size_t n) {
        char *s = malloc(n + 1), *enc, *dec;

        if (!s)
                abort();
        memcpy(s, p, n);
        s[n] = '\0';
        enc = grpc_message_encode(s);
        if (!enc)
                abort();
        for (const char *q = enc; *q; q++)
                if (*q < 0x20 || *q > 0x7e)
                        abort();
        dec = grpc_message_decode(enc, strlen(enc));
        if (!dec || strcmp(dec, s) != 0)
                abort();
        free(dec);
        free(enc);
        free(s);
}

static void fuzz_message_decode(const uint8_t *p, size_t n) {
        char *s = copy(p, n), *dec = grpc_message_decode(s, n);

        if (!dec)
                abort();
        /* Never longer than the input; unchanged when there is nothing to decode. */
        if (strlen(dec) > n)
                abort();
        if (!memchr(s, '%', n) && !memchr(s, '\0', n) && (strlen(dec) != n || memcmp(dec, s, n)))
                abort();
        free(dec);
        free(s);
}

static void fuzz_content_type(const uint8_t *p, size_t n) {
        static const char base[] = "application/grpc";
        char *s = copy(p, n);
        size_t b = sizeof(base) - 1, rest;
        bool want = false;

        if (n >= b && strncasecmp(s, base, b) == 0) {
                rest = n - b;
                if (rest == 0 || s[b] == ';')
                        want = true;
                else if (rest >= 6 && strncasecmp(s + b, "+proto", 6) == 0)
                        want = rest == 6 || s[b + 6] == ';';
        }
        if (grpc_content_type_is_grpc(s, n) != want)
                abort();
        free(s);
}

/*
 * Byte-queue ops, two bytes each (op, k), at most 256: op 0..99 appends the next k input bytes
 * (op % 4 + 1 times), 100..199 consumes k * (op - 99) bytes, 200..255 appends them as a framed
 * message.
 */
static void fuzz_buf(const uint8_t *p, size_t n) {
        struct grpc_buf b = {0};
        uint8_t *shadow = malloc(1), *t;
        size_t shadow_len = 0, i = 0, ops = 0;

        if (!shadow)
                abort();
        while (i + 1 < n && ops++ < 256) {
                uint8_t op = p[i], k = p[i + 1];

                i += 2;
                if (op < 100 || op >= 200) {
                        size_t add = k <= n - i ? k : n - i;
                        size_t extra = op >= 200 ? GRPC_PREFIX_LEN : 0;

                        /* Repeat small appends so the queue grows past its first allocation. */
                        for (unsigned rep = 0; rep < (op % 4) + 1; rep++) {
                                if (op >= 200) {
                                        if (grpc_buf_append_message(&b, p + i, add) < 0)
                                                abort();
                                } else if (grpc_buf_append(&b, p + i, add) < 0)
                                        abort();
                                t = realloc(shadow, shadow_len + extra + add + 1);
                                if (!t)
                                        abort();
                                shadow = t;
                                if (extra)
                                        grpc_frame_encode_prefix(shadow + shadow_len, false,
                                                                 (uint32_t) add);
                                if (add)
                                        memcpy(shadow + shadow_len + extra, p + i, add);
                                shadow_len += extra + add;
                        }
                        i += add;
                } else {
                        size_t take = (size_t) k * (op - 99);

                        if (take > shadow_len)
                                take = shadow_len;
                        grpc_buf_consume(&b, take);
                        memmove(shadow, shadow + take, shadow_len - take);
                        shadow_len -= take;
                }
                if (grpc_buf_pending(&b) != shadow_len)
                        abort();
                if (shadow_len && memcmp(grpc_buf_head(&b), shadow, shadow_len) != 0)
                        abort();
                if (b.off > b.len || b.len > b.cap)
                        abort();
        }
        grpc_buf_free(&b);
        if (grpc_buf_pending(&b) != 0)
                abort();
        free(shadow);
}

static void fuzz_status_name(const uint8_t *p, size_t n) {
        int v = 0;
        const char *name;

        memcpy(&v, p, n < sizeof(v) ? n : sizeof(v));
        name = grpc_status_name(v);
        if (!name || !*name)
                abort();
        if ((v < 0 || v > 16) && strcmp(name, "UNKNOWN") != 0)
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size < 1)
                return 0;
        switch (data[0] % 7) {
        case 0:
                fuzz_timeout_parse(data + 1, size - 1);
                break;
        case 1:
                fuzz_timeout_format(data + 1, size - 1);
                break;
        case 2:
                fuzz_message_encode(data + 1, size - 1);
                break;
        case 3:
                fuzz_message_decode(data + 1, size - 1);
                break;
        case 4:
                fuzz_content_type(data + 1, size - 1);
                break;
        case 5:
                fuzz_buf(data + 1, size - 1);
                break;
        case 6:
                fuzz_status_name(data + 1, size - 1);
                break;
        }
        return 0;
}
