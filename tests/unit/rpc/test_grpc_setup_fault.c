/*
 * test_grpc_setup_fault.c - the fault twin of test_grpc_server.c / test_grpc_client.c for setting
 * up: grpc_server_new() and grpc_client_call_start() with each of their allocations made to fail
 * in turn (failmalloc.h). Each returns -ENOMEM and leaves nothing (no socket file, no memory), or
 * works: the call then completes against the server with the echo. nghttp2's own allocations
 * (sessions, frames) are inside its shared library: not caught.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "failmalloc.h"
#include "grpc_client.h"
#include "grpc_server.h"
#include "loop.h"
#include "unit.h"

#define M_ECHO "/test.Svc/Echo"

static void on_echo(struct grpc_call *call, const uint8_t *req, size_t len, void *userdata) {
        CHECK_INT(grpc_call_reply(call, req, len), 0);
}

static const struct grpc_method methods[] = {{.path = M_ECHO, .on_request = on_echo}};

struct result {
        bool done;
        int err;
        int status;
        char resp[16];
        struct loop *loop;
};

static void on_done(int err, enum grpc_status status, const char *message, const uint8_t *resp,
                    size_t len, void *userdata) {
        struct result *r = userdata;

        r->done = true;
        r->err = err;
        r->status = status;
        if (resp && len < sizeof(r->resp))
                memcpy(r->resp, resp, len);
        loop_quit(r->loop, 0);
}

static void on_deadline(struct loop_source *s, void *userdata) {
        loop_quit(userdata, -ETIMEDOUT);
}

static void test_grpc_setup_fault_server_and_client(void) {
        struct grpc_server_config cfg = {.methods = methods, .n_methods = 1};
        char dir[] = "/tmp/test_grpc_setup_fault.XXXXXX", path[128];
        unsigned long n;
        unsigned calls = 0;

        CHECK(mkdtemp(dir) != NULL);
        snprintf(path, sizeof(path), "%s/s.sock", dir);
        for (n = 1; n < FAILMALLOC_MAX_STEPS; n++) {
                struct loop *l = NULL;
                struct grpc_server *s = NULL;
                struct grpc_client_call *c = NULL;
                struct loop_source *deadline = NULL;
                struct result res = {0};
                bool fired;
                int r;

                CHECK_INT(loop_new(&l), 0);
                res.loop = l;
                failmalloc_arm(n);
                r = grpc_server_new(l, path, &cfg, &s);
                if (r == 0)
                        r = grpc_client_unary(l, path, NULL, M_ECHO, (const uint8_t *) "ping", 4,
                                              5000000, on_done, &res, &c);
                failmalloc_disarm();
                fired = failmalloc_fired();
                if (!fired)
                        CHECK_INT(r, 0);
                if (r < 0) {
                        CHECK_INT(r, -ENOMEM);
                        if (!s)
                                CHECK(access(path, F_OK) < 0);
                } else {
                        /* started: the call completes, with no further failure */
                        CHECK_INT(loop_add_timer(l, on_deadline, l, &deadline), 0);
                        CHECK_INT(loop_timer_arm(deadline, 10000000, 0), 0);
                        (void) loop_run(l);
                        CHECK(res.done);
                        CHECK_INT(res.err, 0);
                        CHECK_INT(res.status, GRPC_STATUS_OK);
                        CHECK_STR(res.resp, "ping");
                        calls++;
                        loop_source_free(deadline);
                }
                grpc_server_free(s);
                loop_free(l);
                (void) unlink(path);
                if (!fired)
                        break;
        }
        CHECK(n > 3);
        CHECK(calls >= 1);
        (void) rmdir(dir);
}

int main(void) {
        RUN(test_grpc_setup_fault_server_and_client);
        return unit_done();
}
