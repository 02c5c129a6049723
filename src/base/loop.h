/*
 * loop.h - the event loop: epoll dispatching file descriptors, timers (timerfd) and signals
 * (signalfd). A mechanism only: it holds no policy and knows nothing of gRPC, devices or kubelets.
 *
 * Sources are handles owned by whoever added them. Freeing a source inside any callback is safe,
 * including the source whose callback is running and sources with events still pending in the
 * same epoll batch: the loop defers the actual free until the batch is dispatched.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

struct loop;
struct loop_source;

/* |events| is the epoll mask that fired (EPOLLIN, EPOLLOUT, EPOLLHUP, EPOLLERR...). */
typedef void (*loop_io_fn)(struct loop_source *s, int fd, uint32_t events, void *userdata);
typedef void (*loop_timer_fn)(struct loop_source *s, void *userdata);
typedef void (*loop_signal_fn)(struct loop_source *s, int signo, void *userdata);

/* Returns 0 and sets *ret, or -errno. */
int loop_new(struct loop **ret);
/* Frees the loop; every source must have been freed before. Accepts NULL, returns NULL. */
struct loop *loop_free(struct loop *l);

/* Runs until loop_quit(). Returns the code passed to loop_quit(), or -errno if epoll fails. */
int loop_run(struct loop *l);
void loop_quit(struct loop *l, int code);

/* Monotonic clock in microseconds. */
uint64_t loop_now_usec(void);

/*
 * Watches |fd| (not owned: the caller closes it after freeing the source) for |events|.
 * Returns 0 or -errno.
 */
int loop_add_io(struct loop *l, int fd, uint32_t events, loop_io_fn fn, void *userdata,
                struct loop_source **ret);
/* Changes the epoll mask of an io source. Returns 0 or -errno. */
int loop_io_set_events(struct loop_source *s, uint32_t events);

/*
 * A timer on the monotonic clock, disarmed until loop_timer_arm(). Returns 0 or -errno.
 * Each timer owns a timerfd.
 */
int loop_add_timer(struct loop *l, loop_timer_fn fn, void *userdata, struct loop_source **ret);
/* Fires once after |usec| (0 disarms), then every |interval_usec| if non-zero. */
int loop_timer_arm(struct loop_source *s, uint64_t usec, uint64_t interval_usec);

/* Blocks |signo| for the process and delivers it through a signalfd. Returns 0 or -errno. */
int loop_add_signal(struct loop *l, int signo, loop_signal_fn fn, void *userdata,
                    struct loop_source **ret);

/* Removes the source from the loop and frees it (closing what the loop owns). Accepts NULL,
 * returns NULL. */
struct loop_source *loop_source_free(struct loop_source *s);

struct loop *loop_source_loop(struct loop_source *s);
