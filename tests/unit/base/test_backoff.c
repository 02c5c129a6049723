/* test_backoff.c - capped exponential backoff: doubling, the cap, reset, odd bounds. */
#include <stdint.h>

#include "backoff.h"
#include "unit.h"

static void test_backoff_double_doubles_until_the_cap(void) {
        CHECK_INT(backoff_double(1000, 300000), 2000);
        CHECK_INT(backoff_double(128000, 300000), 256000);
        CHECK_INT(backoff_double(256000, 300000), 300000); /* not 512000 */
        CHECK_INT(backoff_double(300000, 300000), 300000);
}

static void test_backoff_double_never_overflows(void) {
        CHECK(backoff_double(UINT64_MAX / 2 + 1, UINT64_MAX) == UINT64_MAX);
        CHECK(backoff_double(UINT64_MAX, UINT64_MAX) == UINT64_MAX);
}

static void test_backoff_next_returns_the_delay_then_doubles(void) {
        static const uint64_t want[] = {1000,  2000,   4000,   8000,   16000,  32000,
                                        64000, 128000, 256000, 300000, 300000, 300000};
        struct backoff b;

        backoff_init(&b, 1000, 300000);
        for (unsigned i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
                CHECK_INT(backoff_delay(&b), want[i]);
                CHECK_INT(backoff_next(&b), want[i]);
        }
}

static void test_backoff_reset_starts_over(void) {
        struct backoff b;

        backoff_init(&b, 100, 10000);
        backoff_next(&b);
        backoff_next(&b);
        CHECK_INT(backoff_delay(&b), 400);
        backoff_reset(&b);
        CHECK_INT(backoff_next(&b), 100);
        CHECK_INT(backoff_next(&b), 200);
}

static void test_backoff_max_below_min_is_raised(void) {
        struct backoff b;

        backoff_init(&b, 5000, 10);
        CHECK_INT(b.max, 5000);
        CHECK_INT(backoff_next(&b), 5000);
        CHECK_INT(backoff_next(&b), 5000);
}

static void test_backoff_zero_min_grows_from_one(void) {
        struct backoff b;

        backoff_init(&b, 0, 8);
        CHECK_INT(backoff_next(&b), 0);
        CHECK_INT(backoff_next(&b), 1);
        CHECK_INT(backoff_next(&b), 2);
        CHECK_INT(backoff_next(&b), 4);
        CHECK_INT(backoff_next(&b), 8);
        CHECK_INT(backoff_next(&b), 8);
}

int main(void) {
        RUN(test_backoff_double_doubles_until_the_cap);
        RUN(test_backoff_double_never_overflows);
        RUN(test_backoff_next_returns_the_delay_then_doubles);
        RUN(test_backoff_reset_starts_over);
        RUN(test_backoff_max_below_min_is_raised);
        RUN(test_backoff_zero_min_grows_from_one);
        return unit_done();
}
