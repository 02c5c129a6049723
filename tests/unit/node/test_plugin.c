/*
 * test_plugin.c - unit tests for src/node/plugin.c, in-process: a fake device tree (mknod under
 * mkdtemp, tests run as root) and a kubelet dir beside it, one loop run in short bounded slices,
 * and only what the node does that can be seen from outside: its sockets, the answers on them
 * (through our own gRPC client), its Register calls to a fake kubelet (a grpc_server on
 * kubelet.sock in the same loop: nothing in the node blocks) and its return codes.
 */
#include "plugin.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#include "api.pb-c.h"
#include "grpc_client.h"
#include "grpc_client_internal.h"
#include "grpc_server.h"
#include "loop.h"
#include "unit.h"

#define SLICE_USEC 20000u  /* one loop run while waiting for something */
#define WAIT_USEC 5000000u /* the longest any wait may take */
#define OPTIONS_METHOD "/v1beta1.DevicePlugin/GetDevicePluginOptions"
#define LIST_METHOD "/v1beta1.DevicePlugin/ListAndWatch"
#define REGISTER_METHOD "/v1beta1.Registration/Register"

static char top[64];    /* the mkdtemp dir */
static char dev[128];   /* top/dev: the fake --dev-root */
static char kdir[128];  /* top/kubelet: the --kubelet-dir */
static char ksock[192]; /* kdir/kubelet.sock */

/* ---- fixtures ---- */

static void chr(const char *dir, const char *name, unsigned maj, unsigned min) {
        char p[256];

        snprintf(p, sizeof(p), "%s/%s", dir, name);
        if (mknod(p, S_IFCHR | 0600, makedev(maj, min)) < 0) {
                perror(p);
                exit(2);
        }
}

/* A temp dir with an in-kernel driver's devices in top/dev; the kubelet dir is not made. */
static void setup(void) {
        snprintf(top, sizeof(top), "/tmp/test_plugin.XXXXXX");
        if (!mkdtemp(top)) {
                perror("mkdtemp");
                exit(2);
        }
        snprintf(dev, sizeof(dev), "%s/dev", top);
        snprintf(kdir, sizeof(kdir), "%s/kubelet", top);
        snprintf(ksock, sizeof(ksock), "%s/kubelet.sock", kdir);
        CHECK(mkdir(dev, 0755) == 0);
        chr(dev, "sgx_enclave", 10, 125);
        chr(dev, "sgx_provision", 10, 126);
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path);
}

