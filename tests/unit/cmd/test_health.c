/*
 * test_health.c - unit tests for src/cmd/health.c: health_check() against a kubelet dir under
 * mkdtemp holding nothing, the real node (plugin.c over a fake device tree, served by a forked
 * child, since health runs a loop of its own), sockets that accept and never answer, stale socket
 * files, and the longest resource domain. The report is read back from a memory stream.
 */
#include "health.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "loop.h"
#include "plugin.h"
#include "unit.h"

#define WAIT_MS 5000 /* the longest any wait for the child may take */

static char top[64];   /* the mkdtemp dir */
static char dev[128];  /* top/dev: the fake --dev-root */
static char kdir[128]; /* top/kubelet: the --kubelet-dir */

/* 63 + 1 + 63 + 1 + 63 + 1 + 61 = 253 characters: SGX_DOMAIN_MAX */
#define LABEL63 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define LABEL61 "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
static const char long_domain[] = LABEL63 "." LABEL63 "." LABEL63 "." LABEL61;

/* ---- fixtures ---- */

static void setup(void) {
        char p[256];

        snprintf(top, sizeof(top), "/tmp/test_health.XXXXXX");
        if (!mkdtemp(top)) {
                perror("mkdtemp");
                exit(2);
        }
        snprintf(dev, sizeof(dev), "%s/dev", top);
        snprintf(kdir, sizeof(kdir), "%s/kubelet", top);
        CHECK(mkdir(dev, 0755) == 0);
        CHECK(mkdir(kdir, 0755) == 0);
        snprintf(p, sizeof(p), "%s/sgx_enclave", dev);
        CHECK(mknod(p, S_IFCHR | 0600, makedev(10, 125)) == 0);
        snprintf(p, sizeof(p), "%s/sgx_provision", dev);
        CHECK(mknod(p, S_IFCHR | 0600, makedev(10, 126)) == 0);
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path);
}

