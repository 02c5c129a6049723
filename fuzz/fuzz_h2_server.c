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
 * Harness frames (h2_harness.h): a frame of type 0xf0 (an extension type a real client never
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
 * Timers are deterministic (h2_harness.c): a grpc-timeout of at most 100 ms expires at the next
 * loop round, a longer one never does. accept4() is replaced here to give the server's socket a
 * small send buffer. The loop runs a bounded number of epoll rounds at a time.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "deviceplugin.h"
#include "discovery.h"
#include "h2_harness.h"
#include "log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define PREFACE_LEN 24
#define HARNESS_FLIP_NODE 0x01
#define HARNESS_RELISTEN 0x08
#define HARNESS_HANG_UP 0x10
/* Relistens and hang-ups per input (each costs a bind or a connect). */
#define MAX_RECONNECTS 8
/* Loop rounds at the end. */
#define ROUNDS_AT_END 8
/* The server socket's send buffer (the kernel doubles it): a few ListAndWatch answers. */
#define SERVER_SNDBUF 8192

static char tmp_dir[64];
static char sock_path[128];

/*
 * The server's end of the connection gets a small send buffer, so a client that stops reading
 * (H2H_FLIP_READING) fills it after a few answers and the server's blocked-write paths run.
 */
int accept4(int fd, struct sockaddr *addr, socklen_t *addrlen, int flags) {
        int cfd = (int) syscall(SYS_accept4, fd, addr, addrlen, flags);
        int size = SERVER_SNDBUF;

        if (cfd >= 0)
                (void) setsockopt(cfd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
        return cfd;
}

static void client_connect(struct h2h *h) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};

        h->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (h->fd < 0)
                abort();
        memcpy(sa.sun_path, sock_path, strlen(sock_path) + 1);
        if (connect(h->fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                abort();
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
                .slots = 110,
                .edits = {.provision = true, .aesmd_dir = "/var/run/aesmd"},
        };
        struct discovery present, gone;
        struct dp_service *svc = NULL;
        unsigned n_ended = 0, ended_before, reconnects = 0, harness;
        bool node_present = true;
        size_t open_streams, n;
        const uint8_t *p;
        struct h2h h;

        make_node(&present, true);
        make_node(&gone, false);
        h2h_init(&h);
        if (dp_service_new(h.loop, &cfg, SGX_KIND_DCAP, sock_path, &present, on_stream_ended,
                           &n_ended, &svc) < 0)
                abort();
        client_connect(&h);
        h2h_run(&h, 2); /* accepted; our SETTINGS sent */

        while (h2h_next(&h, data, size, PREFACE_LEN, &p, &n, &harness)) {
                if (harness & HARNESS_FLIP_NODE) {
                        node_present = !node_present;
                        dp_service_update(svc, node_present ? &present : &gone);
                }
                if ((harness & HARNESS_RELISTEN) && reconnects++ < MAX_RECONNECTS) {
                        if (dp_service_relisten(svc) < 0)
                                abort();
                        h2h_close(&h);
                        client_connect(&h);
                }
                if ((harness & HARNESS_HANG_UP) && reconnects++ < MAX_RECONNECTS) {
                        h2h_close(&h);
                        h2h_run(&h, H2H_ROUNDS_PER_PIECE);
                        if (dp_service_n_streams(svc) != 0)
                                abort(); /* a stream outlived its connection */
                        client_connect(&h);
                }
                if (!harness)
                        h2h_send(&h, p, n);
                h2h_after_piece(&h);
        }

        /* Push two updates to whatever streams are open, then hang up. */
        h.reading = true;
        h2h_run(&h, 2);
        dp_service_update(svc, node_present ? &gone : &present);
        h2h_run(&h, 2);
        dp_service_update(svc, &present);
        h2h_run(&h, ROUNDS_AT_END);
        open_streams = dp_service_n_streams(svc);
        ended_before = n_ended;
        h2h_close(&h);
        h2h_run(&h, ROUNDS_AT_END);

        /* The hang-up ended every ListAndWatch stream, and each was reported as ended. */
        if (dp_service_n_streams(svc) != 0 || n_ended - ended_before != open_streams)
                abort();
        svc = dp_service_free(svc);
        h2h_done(&h);
        return 0;
}
