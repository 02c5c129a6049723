/*
 * grpc_frame.h - the socket-free pieces of gRPC over HTTP/2: the 5-byte length-prefixed message
 * framing (a deframer with a receive limit, and the prefix encoder), grpc-timeout parsing and
 * formatting, grpc-message percent-encoding, the content-type check, and the byte queue both
 * sides buffer output in. Pure functions over buffers; no nghttp2, no loop, no logging. Used by
 * grpc_server.c and grpc_client.c.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Length of a message prefix: 1 flags byte (bit 0: compressed), 4 bytes big-endian length. */
#define GRPC_PREFIX_LEN 5
#define GRPC_FLAG_COMPRESSED 0x01u

/* Longest grpc-timeout value we format: 8 digits and a unit, plus the terminating NUL. */
#define GRPC_TIMEOUT_MAX 10

/*
 * Splits a byte stream (the DATA of one HTTP/2 stream) into messages. A prefix announcing more
 * than |limit| bytes is reported as soon as the prefix is complete, and its body is never
 * buffered: the deframer then fails for good and swallows everything fed after it.
 */
struct grpc_deframer {
        size_t limit;                    /* largest accepted message body */
        uint8_t prefix[GRPC_PREFIX_LEN]; /* the prefix being read */
        size_t prefix_len;               /* bytes of |prefix| held */
        uint32_t msg_len;                /* body length announced by the complete prefix */
        uint8_t *msg;                    /* body bytes held so far (owned), grown as they come */
        size_t msg_fill;                 /* bytes of |msg| filled */
        size_t msg_cap;                  /* bytes allocated for |msg| */
        bool in_body;                    /* the prefix is complete; reading the body */
        bool failed;                     /* a message was over the limit; input is discarded */
};

/*
 * Called for each complete message. |msg| is valid only during the call. Returns 0 to go on, or
 * a negative value that grpc_deframer_feed() stops at and returns.
 */
typedef int (*grpc_deframer_fn)(const uint8_t *msg, size_t len, uint8_t flags, void *userdata);

void grpc_deframer_init(struct grpc_deframer *d, size_t limit);
/* Frees what the deframer holds; it may be initialized again. */
void grpc_deframer_done(struct grpc_deframer *d);

/*
 * Feeds |len| bytes of |data|, calling |fn| for each message completed by them. Returns 0;
 * -EMSGSIZE when a prefix announces more than the limit (and on every later feed); -ENOMEM; or
 * the negative value |fn| returned. After an error the deframer must not be fed meaningfully
 * again (it swallows input after -EMSGSIZE).
 */
int grpc_deframer_feed(struct grpc_deframer *d, const uint8_t *data, size_t len,
                       grpc_deframer_fn fn, void *userdata);

/* True when the deframer holds part of a message (a prefix or a body not yet complete). */
bool grpc_deframer_has_partial(const struct grpc_deframer *d);

/* Writes the 5-byte prefix of a message of |len| bytes into |out|. */
void grpc_frame_encode_prefix(uint8_t *out, bool compressed, uint32_t len);

/*
 * Parses a grpc-timeout value (|len| bytes, not necessarily NUL-terminated): 1 to 8 ASCII digits
 * and one unit of H, M, S, m, u, n. Sets *ret_usec to the timeout in microseconds, rounded up
 * (a non-zero nanosecond value is at least 1 us). Returns 0 or -EINVAL.
 */
int grpc_timeout_parse(const char *s, size_t len, uint64_t *ret_usec);

/*
 * Formats |usec| as a grpc-timeout value into |buf| (at least GRPC_TIMEOUT_MAX bytes), choosing
 * the finest unit that fits in 8 digits and rounding up. Returns 0, or -ERANGE if |usec| exceeds
 * what 8 digits of hours can say, or -EINVAL if |size| is too small.
 */
int grpc_timeout_format(uint64_t usec, char *buf, size_t size);

/*
 * Percent-encodes a grpc-message value: bytes outside 0x20..0x7e, and '%' itself, become %XX.
 * Returns a new NUL-terminated string (caller frees), or NULL on ENOMEM.
 */
char *grpc_message_encode(const char *s);

/*
 * Decodes a percent-encoded grpc-message value of |len| bytes. An invalid %-sequence is kept as
 * is (the spec forbids failing on it). Returns a new NUL-terminated string (caller frees), or
 * NULL on ENOMEM.
 */
char *grpc_message_decode(const char *s, size_t len);

/*
 * True when a content-type value (|len| bytes) names gRPC with the protobuf codec:
 * "application/grpc" or "application/grpc+proto", optionally followed by ";" parameters.
 * The type is compared case-insensitively.
 */
bool grpc_content_type_is_grpc(const char *v, size_t len);

/*
 * A byte queue: bytes [off, len) of |data| are pending. Used for framed messages waiting for
 * nghttp2 and for HTTP/2 bytes waiting for a writable socket. Zero-initialize to start.
 */
struct grpc_buf {
        uint8_t *data; /* owned */
        size_t off;    /* first pending byte */
        size_t len;    /* end of pending bytes */
        size_t cap;    /* bytes allocated */
};

static inline size_t grpc_buf_pending(const struct grpc_buf *b) {
        return b->len - b->off;
}

static inline const uint8_t *grpc_buf_head(const struct grpc_buf *b) {
        return b->data + b->off;
}

/* Appends |n| bytes of |p|. Returns 0 or -ENOMEM. */
int grpc_buf_append(struct grpc_buf *b, const void *p, size_t n);
/* Appends one message with its prefix (uncompressed). Returns 0, -EMSGSIZE, -ENOMEM. */
int grpc_buf_append_message(struct grpc_buf *b, const uint8_t *msg, size_t len);
/* Drops |n| pending bytes from the front (n <= pending). */
void grpc_buf_consume(struct grpc_buf *b, size_t n);
/* Frees the storage; the queue is empty and usable again. */
void grpc_buf_free(struct grpc_buf *b);
