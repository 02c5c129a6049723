/*
 * fuzz_h2_client.c - libFuzzer target for our gRPC client (grpc_client.h, what Register runs on
 * the kubelet's socket): the input is the server's bytes (SETTINGS, HEADERS, DATA, trailers,
 * anything), answering a real RegisterRequest over a unix socket. Nothing may crash, trip a
 * sanitizer or leak; done runs exactly once (unless the call was cancelled) and only with what
 * grpc_client.h promises: a gRPC status with, for OK, the one response message; or one of the
 * documented transport errors with no message.
 *
 * Each input, deterministically: a fresh loop; the call is started (the client connects to our
 * listening socket, which we accept); the input is written frame by frame (h2_harness.h), the loop
 * running a few rounds after each; then we hang up, which must complete the call; everything is
 * freed. The client's timeout (5 s) never fires here (h2_harness.c's timers).
 *
 * Harness frames (type 0xf0, not written): by the bits of the flags byte,
 *   0x01  hang up now (the rest of the input is not sent);
 *   0x02  stop / resume reading what the client sends;
 *   0x04  glue on / off (pieces written back to back, read at once);
 *   0x08  cancel the call now (done must not run after that).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "api.pb-c.h"
#include "grpc_client.h"
#include "h2_harness.h"
#include "log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define HARNESS_HANG_UP 0x01
#define HARNESS_CANCEL 0x08
#define REGISTER_METHOD "/v1beta1.Registration/Register"
#define TIMEOUT_USEC (5u * 1000 * 1000)
#define ROUNDS_AT_END 8

static char tmp_dir[64];
static char sock_path[128];
static int listen_fd = -1;
static uint8_t *request;
static size_t request_len;

struct outcome {
        struct grpc_client_call *call; /* until done runs or it is cancelled */
        unsigned n_done;
};

static void on_done(int err, enum grpc_status status, const char *message, const uint8_t *resp,
                    size_t len, void *userdata) {
        struct outcome *o = userdata;

        o->call = NULL;
        if (++o->n_done > 1)
                abort(); /* done ran twice */
        if (err == 0) {
                if ((int) status < 0)
                        abort();
                if (message)
                        (void) strlen(message); /* NUL-terminated, readable */
                if (status == GRPC_STATUS_OK) {
                        if (!resp)
                                abort(); /* OK carries the one response message */
                        if (len > 0)
                                (void) *(volatile const uint8_t *) (resp + len - 1);
                } else if (resp || len)
                        abort();
                return;
        }
        if (message || resp || len)
                abort();
        /* grpc_client.h: -ECONNRESET when the peer went away, -EPROTO for a malformed answer. */
        if (err != -ECONNRESET && err != -EPROTO && err != -ENOMEM)
                abort();
}

static void cleanup(void) {
        if (listen_fd >= 0)
                close(listen_fd);
        if (sock_path[0])
                (void) unlink(sock_path);
        if (tmp_dir[0])
                (void) rmdir(tmp_dir);
        free(request);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        V1beta1__RegisterRequest req = V1BETA1__REGISTER_REQUEST__INIT;
        V1beta1__DevicePluginOptions opts = V1BETA1__DEVICE_PLUGIN_OPTIONS__INIT;
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        const char *level = getenv("FUZZ_LOG_LEVEL");
        enum log_level l = LOG_LEVEL_DEBUG;

        /* Debug lines by default (fuzz/run.sh discards them); FUZZ_LOG_LEVEL=error by hand. */
        if (level && log_level_from_string(level, &l) < 0)
                l = LOG_LEVEL_DEBUG;
        log_setup(l, LOG_FORMAT_TEXT);

        snprintf(tmp_dir, sizeof(tmp_dir), "/tmp/fuzz-h2c-XXXXXX");
        if (!mkdtemp(tmp_dir)) {
                perror("mkdtemp");
                abort();
        }
        snprintf(sock_path, sizeof(sock_path), "%s/kubelet.sock", tmp_dir);
        atexit(cleanup);
        listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        memcpy(sa.sun_path, sock_path, strlen(sock_path) + 1);
        if (listen_fd < 0 || bind(listen_fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 ||
            listen(listen_fd, 16) < 0) {
                perror("kubelet.sock");
                abort();
        }

        /* What the daemon sends: a real RegisterRequest. */
        req.version = (char *) "v1beta1";
        req.endpoint = (char *) "sgxdevplugin-dcap.sock";
        req.resource_name = (char *) "sgx.k8s.io/dcap";
        req.options = &opts;
        request_len = v1beta1__register_request__get_packed_size(&req);
        request = malloc(request_len);
        if (!request)
                abort();
        v1beta1__register_request__pack(&req, request);
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct outcome o = {0};
        bool cancelled = false;
        unsigned harness;
        const uint8_t *p;
        struct h2h h;
        size_t n;

        h2h_init(&h);
        if (grpc_client_unary(h.loop, sock_path, NULL, REGISTER_METHOD, request, request_len,
                              TIMEOUT_USEC, on_done, &o, &o.call) < 0)
                abort();
        /* A unix connect completes at once: the connection waits in our backlog. */
        h.fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (h.fd < 0)
                abort();
        h2h_run(&h, 2); /* the client's preface, SETTINGS, HEADERS and DATA arrive */

        while (h2h_next(&h, data, size, 0, &p, &n, &harness)) {
                if ((harness & HARNESS_CANCEL) && o.call) {
                        o.call = grpc_client_call_cancel(o.call);
                        cancelled = true;
                }
                if (harness & HARNESS_HANG_UP)
                        break;
                if (!harness)
                        h2h_send(&h, p, n);
                h2h_after_piece(&h);
        }

        /* We hang up: a call still open must end now, with an answer or -ECONNRESET. */
        h.reading = true;
        h2h_run(&h, 2);
        h2h_close(&h);
        h2h_run(&h, ROUNDS_AT_END);
        if (o.n_done != (cancelled ? 0u : 1u) || o.call)
                abort(); /* done ran after a cancel, or never ran */
        h2h_done(&h);
        return 0;
}
