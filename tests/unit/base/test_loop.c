/* test_loop.c - the event loop: io, timers, signals and freeing sources from callbacks. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "loop.h"
#include "unit.h"

struct ctx {
        struct loop *loop;
        int fired;
        struct loop_source *other; /* a source freed by the callback */
        int pipe_rd;
};

static void on_timer_quit(struct loop_source *s, void *userdata) {
        struct ctx *c = userdata;
        c->fired++;
        loop_quit(c->loop, 7);
}

static void test_loop_timer_fires_once_and_quit_code_returns(void) {
        struct ctx c = {0};
        struct loop_source *t;
        CHECK_INT(loop_new(&c.loop), 0);
        CHECK_INT(loop_add_timer(c.loop, on_timer_quit, &c, &t), 0);
        uint64_t start = loop_now_usec();
        CHECK_INT(loop_timer_arm(t, 20000, 0), 0);
        CHECK_INT(loop_run(c.loop), 7);
        CHECK_INT(c.fired, 1);
        CHECK(loop_now_usec() - start >= 20000);
        loop_source_free(t);
        loop_free(c.loop);
}

static void on_interval(struct loop_source *s, void *userdata) {
        struct ctx *c = userdata;
        if (++c->fired == 3)
                loop_quit(c->loop, 0);
}

static void test_loop_timer_interval_repeats(void) {
        struct ctx c = {0};
        struct loop_source *t;
        CHECK_INT(loop_new(&c.loop), 0);
        CHECK_INT(loop_add_timer(c.loop, on_interval, &c, &t), 0);
        CHECK_INT(loop_timer_arm(t, 1000, 1000), 0);
        CHECK_INT(loop_run(c.loop), 0);
        CHECK_INT(c.fired, 3);
        loop_source_free(t);
        loop_free(c.loop);
}

static void on_pipe_frees_other(struct loop_source *s, int fd, uint32_t events, void *userdata) {
        struct ctx *c = userdata;
        char b;
        (void) !read(fd, &b, 1);
        c->fired++;
        /* free both ourselves and the other readable source, whose event may be pending */
        c->other = loop_source_free(c->other);
        loop_source_free(s);
        loop_quit(c->loop, 0);
}

static void test_loop_free_pending_source_during_batch_is_safe(void) {
        struct ctx c = {0};
        int p1[2], p2[2];
        struct loop_source *a, *b;
        CHECK_INT(loop_new(&c.loop), 0);
        CHECK_INT(pipe(p1), 0);
        CHECK_INT(pipe(p2), 0);
        /* both sources share the callback: whichever runs first frees the other */
        CHECK_INT(loop_add_io(c.loop, p1[0], EPOLLIN, on_pipe_frees_other, &c, &a), 0);
        CHECK_INT(loop_add_io(c.loop, p2[0], EPOLLIN, on_pipe_frees_other, &c, &b), 0);
        c.other = b;
        CHECK_INT(write(p1[1], "x", 1), 1);
        CHECK_INT(write(p2[1], "x", 1), 1);
        CHECK_INT(loop_run(c.loop), 0);
        CHECK_INT(c.fired, 1); /* the second event was skipped, not dispatched to freed memory */
        loop_free(c.loop);
        close(p1[0]), close(p1[1]), close(p2[0]), close(p2[1]);
}

static void on_sig(struct loop_source *s, int signo, void *userdata) {
        struct ctx *c = userdata;
        c->fired = signo;
        loop_quit(c->loop, 0);
}

static void test_loop_signal_is_delivered_through_signalfd(void) {
        struct ctx c = {0};
        struct loop_source *s;
        CHECK_INT(loop_new(&c.loop), 0);
        CHECK_INT(loop_add_signal(c.loop, SIGUSR1, on_sig, &c, &s), 0);
        CHECK_INT(kill(getpid(), SIGUSR1), 0);
        CHECK_INT(loop_run(c.loop), 0);
        CHECK_INT(c.fired, SIGUSR1);
        loop_source_free(s);
        loop_free(c.loop);
}

static void on_never(struct loop_source *s, void *userdata) {
        struct ctx *c = userdata;
        c->fired += 100;
}

