/*
 * fuzz_h2_server.c - libFuzzer target for a whole HTTP/2 connection into our server: the input is
 * the client's bytes (preface, frames, anything), sent over a real unix socket to a real
 * dp_service (the v1beta1 handlers over nghttp2 and our gRPC layer) serving sgx.k8s.io/dcap on a
 * fake in-kernel-driver node. Nothing may crash, trip a sanitizer or leak; the connections, the
 * service and the loop are all freed at the end of every input, and once the client has hung up
 * no ListAndWatch stream may be left open.
 *
 * Each input, deterministically and without sleeping:
 *  1. a fresh loop and service (socket in a private temp dir), and a client socket connected to it;
 *  2. the input is written in pieces: the first 24 bytes (the client preface), then one HTTP/2
 *     frame at a time as its 9-byte header announces it (the last piece is whatever is left), with
 *     the loop run for a few rounds after each piece, so the server answers between frames as it
 *     would for a real client;
 *  3. the loop runs on while the node state flips twice (updates pushed to open ListAndWatch
 *     streams); then the client hangs up, the loop runs until the server has seen it, and
 *     everything is freed.
 * The server's output is read and discarded after every loop round (unless told otherwise below).
 *
 * Harness frames: a frame of type HARNESS_FRAME (0xf0, an extension type a real client never
 * sends) is not written to the server but steers the harness, by the bits of its flags byte:
 *   0x01  flip the node state: the DCAP device vanishes (Unhealthy) or returns (Healthy);
 *   0x02  stop / resume reading the server's output (so its writes block and wait for EPOLLOUT);
 *   0x04  glue on / off: while on, pieces are written back to back without running the loop, so
 *         the server reads several frames at once (a HEADERS with its DATA, a burst of requests);
 *   0x08  relisten: the service re-creates its socket (as on a kubelet restart), ending our
 *         connection from outside any callback; the client connects again and goes on;
 *   0x10  hang up: the client closes its socket (whatever the server still has to send) and,
 *         once the server has seen it, connects again and goes on; no stream may be left open.
 *
 * Timers: the loop arms grpc-timeout deadlines with timerfd_settime(), which this file replaces:
 * a timer of at most FIRE_NOW_USEC fires at the next loop round, a longer one never does (within
 * one input). So deadlines are exercised, and the outcome does not depend on how fast we run.
 * accept4() is replaced too, to give the server's socket a small send buffer.
 *
 * The loop is run a bounded number of epoll rounds at a time: an always-readable eventfd is
 * watched, and its callback counts rounds and stops the loop.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <unistd.h>

#include "deviceplugin.h"
#include "discovery.h"
#include "log.h"
#include "loop.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define PREFACE_LEN 24
#define FRAME_HEADER_LEN 9
#define HARNESS_FRAME 0xf0
#define HARNESS_FLIP_NODE 0x01
#define HARNESS_FLIP_READING 0x02
#define HARNESS_FLIP_GLUE 0x04
#define HARNESS_RELISTEN 0x08
#define HARNESS_HANG_UP 0x10
/* Pieces written one by one; what follows goes in one last write. */
#define MAX_PIECES 256
/* Relistens and hang-ups per input (each costs a bind or a connect). */
#define MAX_RECONNECTS 8
/* Loop rounds after each piece, and at the end. */
#define ROUNDS_PER_PIECE 3
#define ROUNDS_AT_END 8
/* Deadlines up to this long fire at once; longer ones never (see the top comment). */
#define FIRE_NOW_USEC (100 * 1000)
/* The server socket's send buffer (the kernel doubles it): a few ListAndWatch answers. */
#define SERVER_SNDBUF 8192

static char tmp_dir[64];
static char sock_path[128];

/* ---- timers made deterministic ---- */

int timerfd_settime(int fd, int flags, const struct itimerspec *new_value,
                    struct itimerspec *old_value) {
        struct itimerspec its = {{0, 0}, {0, 0}};
        uint64_t usec;

        if (new_value) {
                usec = (uint64_t) new_value->it_value.tv_sec * 1000000u +
                       (uint64_t) new_value->it_value.tv_nsec / 1000u;
                if ((new_value->it_value.tv_sec || new_value->it_value.tv_nsec) &&
                    usec <= FIRE_NOW_USEC && !(flags & TFD_TIMER_ABSTIME))
                        its.it_value.tv_nsec = 1; /* expired by the next epoll_wait */
        }
        return (int) syscall(SYS_timerfd_settime, fd, 0, &its, old_value);
}

