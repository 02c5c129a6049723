/*
 * test_health.c - unit tests for src/cmd/health.c: health_check() against a kubelet dir under
 * mkdtemp holding nothing, the real node (plugin.c over a fake device tree, served by a forked
 * child, since health runs a loop of its own), sockets that accept and never answer, stale socket
 * files, and the longest resource domain; with --dra the node's registration and DRA sockets
 * (with and without the device plugin's), and a stranger answering them wrongly. The report is
 * read back from a memory stream.
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
#include "grpc_server.h"
#include "loop.h"
#include "plugin.h"
#include "pluginregistration.pb-c.h"
#include "unit.h"

#define WAIT_MS 5000 /* the longest any wait for the child may take */

static char top[64];   /* the mkdtemp dir */
static char dev[128];  /* top/dev: the fake --dev-root */
static char kdir[128]; /* top/kubelet: the --kubelet-dir */
static char rdir[128]; /* top/registry: the --plugins-registry */
static char ddir[128]; /* top/dra: the --dra-dir */
static char cdir[128]; /* top/cdi: the --cdi-dir (--dra writes the CDI spec) */

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
        snprintf(rdir, sizeof(rdir), "%s/registry", top);
        snprintf(ddir, sizeof(ddir), "%s/dra", top);
        snprintf(cdir, sizeof(cdir), "%s/cdi", top);
        CHECK(mkdir(dev, 0755) == 0);
        CHECK(mkdir(kdir, 0755) == 0);
        CHECK(mkdir(rdir, 0755) == 0); /* the kubelet's, as kdir: the node waits for it */
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

/* The same with `--dra --plugins-registry=top/registry --dra-dir=top/dra` (and
 * --no-device-plugin when |no_dp|). */
static struct cli_options dra_options(const char *domain, unsigned timeout_ms, bool no_dp) {
        struct cli_options o = options(domain, timeout_ms);

        o.dra = true;
        o.no_device_plugin = no_dp;
        o.plugins_registry = rdir;
        o.dra_dir = ddir;
        return o;
}

/* top/registry/<domain>-reg.sock */
static const char *reg_path(const char *domain) {
        static char p[512];

        snprintf(p, sizeof(p), "%s/%s-reg.sock", rdir, domain);
        return p;
}

/* top/dra/dra.sock */
static const char *dra_path(void) {
        static char p[256];

        snprintf(p, sizeof(p), "%s/dra.sock", ddir);
        return p;
}

