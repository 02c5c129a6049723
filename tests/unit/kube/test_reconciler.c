/*
 * test_reconciler.c - unit tests for reconciler.c, the generic worker, through a fake apply
 * function that records each call: nothing before the first state, a changed state sent at once
 * (also during an interval and during a backoff), the same state not sent again, re-assertion
 * every interval, backoff doubling up to its cap and starting over after a success, a prompt stop
 * that cancels a hung apply, a kick that re-sends an unchanged state at once (forced until a
 * success), bad configurations refused, and the file pages an apply mapped in given back after
 * it (those resident before it kept).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "pageout.h"
#include "reconciler.h"
#include "unit.h"

static uint64_t mono_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000u + (uint64_t) ts.tv_nsec / 1000000u;
}

static void sleep_ms(unsigned ms) {
        struct timespec ts = {ms / 1000, (long) (ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
}

/* The state: a value and a field that the custom equality ignores. */
struct state {
        int value;
        int ignored;
};

#define MAX_CALLS 64

struct fake {
        pthread_mutex_t mu;
        unsigned n;
        uint64_t at_ms[MAX_CALLS];
        int value[MAX_CALLS];
        bool changed[MAX_CALLS];
        bool forced[MAX_CALLS];
        unsigned retry_ms[MAX_CALLS];
        /* scripted: calls below fail_until fail (from fail_from on), the rest succeed */
        unsigned fail_from, fail_until;
        bool hang; /* block until cancel_fd is readable */
        bool saw_cancel;
        const volatile char *touch; /* read one byte of each page of these touch_len bytes */
        size_t touch_len;
};

static int fake_apply(void *userdata, const void *state, const struct reconciler_attempt *a) {
        struct fake *f = userdata;
        const struct state *s = state;
        unsigned i;
        bool hang;

        pthread_mutex_lock(&f->mu);
        i = f->n;
        if (f->n < MAX_CALLS) {
                f->at_ms[i] = mono_ms();
                f->value[i] = s->value;
                f->changed[i] = a->changed;
                f->forced[i] = a->forced;
                f->retry_ms[i] = a->retry_ms;
                f->n++;
        }
        hang = f->hang;
        pthread_mutex_unlock(&f->mu);
        for (size_t off = 0; off < f->touch_len; off += 4096)
                (void) f->touch[off];
        if (hang) {
                struct pollfd p = {.fd = a->cancel_fd, .events = POLLIN};
                if (poll(&p, 1, 10000) == 1) {
                        pthread_mutex_lock(&f->mu);
                        f->saw_cancel = true;
                        pthread_mutex_unlock(&f->mu);
                        return -ECANCELED;
                }
                return -ETIMEDOUT;
        }
        return i >= f->fail_from && i < f->fail_until ? -EIO : 0;
}

static bool equal_values(const void *a, const void *b) {
        return ((const struct state *) a)->value == ((const struct state *) b)->value;
}

static unsigned calls(struct fake *f) {
        unsigned n;
        pthread_mutex_lock(&f->mu);
        n = f->n;
        pthread_mutex_unlock(&f->mu);
        return n;
}

/* Waits up to |ms| for at least |n| calls. */
static bool wait_calls(struct fake *f, unsigned n, unsigned ms) {
        uint64_t end = mono_ms() + ms;
        while (calls(f) < n) {
                if (mono_ms() > end)
                        return false;
                sleep_ms(1);
        }
        return true;
}

static struct reconciler *start(struct fake *f, unsigned interval_ms, unsigned bmin,
                                unsigned bmax) {
        struct reconciler_config cfg = {
                .state_size = sizeof(struct state),
                .interval_ms = interval_ms,
                .backoff_min_ms = bmin,
                .backoff_max_ms = bmax,
                .apply = fake_apply,
                .equal = equal_values,
                .userdata = f,
        };
        struct reconciler *rc = NULL;

        pthread_mutex_init(&f->mu, NULL);
        CHECK_INT(reconciler_start(&cfg, &rc), 0);
        return rc;
}

static void set_value(struct reconciler *rc, int value, int ignored) {
        struct state s = {.value = value, .ignored = ignored};
        reconciler_set(rc, &s);
}

static void test_reconciler_nothing_before_the_first_state(void) {
        struct fake f = {0};
        struct reconciler *rc = start(&f, 10, 10, 10);

        sleep_ms(50);
        CHECK_INT(calls(&f), 0);
        reconciler_stop(rc);
}

