/*
 * h2_harness.c - the shared harness of the HTTP/2 fuzz targets (see h2_harness.h): a bounded
 * loop runner, our end of the socket, the frame splitter and deterministic timers.
 */
#include "h2_harness.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "loop.h"

#define FRAME_HEADER_LEN 9

/* ---- timers made deterministic ---- */

int timerfd_settime(int fd, int flags, const struct itimerspec *new_value,
                    struct itimerspec *old_value) {
        struct itimerspec its = {{0, 0}, {0, 0}};
        uint64_t usec;

        if (new_value) {
                usec = (uint64_t) new_value->it_value.tv_sec * 1000000u +
                       (uint64_t) new_value->it_value.tv_nsec / 1000u;
                if ((new_value->it_value.tv_sec || new_value->it_value.tv_nsec) &&
                    usec <= H2H_FIRE_NOW_USEC && !(flags & TFD_TIMER_ABSTIME))
                        its.it_value.tv_nsec = 1; /* expired by the next epoll_wait */
        }
        return (int) syscall(SYS_timerfd_settime, fd, 0, &its, old_value);
}

/* ---- the loop, run a bounded number of rounds ---- */

static void drain(struct h2h *h) {
        uint8_t buf[65536];

        if (h->fd < 0 || !h->reading)
                return;
        for (;;) {
                ssize_t n = recv(h->fd, buf, sizeof(buf), MSG_DONTWAIT);

                if (n > 0)
                        continue;
                if (n < 0 && errno == EINTR)
                        continue;
                return; /* EAGAIN, EOF or an error: nothing more now */
        }
}

static void on_tick(struct loop_source *src, int fd, uint32_t events, void *userdata) {
        struct h2h *h = userdata;

        drain(h);
        if (h->rounds_left == 0 || --h->rounds_left == 0)
                loop_quit(h->loop, 0);
}

void h2h_init(struct h2h *h) {
        *h = (struct h2h){.fd = -1, .reading = true};
        if (loop_new(&h->loop) < 0)
                abort();
        h->tick_fd = eventfd(1, EFD_CLOEXEC | EFD_NONBLOCK);
        if (h->tick_fd < 0 || loop_add_io(h->loop, h->tick_fd, EPOLLIN, on_tick, h, &h->tick) < 0)
                abort();
}

void h2h_done(struct h2h *h) {
        h2h_close(h);
        h->tick = loop_source_free(h->tick);
        close(h->tick_fd);
        h->loop = loop_free(h->loop);
}

void h2h_run(struct h2h *h, unsigned n) {
        h->rounds_left = n;
        if (loop_run(h->loop) < 0)
                abort();
        drain(h);
}

/* ---- our end of the socket ---- */

void h2h_send(struct h2h *h, const uint8_t *p, size_t n) {
        unsigned stalls = 0;

        while (n > 0 && h->fd >= 0) {
                ssize_t k = send(h->fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);

                if (k > 0) {
                        p += k;
                        n -= (size_t) k;
                        continue;
                }
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && ++stalls < 64) {
                        h2h_run(h, 1);
                        continue;
                }
                return; /* the peer closed the connection, or stopped reading */
        }
}

void h2h_close(struct h2h *h) {
        if (h->fd >= 0)
                close(h->fd);
        h->fd = -1;
}

/* ---- the input, piece by piece ---- */

bool h2h_next(struct h2h *h, const uint8_t *data, size_t size, size_t first, const uint8_t **ret_p,
              size_t *ret_n, unsigned *ret_harness) {
        size_t n;
        unsigned harness = 0;

        if (h->pos >= size)
                return false;
        n = size - h->pos;
        if (h->pos == 0 && first > 0)
                n = n < first ? n : first;
        else if (n >= FRAME_HEADER_LEN && h->pieces < H2H_MAX_PIECES) {
                const uint8_t *f = data + h->pos;
                size_t flen = (size_t) f[0] << 16 | (size_t) f[1] << 8 | f[2];

                if (FRAME_HEADER_LEN + flen < n)
                        n = FRAME_HEADER_LEN + flen;
                if (f[3] == H2H_FRAME)
                        harness = 0x100u | f[4];
        }
        if (harness & H2H_FLIP_READING)
                h->reading = !h->reading;
        if (harness & H2H_FLIP_GLUE)
                h->glue = !h->glue;
        *ret_p = data + h->pos;
        *ret_n = n;
        *ret_harness = harness;
        h->pos += n;
        h->pieces++;
        return true;
}

void h2h_after_piece(struct h2h *h) {
        if (!h->glue)
                h2h_run(h, H2H_ROUNDS_PER_PIECE);
}
