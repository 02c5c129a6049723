/*
 * reconciler.c - the worker thread that applies a desired state (see reconciler.h). Owns the
 * thread, the mutex and condition variable the loop's thread hands states through, the timing
 * (when to retry, when to re-assert; backoff from base/backoff.h) and the cancel eventfd. Knows
 * nothing of what a state means or how it is applied: that is the caller's apply function.
 *
 * Timing, all on CLOCK_MONOTONIC: a state not tried yet goes out at once; after a success the
 * same state is re-applied interval_ms later; after a failure it is retried after the backoff,
 * which doubles from backoff_min_ms up to backoff_max_ms and starts over after a success. A new
 * state set during a backoff or an interval wakes the worker and goes out at once, and so does a
 * kick (reconciler_kick()), which marks the state as not applied: until an apply succeeds, every
 * attempt is a forced one.
 * reconciler_stop() sets |stopping|, signals the condition and writes the eventfd, which a
 * blocking apply polls, so stopping never waits for a hung API server.
 *
 * Applies are rare bursts (a TLS handshake every few minutes) that leave memory resident until
 * the next one, so after each apply the worker gives it back: the code and read-only data pages
 * the apply mapped in (OpenSSL's, about 2.7 MiB of the static binary's text), through
 * pageout_new_pages() against a snapshot taken just before the apply, so that the pages the
 * event loop had resident stay; then the heap the apply freed, through malloc_trim(0). The
 * snapshot and the page-out cost the worker 0.7 to 1.4 ms per apply (static build, 350 pages
 * given back per PATCH); the next apply reads those pages back (from the page cache, or from
 * disk if the kernel dropped them). On a kernel without MADV_PAGEOUT (before 5.4) the pages
 * stay, as before.
 */
#include "reconciler.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "backoff.h"
#include "clock.h"
#include "pageout.h"

struct reconciler {
        size_t state_size;
        unsigned interval_ms;
        reconciler_apply_fn apply;
        reconciler_equal_fn equal;
        void *userdata;
        struct backoff backoff; /* the worker's own (ms) */

        pthread_t thread;
        bool thread_started;
        bool no_pageout; /* the worker's: the kernel has no MADV_PAGEOUT */
        int cancel_fd;  /* eventfd: readable once stopping */
        void *applying; /* the worker's copy of the state for one apply */

        pthread_mutex_t mu; /* guards everything below */
        pthread_cond_t cond;
        bool stopping;
        bool have_wanted;
        void *wanted; /* state_size bytes */
        uint64_t gen;      /* bumped by every change of |wanted| */
        uint64_t kick_gen; /* bumped by every reconciler_kick() */
};

/* Calls the apply, then gives back the pages and the heap it left resident (see the top). */
static int apply_and_give_back(struct reconciler *rc, struct reconciler_attempt *a) {
        struct pageout_snapshot *before = NULL;
        int r;

        if (!rc->no_pageout && pageout_snapshot_take(&before) < 0)
                before = NULL; /* no /proc: nothing given back this time */
        r = rc->apply(rc->userdata, rc->applying, a);
        if (before && pageout_new_pages(before) == -EOPNOTSUPP)
                rc->no_pageout = true;
        /* a second pass a moment later: pages the apply faulted in on another CPU may still have
         * sat in that CPU's LRU batch, where MADV_PAGEOUT cannot take them */
        if (before && !rc->no_pageout) {
                nanosleep(&(struct timespec){.tv_nsec = 2000000}, NULL);
                (void) pageout_new_pages(before);
        }
        pageout_snapshot_free(before);
        malloc_trim(0);
        return r;
}

/* Waits on the condition until |deadline_ms| (CLOCK_MONOTONIC, as monotonic_ms()) or a signal. */
static void wait_until(struct reconciler *rc, uint64_t deadline_ms) {
        struct timespec ts = {.tv_sec = (time_t) (deadline_ms / 1000u),
                              .tv_nsec = (long) (deadline_ms % 1000u) * 1000000L};

        (void) pthread_cond_timedwait(&rc->cond, &rc->mu, &ts);
}

