/*
 * srvtime.c - an LD_PRELOAD probe that measures a server's own time per call from outside it:
 * from the return of the recv(2) that read a request's last byte to the return of the send(2)
 * that wrote the response's last byte. The daemon is not changed.
 *
 * It wraps recv() and send() (the calls sgxdevplugin's and the floor's loops use). Per socket: a
 * recv that returns data opens an interval (or moves its start when the request came in several
 * reads); a send closes it, and further sends before the next recv extend it, so it ends at the
 * last byte written. Each interval is kept with the bytes read and written, and written at exit
 * to $SRVTIME_OUT as "recv_bytes send_bytes nanoseconds" lines. Intervals that answer no call
 * (PING and SETTINGS acks, WINDOW_UPDATEs: under 64 bytes sent) are left to the reader to drop.
 * Single-threaded servers only; the cost is one clock_gettime() per recv and per send.
 *
 *   LD_PRELOAD=build-bench/srvtime.so SRVTIME_OUT=/tmp/times build/sgxdevplugin ...
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>

#define MAX_FDS 1024
#define MAX_SAMPLES (1u << 20)

struct sample {
        unsigned recv_bytes, send_bytes;
        long long nsec;
};

struct fdstate {
        long long start;      /* end of the last recv with data, 0 if none since the interval */
        unsigned recv_bytes;  /* read since the interval opened */
        struct sample *open;  /* the interval being extended by sends, or NULL */
        long long open_start;
};

static ssize_t (*real_recv)(int, void *, size_t, int);
static ssize_t (*real_send)(int, const void *, size_t, int);
static struct fdstate fds[MAX_FDS];
static struct sample *samples;
static size_t n_samples;

static long long now_ns(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

__attribute__((constructor)) static void srvtime_init(void) {
        real_recv = (ssize_t (*)(int, void *, size_t, int)) dlsym(RTLD_NEXT, "recv");
        real_send = (ssize_t (*)(int, const void *, size_t, int)) dlsym(RTLD_NEXT, "send");
        samples = calloc(MAX_SAMPLES, sizeof(*samples));
}

__attribute__((destructor)) static void srvtime_done(void) {
        const char *path = getenv("SRVTIME_OUT");
        FILE *f;

        if (!path || !samples)
                return;
        f = fopen(path, "w");
        if (!f)
                return;
        for (size_t i = 0; i < n_samples; i++)
                fprintf(f, "%u %u %lld\n", samples[i].recv_bytes, samples[i].send_bytes,
                        samples[i].nsec);
        fclose(f);
}

ssize_t recv(int fd, void *buf, size_t len, int flags) {
        ssize_t n = real_recv(fd, buf, len, flags);

        if (n > 0 && fd >= 0 && fd < MAX_FDS) {
                struct fdstate *s = &fds[fd];

                if (s->open) { /* a new request: the previous answer is complete */
                        s->open = NULL;
                        s->recv_bytes = 0;
                }
                s->start = now_ns();
                s->recv_bytes += (unsigned) n;
        }
        return n;
}

ssize_t send(int fd, const void *buf, size_t len, int flags) {
        ssize_t n = real_send(fd, buf, len, flags);

        if (n > 0 && fd >= 0 && fd < MAX_FDS && samples) {
                struct fdstate *s = &fds[fd];
                long long t = now_ns();

                if (s->open) {
                        s->open->send_bytes += (unsigned) n;
                        s->open->nsec = t - s->open_start;
                } else if (s->start && n_samples < MAX_SAMPLES) {
                        s->open = &samples[n_samples++];
                        s->open->recv_bytes = s->recv_bytes;
                        s->open->send_bytes = (unsigned) n;
                        s->open->nsec = t - s->start;
                        s->open_start = s->start;
                        s->start = 0;
                }
        }
        return n;
}
