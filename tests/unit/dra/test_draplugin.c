/*
 * test_draplugin.c - the pure DRA handlers of draplugin.c, without sockets: the PluginInfo of
 * GetInfo, NotifyRegistrationStatus, the decoding of NodePrepareResources and
 * NodeUnprepareResources requests (answered by claims.c: test_claims.c), malformed input, the
 * socket paths. Then
 * the service on temp directories: both sockets bound, the registration socket only once the
 * registry directory exists, a removed socket bound again, and on free only our own unlinked.
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "claims.h"
#include "dra_health_v1.pb-c.h"
#include "dra_v1.pb-c.h"
#include "draplugin.h"
#include "log.h"
#include "loop.h"
#include "pluginregistration.pb-c.h"
#include "unit.h"

static const struct dra_config cfg = {
        .driver = "sgx.k8s.io",
        .registry_dir = "/var/lib/kubelet/plugins_registry",
        .dra_dir = "/var/lib/kubelet/plugins/sgx.k8s.io",
};

/* A NodePrepareResourcesRequest (same bytes as the unprepare request) of |n| claims. */
static uint8_t *encode_claims(const char *const (*claims)[3], size_t n, size_t *ret_len) {
        K8s__Io__Kubelet__Pkg__Apis__Dra__V1__NodePrepareResourcesRequest req =
                K8S__IO__KUBELET__PKG__APIS__DRA__V1__NODE_PREPARE_RESOURCES_REQUEST__INIT;
        K8s__Io__Kubelet__Pkg__Apis__Dra__V1__Claim c[8], *ptrs[8];
        uint8_t *buf;

        for (size_t i = 0; i < n; i++) {
                k8s__io__kubelet__pkg__apis__dra__v1__claim__init(&c[i]);
                c[i].namespace_ = (char *) claims[i][0];
                c[i].uid = (char *) claims[i][1];
                c[i].name = (char *) claims[i][2];
                ptrs[i] = &c[i];
        }
        req.n_claims = n;
        req.claims = ptrs;
        buf = malloc(
                k8s__io__kubelet__pkg__apis__dra__v1__node_prepare_resources_request__get_packed_size(
                        &req) +
                1);
        *ret_len = k8s__io__kubelet__pkg__apis__dra__v1__node_prepare_resources_request__pack(&req,
                                                                                              buf);
        return buf;
}

static void test_draplugin_info_names_driver_endpoint_and_versions(void) {
        Pluginregistration__PluginInfo *info;
        uint8_t *buf = NULL;
        size_t len = 0;

        CHECK_INT(dra_encode_info("sgx.k8s.io", "/var/lib/kubelet/plugins/sgx.k8s.io/dra.sock",
                                  &buf, &len),
                  0);
        info = pluginregistration__plugin_info__unpack(NULL, len, buf);
        CHECK(info != NULL);
        if (info) {
                CHECK_STR(info->type, "DRAPlugin");
                CHECK_STR(info->name, "sgx.k8s.io");
                CHECK_STR(info->endpoint, "/var/lib/kubelet/plugins/sgx.k8s.io/dra.sock");
                CHECK_INT(info->n_supported_versions, 3);
                if (info->n_supported_versions == 3) {
                        CHECK_STR(info->supported_versions[0], "v1.DRAPlugin");
                        CHECK_STR(info->supported_versions[1], "v1beta1.DRAPlugin");
                        CHECK_STR(info->supported_versions[2], "v1.DRAResourceHealth");
                }
                pluginregistration__plugin_info__free_unpacked(info, NULL);
        }
        free(buf);
}

static void test_draplugin_notify_gives_the_kubelets_reason(void) {
        Pluginregistration__RegistrationStatus st = PLUGINREGISTRATION__REGISTRATION_STATUS__INIT;
        uint8_t req[256], *buf = NULL;
        char reason[64], err[128];
        bool registered = true;
        size_t len, blen;

        st.plugin_registered = false;
        st.error = (char *) "version\nmismatch";
        len = pluginregistration__registration_status__pack(&st, req);
        CHECK_INT(dra_handle_notify(req, len, &registered, reason, sizeof(reason), &buf, &blen, err,
                                    sizeof(err)),
                  GRPC_STATUS_OK);
        CHECK(!registered);
        CHECK_STR(reason, "version?mismatch"); /* one printable line */
        CHECK_INT(blen, 0);
        free(buf);

        st.plugin_registered = true;
        st.error = (char *) "";
        len = pluginregistration__registration_status__pack(&st, req);
        CHECK_INT(dra_handle_notify(req, len, &registered, reason, sizeof(reason), &buf, &blen, err,
                                    sizeof(err)),
                  GRPC_STATUS_OK);
        CHECK(registered);
        CHECK_STR(reason, "");
        free(buf);
}

