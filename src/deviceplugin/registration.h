/*
 * registration.h - registers one resource with the kubelet: a Register call on DIR/kubelet.sock,
 * asynchronous in the event loop (the kubelet dials back our socket and calls
 * GetDevicePluginOptions before it answers), retried with capped exponential backoff on failure.
 * Knows nothing of devices; the node layer says when to (re)register.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

struct loop;
struct reg;

#define REG_BACKOFF_MIN_USEC 100000u /* first retry after 100 ms */
/* ...but 5 ms after a first refused connect: a kubelet.sock that just appeared may be bound and
 * not yet listening (the kubelet binds, then listens) */
#define REG_REFUSED_RETRY_USEC 5000u
#define REG_BACKOFF_MAX_USEC 10000000u /* then doubling, capped at 10 s */
#define REG_TIMEOUT_USEC 10000000u     /* one Register call */

/* Called after each successful Register. */
typedef void (*reg_done_fn)(struct reg *r, void *userdata);

/*
 * |kubelet_sock|, |resource| and |endpoint| (our socket's name relative to the kubelet dir) are
 * copied. Returns 0 or -ENOMEM.
 */
int reg_new(struct loop *l, const char *kubelet_sock, const char *resource, const char *endpoint,
            reg_done_fn on_registered, void *userdata, struct reg **ret);

/* Cancels what is in flight. Accepts NULL, returns NULL. */
struct reg *reg_free(struct reg *r);

/*
 * Registers now: cancels a call in flight and a pending retry, resets the backoff, forgets the
 * previous success. Returns 0 or -errno if the call could not start (then a retry is scheduled).
 */
int reg_start(struct reg *r);

/* Stops registering (the kubelet is gone): cancels the call in flight and any retry. */
void reg_stop(struct reg *r);

bool reg_is_registered(const struct reg *r);
/* Successful Register calls since reg_new (for logs and tests). */
unsigned reg_n_registered(const struct reg *r);