static void teardown(void) {
        nftw(top, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* DIR/sgxdevplugin-<kind>.sock */
static const char *sock_path(const char *kind) {
        static char p[4][256];
        static int next;
        char *s = p[next++ % 4];

        snprintf(s, sizeof(p[0]), "%s/sgxdevplugin-%s.sock", kdir, kind);
        return s;
}

static void sleep_ms(unsigned ms) {
        struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long) (ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
}

/* The options `sgxdevplugin health --kubelet-dir DIR --resource-domain D --timeout T` gives. */
static struct cli_options options(const char *domain, unsigned timeout_ms) {
        return (struct cli_options){
                .command = CLI_HEALTH,
                .kubelet_dir = kdir,
                .domain = domain,
                .health_timeout_ms = timeout_ms,
        };
}

/* Runs health_check() into *ret_text (caller frees) and returns its result. */
static int run_health(const struct cli_options *o, char **ret_text) {
        size_t len = 0;
        FILE *f = open_memstream(ret_text, &len);
        int r;

        if (!f) {
                perror("open_memstream");
                exit(2);
        }
        r = health_check(f, o);
        fclose(f);
        return r;
}

static int count_lines(const char *text) {
        int n = 0;

        for (const char *s = text; s && *s; s++)
                n += *s == '\n';
        return n;
}

/* The report's line about |kind|'s socket (copied into |buf|), or "" when there is none. */
static const char *line_of(const char *text, const char *kind, char *buf, size_t size) {
        const char *name = strrchr(sock_path(kind), '/') + 1;
        const char *at = text ? strstr(text, name) : NULL;
        const char *start, *end;

        buf[0] = '\0';
        if (!at)
                return buf;
        for (start = at; start > text && start[-1] != '\n'; start--)
                ;
        end = strchr(at, '\n');
        if (!end)
                end = at + strlen(at);
        snprintf(buf, size, "%.*s", (int) (end - start), start);
        return buf;
}

/* ---- the node, served by a child process ---- */

static void on_term(struct loop_source *s, int signo, void *userdata) {
        loop_quit(loop_source_loop(s), 0);
}

static void on_too_long(struct loop_source *s, void *userdata) {
        loop_quit(loop_source_loop(s), 1);
}

/*
 * Forks a child that serves the node (plugin.c) over the fake tree in the kubelet dir until
 * SIGTERM (or 30 s), then frees it and exits 0. Returns once plugin_new() returned in the child
 * (its sockets bound and listening: a socket file exists between bind and listen, so its
 * existence alone would race), or after WAIT_MS; -1 if fork fails.
 */
static pid_t node_start(const char *domain, bool provision_resource) {
        struct pollfd pfd = {.events = POLLIN};
        int ready[2];
        char byte = 0;
        pid_t pid;

        if (pipe2(ready, O_CLOEXEC) < 0)
                return -1;
        fflush(NULL);
        pid = fork();
        if (pid < 0) {
                close(ready[0]);
                close(ready[1]);
                return -1;
        }
        if (pid == 0) {
                struct node_config cfg = {
                        .kubelet_dir = kdir,
                        .dev_root = dev,
                        .domain = domain,
                        .max_pods = 110,
                        .provision = true,
                        .provision_resource = provision_resource,
                };
                struct loop *l = NULL;
                struct loop_source *term = NULL, *timer = NULL;
                struct plugin *p = NULL;
                int r = 2;

                close(ready[0]);
                if (loop_new(&l) < 0 || loop_add_signal(l, SIGTERM, on_term, NULL, &term) < 0 ||
                    loop_add_timer(l, on_too_long, NULL, &timer) < 0 ||
                    loop_timer_arm(timer, 30000000, 0) < 0 || plugin_new(l, &cfg, &p) < 0)
                        goto out;
                if (write(ready[1], "R", 1) != 1)
                        goto out;
                r = loop_run(l);
        out:
                close(ready[1]);
                plugin_free(p);
                loop_source_free(timer);
                loop_source_free(term);
                loop_free(l);
                exit(r);
        }
        close(ready[1]);
        pfd.fd = ready[0];
        /* the checks on the report say what is missing if the child never gets ready */
        if (poll(&pfd, 1, WAIT_MS) == 1 && read(ready[0], &byte, 1) == 1)
                CHECK(byte == 'R');
        else
                CHECK(!"the node got ready");
        close(ready[0]);
        return pid;
}

/* Stops the child; returns its exit status (0: served, freed and leaked nothing), or -1. */
static int node_stop(pid_t pid) {
        int status;

        if (pid <= 0)
                return -1;
        kill(pid, SIGTERM);
        for (int i = 0; i < WAIT_MS / 5; i++) {
                if (waitpid(pid, &status, WNOHANG) == pid)
                        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
                sleep_ms(5);
        }
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        return -1;
}

/* A unix socket bound at |path|; listening (and never accepting) when |listening|. */
static int bind_socket(const char *path, bool listening) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
        if (fd < 0 || bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 ||
            (listening && listen(fd, 16) < 0)) {
                perror(path);
                exit(2);
        }
        return fd;
}

/* ---- tests ---- */

/* Nothing serves: three failures (provision is not checked), each saying there is no socket. */
static void test_health_no_sockets_fails_three(void) {
        struct cli_options o;
        char *text = NULL, line[1024];

        setup();
        o = options("sgx.k8s.io", 1000);
        CHECK_INT(run_health(&o, &text), 3);
        CHECK_INT(count_lines(text), 3);
        CHECK(strstr(line_of(text, "sgx", line, sizeof(line)), "sgx.k8s.io/sgx ") == line);
        CHECK(strstr(line, ": FAILED: no such socket") != NULL);
        CHECK(strstr(line_of(text, "dcap", line, sizeof(line)), ": FAILED: no such socket"));
        CHECK(strstr(line_of(text, "ias", line, sizeof(line)), ": FAILED: no such socket"));
        CHECK_STR(line_of(text, "provision", line, sizeof(line)), "");
        free(text);

        /* nor when the kubelet dir itself is missing */
        CHECK(rmdir(kdir) == 0);
        CHECK_INT(run_health(&o, &text), 3);
        CHECK(strstr(line_of(text, "dcap", line, sizeof(line)), ": FAILED: no such socket"));
        free(text);
        teardown();
}

/* The real node answers on every socket: 0, and one "ok (answered in N ms)" line each. */
static void test_health_running_node_is_ok(void) {
        struct cli_options o;
        char *text = NULL, line[1024];
        pid_t pid;

        setup();
        pid = node_start("sgx.k8s.io", false);
        CHECK(pid > 0);
        o = options("sgx.k8s.io", 5000);
        CHECK_INT(run_health(&o, &text), 0);
        CHECK_INT(count_lines(text), 3);
        CHECK(strstr(line_of(text, "sgx", line, sizeof(line)), "sgx.k8s.io/sgx ") == line);
        CHECK(strstr(line, ": ok (answered in ") != NULL);
        CHECK(strstr(line_of(text, "dcap", line, sizeof(line)), ": ok (answered in "));
        CHECK(strstr(line_of(text, "ias", line, sizeof(line)), ": ok (answered in "));
        CHECK_INT(node_stop(pid), 0);
        free(text);

        /* the node is gone and took its sockets with it */
        CHECK_INT(run_health(&o, &text), 3);
        CHECK(strstr(line_of(text, "dcap", line, sizeof(line)), ": FAILED: no such socket"));
        free(text);
        teardown();
}

/*
 * A wedged daemon (its socket accepts in the kernel, nothing ever answers) fails after --timeout;
 * a stale socket file with nothing listening is "connection refused"; all bounded by the timeout.
 */
static void test_health_unanswered_socket_times_out(void) {
        struct cli_options o;
        char *text = NULL, line[1024];
        int wedged, stale;
        uint64_t start, took;

        setup();
        wedged = bind_socket(sock_path("sgx"), true);
        stale = bind_socket(sock_path("dcap"), false);
        close(stale);
        o = options("sgx.k8s.io", 200);
        start = loop_now_usec();
        CHECK_INT(run_health(&o, &text), 3);
        took = loop_now_usec() - start;
        CHECK(took >= 200000);
        CHECK(took < 5000000); /* the calls run at once, each bounded by the timeout */
        CHECK(strstr(line_of(text, "sgx", line, sizeof(line)),
                     ": FAILED: no answer within 0.2 s (the daemon is wedged or stopped)"));
        CHECK(strstr(line_of(text, "dcap", line, sizeof(line)), ": FAILED: connection refused"));
        CHECK(strstr(line_of(text, "ias", line, sizeof(line)), ": FAILED: no such socket"));
        close(wedged);
        free(text);
        teardown();
}

/*
 * The provision socket is checked only when it exists: served (--provision-resource) it is a
 * fourth ok line; a stale one left beside a node without it is a fourth, failed line.
 */
static void test_health_provision_socket_only_when_present(void) {
        struct cli_options o;
        char *text = NULL, line[1024];
        pid_t pid;
        int stale;

        setup();
        o = options("sgx.k8s.io", 5000);
        pid = node_start("sgx.k8s.io", true);
        CHECK(pid > 0);
        CHECK_INT(run_health(&o, &text), 0);
        CHECK_INT(count_lines(text), 4);
        CHECK(strstr(line_of(text, "provision", line, sizeof(line)), "sgx.k8s.io/provision ") ==
              line);
        CHECK(strstr(line, ": ok (answered in ") != NULL);
        CHECK_INT(node_stop(pid), 0);
        free(text);

        pid = node_start("sgx.k8s.io", false);
        CHECK(pid > 0);
        CHECK_INT(run_health(&o, &text), 0);
        CHECK_INT(count_lines(text), 3);
        CHECK_STR(line_of(text, "provision", line, sizeof(line)), "");
        free(text);
        stale = bind_socket(sock_path("provision"), false);
        close(stale);
        CHECK_INT(run_health(&o, &text), 1);
        CHECK_INT(count_lines(text), 4);
        CHECK(strstr(line_of(text, "provision", line, sizeof(line)),
                     ": FAILED: connection refused"));
        CHECK(strstr(line_of(text, "dcap", line, sizeof(line)), ": ok (answered in "));
        CHECK_INT(node_stop(pid), 0);
        free(text);
        teardown();
}

/* A 253-character --resource-domain (the longest there is): the names fit, the node answers. */
static void test_health_longest_domain(void) {
        struct cli_options o;
        char *text = NULL, line[1024], want[300];
        pid_t pid;

        CHECK_INT(strlen(long_domain), 253);
        setup();
        o = options(long_domain, 5000);
        CHECK_INT(run_health(&o, &text), 3);
        snprintf(want, sizeof(want), "%s/dcap %s: FAILED: no such socket", long_domain,
                 sock_path("dcap"));
        CHECK(strstr(line_of(text, "dcap", line, sizeof(line)), want) == line);
        free(text);

        pid = node_start(long_domain, true);
        CHECK(pid > 0);
        CHECK_INT(run_health(&o, &text), 0);
        CHECK_INT(count_lines(text), 4);
        snprintf(want, sizeof(want), "%s/provision %s: ok (answered in ", long_domain,
                 sock_path("provision"));
        CHECK(strstr(line_of(text, "provision", line, sizeof(line)), want) == line);
        snprintf(want, sizeof(want), "%s/sgx %s: ok (answered in ", long_domain, sock_path("sgx"));
        CHECK(strstr(line_of(text, "sgx", line, sizeof(line)), want) == line);
        CHECK_INT(node_stop(pid), 0);
        free(text);
        teardown();
}

int main(void) {
        signal(SIGPIPE, SIG_IGN);
        RUN(test_health_no_sockets_fails_three);
        RUN(test_health_running_node_is_ok);
        RUN(test_health_unanswered_socket_times_out);
        RUN(test_health_provision_socket_only_when_present);
        RUN(test_health_longest_domain);
        return unit_done();
}