static void test_reconciler_changed_state_sent_at_once(void) {
        struct fake f = {0};
        struct reconciler *rc = start(&f, 60000, 0, 0);
        uint64_t t;

        t = mono_ms();
        set_value(rc, 1, 0);
        CHECK(wait_calls(&f, 1, 2000));
        CHECK(f.at_ms[0] - t < 2000); /* at once: not after a backoff or an interval */
        CHECK_INT(f.value[0], 1);
        CHECK(f.changed[0]);
        set_value(rc, 1, 7); /* equal by the caller's equality: nothing to send */
        sleep_ms(50);
        CHECK_INT(calls(&f), 1);
        t = mono_ms();
        set_value(rc, 2, 0); /* inside the 60 s interval: sent at once all the same */
        CHECK(wait_calls(&f, 2, 2000));
        CHECK(f.at_ms[1] - t < 2000); /* at once: not after a backoff or an interval */
        CHECK_INT(f.value[1], 2);
        CHECK(f.changed[1]);
        reconciler_stop(rc);
}

static void test_reconciler_default_equality_is_the_bytes(void) {
        struct reconciler_config cfg = {
                .state_size = sizeof(struct state), .interval_ms = 60000, .apply = fake_apply};
        struct fake f = {0};
        struct reconciler *rc = NULL;

        pthread_mutex_init(&f.mu, NULL);
        cfg.userdata = &f;
        CHECK_INT(reconciler_start(&cfg, &rc), 0);
        set_value(rc, 1, 0);
        CHECK(wait_calls(&f, 1, 2000));
        set_value(rc, 1, 0);
        sleep_ms(30);
        CHECK_INT(calls(&f), 1);
        set_value(rc, 1, 1); /* differs in bytes: sent */
        CHECK(wait_calls(&f, 2, 2000));
        reconciler_stop(rc);
}

static void test_reconciler_reasserts_every_interval(void) {
        struct fake f = {0};
        struct reconciler *rc = start(&f, 30, 0, 0);

        set_value(rc, 1, 0);
        CHECK(wait_calls(&f, 4, 2000));
        reconciler_stop(rc);
        CHECK(f.changed[0]);
        for (unsigned i = 1; i < 4; i++) {
                CHECK(!f.changed[i]); /* the same state, re-asserted */
                CHECK_INT(f.value[i], 1);
                CHECK(f.at_ms[i] - f.at_ms[i - 1] >= 29); /* not before the interval */
        }
}

static void test_reconciler_backoff_doubles_up_to_the_cap(void) {
        static const unsigned want[] = {20, 40, 80, 160, 200, 200};
        struct fake f = {.fail_until = 100};
        struct reconciler *rc = start(&f, 60000, 20, 200);

        set_value(rc, 1, 0);
        CHECK(wait_calls(&f, 7, 5000));
        reconciler_stop(rc);
        for (unsigned i = 0; i < 6; i++) {
                uint64_t gap = f.at_ms[i + 1] - f.at_ms[i];

                CHECK_INT(f.retry_ms[i], want[i]); /* what the apply function logs */
                CHECK(gap + 1 >= want[i]);         /* waited that long (ms granularity) */
                CHECK(gap < want[i] + 1000);       /* and not grossly longer */
        }
        CHECK(f.changed[1]); /* a retry of a state never applied is still a change */
}

static void test_reconciler_success_resets_the_backoff(void) {
        /* calls 0-2 fail, 3 succeeds, 4 (re-assert) fails: its retry starts over at the minimum */
        struct fake f = {.fail_from = 0, .fail_until = 3};
        struct reconciler *rc = start(&f, 100, 10, 1000);

        set_value(rc, 1, 0);
        CHECK(wait_calls(&f, 4, 5000));
        pthread_mutex_lock(&f.mu);
        f.fail_from = 4;
        f.fail_until = 5;
        pthread_mutex_unlock(&f.mu);
        CHECK(wait_calls(&f, 6, 5000));
        reconciler_stop(rc);
        CHECK_INT(f.retry_ms[0], 10);
        CHECK_INT(f.retry_ms[1], 20);
        CHECK_INT(f.retry_ms[2], 40);
        CHECK_INT(f.retry_ms[3], 80);
        CHECK(!f.changed[4]);
        CHECK_INT(f.retry_ms[4], 10);
}