static void test_draplugin_malformed_requests_are_invalid_argument(void) {
        const uint8_t garbage[] = {0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f};
        struct dra_claim_ref *refs = NULL;
        uint8_t *buf = NULL;
        char reason[64], err[128];
        void *msg = NULL;
        bool registered;
        size_t blen, n;

        CHECK_INT(dra_handle_notify(garbage, sizeof(garbage), &registered, reason, sizeof(reason),
                                    &buf, &blen, err, sizeof(err)),
                  GRPC_STATUS_INVALID_ARGUMENT);
        CHECK(strstr(err, "undecodable RegistrationStatus") != NULL);
        CHECK_INT(dra_decode_claims(garbage, sizeof(garbage), "NodePrepareResourcesRequest", &refs,
                                    &n, &msg, err, sizeof(err)),
                  GRPC_STATUS_INVALID_ARGUMENT);
        CHECK(strstr(err, "undecodable NodePrepareResourcesRequest (6 bytes)") != NULL);
        CHECK(refs == NULL && msg == NULL);
}

static void test_draplugin_decodes_the_claims(void) {
        const char *const claims[][3] = {{"default", "uid-1", "a"}, {"team", "uid-2", "b"}};
        struct dra_claim_ref *refs = NULL;
        void *msg = NULL;
        size_t len, n = 0;
        char err[128];
        uint8_t *req;

        req = encode_claims(claims, 2, &len);
        CHECK_INT(dra_decode_claims(req, len, "NodeUnprepareResourcesRequest", &refs, &n, &msg, err,
                                    sizeof(err)),
                  GRPC_STATUS_OK);
        CHECK_INT(n, 2);
        if (n == 2) {
                CHECK_STR(refs[1].ns, "team");
                CHECK_STR(refs[1].uid, "uid-2");
                CHECK_STR(refs[1].name, "b");
        }
        free(refs);
        dra_claims_msg_free(msg);
        free(req);
        /* an empty request is no claims */
        CHECK_INT(
                dra_decode_claims((const uint8_t *) "", 0, "x", &refs, &n, &msg, err, sizeof(err)),
                GRPC_STATUS_OK);
        CHECK_INT(n, 0);
        free(refs);
        dra_claims_msg_free(msg);
}

static void test_draplugin_health_lists_every_device(void) {
        const struct dra_device_health devs[] = {{"dcap", true, 1700000000},
                                                 {"ias", false, 1700000050}};
        V1__NodeWatchResourcesResponse *r;
        uint8_t *buf = NULL;
        size_t len = 0;

        CHECK_INT(dra_encode_health("node-1", devs, 2, 0, &buf, &len), 0);
        r = v1__node_watch_resources_response__unpack(NULL, len, buf);
        CHECK(r != NULL && r->n_devices == 2);
        if (r && r->n_devices == 2) {
                CHECK_STR(r->devices[0]->device->pool_name, "node-1");
                CHECK_STR(r->devices[0]->device->device_name, "dcap");
                CHECK_INT(r->devices[0]->health, V1__HEALTH_STATUS__HEALTHY);
                CHECK_INT(r->devices[0]->last_updated_time, 1700000000);
                CHECK_STR(r->devices[1]->device->device_name, "ias");
                CHECK_INT(r->devices[1]->health, V1__HEALTH_STATUS__UNHEALTHY);
                CHECK(strstr(r->devices[1]->message, "vanished") != NULL);
        }
        v1__node_watch_resources_response__free_unpacked(r, NULL);
        free(buf);

        /* --dra-slots: each class as its slots, with the class's health */
        CHECK_INT(dra_encode_health("node-1", devs, 2, 3, &buf, &len), 0);
        r = v1__node_watch_resources_response__unpack(NULL, len, buf);
        CHECK(r != NULL && r->n_devices == 6);
        if (r && r->n_devices == 6) {
                CHECK_STR(r->devices[0]->device->device_name, "dcap-0");
                CHECK_STR(r->devices[2]->device->device_name, "dcap-2");
                CHECK_INT(r->devices[2]->health, V1__HEALTH_STATUS__HEALTHY);
                CHECK_STR(r->devices[5]->device->device_name, "ias-2");
                CHECK_INT(r->devices[5]->health, V1__HEALTH_STATUS__UNHEALTHY);
        }
        v1__node_watch_resources_response__free_unpacked(r, NULL);
        free(buf);
}

