/*
 * reconciler.h - a worker thread that keeps one piece of the cluster's state as the node wants it:
 * the event loop hands it a desired state (reconciler_set(), a copy under a mutex, never a wait
 * on the network), and the thread applies it with the caller's blocking apply function (an API
 * request), retries failures with capped exponential backoff, re-asserts the state every interval
 * (someone may have changed it behind our back), sends a changed desired state at once even while
 * backing off, and stops promptly, cancelling an apply in flight. The node's labels are its first
 * user (labeler.c); EPC capacity and ResourceSlices can be the next ones.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#define RECONCILER_BACKOFF_MIN_MS 1000u
#define RECONCILER_BACKOFF_MAX_MS 300000u

struct reconciler;

/* What the worker tells one apply call. */
struct reconciler_attempt {
        bool changed;      /* the state differs from the last one applied (or none was yet) */
        bool forced;       /* reconciler_kick() since the last success: the remote may have lost
                              what was applied, so send it again even where it is unchanged */
        unsigned retry_ms; /* the wait before the next try should this one fail (for the log) */
        int cancel_fd;     /* readable once stopping: a blocking request polls it */
};

/*
 * Applies |state| (a copy the worker owns for the call). Runs on the worker thread without any
 * lock held. Returns 0 when applied, -ECANCELED when it gave up because |a->cancel_fd| became
 * readable, any other negative value on failure (retried after a->retry_ms). It logs its own
 * outcome: the reconciler logs nothing.
 */
typedef int (*reconciler_apply_fn)(void *userdata, const void *state,
                                   const struct reconciler_attempt *a);

/* True when two states need no new apply. */
typedef bool (*reconciler_equal_fn)(const void *a, const void *b);

struct reconciler_config {
        size_t state_size;       /* bytes copied by reconciler_set() */
        unsigned interval_ms;    /* re-assert period after a success; > 0 */
        unsigned backoff_min_ms; /* first retry delay; 0 = RECONCILER_BACKOFF_MIN_MS */
        unsigned backoff_max_ms; /* cap; 0 = RECONCILER_BACKOFF_MAX_MS */
        reconciler_apply_fn apply;
        reconciler_equal_fn equal; /* NULL = memcmp() of state_size bytes */
        void *userdata;            /* for |apply| */
};

/*
 * Starts the worker thread, with every signal blocked (the loop's signalfd takes them). It applies
 * nothing until the first reconciler_set(). Returns 0, -EINVAL (no apply function, a zero state
 * size or interval), -ENOMEM, or the -errno of eventfd() or pthread_create().
 */
int reconciler_start(const struct reconciler_config *cfg, struct reconciler **ret);

/*
 * Hands the desired |state| (state_size bytes, copied) to the worker and returns at once. A state
 * unequal to the one held wakes the worker and goes out next, without waiting for a backoff.
 */
void reconciler_set(struct reconciler *rc, const void *state);

/*
 * Says the remote may have lost the applied state (someone reset it): the worker applies the
 * state held again at once, with a->forced set, even though it is unchanged, and keeps a->forced
 * on retries until an apply succeeds. Does nothing before the first reconciler_set(). Returns at
 * once.
 */
void reconciler_kick(struct reconciler *rc);

/* Cancels an apply in flight, joins the thread, frees. Accepts NULL, returns NULL. */
struct reconciler *reconciler_stop(struct reconciler *rc);