static void *worker(void *userdata) {
        struct reconciler *rc = userdata;
        uint64_t applied_gen = 0, failed_gen = 0, due_ms = 0;
        uint64_t applied_kick = 0, failed_kick = 0;
        bool applied = false, failing = false;

        pthread_mutex_lock(&rc->mu);
        while (!rc->stopping) {
                struct reconciler_attempt a = {.cancel_fd = rc->cancel_fd};
                uint64_t gen, kick;
                bool fresh;
                int r;

                if (!rc->have_wanted) {
                        pthread_cond_wait(&rc->cond, &rc->mu);
                        continue;
                }
                a.changed = !applied || rc->gen != applied_gen;
                a.forced = rc->kick_gen != applied_kick;
                /* a change or kick not tried yet goes out at once; a retry or re-assert waits */
                fresh = (a.changed || a.forced) &&
                        (!failing || rc->gen != failed_gen || rc->kick_gen != failed_kick);
                if (!fresh && monotonic_ms() < due_ms) {
                        wait_until(rc, due_ms);
                        continue;
                }
                memcpy(rc->applying, rc->wanted, rc->state_size);
                gen = rc->gen;
                kick = rc->kick_gen;
                a.retry_ms = (unsigned) backoff_delay(&rc->backoff);
                pthread_mutex_unlock(&rc->mu);

                r = apply_and_give_back(rc, &a);

                pthread_mutex_lock(&rc->mu);
                if (r == -ECANCELED)
                        break;
                if (r == 0) {
                        applied = true;
                        applied_gen = gen;
                        applied_kick = kick;
                        failing = false;
                        backoff_reset(&rc->backoff);
                        due_ms = monotonic_ms() + rc->interval_ms;
                } else {
                        failing = true;
                        failed_gen = gen;
                        failed_kick = kick;
                        due_ms = monotonic_ms() + backoff_next(&rc->backoff);
                }
        }
        pthread_mutex_unlock(&rc->mu);
        return NULL;
}

int reconciler_start(const struct reconciler_config *cfg, struct reconciler **ret) {
        struct reconciler *rc;
        pthread_condattr_t ca;
        sigset_t all, old;
        int r;

        if (!cfg->apply || cfg->state_size == 0 || cfg->interval_ms == 0)
                return -EINVAL;
        rc = calloc(1, sizeof(*rc));
        if (!rc)
                return -ENOMEM;
        rc->state_size = cfg->state_size;
        rc->interval_ms = cfg->interval_ms;
        rc->apply = cfg->apply;
        rc->equal = cfg->equal;
        rc->userdata = cfg->userdata;
        backoff_init(&rc->backoff,
                     cfg->backoff_min_ms ? cfg->backoff_min_ms : RECONCILER_BACKOFF_MIN_MS,
                     cfg->backoff_max_ms ? cfg->backoff_max_ms : RECONCILER_BACKOFF_MAX_MS);
        rc->cancel_fd = -1;
        rc->wanted = calloc(1, cfg->state_size);
        rc->applying = calloc(1, cfg->state_size);
        if (!rc->wanted || !rc->applying) {
                r = -ENOMEM;
                goto out_free;
        }
        rc->cancel_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (rc->cancel_fd < 0) {
                r = -errno;
                goto out_free;
        }
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&rc->cond, &ca);
        pthread_condattr_destroy(&ca);
        pthread_mutex_init(&rc->mu, NULL);

        /* the worker takes no signals: the loop's signalfd gets them all */
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        r = -pthread_create(&rc->thread, NULL, worker, rc);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (r < 0) {
                reconciler_stop(rc);
                return r;
        }
        rc->thread_started = true;
        *ret = rc;
        return 0;

out_free:
        free(rc->wanted);
        free(rc->applying);
        free(rc);
        return r;
}

static bool states_equal(const struct reconciler *rc, const void *a, const void *b) {
        return rc->equal ? rc->equal(a, b) : memcmp(a, b, rc->state_size) == 0;
}

void reconciler_set(struct reconciler *rc, const void *state) {
        pthread_mutex_lock(&rc->mu);
        if (!rc->have_wanted || !states_equal(rc, rc->wanted, state)) {
                memcpy(rc->wanted, state, rc->state_size);
                rc->have_wanted = true;
                rc->gen++;
                pthread_cond_signal(&rc->cond);
        }
        pthread_mutex_unlock(&rc->mu);
}

void reconciler_kick(struct reconciler *rc) {
        pthread_mutex_lock(&rc->mu);
        if (rc->have_wanted) {
                rc->kick_gen++;
                pthread_cond_signal(&rc->cond);
        }
        pthread_mutex_unlock(&rc->mu);
}

struct reconciler *reconciler_stop(struct reconciler *rc) {
        uint64_t one = 1;

        if (!rc)
                return NULL;
        pthread_mutex_lock(&rc->mu);
        rc->stopping = true;
        pthread_cond_signal(&rc->cond);
        pthread_mutex_unlock(&rc->mu);
        if (write(rc->cancel_fd, &one, sizeof(one)) < 0) {
                /* an eventfd write only fails on overflow, which one write cannot reach */
        }
        if (rc->thread_started)
                pthread_join(rc->thread, NULL);
        close(rc->cancel_fd);
        pthread_cond_destroy(&rc->cond);
        pthread_mutex_destroy(&rc->mu);
        free(rc->wanted);
        free(rc->applying);
        free(rc);
        return NULL;
}
