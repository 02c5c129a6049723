/*
 * unit.h - the smallest test harness that can fail: CHECK() records a failure with file:line and
 * goes on; each TEST is a function registered in main via RUN(). The last line is
 * "N passed, N failed" and the exit code is non-zero when anything failed.
 *
 *   static void test_discovery_finds_sgx_enclave(void) { CHECK(x == 1); CHECK_STR(a, "b"); }
 *   int main(void) { RUN(test_discovery_finds_sgx_enclave); return unit_done(); }
 */
#pragma once

#include <stdio.h>
#include <string.h>

static int unit_failed_checks __attribute__((unused));
static int unit_passed __attribute__((unused)), unit_failed __attribute__((unused));

#define CHECK(cond)                                                                                \
        do {                                                                                       \
                if (!(cond)) {                                                                     \
                        fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);   \
                        unit_failed_checks++;                                                      \
                }                                                                                  \
        } while (0)

#define CHECK_INT(a, b)                                                                            \
        do {                                                                                       \
                long long _a = (long long) (a), _b = (long long) (b);                              \
                if (_a != _b) {                                                                    \
                        fprintf(stderr, "%s:%d: CHECK failed: %s == %s (%lld != %lld)\n",          \
                                __FILE__, __LINE__, #a, #b, _a, _b);                               \
                        unit_failed_checks++;                                                      \
                }                                                                                  \
        } while (0)

#define CHECK_STR(a, b)                                                                            \
        do {                                                                                       \
                const char *_a = (a), *_b = (b);                                                   \
                if (!_a || !_b || strcmp(_a, _b) != 0) {                                           \
                        fprintf(stderr, "%s:%d: CHECK failed: %s == %s (\"%s\" != \"%s\")\n",      \
                                __FILE__, __LINE__, #a, #b, _a ? _a : "(null)",                    \
                                _b ? _b : "(null)");                                               \
                        unit_failed_checks++;                                                      \
                }                                                                                  \
        } while (0)

#define RUN(fn)                                                                                    \
        do {                                                                                       \
                int _before = unit_failed_checks;                                                  \
                fn();                                                                              \
                if (unit_failed_checks == _before) {                                               \
                        unit_passed++;                                                             \
                        printf("ok %s\n", #fn);                                                    \
                } else {                                                                           \
                        unit_failed++;                                                             \
                        printf("FAIL %s\n", #fn);                                                  \
                }                                                                                  \
        } while (0)

static inline int unit_done(void) {
        printf("%d passed, %d failed\n", unit_passed, unit_failed);
        return unit_failed ? 1 : 0;
}