static void test_draplugin_socket_paths_fit_sun_path(void) {
        char reg[PATH_MAX], dra[PATH_MAX], longdir[120];
        struct dra_config c = cfg;

        CHECK_INT(dra_socket_paths(&c, reg, dra, sizeof(reg)), 0);
        CHECK_STR(reg, "/var/lib/kubelet/plugins_registry/sgx.k8s.io-reg.sock");
        CHECK_STR(dra, "/var/lib/kubelet/plugins/sgx.k8s.io/dra.sock");
        memset(longdir, 'd', sizeof(longdir) - 1);
        longdir[0] = '/';
        longdir[sizeof(longdir) - 1] = '\0';
        c.dra_dir = longdir;
        CHECK_INT(dra_socket_paths(&c, reg, dra, sizeof(reg)), -ENAMETOOLONG);
}

/* A unix socket bound at |path| (its stat in *st), as another process would hold it. */
static int bound_socket(const char *path, struct stat *st) {
        struct sockaddr_un a = {.sun_family = AF_UNIX};
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

        if (strlen(path) >= sizeof(a.sun_path)) {
                if (fd >= 0)
                        close(fd);
                return -1;
        }
        memcpy(a.sun_path, path, strlen(path) + 1);
        if (fd < 0 || bind(fd, (struct sockaddr *) &a, sizeof(a)) < 0 || stat(path, st) < 0) {
                if (fd >= 0)
                        close(fd);
                return -1;
        }
        return fd;
}

static bool same_inode(const char *path, const struct stat *want) {
        struct stat st;
        return stat(path, &st) == 0 && st.st_dev == want->st_dev && st.st_ino == want->st_ino;
}

static bool is_sock(const char *path) {
        struct stat st;
        return stat(path, &st) == 0 && S_ISSOCK(st.st_mode);
}

static void test_draplugin_service_binds_both_and_unlinks_only_ours(void) {
        char dir[] = "/tmp/test-dra-XXXXXX", reg[256], dradir[256], path[PATH_MAX];
        struct dra_plugin *d = NULL;
        struct loop *l = NULL;
        struct stat stranger_st;
        struct dra_config c;
        int stranger;

        CHECK(mkdtemp(dir) != NULL);
        snprintf(reg, sizeof(reg), "%s/reg", dir);
        snprintf(dradir, sizeof(dradir), "%s/plugins/sgx.k8s.io", dir);
        c = (struct dra_config){.driver = "sgx.k8s.io", .registry_dir = reg, .dra_dir = dradir};
        CHECK_INT(loop_new(&l), 0);

        /* no registry dir yet: dra.sock (and its dir) only */
        CHECK_INT(dra_plugin_new(l, &c, &d), 0);
        CHECK(is_sock(dra_plugin_dra_path(d)));
        CHECK(!is_sock(dra_plugin_reg_path(d)));
        CHECK(!dra_plugin_serving(d));

        /* the kubelet makes it: the registration socket follows */
        CHECK_INT(mkdir(reg, 0755), 0);
        dra_plugin_resync(d);
        CHECK(is_sock(dra_plugin_reg_path(d)));
        CHECK(dra_plugin_serving(d));

        /* removed: bound again */
        CHECK_INT(unlink(dra_plugin_reg_path(d)), 0);
        dra_plugin_resync(d);
        CHECK(is_sock(dra_plugin_reg_path(d)));

        /* replaced by a stranger's socket (a second daemon): left alone, not unlinked on free */
        snprintf(path, sizeof(path), "%s.new", dra_plugin_dra_path(d));
        stranger = bound_socket(path, &stranger_st);
        CHECK(stranger >= 0);
        CHECK_INT(rename(path, dra_plugin_dra_path(d)), 0);
        dra_plugin_resync(d);
        CHECK(same_inode(dra_plugin_dra_path(d), &stranger_st));
        snprintf(path, sizeof(path), "%s", dra_plugin_dra_path(d));
        d = dra_plugin_free(d);
        CHECK(d == NULL);
        CHECK(same_inode(path, &stranger_st));
        if (stranger >= 0)
                close(stranger);
        snprintf(path, sizeof(path), "%s/sgx.k8s.io-reg.sock", reg);
        CHECK(access(path, F_OK) != 0); /* ours: unlinked */

        l = loop_free(l);
        snprintf(path, sizeof(path), "rm -rf %s", dir);
        CHECK_INT(system(path), 0);
}

int main(void) {
        log_setup(LOG_LEVEL_ERROR, LOG_FORMAT_TEXT);
        RUN(test_draplugin_info_names_driver_endpoint_and_versions);
        RUN(test_draplugin_notify_gives_the_kubelets_reason);
        RUN(test_draplugin_malformed_requests_are_invalid_argument);
        RUN(test_draplugin_decodes_the_claims);
        RUN(test_draplugin_health_lists_every_device);
        RUN(test_draplugin_socket_paths_fit_sun_path);
        RUN(test_draplugin_service_binds_both_and_unlinks_only_ours);
        return unit_done();
}
