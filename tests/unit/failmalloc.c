/*
 * failmalloc.c - the counter behind failmalloc.h and the --wrap'd allocators. The executables of
 * the fault twins are linked with -Wl,--wrap=malloc,... so every call our code makes to malloc
 * lands in __wrap_malloc here, which either fails it or calls the real one (__real_malloc, which
 * is ASan's in the sanitized build). Counting is atomic: the labeler's worker thread allocates.
 */
#include "failmalloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

void *__real_malloc(size_t size);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t size);
char *__real_strdup(const char *s);

void *__wrap_malloc(size_t size);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t size);
char *__wrap_strdup(const char *s);
int __wrap_asprintf(char **ret, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static unsigned long n_allocs; /* allocations seen */
static unsigned long fail_at;  /* the one to fail (n_allocs value), 0: none */
static bool fired;

void failmalloc_arm(unsigned long n) {
        __atomic_store_n(&fired, false, __ATOMIC_SEQ_CST);
        __atomic_store_n(&fail_at, __atomic_load_n(&n_allocs, __ATOMIC_SEQ_CST) + n,
                         __ATOMIC_SEQ_CST);
}

void failmalloc_disarm(void) {
        __atomic_store_n(&fail_at, 0, __ATOMIC_SEQ_CST);
}

bool failmalloc_fired(void) {
        return __atomic_load_n(&fired, __ATOMIC_SEQ_CST);
}

unsigned long failmalloc_count(void) {
        return __atomic_load_n(&n_allocs, __ATOMIC_SEQ_CST);
}

/* Counts one allocation; true when it is the one to fail. */
static bool should_fail(void) {
        unsigned long c = __atomic_add_fetch(&n_allocs, 1, __ATOMIC_SEQ_CST);

        if (c != __atomic_load_n(&fail_at, __ATOMIC_SEQ_CST))
                return false;
        __atomic_store_n(&fired, true, __ATOMIC_SEQ_CST);
        return true;
}

void *__wrap_malloc(size_t size) {
        return should_fail() ? NULL : __real_malloc(size);
}

void *__wrap_calloc(size_t n, size_t size) {
        return should_fail() ? NULL : __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t size) {
        return should_fail() ? NULL : __real_realloc(p, size);
}

char *__wrap_strdup(const char *s) {
        return should_fail() ? NULL : __real_strdup(s);
}

int __wrap_asprintf(char **ret, const char *fmt, ...) {
        va_list ap;
        int r;

        if (should_fail())
                return -1;
        va_start(ap, fmt);
        r = vasprintf(ret, fmt, ap);
        va_end(ap);
        return r;
}

void failmalloc_hook_jansson(void) {
        json_set_alloc_funcs(__wrap_malloc, free);
}