static void test_reconciler_change_sent_at_once_while_backing_off(void) {
        struct fake f = {.fail_until = 1};
        struct reconciler *rc = start(&f, 60000, 10000, 10000);
        uint64_t t;

        set_value(rc, 1, 0);
        CHECK(wait_calls(&f, 1, 2000)); /* fails: the retry is 10 s away */
        sleep_ms(20);
        t = mono_ms();
        set_value(rc, 2, 0);
        CHECK(wait_calls(&f, 2, 2000));
        CHECK(f.at_ms[1] - t < 2000); /* at once: not after a backoff or an interval */
        CHECK_INT(f.value[1], 2);
        reconciler_stop(rc);
}

static void test_reconciler_stop_cancels_a_hung_apply(void) {
        struct fake f = {.hang = true};
        struct reconciler *rc = start(&f, 60000, 0, 0);
        uint64_t t;

        set_value(rc, 1, 0);
        CHECK(wait_calls(&f, 1, 2000));
        t = mono_ms();
        reconciler_stop(rc);
        CHECK(mono_ms() - t < 3000); /* not the 10 s the hung apply would take */
        CHECK(f.saw_cancel);
}

static void test_reconciler_stop_is_prompt_while_backing_off(void) {
        struct fake f = {.fail_until = 100};
        struct reconciler *rc = start(&f, 60000, 10000, 10000);
        uint64_t t;

        set_value(rc, 1, 0);
        CHECK(wait_calls(&f, 1, 2000));
        sleep_ms(20);
        t = mono_ms();
        reconciler_stop(rc);
        CHECK(mono_ms() - t < 3000);
        CHECK_INT(calls(&f), 1);
        CHECK(reconciler_stop(NULL) == NULL);
}

static void test_reconciler_kick_resends_the_same_state_at_once(void) {
        struct fake f = {0};
        struct reconciler *rc = start(&f, 60000, 0, 0);
        uint64_t t;

        reconciler_kick(rc); /* before the first state: nothing to re-send */
        sleep_ms(30);
        CHECK_INT(calls(&f), 0);
        set_value(rc, 1, 0);
        CHECK(wait_calls(&f, 1, 2000));
        CHECK(!f.forced[0]);
        sleep_ms(20);
        t = mono_ms();
        reconciler_kick(rc); /* inside the 60 s interval: sent at once all the same */
        CHECK(wait_calls(&f, 2, 2000));
        CHECK(f.at_ms[1] - t < 2000); /* at once: not after a backoff or an interval */
        CHECK_INT(f.value[1], 1);
        CHECK(!f.changed[1]); /* the state is the one applied... */
        CHECK(f.forced[1]);   /* ...but the remote may have lost it */
        sleep_ms(50);
        CHECK_INT(calls(&f), 2); /* once */
        reconciler_stop(rc);
}

static void test_reconciler_kick_stays_forced_until_a_success(void) {
        /* call 1 (the kicked one) fails: its retry after the backoff is forced too, the next
         * re-assert is not */
        struct fake f = {.fail_from = 1, .fail_until = 2};
        struct reconciler *rc = start(&f, 100, 20, 20);

        set_value(rc, 1, 0);
        CHECK(wait_calls(&f, 1, 2000));
        reconciler_kick(rc);
        CHECK(wait_calls(&f, 4, 5000));
        reconciler_stop(rc);
        CHECK(f.forced[1] && f.forced[2]);
        CHECK(f.at_ms[2] - f.at_ms[1] + 1 >= 20); /* the retry waited its backoff */
        CHECK(!f.forced[3]);
        CHECK(f.at_ms[3] - f.at_ms[2] + 1 >= 100); /* then the interval */
}

static void test_reconciler_start_rejects_bad_config(void) {
        struct reconciler_config cfg = {.state_size = 4, .interval_ms = 1, .apply = NULL};
        struct reconciler *rc = NULL;

        CHECK_INT(reconciler_start(&cfg, &rc), -EINVAL);
        cfg.apply = fake_apply;
        cfg.state_size = 0;
        CHECK_INT(reconciler_start(&cfg, &rc), -EINVAL);
        cfg.state_size = 4;
        cfg.interval_ms = 0;
        CHECK_INT(reconciler_start(&cfg, &rc), -EINVAL);
        CHECK(rc == NULL);
}