/* The report's line starting with |label| (copied into |buf|), or "" when there is none. */
static const char *line_starting(const char *text, const char *label, char *buf, size_t size) {
        size_t n = strlen(label);
        const char *s = text;

        buf[0] = '\0';
        while (s && *s) {
                const char *end = strchr(s, '\n');

                if (!end)
                        end = s + strlen(s);
                if (strncmp(s, label, n) == 0 && s[n] == ' ') {
                        snprintf(buf, size, "%.*s", (int) (end - s), s);
                        break;
                }
                s = *end ? end + 1 : end;
        }
        return buf;
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
static pid_t node_start_with(const char *domain, bool provision_resource, bool dra, bool no_dp) {
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
                        /* --dra: the ResourceSlice publisher's API server is a port nobody
                         * listens on (it retries in the background; the sockets do not care) */
                        .dra = dra,
                        .no_device_plugin = no_dp,
                        .plugins_registry = rdir,
                        .dra_dir = ddir,
                        .cdi_dir = cdir,
                        .node_name = "node-a",
                        .apiserver = "https://127.0.0.1:9",
                        .api_timeout_ms = 1000,
                        .label_interval_ms = 600000,
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

static pid_t node_start(const char *domain, bool provision_resource) {
        return node_start_with(domain, provision_resource, false, false);
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

/* ---- a stranger on the DRA sockets, served by a child process ---- */

/* What the stranger answers. */
struct stranger {
        const char *type, *name; /* its PluginInfo */
        bool fail_unprepare;     /* NodeUnprepareResources: UNIMPLEMENTED, else undecodable bytes */
};

static void stranger_info(struct grpc_call *call, const uint8_t *req, size_t len,
                          void *userdata) {
        const struct stranger *st = userdata;
        Pluginregistration__PluginInfo info = PLUGINREGISTRATION__PLUGIN_INFO__INIT;
        uint8_t buf[1024];

        info.type = (char *) st->type;
        info.name = (char *) st->name;
        info.endpoint = (char *) dra_path();
        CHECK(pluginregistration__plugin_info__get_packed_size(&info) <= sizeof(buf));
        (void) grpc_call_reply(call, buf, pluginregistration__plugin_info__pack(&info, buf));
}

static void stranger_unprepare(struct grpc_call *call, const uint8_t *req, size_t len,
                               void *userdata) {
        const struct stranger *st = userdata;
        static const uint8_t garbage[] = {0xff, 0xff}; /* a varint never ended */

        if (st->fail_unprepare)
                (void) grpc_call_fail(call, GRPC_STATUS_UNIMPLEMENTED, "not a DRA driver");
        else
                (void) grpc_call_reply(call, garbage, sizeof(garbage));
}

static const struct grpc_method stranger_reg_methods[] = {
        {"/pluginregistration.Registration/GetInfo", false, stranger_info},
};
static const struct grpc_method stranger_dra_methods[] = {
        {"/k8s.io.kubelet.pkg.apis.dra.v1.DRAPlugin/NodeUnprepareResources", false,
         stranger_unprepare},
};

/* Forks a child serving |st| on reg_path(|domain|) and dra_path() until SIGTERM (or 30 s). */
static pid_t stranger_start(const char *domain, const struct stranger *st) {
        struct pollfd pfd = {.events = POLLIN};
        int ready[2];
        char byte = 0;
        pid_t pid;

        mkdir(ddir, 0755);
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
                struct grpc_server_config rc = {.methods = stranger_reg_methods,
                                                .n_methods = 1,
                                                .userdata = (void *) st};
                struct grpc_server_config dc = {.methods = stranger_dra_methods,
                                                .n_methods = 1,
                                                .userdata = (void *) st};
                struct grpc_server *reg = NULL, *dra = NULL;
                struct loop *l = NULL;
                struct loop_source *term = NULL, *timer = NULL;
                int r = 2;

                close(ready[0]);
                if (loop_new(&l) < 0 || loop_add_signal(l, SIGTERM, on_term, NULL, &term) < 0 ||
                    loop_add_timer(l, on_too_long, NULL, &timer) < 0 ||
                    loop_timer_arm(timer, 30000000, 0) < 0 ||
                    grpc_server_new(l, reg_path(domain), &rc, &reg) < 0 ||
                    grpc_server_new(l, dra_path(), &dc, &dra) < 0)
                        goto out;
                if (write(ready[1], "R", 1) != 1)
                        goto out;
                r = loop_run(l);
        out:
                close(ready[1]);
                grpc_server_free(dra);
                grpc_server_free(reg);
                loop_source_free(timer);
                loop_source_free(term);
                loop_free(l);
                exit(r);
        }
        close(ready[1]);
        pfd.fd = ready[0];
        if (poll(&pfd, 1, WAIT_MS) == 1 && read(ready[0], &byte, 1) == 1)
                CHECK(byte == 'R');
        else
                CHECK(!"the stranger got ready");
        close(ready[0]);
        return pid;
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

/*
 * --dra: the node's registration socket answers a PluginInfo of type DRAPlugin named D and its
 * dra.sock an empty unprepare: five ok lines with the device plugin's; without --dra health asks
 * only those three. Once the node is gone, every line fails, the DRA ones naming their flags.
 */
static void test_health_dra_running_node_is_ok(void) {
        struct cli_options o;
        char *text = NULL, line[1024], want[600];
        pid_t pid;

        setup();
        pid = node_start_with("sgx.k8s.io", false, true, false);
        CHECK(pid > 0);
        o = dra_options("sgx.k8s.io", 5000, false);
        CHECK_INT(run_health(&o, &text), 0);
        CHECK_INT(count_lines(text), 5);
        CHECK(strstr(line_of(text, "dcap", line, sizeof(line)), ": ok (answered in "));
        snprintf(want, sizeof(want), "dra-registration %s: ok (answered in ", reg_path("sgx.k8s.io"));
        CHECK(strstr(line_starting(text, "dra-registration", line, sizeof(line)), want) == line);
        snprintf(want, sizeof(want), "dra-plugin %s: ok (answered in ", dra_path());
        CHECK(strstr(line_starting(text, "dra-plugin", line, sizeof(line)), want) == line);
        free(text);

        o = options("sgx.k8s.io", 5000);
        CHECK_INT(run_health(&o, &text), 0);
        CHECK_INT(count_lines(text), 3);
        CHECK_STR(line_starting(text, "dra-registration", line, sizeof(line)), "");
        free(text);
        CHECK_INT(node_stop(pid), 0);

        o = dra_options("sgx.k8s.io", 5000, false);
        CHECK_INT(run_health(&o, &text), 5);
        CHECK(strstr(line_starting(text, "dra-registration", line, sizeof(line)),
                     ": FAILED: no such socket (the daemon is not running with this "
                     "--plugins-registry"));
        CHECK(strstr(line_starting(text, "dra-plugin", line, sizeof(line)),
                     ": FAILED: no such socket (the daemon is not running with this --dra-dir"));
        CHECK(strstr(line_of(text, "sgx", line, sizeof(line)),
                     ": FAILED: no such socket (the daemon is not running with this "
                     "--kubelet-dir"));
        free(text);
        teardown();
}

/*
 * --dra --no-device-plugin: only the two DRA sockets are asked, and a node serving only those is
 * healthy; asked for the device plugin's too, that node fails on the three it does not serve.
 */
static void test_health_dra_without_device_plugin(void) {
        struct cli_options o;
        char *text = NULL, line[1024];
        pid_t pid;

        setup();
        pid = node_start_with("sgx.k8s.io", false, true, true);
        CHECK(pid > 0);
        o = dra_options("sgx.k8s.io", 5000, true);
        CHECK_INT(run_health(&o, &text), 0);
        CHECK_INT(count_lines(text), 2);
        CHECK(strstr(line_starting(text, "dra-registration", line, sizeof(line)), ": ok ("));
        CHECK(strstr(line_starting(text, "dra-plugin", line, sizeof(line)), ": ok ("));
        CHECK_STR(line_of(text, "sgx", line, sizeof(line)), "");
        free(text);

        o = dra_options("sgx.k8s.io", 5000, false);
        CHECK_INT(run_health(&o, &text), 3);
        CHECK_INT(count_lines(text), 5);
        CHECK(strstr(line_of(text, "ias", line, sizeof(line)), ": FAILED: no such socket"));
        CHECK(strstr(line_starting(text, "dra-plugin", line, sizeof(line)), ": ok ("));
        free(text);
        CHECK_INT(node_stop(pid), 0);
        teardown();
}

/*
 * The DRA sockets missing (--dra-dir too) are two FAILED lines; a dra.sock that accepts
 * and never answers fails after --timeout.
 */
static void test_health_dra_sockets_missing_fail(void) {
        struct cli_options o;
        char *text = NULL, line[1024];
        int wedged;

        setup();
        o = dra_options("sgx.k8s.io", 200, true);
        CHECK_INT(run_health(&o, &text), 2);
        CHECK_INT(count_lines(text), 2);
        CHECK(strstr(line_starting(text, "dra-registration", line, sizeof(line)),
                     ": FAILED: no such socket"));
        CHECK(strstr(line_starting(text, "dra-plugin", line, sizeof(line)),
                     ": FAILED: no such socket"));
        free(text);

        CHECK(mkdir(ddir, 0755) == 0);
        wedged = bind_socket(dra_path(), true);
        CHECK_INT(run_health(&o, &text), 2);
        CHECK(strstr(line_starting(text, "dra-plugin", line, sizeof(line)),
                     ": FAILED: no answer within 0.2 s (the daemon is wedged or stopped)"));
        close(wedged);
        free(text);
        teardown();
}

/*
 * A stranger on the DRA sockets: a PluginInfo of another type, or of another driver, fails the
 * registration line; an undecodable or failed unprepare fails the DRA line.
 */
static void test_health_dra_wrong_answers_fail(void) {
        static const struct stranger csi = {.type = "CSIPlugin", .name = "sgx.k8s.io"};
        static const struct stranger other = {
                .type = "DRAPlugin", .name = "other.example.com", .fail_unprepare = true};
        static const struct stranger right = {.type = "DRAPlugin", .name = "sgx.k8s.io"};
        struct cli_options o;
        char *text = NULL, line[1024];
        pid_t pid;

        setup();
        o = dra_options("sgx.k8s.io", 5000, true);
        pid = stranger_start("sgx.k8s.io", &csi);
        CHECK(pid > 0);
        CHECK_INT(run_health(&o, &text), 2);
        CHECK(strstr(line_starting(text, "dra-registration", line, sizeof(line)),
                     ": FAILED: the PluginInfo is of type 'CSIPlugin', not DRAPlugin"));
        CHECK(strstr(line_starting(text, "dra-plugin", line, sizeof(line)),
                     ": FAILED: the answer is no NodeUnprepareResourcesResponse message (2 "
                     "bytes)"));
        free(text);
        CHECK_INT(node_stop(pid), 0);

        pid = stranger_start("sgx.k8s.io", &other);
        CHECK(pid > 0);
        CHECK_INT(run_health(&o, &text), 2);
        CHECK(strstr(line_starting(text, "dra-registration", line, sizeof(line)),
                     ": FAILED: the PluginInfo names driver 'other.example.com', not this "
                     "--resource-domain"));
        CHECK(strstr(line_starting(text, "dra-plugin", line, sizeof(line)),
                     ": FAILED: answered UNIMPLEMENTED: not a DRA driver"));
        free(text);
        CHECK_INT(node_stop(pid), 0);

        /* the same stranger with the right PluginInfo: the registration line is ok */
        pid = stranger_start("sgx.k8s.io", &right);
        CHECK(pid > 0);
        CHECK_INT(run_health(&o, &text), 1);
        CHECK(strstr(line_starting(text, "dra-registration", line, sizeof(line)), ": ok ("));
        free(text);
        CHECK_INT(node_stop(pid), 0);
        teardown();
}

int main(void) {
        signal(SIGPIPE, SIG_IGN);
        RUN(test_health_no_sockets_fails_three);
        RUN(test_health_running_node_is_ok);
        RUN(test_health_unanswered_socket_times_out);
        RUN(test_health_provision_socket_only_when_present);
        RUN(test_health_longest_domain);
        RUN(test_health_dra_running_node_is_ok);
        RUN(test_health_dra_without_device_plugin);
        RUN(test_health_dra_sockets_missing_fail);
        RUN(test_health_dra_wrong_answers_fail);
        return unit_done();
}
