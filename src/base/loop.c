/*
 * loop.c - a small epoll event loop: file descriptors, timers (one timerfd each) and signals
 * (one signalfd each). Owns the epoll fd and the fds it creates for timers and signals; never
 * the fds that callers add with loop_add_io(). Holds no policy.
 *
 * Freeing during dispatch: epoll hands back a batch of events whose data pointers name sources.
 * A callback may free any source, so loop_source_free() only detaches a source while a batch is
 * being dispatched and parks it on a list that is freed once the batch is done; events of a
 * detached source are skipped.
 */
#include "loop.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"

#define LOOP_BATCH 64

enum source_type {
        SOURCE_IO,
        SOURCE_TIMER,
        SOURCE_SIGNAL,
};

struct loop_source {
        struct loop *loop; /* borrowed */
        enum source_type type;
        int fd;    /* owned for timers and signals only */
        bool dead; /* detached, waiting for the end of the batch */
        struct loop_source *next_dead;
        void *userdata;
        union {
                loop_io_fn io;
                loop_timer_fn timer;
                loop_signal_fn signal;
        } fn;
        int signo;
};

struct loop {
        int epfd;
        bool dispatching;
        bool quit;
        int quit_code;
        struct loop_source *dead; /* sources freed during a batch */
};

int loop_new(struct loop **ret) {
        struct loop *l = calloc(1, sizeof(*l));
        if (!l)
                return -ENOMEM;
        l->epfd = epoll_create1(EPOLL_CLOEXEC);
        if (l->epfd < 0) {
                int r = -errno;
                free(l);
                return r;
        }
        *ret = l;
        return 0;
}

static void free_dead(struct loop *l) {
        while (l->dead) {
                struct loop_source *s = l->dead;
                l->dead = s->next_dead;
                free(s);
        }
}

struct loop *loop_free(struct loop *l) {
        if (!l)
                return NULL;
        free_dead(l);
        close(l->epfd);
        free(l);
        return NULL;
}

uint64_t loop_now_usec(void) {
        return monotonic_usec();
}

void loop_quit(struct loop *l, int code) {
        l->quit = true;
        l->quit_code = code;
}

static void dispatch(struct loop_source *s, uint32_t events) {
        switch (s->type) {
        case SOURCE_IO:
                s->fn.io(s, s->fd, events, s->userdata);
                break;
        case SOURCE_TIMER: {
                uint64_t expirations;
                if (read(s->fd, &expirations, sizeof(expirations)) != sizeof(expirations))
                        return; /* disarmed or re-armed since the event was queued */
                s->fn.timer(s, s->userdata);
                break;
        }
        case SOURCE_SIGNAL: {
                struct signalfd_siginfo si;
                if (read(s->fd, &si, sizeof(si)) != sizeof(si))
                        return;
                s->fn.signal(s, (int) si.ssi_signo, s->userdata);
                break;
        }
        }
}

int loop_run(struct loop *l) {
        struct epoll_event ev[LOOP_BATCH];

        l->quit = false;
        while (!l->quit) {
                int n = epoll_wait(l->epfd, ev, LOOP_BATCH, -1);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                l->dispatching = true;
                for (int i = 0; i < n; i++) {
                        struct loop_source *s = ev[i].data.ptr;
                        if (!s->dead)
                                dispatch(s, ev[i].events);
                }
                l->dispatching = false;
                free_dead(l);
        }
        return l->quit_code;
}

static int add_source(struct loop *l, enum source_type type, int fd, uint32_t events,
                      void *userdata, struct loop_source **ret) {
        struct loop_source *s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->loop = l;
        s->type = type;
        s->fd = fd;
        s->userdata = userdata;
        struct epoll_event ev = {.events = events, .data.ptr = s};
        if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
                int r = -errno;
                free(s);
                return r;
        }
        *ret = s;
        return 0;
}

int loop_add_io(struct loop *l, int fd, uint32_t events, loop_io_fn fn, void *userdata,
                struct loop_source **ret) {
        struct loop_source *s = NULL;
        int r = add_source(l, SOURCE_IO, fd, events, userdata, &s);
        if (r < 0)
                return r;
        s->fn.io = fn;
        *ret = s;
        return 0;
}

int loop_io_set_events(struct loop_source *s, uint32_t events) {
        struct epoll_event ev = {.events = events, .data.ptr = s};
        if (s->dead || s->type != SOURCE_IO)
                return -EINVAL;
        if (epoll_ctl(s->loop->epfd, EPOLL_CTL_MOD, s->fd, &ev) < 0)
                return -errno;
        return 0;
}

int loop_add_timer(struct loop *l, loop_timer_fn fn, void *userdata, struct loop_source **ret) {
        struct loop_source *s = NULL;
        int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        if (fd < 0)
                return -errno;
        int r = add_source(l, SOURCE_TIMER, fd, EPOLLIN, userdata, &s);
        if (r < 0) {
                close(fd);
                return r;
        }
        s->fn.timer = fn;
        *ret = s;
        return 0;
}

static struct timespec usec_to_timespec(uint64_t usec) {
        return (struct timespec){.tv_sec = (time_t) (usec / 1000000u),
                                 .tv_nsec = (long) (usec % 1000000u) * 1000};
}

int loop_timer_arm(struct loop_source *s, uint64_t usec, uint64_t interval_usec) {
        struct itimerspec its = {
                .it_value = usec_to_timespec(usec),
                .it_interval = usec_to_timespec(usec ? interval_usec : 0),
        };
        uint64_t drain;

        if (s->dead || s->type != SOURCE_TIMER)
                return -EINVAL;
        /* drop an expiry already counted, so a re-armed timer never fires early; before arming,
         * so that a short timer expiring right after timerfd_settime() is not lost */
        (void) !read(s->fd, &drain, sizeof(drain));
        if (timerfd_settime(s->fd, 0, &its, NULL) < 0)
                return -errno;
        return 0;
}

int loop_add_signal(struct loop *l, int signo, loop_signal_fn fn, void *userdata,
                    struct loop_source **ret) {
        struct loop_source *s = NULL;
        sigset_t mask;

        sigemptyset(&mask);
        sigaddset(&mask, signo);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return -errno;
        int fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
        if (fd < 0)
                return -errno;
        int r = add_source(l, SOURCE_SIGNAL, fd, EPOLLIN, userdata, &s);
        if (r < 0) {
                close(fd);
                return r;
        }
        s->fn.signal = fn;
        s->signo = signo;
        *ret = s;
        return 0;
}

struct loop_source *loop_source_free(struct loop_source *s) {
        if (!s || s->dead)
                return NULL;
        struct loop *l = s->loop;
        (void) epoll_ctl(l->epfd, EPOLL_CTL_DEL, s->fd, NULL);
        if (s->type != SOURCE_IO)
                close(s->fd);
        if (s->type == SOURCE_SIGNAL) {
                sigset_t mask;
                sigemptyset(&mask);
                sigaddset(&mask, s->signo);
                sigprocmask(SIG_UNBLOCK, &mask, NULL);
        }
        s->fd = -1;
        s->dead = true;
        if (l->dispatching) {
                s->next_dead = l->dead;
                l->dead = s;
        } else {
                free(s);
        }
        return NULL;
}

struct loop *loop_source_loop(struct loop_source *s) {
        return s->loop;
}