/*
 * The server's end of the connection gets a small send buffer, so a client that stops reading
 * (HARNESS_FLIP_READING) fills it after a few answers and the server's blocked-write paths run.
 */
int accept4(int fd, struct sockaddr *addr, socklen_t *addrlen, int flags) {
        int cfd = (int) syscall(SYS_accept4, fd, addr, addrlen, flags);
        int size = SERVER_SNDBUF;

        if (cfd >= 0)
                (void) setsockopt(cfd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
        return cfd;
}

/* ---- the client side, and running the loop a bounded number of rounds ---- */

struct harness {
        struct loop *loop;
        struct loop_source *tick;
        int tick_fd;   /* eventfd, always readable */
        int client_fd; /* our end of the connection, -1 once closed */
        bool reading;  /* we read (and discard) what the server sends */
        unsigned rounds_left;
};

static void drain(struct harness *h) {
        uint8_t buf[65536];

        if (h->client_fd < 0 || !h->reading)
                return;
        for (;;) {
                ssize_t n = recv(h->client_fd, buf, sizeof(buf), MSG_DONTWAIT);

                if (n > 0)
                        continue;
                if (n < 0 && errno == EINTR)
                        continue;
                return; /* EAGAIN, EOF or an error: nothing more now */
        }
}

static void on_tick(struct loop_source *src, int fd, uint32_t events, void *userdata) {
        struct harness *h = userdata;

        drain(h);
        if (h->rounds_left == 0 || --h->rounds_left == 0)
                loop_quit(h->loop, 0);
}

static void run_rounds(struct harness *h, unsigned n) {
        h->rounds_left = n;
        if (loop_run(h->loop) < 0)
                abort();
        drain(h);
}

static void client_connect(struct harness *h) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};

        h->client_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (h->client_fd < 0)
                abort();
        memcpy(sa.sun_path, sock_path, strlen(sock_path) + 1);
        if (connect(h->client_fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                abort();
}

static void client_close(struct harness *h) {
        if (h->client_fd >= 0)
                close(h->client_fd);
        h->client_fd = -1;
}

/* Writes all of |p|, running the loop while the socket is full (the server reads meanwhile). */
static void send_piece(struct harness *h, const uint8_t *p, size_t n) {
        unsigned stalls = 0;

        while (n > 0 && h->client_fd >= 0) {
                ssize_t k = send(h->client_fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);

                if (k > 0) {
                        p += k;
                        n -= (size_t) k;
                        continue;
                }
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && ++stalls < 64) {
                        run_rounds(h, 1);
                        continue;
                }
                return; /* the server closed the connection, or stopped reading */
        }
}

/* ---- the node ---- */

static void make_node(struct discovery *d, bool present) {
        memset(d, 0, sizeof(*d));
        if (!present)
                return;
        d->dcap_enclave.present = true;
        snprintf(d->dcap_enclave.host_path, sizeof(d->dcap_enclave.host_path), "/dev/sgx_enclave");
        d->dcap_enclave.major = 10;
        d->dcap_enclave.minor = 125;
        d->dcap_provision.present = true;
        snprintf(d->dcap_provision.host_path, sizeof(d->dcap_provision.host_path),
                 "/dev/sgx_provision");
        d->dcap_provision.major = 10;
        d->dcap_provision.minor = 126;
}

static void on_stream_ended(struct dp_service *s, size_t remaining, uint64_t opened_usec,
                            void *userdata) {
        unsigned *n_ended = userdata;

        (*n_ended)++;
}

/* ---- the target ---- */

