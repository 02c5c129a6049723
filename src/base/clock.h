/*
 * clock.h - the monotonic clock, the one time base for deadlines, backoff and durations (the
 * loop's timers, the API client's timeouts and the reconciler's waits all use it).
 */
#pragma once

#include <stdint.h>

/* CLOCK_MONOTONIC in microseconds. */
uint64_t monotonic_usec(void);

/* CLOCK_MONOTONIC in milliseconds. */
uint64_t monotonic_ms(void);
