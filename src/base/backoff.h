/*
 * backoff.h - capped exponential backoff, pure arithmetic: the delay to wait now, doubled after
 * each failure up to a cap, back to the first delay after a success. No clock and no timer: the
 * caller arms its own (a loop timer in registration.c, a condition wait in kube/reconciler.c).
 * Units are the caller's (µs or ms); the numbers only need to be consistent.
 */
#pragma once

#include <stdint.h>

struct backoff {
        uint64_t min; /* the first delay, and the delay after backoff_reset() */
        uint64_t max; /* the cap (never below |min|) */
        uint64_t cur; /* the delay the next failure waits */
};

/* The delay after |cur|: doubled, capped at |max| (no overflow). Pure. */
uint64_t backoff_double(uint64_t cur, uint64_t max);

/* Starts at |min|; a |max| below |min| is raised to |min|. */
void backoff_init(struct backoff *b, uint64_t min, uint64_t max);

/* The delay the next failure waits, without advancing. */
uint64_t backoff_delay(const struct backoff *b);

/* A failure: returns the delay to wait now and doubles the next one, up to the cap. */
uint64_t backoff_next(struct backoff *b);

/* A success: the next failure waits |min| again. */
void backoff_reset(struct backoff *b);
