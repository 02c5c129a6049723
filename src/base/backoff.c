/*
 * backoff.c - capped exponential backoff (see backoff.h). Pure arithmetic on a small struct;
 * knows no clock, timer or thread.
 */
#include "backoff.h"

uint64_t backoff_double(uint64_t cur, uint64_t max) {
        if (cur == 0)
                return max ? 1 : 0;
        return cur > max / 2 ? max : cur * 2;
}

void backoff_init(struct backoff *b, uint64_t min, uint64_t max) {
        b->min = min;
        b->max = max < min ? min : max;
        b->cur = min;
}

uint64_t backoff_delay(const struct backoff *b) {
        return b->cur;
}

uint64_t backoff_next(struct backoff *b) {
        uint64_t d = b->cur;

        b->cur = backoff_double(b->cur, b->max);
        return d;
}

void backoff_reset(struct backoff *b) {
        b->cur = b->min;
}