static void test_loop_disarmed_timer_does_not_fire(void) {
        struct ctx c = {0};
        struct loop_source *never, *quit;
        CHECK_INT(loop_new(&c.loop), 0);
        CHECK_INT(loop_add_timer(c.loop, on_never, &c, &never), 0);
        CHECK_INT(loop_add_timer(c.loop, on_timer_quit, &c, &quit), 0);
        CHECK_INT(loop_timer_arm(never, 5000, 0), 0);
        CHECK_INT(loop_timer_arm(never, 0, 0), 0);
        CHECK_INT(loop_timer_arm(quit, 20000, 0), 0);
        CHECK_INT(loop_run(c.loop), 7);
        CHECK_INT(c.fired, 1);
        loop_source_free(never);
        loop_source_free(quit);
        loop_free(c.loop);
}

static void test_loop_io_set_events_rejects_timer(void) {
        struct ctx c = {0};
        struct loop_source *t;
        CHECK_INT(loop_new(&c.loop), 0);
        CHECK_INT(loop_add_timer(c.loop, on_never, &c, &t), 0);
        CHECK_INT(loop_io_set_events(t, EPOLLIN), -EINVAL);
        CHECK(loop_source_free(t) == NULL);
        CHECK(loop_source_free(NULL) == NULL);
        loop_free(c.loop);
}

static void test_loop_timer_of_one_usec_fires(void) {
        struct ctx c = {0};
        struct loop_source *t;
        CHECK_INT(loop_new(&c.loop), 0);
        CHECK_INT(loop_add_timer(c.loop, on_timer_quit, &c, &t), 0);
        /* expires at once: arming must not drain the expiry it just caused */
        for (int i = 0; i < 20; i++) {
                c.fired = 0;
                CHECK_INT(loop_timer_arm(t, 1, 0), 0);
                CHECK_INT(loop_run(c.loop), 7);
                CHECK_INT(c.fired, 1);
        }
        loop_source_free(t);
        loop_free(c.loop);
}

/*
 * An io source whose fd stays readable (level-triggered) is not dispatched while its mask is 0,
 * and is again once EPOLLIN is back: what grpc_server's accept pause relies on (issue 10).
 */
struct disarm_ctx {
        struct loop *loop;
        struct loop_source *io, *timer;
        int io_calls;
        int io_calls_when_timer_fired;
};

static void on_readable_disarm(struct loop_source *s, int fd, uint32_t events, void *userdata) {
        struct disarm_ctx *c = userdata;

        if (++c->io_calls == 1) {
                CHECK_INT(loop_io_set_events(c->io, 0), 0);
                CHECK_INT(loop_timer_arm(c->timer, 30000, 0), 0);
                return;
        }
        loop_quit(c->loop, 0);
}

static void on_rearm(struct loop_source *s, void *userdata) {
        struct disarm_ctx *c = userdata;

        c->io_calls_when_timer_fired = c->io_calls;
        CHECK_INT(loop_io_set_events(c->io, EPOLLIN), 0);
}

static void test_loop_io_mask_zero_disarms_level_triggered_fd(void) {
        struct disarm_ctx c = {0};
        int p[2];

        CHECK_INT(pipe(p), 0);
        CHECK_INT((int) write(p[1], "x", 1), 1); /* readable until the end: never read */
        CHECK_INT(loop_new(&c.loop), 0);
        CHECK_INT(loop_add_io(c.loop, p[0], EPOLLIN, on_readable_disarm, &c, &c.io), 0);
        CHECK_INT(loop_add_timer(c.loop, on_rearm, &c, &c.timer), 0);
        CHECK_INT(loop_run(c.loop), 0);
        CHECK_INT(c.io_calls_when_timer_fired, 1);
        CHECK_INT(c.io_calls, 2);
        loop_source_free(c.io);
        loop_source_free(c.timer);
        loop_free(c.loop);
        close(p[0]);
        close(p[1]);
}

int main(void) {
        RUN(test_loop_timer_fires_once_and_quit_code_returns);
        RUN(test_loop_timer_interval_repeats);
        RUN(test_loop_free_pending_source_during_batch_is_safe);
        RUN(test_loop_signal_is_delivered_through_signalfd);
        RUN(test_loop_disarmed_timer_does_not_fire);
        RUN(test_loop_io_set_events_rejects_timer);
        RUN(test_loop_timer_of_one_usec_fires);
        RUN(test_loop_io_mask_zero_disarms_level_triggered_fd);
        return unit_done();
}