static void cleanup(void) {
        if (sock_path[0])
                (void) unlink(sock_path);
        if (tmp_dir[0])
                (void) rmdir(tmp_dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        const char *level = getenv("FUZZ_LOG_LEVEL");
        enum log_level l = LOG_LEVEL_DEBUG;

        /*
         * Debug lines by default: their formatting of peer bytes (paths, messages) is fuzzed too,
         * and costs little. fuzz/run.sh passes -close_fd_mask=2, so they go nowhere; set
         * FUZZ_LOG_LEVEL=error for a quiet run by hand.
         */
        if (level && log_level_from_string(level, &l) < 0)
                l = LOG_LEVEL_DEBUG;
        log_setup(l, LOG_FORMAT_TEXT);

        snprintf(tmp_dir, sizeof(tmp_dir), "/tmp/fuzz-h2-XXXXXX");
        if (!mkdtemp(tmp_dir)) {
                perror("mkdtemp");
                abort();
        }
        snprintf(sock_path, sizeof(sock_path), "%s/sgxdevplugin-dcap.sock", tmp_dir);
        atexit(cleanup);
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const struct dp_config cfg = {
                .domain = "sgx.k8s.io",
                .max_pods = 110,
                .provision = true,
                .aesmd_dir = "/var/run/aesmd",
        };
        struct harness h = {.client_fd = -1, .reading = true};
        struct discovery present, gone;
        struct dp_service *svc = NULL;
        unsigned n_ended = 0, ended_before, pieces = 0, reconnects = 0;
        size_t open_streams;
        bool node_present = true, glue = false;
        size_t pos = 0;

        make_node(&present, true);
        make_node(&gone, false);

        if (loop_new(&h.loop) < 0)
                abort();
        h.tick_fd = eventfd(1, EFD_CLOEXEC | EFD_NONBLOCK);
        if (h.tick_fd < 0 || loop_add_io(h.loop, h.tick_fd, EPOLLIN, on_tick, &h, &h.tick) < 0)
                abort();
        if (dp_service_new(h.loop, &cfg, DP_KIND_DCAP, sock_path, &present, on_stream_ended,
                           &n_ended, &svc) < 0)
                abort();
        client_connect(&h);
        run_rounds(&h, 2); /* accepted; our SETTINGS sent */

        while (pos < size) {
                size_t n = size - pos;
                uint8_t harness = 0;

                if (pos == 0)
                        n = n < PREFACE_LEN ? n : PREFACE_LEN;
                else if (n >= FRAME_HEADER_LEN && pieces < MAX_PIECES) {
                        size_t flen = (size_t) data[pos] << 16 | (size_t) data[pos + 1] << 8 |
                                      data[pos + 2];

                        if (FRAME_HEADER_LEN + flen < n)
                                n = FRAME_HEADER_LEN + flen;
                        if (data[pos + 3] == HARNESS_FRAME)
                                harness = data[pos + 4] | 0x80; /* 0x80: not for the server */
                }
                pieces++;
                if (harness & HARNESS_FLIP_NODE) {
                        node_present = !node_present;
                        dp_service_update(svc, node_present ? &present : &gone);
                }
                if (harness & HARNESS_FLIP_READING)
                        h.reading = !h.reading;
                if (harness & HARNESS_FLIP_GLUE)
                        glue = !glue;
                if ((harness & HARNESS_RELISTEN) && reconnects++ < MAX_RECONNECTS) {
                        if (dp_service_relisten(svc) < 0)
                                abort();
                        client_close(&h);
                        client_connect(&h);
                }
                if ((harness & HARNESS_HANG_UP) && reconnects++ < MAX_RECONNECTS) {
                        client_close(&h);
                        run_rounds(&h, ROUNDS_PER_PIECE);
                        if (dp_service_n_streams(svc) != 0)
                                abort(); /* a stream outlived its connection */
                        client_connect(&h);
                }
                if (!harness)
                        send_piece(&h, data + pos, n);
                pos += n;
                if (!glue)
                        run_rounds(&h, ROUNDS_PER_PIECE);
        }

        /* Push two updates to whatever streams are open, then hang up. */
        h.reading = true;
        run_rounds(&h, 2);
        dp_service_update(svc, node_present ? &gone : &present);
        run_rounds(&h, 2);
        dp_service_update(svc, &present);
        run_rounds(&h, ROUNDS_AT_END);
        open_streams = dp_service_n_streams(svc);
        ended_before = n_ended;
        client_close(&h);
        run_rounds(&h, ROUNDS_AT_END);

        /* The hang-up ended every ListAndWatch stream, and each was reported as ended. */
        if (dp_service_n_streams(svc) != 0 || n_ended - ended_before != open_streams)
                abort();
        svc = dp_service_free(svc);
        h.tick = loop_source_free(h.tick);
        close(h.tick_fd);
        h.loop = loop_free(h.loop);
        return 0;
}
