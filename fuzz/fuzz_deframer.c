/*
 * fuzz_deframer.c - libFuzzer target for the gRPC message deframer (grpc_frame.h): an arbitrary
 * byte stream fed in arbitrary chunks under an arbitrary receive limit, checked against a
 * reference parse of the whole stream (same messages, same flags, same bytes, in order; -EMSGSIZE
 * exactly when the first oversized prefix completes; a partial message exactly when the stream
 * ends inside one), with a callback that may fail at a chosen message.
 *
 * Input: byte 0 picks the limit (low nibble) and the message whose callback fails (high nibble,
 * 0 = none); byte 1 is the number k (mod 16) of chunk sizes that follow; the k bytes are the chunk
 * sizes, used in turn (0 is an empty feed); the rest is the stream.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "grpc_frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const size_t limits[16] = {
        0, 1, 4, 5, 16, 255, 256, 257, 511, 512, 1000, 4096, 65535, 65536,
        4u * 1024 * 1024 /* the server's default */, SIZE_MAX,
};

/* One message of the reference parse. */
struct ref_msg {
        size_t off; /* body offset in the stream */
        uint32_t len;
        uint8_t flags;
};

struct ref {
        struct ref_msg *msgs;
        size_t n_msgs;
        bool oversized;   /* the parse stopped at a prefix over the limit */
        size_t stop_at;   /* stream offset just past that prefix */
        bool partial;     /* the stream ends inside a prefix or a body */
};

/* What the deframer handed to the callback. */
struct seen {
        const struct ref *ref;
        const uint8_t *stream;
        size_t n_seen;
        size_t fail_at; /* 1-based message whose callback fails, 0 = none */
};

static void ref_parse(const uint8_t *s, size_t n, size_t limit, struct ref *ret) {
        size_t pos = 0;

        *ret = (struct ref){0};
        ret->msgs = malloc((n / GRPC_PREFIX_LEN + 1) * sizeof(*ret->msgs));
        if (!ret->msgs)
                abort();
        while (pos < n) {
                uint32_t len;

                if (n - pos < GRPC_PREFIX_LEN) {
                        ret->partial = true;
                        return;
                }
                len = (uint32_t) s[pos + 1] << 24 | (uint32_t) s[pos + 2] << 16 |
                      (uint32_t) s[pos + 3] << 8 | (uint32_t) s[pos + 4];
                if (len > limit) {
                        ret->oversized = true;
                        ret->stop_at = pos + GRPC_PREFIX_LEN;
                        return;
                }
                if (n - pos - GRPC_PREFIX_LEN < len) {
                        ret->partial = true;
                        return;
                }
                ret->msgs[ret->n_msgs++] =
                        (struct ref_msg){.off = pos + GRPC_PREFIX_LEN, .len = len, .flags = s[pos]};
                pos += GRPC_PREFIX_LEN + len;
        }
}

static int on_message(const uint8_t *msg, size_t len, uint8_t flags, void *userdata) {
        struct seen *seen = userdata;
        const struct ref_msg *want;

        if (seen->n_seen >= seen->ref->n_msgs)
                abort(); /* more messages than the stream holds */
        want = &seen->ref->msgs[seen->n_seen++];
        if (len != want->len || flags != want->flags)
                abort();
        if (len > 0 && memcmp(msg, seen->stream + want->off, len) != 0)
                abort();
        if (seen->fail_at && seen->n_seen == seen->fail_at)
                return -EIO;
        return 0;
}

/* Feeds the stream in the chunks given; checks the outcome against the reference. */
static void run(const uint8_t *stream, size_t n, size_t limit, const uint8_t *chunks,
                size_t n_chunks, size_t fail_at, const struct ref *ref) {
        struct grpc_deframer d;
        struct seen seen = {.ref = ref, .stream = stream, .fail_at = fail_at};
        size_t pos = 0, ci = 0, empty_feeds = 0;
        int r = 0;

        grpc_deframer_init(&d, limit);
        while (pos < n) {
                size_t c = n_chunks ? chunks[ci++ % n_chunks] : n - pos;

                if (c > n - pos)
                        c = n - pos;
                if (c == 0 && ++empty_feeds > 64)
                        c = n - pos; /* only empty chunks: finish in one feed */
                r = grpc_deframer_feed(&d, stream + pos, c, on_message, &seen);
                pos += c;
                if (r < 0)
                        break;
        }

        if (fail_at && fail_at <= ref->n_msgs) {
                /* The callback failed: exactly that many messages, and its error. */
                if (r != -EIO || seen.n_seen != fail_at)
                        abort();
        } else if (ref->oversized) {
                if (r != -EMSGSIZE || seen.n_seen != ref->n_msgs || pos < ref->stop_at)
                        abort();
                /* Every later feed fails too and swallows its input. */
                if (grpc_deframer_feed(&d, stream, n, on_message, &seen) != -EMSGSIZE)
                        abort();
                if (seen.n_seen != ref->n_msgs || grpc_deframer_has_partial(&d))
                        abort();
        } else {
                if (r != 0 || seen.n_seen != ref->n_msgs)
                        abort();
                if (grpc_deframer_has_partial(&d) != ref->partial)
                        abort();
        }
        grpc_deframer_done(&d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        size_t limit, fail_at, n_chunks;
        const uint8_t *chunks, *stream;
        struct ref ref;

        if (size < 2)
                return 0;
        limit = limits[data[0] & 0x0f];
        fail_at = data[0] >> 4;
        n_chunks = data[1] % 16;
        if (size < 2 + n_chunks)
                return 0;
        chunks = data + 2;
        stream = data + 2 + n_chunks;
        size -= 2 + n_chunks;

        ref_parse(stream, size, limit, &ref);
        run(stream, size, limit, chunks, n_chunks, fail_at, &ref);
        /* The same stream in one feed, and byte by byte: the chunking must not matter. */
        run(stream, size, limit, NULL, 0, fail_at, &ref);
        if (size <= 4096) {
                static const uint8_t one = 1;

                run(stream, size, limit, &one, 1, fail_at, &ref);
        }
        free(ref.msgs);
        return 0;
}