static void teardown(void) {
        nftw(top, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

static struct node_config config(void) {
        return (struct node_config){
                .kubelet_dir = kdir,
                .dev_root = dev,
                .domain = "sgx.k8s.io",
                .max_pods = 110,
                .provision = true,
        };
}

/* DIR/sgxdevplugin-<kind>.sock */
static const char *sock_path(const char *kind) {
        static char p[4][256];
        static int next;
        char *s = p[next++ % 4];

        snprintf(s, sizeof(p[0]), "%s/sgxdevplugin-%s.sock", kdir, kind);
        return s;
}

static bool is_socket(const char *path) {
        struct stat st;
        return lstat(path, &st) == 0 && S_ISSOCK(st.st_mode);
}

static bool exists(const char *path) {
        struct stat st;
        return lstat(path, &st) == 0;
}

/* ---- running the loop, bounded ---- */

static void on_slice_over(struct loop_source *s, void *userdata) {
        loop_quit(loop_source_loop(s), -ETIMEDOUT);
}

/* Runs |l| for |usec| or until something calls loop_quit(); returns the loop's code. */
static int run_for(struct loop *l, uint64_t usec) {
        struct loop_source *t = NULL;
        int r;

        if (loop_add_timer(l, on_slice_over, NULL, &t) < 0 || loop_timer_arm(t, usec, 0) < 0) {
                loop_source_free(t);
                return -EIO;
        }
        r = loop_run(l);
        loop_source_free(t);
        return r;
}

/* Runs |l| in short slices until |done|(arg) holds or WAIT_USEC passed; returns done's value. */
static bool run_until(struct loop *l, bool (*done)(const void *), const void *arg) {
        uint64_t end = loop_now_usec() + WAIT_USEC;

        while (!done(arg) && loop_now_usec() < end)
                run_for(l, SLICE_USEC);
        return done(arg);
}

static bool path_is_socket(const void *path) {
        return is_socket(path);
}

/* ---- calls on our sockets, through our own client ---- */

struct call {
        struct loop *loop;
        struct grpc_client_call *handle;
        bool done;
        int err;
        enum grpc_status status;
        /* ListAndWatch: the last list seen */
        int n_lists;
        size_t n_devices, n_healthy;
        char first_id[32];
        size_t want_lists; /* cancel and quit after this many lists */
};

static void on_done(int err, enum grpc_status status, const char *message, const uint8_t *resp,
                    size_t len, void *userdata) {
        struct call *c = userdata;
        static const uint8_t empty[1];
        V1beta1__DevicePluginOptions *o;

        c->handle = NULL;
        c->done = true;
        c->err = err;
        c->status = status;
        if (err == 0 && status == GRPC_STATUS_OK) {
                o = v1beta1__device_plugin_options__unpack(NULL, len, resp ? resp : empty);
                if (!o)
                        c->err = -EBADMSG;
                v1beta1__device_plugin_options__free_unpacked(o, NULL);
        }
        loop_quit(c->loop, 0);
}

/* Calls GetDevicePluginOptions on |path|; returns 0 when it answered OK with the message. */
static int call_options(struct loop *l, const char *path) {
        struct call c = {.loop = l};
        uint64_t end = loop_now_usec() + WAIT_USEC;

        if (grpc_client_unary(l, path, NULL, OPTIONS_METHOD, NULL, 0, 2000000, on_done, &c,
                              &c.handle) < 0)
                return -EIO;
        while (!c.done && loop_now_usec() < end)
                run_for(l, SLICE_USEC);
        c.handle = grpc_client_call_cancel(c.handle);
        if (!c.done)
                return -ETIMEDOUT;
        if (c.err < 0)
                return c.err;
        return c.status == GRPC_STATUS_OK ? 0 : -EPROTO;
}

static void on_list(const uint8_t *msg, size_t len, void *userdata) {
        struct call *c = userdata;
        V1beta1__ListAndWatchResponse *resp =
                v1beta1__list_and_watch_response__unpack(NULL, len, msg);

        if (!resp) {
                c->err = -EBADMSG;
                return;
        }
        c->n_lists++;
        c->n_devices = resp->n_devices;
        c->n_healthy = 0;
        c->first_id[0] = '\0';
        for (size_t i = 0; i < resp->n_devices; i++)
                c->n_healthy += strcmp(resp->devices[i]->health, "Healthy") == 0;
        if (resp->n_devices > 0)
                snprintf(c->first_id, sizeof(c->first_id), "%s", resp->devices[0]->id);
        v1beta1__list_and_watch_response__free_unpacked(resp, NULL);
        if ((size_t) c->n_lists >= c->want_lists)
                loop_quit(c->loop, 0);
}

static void on_list_done(int err, enum grpc_status status, const char *message, const uint8_t *resp,
                         size_t len, void *userdata) {
        struct call *c = userdata;

        c->handle = NULL;
        c->done = true;
        c->err = err;
        c->status = status;
        loop_quit(c->loop, 0);
}

/* Opens ListAndWatch on |path|; the lists arrive in |c| while the loop runs. */
static int open_list(struct loop *l, const char *path, struct call *c) {
        const struct grpc_client_options opts = {.on_message = on_list};

        memset(c, 0, sizeof(*c));
        c->loop = l;
        c->want_lists = 1;
        return grpc_client_call_start(l, path, NULL, LIST_METHOD, (const uint8_t *) "", 0,
                                      WAIT_USEC, &opts, on_list_done, c, &c->handle);
}

/* Runs |l| until |c| saw |n| lists (or ended, or WAIT_USEC passed). */
static void wait_lists(struct loop *l, struct call *c, int n) {
        uint64_t end = loop_now_usec() + WAIT_USEC;

        c->want_lists = (size_t) n;
        while (c->n_lists < n && !c->done && loop_now_usec() < end)
                run_for(l, SLICE_USEC);
}

/* ---- a fake kubelet: Registration on kubelet.sock, in the same loop ---- */

struct kubelet {
        struct grpc_server *server;
        int calls;
        char resources[8][300];
        char endpoints[8][64];
        char versions[8][16];
};

static void on_register(struct grpc_call *call, const uint8_t *req, size_t len, void *userdata) {
        struct kubelet *k = userdata;
        V1beta1__RegisterRequest *r = v1beta1__register_request__unpack(NULL, len, req);
        int i = k->calls++;

        if (!r) {
                grpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "undecodable");
                return;
        }
        if (i < 8) {
                snprintf(k->resources[i], sizeof(k->resources[i]), "%s", r->resource_name);
                snprintf(k->endpoints[i], sizeof(k->endpoints[i]), "%s", r->endpoint);
                snprintf(k->versions[i], sizeof(k->versions[i]), "%s", r->version);
        }
        v1beta1__register_request__free_unpacked(r, NULL);
        grpc_call_reply(call, (const uint8_t *) "", 0); /* Empty */
}

static const struct grpc_method kubelet_methods[] = {
        {REGISTER_METHOD, false, on_register},
};

static int kubelet_start(struct loop *l, struct kubelet *k) {
        const struct grpc_server_config cfg = {
                .methods = kubelet_methods, .n_methods = 1, .userdata = k};

        return grpc_server_new(l, ksock, &cfg, &k->server);
}

/* The register calls seen so far name |resource| with |endpoint| at v1beta1. */
static bool kubelet_saw(const struct kubelet *k, const char *resource, const char *endpoint) {
        for (int i = 0; i < k->calls && i < 8; i++)
                if (strcmp(k->resources[i], resource) == 0 &&
                    strcmp(k->endpoints[i], endpoint) == 0 &&
                    strcmp(k->versions[i], "v1beta1") == 0)
                        return true;
        return false;
}

static bool kubelet_has_3_calls(const void *k) {
        return ((const struct kubelet *) k)->calls >= 3;
}

static bool kubelet_has_4_calls(const void *k) {
        return ((const struct kubelet *) k)->calls >= 4;
}

static bool kubelet_has_6_calls(const void *k) {
        return ((const struct kubelet *) k)->calls >= 6;
}

/* ---- tests ---- */

/* The kubelet dir exists: the three default sockets are bound by plugin_new, provision is not. */
static void test_plugin_serves_three_sockets_when_kubelet_dir_exists(void) {
        struct node_config cfg;
        struct loop *l = NULL;
        struct plugin *p = NULL;

        setup();
        cfg = config();
        CHECK(mkdir(kdir, 0755) == 0);
        CHECK_INT(loop_new(&l), 0);
        CHECK_INT(plugin_new(l, &cfg, &p), 0);
        CHECK(is_socket(sock_path("sgx")));
        CHECK(is_socket(sock_path("dcap")));
        CHECK(is_socket(sock_path("ias")));
        CHECK(!exists(sock_path("provision")));
        CHECK_INT(run_for(l, 50000), -ETIMEDOUT);
        CHECK(is_socket(sock_path("dcap")));
        p = plugin_free(p);
        CHECK(p == NULL);
        CHECK(!exists(sock_path("sgx")));
        CHECK(!exists(sock_path("dcap")));
        CHECK(!exists(sock_path("ias")));
        l = loop_free(l);
        teardown();
}

/* --provision-resource: a fourth socket, sgxdevplugin-provision.sock. */
static void test_plugin_provision_resource_serves_a_fourth_socket(void) {
        struct node_config cfg;
        struct loop *l = NULL;
        struct plugin *p = NULL;

        setup();
        cfg = config();
        cfg.provision_resource = true;
        CHECK(mkdir(kdir, 0755) == 0);
        CHECK_INT(loop_new(&l), 0);
        CHECK_INT(plugin_new(l, &cfg, &p), 0);
        CHECK(is_socket(sock_path("sgx")));
        CHECK(is_socket(sock_path("dcap")));
        CHECK(is_socket(sock_path("ias")));
        CHECK(is_socket(sock_path("provision")));
        CHECK_INT(call_options(l, sock_path("provision")), 0);
        p = plugin_free(p);
        CHECK(!exists(sock_path("provision")));
        l = loop_free(l);
        teardown();
}

/*
 * A kubelet dir two levels below what exists: no sockets, the loop runs; created one level at a
 * time, the sockets appear through inotify alone (the safety-net rescan is 30 s away) and answer.
 */
static void test_plugin_late_kubelet_dir_is_watched(void) {
        struct node_config cfg;
        struct loop *l = NULL;
        struct plugin *p = NULL;
        char a[160];

        setup();
        snprintf(a, sizeof(a), "%s/var", top);
        snprintf(kdir, sizeof(kdir), "%s/var/device-plugins", top);
        snprintf(ksock, sizeof(ksock), "%s/kubelet.sock", kdir);
        cfg = config();
        CHECK_INT(loop_new(&l), 0);
        CHECK_INT(plugin_new(l, &cfg, &p), 0);
        CHECK(!exists(kdir));
        CHECK_INT(run_for(l, 50000), -ETIMEDOUT);
        CHECK(!exists(sock_path("dcap")));

        CHECK(mkdir(a, 0755) == 0);
        CHECK_INT(run_for(l, 50000), -ETIMEDOUT);
        CHECK(!exists(sock_path("dcap")));
        CHECK(mkdir(kdir, 0755) == 0);
        CHECK(run_until(l, path_is_socket, sock_path("ias")));
        CHECK(is_socket(sock_path("sgx")));
        CHECK(is_socket(sock_path("dcap")));
        CHECK(!exists(sock_path("provision")));
        CHECK_INT(call_options(l, sock_path("dcap")), 0);
        p = plugin_free(p);
        CHECK(!exists(sock_path("sgx")));
        l = loop_free(l);
        teardown();
}

/*
 * Another process took our paths (a rolling update's new pod binds the same names): plugin_free
 * leaves what is not ours, whether a plain file or someone else's socket, and removes the rest.
 */
static void test_plugin_free_removes_only_its_own_sockets(void) {
        struct node_config cfg;
        struct loop *l = NULL;
        struct plugin *p = NULL;
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        int fd, other;

        setup();
        cfg = config();
        CHECK(mkdir(kdir, 0755) == 0);
        CHECK_INT(loop_new(&l), 0);
        CHECK_INT(plugin_new(l, &cfg, &p), 0);

        CHECK(unlink(sock_path("dcap")) == 0);
        fd = open(sock_path("dcap"), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        CHECK(fd >= 0);
        if (fd >= 0)
                close(fd);
        CHECK(unlink(sock_path("sgx")) == 0);
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path("sgx"));
        other = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        CHECK(other >= 0);
        CHECK(bind(other, (struct sockaddr *) &sa, sizeof(sa)) == 0);
        /* the node sees the change and, with no new kubelet, leaves the paths alone */
        CHECK_INT(run_for(l, 100000), -ETIMEDOUT);
        CHECK(!is_socket(sock_path("dcap")));

        p = plugin_free(p);
        CHECK(exists(sock_path("dcap")) && !is_socket(sock_path("dcap")));
        CHECK(is_socket(sock_path("sgx")));
        CHECK(!exists(sock_path("ias")));
        close(other);
        l = loop_free(l);
        teardown();
}

/* The ListAndWatch answer stays under the limit up to --max-pods' maximum, not far beyond. */
static void test_plugin_check_list_size(void) {
        struct node_config cfg = {.domain = "sgx.k8s.io", .max_pods = 110};

        CHECK_INT(plugin_check_list_size(&cfg), 0);
        cfg.max_pods = 1;
        CHECK_INT(plugin_check_list_size(&cfg), 0);
        cfg.max_pods = 100000; /* CLI_MAX_MAX_PODS */
        CHECK_INT(plugin_check_list_size(&cfg), 0);
        /* ~25-31 bytes a device: 200000 devices are over the 3 MiB the kubelet reads */
        cfg.max_pods = 200000;
        CHECK_INT(plugin_check_list_size(&cfg), -EMSGSIZE);
}

/* A --cpuid-file that is no CPUID recording fails plugin_new with -EINVAL, binding nothing. */
static void test_plugin_bad_cpuid_file_is_einval(void) {
        struct node_config cfg;
        struct loop *l = NULL;
        struct plugin *p = (struct plugin *) &cfg; /* must stay as it is */
        char file[192];
        FILE *f;

        setup();
        cfg = config();
        CHECK(mkdir(kdir, 0755) == 0);
        snprintf(file, sizeof(file), "%s/garbage.cpuid", top);
        f = fopen(file, "w");
        CHECK(f != NULL);
        if (f) {
                fputs("this is not a CPUID recording\n", f);
                fclose(f);
        }
        cfg.cpuid_file = file;
        CHECK_INT(loop_new(&l), 0);
        CHECK_INT(plugin_new(l, &cfg, &p), -EINVAL);
        CHECK(p == (struct plugin *) &cfg);
        CHECK(!exists(sock_path("sgx")));
        CHECK(!exists(sock_path("dcap")));

        /* a missing one is its own error, and binds nothing either */
        snprintf(file, sizeof(file), "%s/missing.cpuid", top);
        CHECK_INT(plugin_new(l, &cfg, &p), -ENOENT);
        CHECK(!exists(sock_path("sgx")));
        l = loop_free(l); /* every source was freed: loop_free would trip ASan otherwise */
        teardown();
}

/* GetDevicePluginOptions answers OK on every socket, through our own gRPC client. */
static void test_plugin_sockets_answer_options(void) {
        struct node_config cfg;
        struct loop *l = NULL;
        struct plugin *p = NULL;

        setup();
        cfg = config();
        CHECK(mkdir(kdir, 0755) == 0);
        CHECK_INT(loop_new(&l), 0);
        CHECK_INT(plugin_new(l, &cfg, &p), 0);
        CHECK_INT(call_options(l, sock_path("sgx")), 0);
        CHECK_INT(call_options(l, sock_path("dcap")), 0);
        CHECK_INT(call_options(l, sock_path("ias")), 0);
        CHECK_INT(call_options(l, sock_path("provision")), -ENOENT);
        p = plugin_free(p);
        l = loop_free(l);
        teardown();
}

/*
 * ListAndWatch: dcap (present) lists max_pods Healthy devices; ias (no /dev/isgx) lists none,
 * until an isgx device appears under --dev-root, and the open stream gets the new list.
 */
static void test_plugin_list_and_watch_follows_the_devices(void) {
        struct node_config cfg;
        struct loop *l = NULL;
        struct plugin *p = NULL;
        struct call dcap, ias;

        setup();
        cfg = config();
        cfg.max_pods = 7;
        CHECK(mkdir(kdir, 0755) == 0);
        CHECK_INT(loop_new(&l), 0);
        CHECK_INT(plugin_new(l, &cfg, &p), 0);

        CHECK_INT(open_list(l, sock_path("dcap"), &dcap), 0);
        CHECK_INT(open_list(l, sock_path("ias"), &ias), 0);
        wait_lists(l, &dcap, 1);
        wait_lists(l, &ias, 1);
        CHECK_INT(dcap.n_lists, 1);
        CHECK_INT(dcap.n_devices, 7);
        CHECK_INT(dcap.n_healthy, 7);
        CHECK_STR(dcap.first_id, "dcap-0");
        CHECK_INT(ias.n_lists, 1);
        CHECK_INT(ias.n_devices, 0);

        chr(dev, "isgx", 10, 127);
        wait_lists(l, &ias, 2);
        CHECK_INT(ias.n_lists, 2);
        CHECK_INT(ias.n_devices, 7);
        CHECK_INT(ias.n_healthy, 7);
        CHECK_STR(ias.first_id, "ias-0");
        CHECK(!ias.done);           /* the stream stays open */
        CHECK_INT(dcap.n_lists, 1); /* dcap's health did not change: nothing new sent */

        dcap.handle = grpc_client_call_cancel(dcap.handle);
        ias.handle = grpc_client_call_cancel(ias.handle);
        p = plugin_free(p);
        l = loop_free(l);
        teardown();
}

/*
 * No kubelet.sock: nothing registers, the node serves and waits. A kubelet that comes up later
 * is seen through inotify and gets one Register per resource, naming our sockets; a kubelet
 * restart (kubelet.sock removed and bound again) gets them all again.
 */
static void test_plugin_registers_when_kubelet_comes_and_again_when_it_restarts(void) {
        struct node_config cfg;
        struct loop *l = NULL;
        struct plugin *p = NULL;
        struct kubelet k = {0};

        setup();
        cfg = config();
        CHECK(mkdir(kdir, 0755) == 0);
        CHECK_INT(loop_new(&l), 0);
        CHECK_INT(plugin_new(l, &cfg, &p), 0);
        CHECK_INT(run_for(l, 300000), -ETIMEDOUT); /* backoff would have retried by now */
        CHECK(!exists(ksock));
        CHECK_INT(k.calls, 0);

        CHECK_INT(kubelet_start(l, &k), 0);
        CHECK(run_until(l, kubelet_has_3_calls, &k));
        CHECK_INT(run_for(l, 100000), -ETIMEDOUT); /* and no more */
        CHECK_INT(k.calls, 3);
        CHECK(kubelet_saw(&k, "sgx.k8s.io/sgx", "sgxdevplugin-sgx.sock"));
        CHECK(kubelet_saw(&k, "sgx.k8s.io/dcap", "sgxdevplugin-dcap.sock"));
        CHECK(kubelet_saw(&k, "sgx.k8s.io/ias", "sgxdevplugin-ias.sock"));

        k.server = grpc_server_free(k.server);
        CHECK(!exists(ksock));
        CHECK_INT(kubelet_start(l, &k), 0);
        CHECK(run_until(l, kubelet_has_6_calls, &k));
        CHECK_INT(k.calls, 6);

        p = plugin_free(p);
        k.server = grpc_server_free(k.server);
        l = loop_free(l);
        teardown();
}

/* A kubelet already up at start: plugin_new registers every resource, provision included. */
static void test_plugin_registers_with_a_kubelet_up_at_start(void) {
        struct node_config cfg;
        struct loop *l = NULL;
        struct plugin *p = NULL;
        struct kubelet k = {0};

        setup();
        cfg = config();
        cfg.provision_resource = true;
        CHECK(mkdir(kdir, 0755) == 0);
        CHECK_INT(loop_new(&l), 0);
        CHECK_INT(kubelet_start(l, &k), 0);
        CHECK_INT(plugin_new(l, &cfg, &p), 0);
        CHECK(run_until(l, kubelet_has_4_calls, &k));
        CHECK_INT(run_for(l, 100000), -ETIMEDOUT); /* and no more */
        CHECK_INT(k.calls, 4);
        CHECK(kubelet_saw(&k, "sgx.k8s.io/provision", "sgxdevplugin-provision.sock"));
        p = plugin_free(p);
        k.server = grpc_server_free(k.server);
        l = loop_free(l);
        teardown();
}

int main(void) {
        RUN(test_plugin_serves_three_sockets_when_kubelet_dir_exists);
        RUN(test_plugin_provision_resource_serves_a_fourth_socket);
        RUN(test_plugin_late_kubelet_dir_is_watched);
        RUN(test_plugin_free_removes_only_its_own_sockets);
        RUN(test_plugin_check_list_size);
        RUN(test_plugin_bad_cpuid_file_is_einval);
        RUN(test_plugin_sockets_answer_options);
        RUN(test_plugin_list_and_watch_follows_the_devices);
        RUN(test_plugin_registers_when_kubelet_comes_and_again_when_it_restarts);
        RUN(test_plugin_registers_with_a_kubelet_up_at_start);
        return unit_done();
}
