/*
 * test_grpc_frame_fault.c - the fault twin of test_grpc_frame.c: every allocation of the deframer
 * (a body growing by doubling), of grpc_buf and of the grpc-message codec made to fail in turn
 * (failmalloc.h). Each must give -ENOMEM (or NULL) and leave nothing behind but what its
 * done/free function releases; without a failure, the result is the same as ever.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "failmalloc.h"
#include "grpc_frame.h"
#include "unit.h"

struct seen {
        unsigned n;
        size_t bytes;
};

static int count_msg(const uint8_t *msg, size_t len, uint8_t flags, void *userdata) {
        struct seen *s = userdata;

        s->n++;
        s->bytes += len;
        return 0;
}

/* Three messages (10 B, 70 KiB, 0 B) as one stream, fed in 1000-byte pieces. */
static void test_grpc_frame_fault_deframer(void) {
        static const size_t sizes[] = {10, 70 * 1024, 0};
        struct grpc_buf in = {0};
        uint8_t *body = calloc(1, 70 * 1024);
        unsigned long n;

        CHECK(body != NULL);
        for (size_t i = 0; body && i < 3; i++)
                CHECK_INT(grpc_buf_append_message(&in, body, sizes[i]), 0);
        for (n = 1; body && n < FAILMALLOC_MAX_STEPS; n++) {
                struct grpc_deframer d;
                struct seen s = {0};
                int r = 0;

                grpc_deframer_init(&d, 1u << 20);
                failmalloc_arm(n);
                for (size_t off = 0; r == 0 && off < grpc_buf_pending(&in); off += 1000) {
                        size_t k = grpc_buf_pending(&in) - off;

                        r = grpc_deframer_feed(&d, grpc_buf_head(&in) + off, k < 1000 ? k : 1000,
                                               count_msg, &s);
                }
                failmalloc_disarm();
                if (!failmalloc_fired()) {
                        CHECK_INT(r, 0);
                        CHECK_INT(s.n, 3);
                        CHECK_INT(s.bytes, 10 + 70 * 1024);
                        CHECK(!grpc_deframer_has_partial(&d));
                        grpc_deframer_done(&d);
                        break;
                }
                CHECK_INT(r, -ENOMEM);
                CHECK(s.n < 3);
                grpc_deframer_done(&d);
        }
        CHECK(n > 3); /* the body grew more than once */
        grpc_buf_free(&in);
        free(body);
}

/* grpc_buf_append_message: on -ENOMEM the buffer holds what it held before. */
static void test_grpc_frame_fault_buf_append_message(void) {
        uint8_t *msg = calloc(1, 5000);
        unsigned long n;

        CHECK(msg != NULL);
        for (n = 1; msg && n < FAILMALLOC_MAX_STEPS; n++) {
                struct grpc_buf b = {0};
                int r;

                CHECK_INT(grpc_buf_append(&b, "abc", 3), 0);
                failmalloc_arm(n);
                r = grpc_buf_append_message(&b, msg, 5000);
                failmalloc_disarm();
                if (!failmalloc_fired()) {
                        CHECK_INT(r, 0);
                        CHECK_INT(grpc_buf_pending(&b), 3 + GRPC_PREFIX_LEN + 5000);
                        grpc_buf_free(&b);
                        break;
                }
                CHECK_INT(r, -ENOMEM);
                CHECK_INT(grpc_buf_pending(&b), 3);
                CHECK(memcmp(grpc_buf_head(&b), "abc", 3) == 0);
                grpc_buf_free(&b);
        }
        CHECK_INT(n, 2);
        free(msg);
}

static void test_grpc_frame_fault_message_codec(void) {
        char *s;

        failmalloc_arm(1);
        s = grpc_message_encode("100% sure\n");
        failmalloc_disarm();
        CHECK(failmalloc_fired());
        CHECK(s == NULL);

        failmalloc_arm(1);
        s = grpc_message_decode("a%20b", 5);
        failmalloc_disarm();
        CHECK(failmalloc_fired());
        CHECK(s == NULL);

        failmalloc_arm(2); /* each allocates once: the second call is untouched */
        s = grpc_message_encode("100%");
        failmalloc_disarm();
        CHECK(!failmalloc_fired());
        CHECK_STR(s, "100%25");
        free(s);
}

int main(void) {
        RUN(test_grpc_frame_fault_deframer);
        RUN(test_grpc_frame_fault_buf_append_message);
        RUN(test_grpc_frame_fault_message_codec);
        return unit_done();
}
