/*
 * failmalloc.h - allocation-failure injection for the fault twins (test_<module>_fault.c), as
 * nghttp2's tests/failmalloc_test.c and SQLite's *fault.test do: the N-th allocation from now
 * fails, once, and the test checks that the code under test says -ENOMEM (or its documented
 * equivalent), crashes nowhere and leaks nothing (the ASan build, detect_leaks=1).
 *
 * What is caught: malloc, calloc, realloc, strdup and asprintf called from our own code (the
 * test and the static libraries linked into it), redirected with the linker's --wrap (see
 * tests/unit/meson.build, so ASan's own interceptors stay underneath); and jansson's
 * allocations once failmalloc_hook_jansson() ran (json_set_alloc_funcs). What is not: the
 * allocations nghttp2, protobuf-c, OpenSSL and libc make inside their shared libraries.
 *
 * The loop of a fault twin:
 *
 *   for (unsigned long n = 1;; n++) {
 *           failmalloc_arm(n);
 *           r = thing_under_test(...);
 *           failmalloc_disarm();
 *           if (!failmalloc_fired()) { CHECK_INT(r, 0); break; }  (no failure: must succeed)
 *           CHECK(r == 0 || r == -ENOMEM);                         (a failure: a clean error)
 *           ...free what it returned...
 *   }
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* Makes the |n|-th (1 = the next) allocation from now fail, once. Resets failmalloc_fired(). */
void failmalloc_arm(unsigned long n);

/* No more failures. */
void failmalloc_disarm(void);

/* True when the armed allocation was reached (and failed) since the last failmalloc_arm(). */
bool failmalloc_fired(void);

/* Allocations seen since the program started (failed ones included). */
unsigned long failmalloc_count(void);

/* Routes jansson's allocations through the counter as well. */
void failmalloc_hook_jansson(void);

/* A fault loop that goes on past this many steps is a bug in the test (or an endless retry). */
#define FAILMALLOC_MAX_STEPS 100000ul