#define FILE_PAGES 8

/* A temporary file of FILE_PAGES pages (written back to disk), mapped private and read-only. */
static char *map_temp_file(void) {
        char path[] = "test_reconciler.XXXXXX", page[4096];
        void *m;
        int fd = mkstemp(path);

        CHECK(fd >= 0);
        if (fd < 0)
                return NULL;
        unlink(path);
        memset(page, 'x', sizeof(page));
        for (int i = 0; i < FILE_PAGES; i++)
                CHECK(write(fd, page, sizeof(page)) == (ssize_t) sizeof(page));
        CHECK(fsync(fd) == 0);
        m = mmap(NULL, FILE_PAGES * sizeof(page), PROT_READ, MAP_PRIVATE, fd, 0);
        close(fd);
        CHECK(m != MAP_FAILED);
        return m == MAP_FAILED ? NULL : m;
}

static unsigned mapped_pages(const char *m) {
        uint64_t e[FILE_PAGES] = {0};
        unsigned n = 0;
        int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);

        if (fd < 0)
                return 0;
        if (pread(fd, e, sizeof(e), (off_t) ((uintptr_t) m / 4096 * sizeof(e[0]))) != sizeof(e))
                memset(e, 0, sizeof(e));
        close(fd);
        for (int i = 0; i < FILE_PAGES; i++)
                n += e[i] >> 63 & 1;
        return n;
}

/* (a tmpfs current directory fails this test: its pages have no file to go back to) */
static void test_reconciler_gives_back_the_pages_an_apply_mapped_in(void) {
        struct fake f = {0};
        struct reconciler *rc;
        char *kept = map_temp_file(), *burst = map_temp_file();
        uint64_t end;

        if (!kept || !burst)
                goto out_unmap;
        for (int i = 0; i < FILE_PAGES; i++)
                (void) ((volatile char *) burst)[i * 4096];
        CHECK(pageout_range(burst, FILE_PAGES * 4096) >= FILE_PAGES);
        /* pages faulted in on another CPU may sit in its LRU batch a moment (test_pageout.c) */
        for (int tries = 0; tries < 100 && mapped_pages(burst) > 0; tries++) {
                sleep_ms(10);
                (void) pageout_range(burst, FILE_PAGES * 4096);
        }
        CHECK_INT(mapped_pages(burst), 0);
        for (int i = 0; i < FILE_PAGES; i++)
                (void) ((volatile char *) kept)[i * 4096];
        CHECK_INT(mapped_pages(kept), FILE_PAGES);

        f.touch = burst;
        f.touch_len = FILE_PAGES * 4096;
        rc = start(&f, 60000, 0, 0);
        set_value(rc, 1, 0);
        CHECK(wait_calls(&f, 1, 2000));
        /* the apply mapped the burst's pages in; they are given back once it returned */
        end = mono_ms() + 2000;
        while (mapped_pages(burst) > 0 && mono_ms() < end)
                sleep_ms(1);
        CHECK_INT(mapped_pages(burst), 0);
        CHECK_INT(mapped_pages(kept), FILE_PAGES);
        reconciler_stop(rc);
out_unmap:
        if (kept)
                munmap(kept, FILE_PAGES * 4096);
        if (burst)
                munmap(burst, FILE_PAGES * 4096);
}

int main(void) {
        RUN(test_reconciler_nothing_before_the_first_state);
        RUN(test_reconciler_changed_state_sent_at_once);
        RUN(test_reconciler_default_equality_is_the_bytes);
        RUN(test_reconciler_reasserts_every_interval);
        RUN(test_reconciler_backoff_doubles_up_to_the_cap);
        RUN(test_reconciler_success_resets_the_backoff);
        RUN(test_reconciler_change_sent_at_once_while_backing_off);
        RUN(test_reconciler_stop_cancels_a_hung_apply);
        RUN(test_reconciler_stop_is_prompt_while_backing_off);
        RUN(test_reconciler_kick_resends_the_same_state_at_once);
        RUN(test_reconciler_kick_stays_forced_until_a_success);
        RUN(test_reconciler_start_rejects_bad_config);
        RUN(test_reconciler_gives_back_the_pages_an_apply_mapped_in);
        return unit_done();
}
