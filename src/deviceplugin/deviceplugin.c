/*
 * deviceplugin.c - the kubelet's v1beta1 DevicePlugin service for one resource.
 *
 * Owns: device IDs ("<kind>-<n>") and their validation, the ListAndWatch device list (encoded by
 * hand, once per health, so 100,000 slots cost one buffer), the Allocate / GetPreferredAllocation /
 * PreStartContainer answers, and the service that serves them on one socket and keeps the open
 * ListAndWatch streams. Leaves to others: finding devices (discovery.c), the resource kinds and what a
 * container gets for each (sgx/resources.c, sgx/edits.c: encoded here), HTTP/2 and gRPC framing
 * (grpc_server.c), registering with the kubelet and reacting to ended streams (plugin.c).
 *
 * The handlers are pure: (config, node state, request bytes) -> response bytes or a gRPC status.
 * The service half ties them to a grpc_server and logs.
 */
#include "deviceplugin.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <protobuf-c/protobuf-c.h>

#include "api.pb-c.h"
#include "cdi.h"
#include "discovery.h"
#include "edits.h"
#include "grpc_server.h"
#include "log.h"
#include "loop.h"
#include "text.h"

#define HEALTHY "Healthy"
#define UNHEALTHY "Unhealthy"

#define RESOURCE_MAX SGX_RESOURCE_NAME_SIZE

/* ---- names ---- */

const char *dp_health_name(enum dp_health h) {
        switch (h) {
        case DP_HEALTH_NONE:
                return "None";
        case DP_HEALTH_HEALTHY:
                return HEALTHY;
        case DP_HEALTH_UNHEALTHY:
                return UNHEALTHY;
        }
        return "unknown";
}

/* ---- small helpers ---- */

/* The resource name for messages; falls back to the kind when the domain is absurdly long. */
static void resource_or_kind(const struct dp_config *cfg, enum sgx_kind k, char *buf, size_t size) {
        if (sgx_resource_name(cfg->domain, k, buf, size) < 0)
                (void) snprintf(buf, size, "%s", sgx_kind_name(k));
}

/* Copies an untrusted ID for a quoted message: printable ASCII only, at most 40 characters. */
static void sanitize(const char *s, char *buf, size_t size) {
        size_t n = strnlen(s, 41), w;

        w = text_printable(s, n > 40 ? 40 : n, buf, size > 4 ? size - 3 : size);
        if (n > 40 && size > 4)
                memcpy(buf + w, "...", 4);
        for (char *c = buf; *c; c++)
                if (*c == '"')
                        *c = '?';
}

/* A response buffer: malloc(0) may be NULL, so an empty message still gets one byte. */
static uint8_t *out_alloc(size_t len) {
        return malloc(len ? len : 1);
}

/* ---- device IDs ---- */

/* Validates one ID; on failure writes a message naming the ID and the resource. */
static bool check_id(const struct dp_config *cfg, enum sgx_kind k, const char *id, unsigned *ret_n,
                     char *err, size_t errsz) {
        char res[RESOURCE_MAX], shown[48];

        if (sgx_parse_id(k, cfg->slots, id, ret_n))
                return true;

        resource_or_kind(cfg, k, res, sizeof(res));
        sanitize(id, shown, sizeof(shown));
        if (cfg->slots == 0)
                errline(err, errsz, "unknown device ID \"%s\" for resource %s (it has no devices)",
                        shown, res);
        else
                errline(err, errsz,
                        "unknown device ID \"%s\" for resource %s (its IDs are %s-0..%s-%u)", shown,
                        res, sgx_kind_name(k), sgx_kind_name(k), cfg->slots - 1);
        return false;
}

static bool check_ids(const struct dp_config *cfg, enum sgx_kind k, char *const *ids, size_t n,
                      char *err, size_t errsz) {
        for (size_t i = 0; i < n; i++)
                if (!check_id(cfg, k, ids[i], NULL, err, errsz))
                        return false;
        return true;
}

/* ---- ListAndWatch and options ---- */

/* Writes "<name>-<n>" and a NUL; snprintf would cost most of the time for 10,000 IDs. */
static void format_id(char *out, const char *name, size_t name_len, size_t n) {
        char digits[24];
        size_t d = 0;

        do {
                digits[d++] = (char) ('0' + n % 10);
                n /= 10;
        } while (n > 0);
        memcpy(out, name, name_len);
        out += name_len;
        *out++ = '-';
        while (d > 0)
                *out++ = digits[--d];
        *out = '\0';
}

/* The bytes of a protobuf varint holding |v|. */
static size_t varint_size(uint64_t v) {
        size_t n = 1;

        while (v >= 0x80) {
                v >>= 7;
                n++;
        }
        return n;
}

/*
 * One repeated Device {ID = 1, health = 2} field of the response: its tag, its length and the
 * message, as protobuf-c packs it (no topology: see dp_encode_list).
 */
static size_t device_field_size(size_t id_len) {
        size_t msg = 1 + varint_size(id_len) + id_len + 1 + varint_size(sizeof(UNHEALTHY) - 1) +
                     sizeof(UNHEALTHY) - 1;

        return 1 + varint_size(msg) + msg;
}

size_t dp_list_size(enum sgx_kind k, unsigned slots) {
        size_t name_len = strlen(sgx_kind_name(k)), total = 0;
        uint64_t lo = 0, hi = 10;

        /* the IDs "<kind>-<n>" by number of digits: 0..9, 10..99, ... */
        for (size_t digits = 1; lo < slots; digits++, lo = hi, hi *= 10) {
                uint64_t n = (hi < slots ? hi : slots) - lo;

                total += (size_t) n * device_field_size(name_len + 1 + digits);
        }
        return total;
}

unsigned dp_slots_that_fit(enum sgx_kind k, unsigned want) {
        unsigned lo = 0, hi = want;

        if (dp_list_size(k, want) < DP_LIST_LIMIT)
                return want;
        /* the largest n with dp_list_size(n) < limit: lo fits, hi does not */
        while (hi - lo > 1) {
                unsigned mid = lo + (hi - lo) / 2;

                if (dp_list_size(k, mid) < DP_LIST_LIMIT)
                        lo = mid;
                else
                        hi = mid;
        }
        return lo;
}

/*
 * The ListAndWatchResponse is built with protobuf-c from three allocations whatever the slot count is:
 * the Device structs, the pointer array and one buffer holding every ID string. Callers cache
 * the result per health, so this runs once per health change, never per stream.
 */
int dp_encode_list(const struct dp_config *cfg, enum sgx_kind k, enum dp_health h, uint8_t **ret_buf,
                   size_t *ret_len) {
        V1beta1__ListAndWatchResponse resp = V1BETA1__LIST_AND_WATCH_RESPONSE__INIT;
        const char *name = sgx_kind_name(k);
        char *health = (char *) (h == DP_HEALTH_HEALTHY ? HEALTHY : UNHEALTHY);
        size_t n = h == DP_HEALTH_NONE ? 0 : cfg->slots;
        size_t name_len = strlen(name);
        size_t id_size = name_len + 12; /* "-" + up to 10 digits + NUL */
        V1beta1__Device *devs = NULL, **ptrs = NULL;
        char *ids = NULL;
        uint8_t *buf = NULL;
        int r = -ENOMEM;

        if (n > 0) {
                devs = calloc(n, sizeof(*devs));
                ptrs = calloc(n, sizeof(*ptrs));
                ids = malloc(n * id_size);
                if (!devs || !ptrs || !ids)
                        goto out_free;
        }
        for (size_t i = 0; i < n; i++) {
                char *id = ids + i * id_size;

                format_id(id, name, name_len, i);
                v1beta1__device__init(&devs[i]);
                devs[i].id = id;
                devs[i].health = health;
                ptrs[i] = &devs[i];
        }
        resp.n_devices = n;
        resp.devices = ptrs;

        size_t len = v1beta1__list_and_watch_response__get_packed_size(&resp);
        buf = out_alloc(len);
        if (!buf)
                goto out_free;
        *ret_len = v1beta1__list_and_watch_response__pack(&resp, buf);
        *ret_buf = buf;
        r = 0;

out_free:
        free(ids);
        free(ptrs);
        free(devs);
        return r;
}

int dp_encode_options(uint8_t **ret_buf, size_t *ret_len) {
        V1beta1__DevicePluginOptions opts = V1BETA1__DEVICE_PLUGIN_OPTIONS__INIT;
        uint8_t *buf;
        size_t len;

        opts.pre_start_required = false;
        opts.get_preferred_allocation_available = false;

        len = v1beta1__device_plugin_options__get_packed_size(&opts);
        buf = out_alloc(len);
        if (!buf)
                return -ENOMEM;
        *ret_len = v1beta1__device_plugin_options__pack(&opts, buf);
        *ret_buf = buf;
        return 0;
}

/* ---- Allocate ---- */

/* What an accepted Allocate did, for the service's log line. */
struct alloc_info {
        struct sgx_edits edits;
        char cdi_name[SGX_CDI_QUALIFIED_SIZE]; /* "D/sgx=dcap" with --cdi, else "" */
        size_t n_ids;
        size_t n_containers;
};

/* The messages of one ContainerAllocateResponse, on the caller's stack. */
struct alloc_msgs {
        V1beta1__DeviceSpec specs[SGX_EDIT_MAX_SPECS], *spec_ptrs[SGX_EDIT_MAX_SPECS];
        V1beta1__Mount mounts[SGX_EDIT_MAX_MOUNTS], *mount_ptrs[SGX_EDIT_MAX_MOUNTS];
        V1beta1__ContainerAllocateResponse__EnvsEntry envs[SGX_EDIT_MAX_ENV],
                *env_ptrs[SGX_EDIT_MAX_ENV];
        V1beta1__CDIDevice cdi, *cdi_ptrs[1];
};

/* The edits become DeviceSpecs, Mounts and Envs in |cresp|, borrowing |e| and |m|. */
static void encode_edits(const struct sgx_edits *e, struct alloc_msgs *m,
                         V1beta1__ContainerAllocateResponse *cresp) {
        size_t n_specs = 0;

        for (size_t i = 0; i < e->n_devices; i++) {
                const struct sgx_device_edit *dev = &e->devices[i];

                for (size_t j = 0; j < dev->n_container_paths; j++) {
                        V1beta1__DeviceSpec *s = &m->specs[n_specs];

                        v1beta1__device_spec__init(s);
                        s->container_path = (char *) dev->container_paths[j];
                        s->host_path = (char *) dev->host_path;
                        s->permissions = (char *) dev->permissions;
                        m->spec_ptrs[n_specs++] = s;
                }
        }
        cresp->n_devices = n_specs;
        cresp->devices = m->spec_ptrs;
        for (size_t i = 0; i < e->n_mounts; i++) {
                const struct sgx_mount_edit *mnt = &e->mounts[i];

                v1beta1__mount__init(&m->mounts[i]);
                m->mounts[i].container_path = (char *) mnt->container_path;
                m->mounts[i].host_path = (char *) mnt->host_path;
                m->mounts[i].read_only = mnt->read_only;
                m->mount_ptrs[i] = &m->mounts[i];
        }
        cresp->n_mounts = e->n_mounts;
        cresp->mounts = cresp->n_mounts ? m->mount_ptrs : NULL;
        for (size_t i = 0; i < e->n_env; i++) {
                v1beta1__container_allocate_response__envs_entry__init(&m->envs[i]);
                m->envs[i].key = (char *) e->env[i].name;
                m->envs[i].value = (char *) e->env[i].value;
                m->env_ptrs[i] = &m->envs[i];
        }
        cresp->n_envs = e->n_env;
        cresp->envs = cresp->n_envs ? m->env_ptrs : NULL;
}

/*
 * With --cdi: one CDI device, "D/sgx=<device>" (|name|, borrowed), and nothing else: the spec the
 * node wrote holds the device nodes, mounts and environment, and the runtime applies it.
 */
static void encode_cdi(const char *name, struct alloc_msgs *m,
                       V1beta1__ContainerAllocateResponse *cresp) {
        v1beta1__cdidevice__init(&m->cdi);
        m->cdi.name = (char *) name;
        m->cdi_ptrs[0] = &m->cdi;
        cresp->n_cdi_devices = 1;
        cresp->cdi_devices = m->cdi_ptrs;
}

/*
 * Every container of one Allocate gets the same devices (the slots are identical), so one
 * ContainerAllocateResponse on the stack serves them all: the only heap memory is the pointer
 * array and the answer.
 */
static enum grpc_status allocate(const struct dp_config *cfg, enum sgx_kind k,
                                 const struct discovery *d, const uint8_t *req, size_t len,
                                 uint8_t **ret_buf, size_t *ret_len, struct alloc_info *ret_info,
                                 char *err, size_t errsz) {
        V1beta1__AllocateResponse resp = V1BETA1__ALLOCATE_RESPONSE__INIT;
        V1beta1__ContainerAllocateResponse cresp = V1BETA1__CONTAINER_ALLOCATE_RESPONSE__INIT;
        struct alloc_msgs msgs;
        V1beta1__ContainerAllocateResponse **cresps = NULL;
        V1beta1__AllocateRequest *r;
        enum grpc_status status;
        struct alloc_info info = {.n_ids = 0};
        char res[RESOURCE_MAX];
        size_t packed;
        uint8_t *buf;

        r = v1beta1__allocate_request__unpack(NULL, len, req);
        if (!r) {
                errline(err, errsz, "undecodable AllocateRequest (%zu bytes)", len);
                return GRPC_STATUS_INVALID_ARGUMENT;
        }

        if (r->n_container_requests == 0) {
                errline(err, errsz, "AllocateRequest has no container requests");
                status = GRPC_STATUS_INVALID_ARGUMENT;
                goto out_free_request;
        }
        for (size_t i = 0; i < r->n_container_requests; i++) {
                const V1beta1__ContainerAllocateRequest *c = r->container_requests[i];

                if (c->n_devices_ids == 0) {
                        errline(err, errsz, "container request %zu lists no device IDs", i);
                        status = GRPC_STATUS_INVALID_ARGUMENT;
                        goto out_free_request;
                }
                if (!check_ids(cfg, k, c->devices_ids, c->n_devices_ids, err, errsz)) {
                        status = GRPC_STATUS_INVALID_ARGUMENT;
                        goto out_free_request;
                }
                info.n_ids += c->n_devices_ids;
        }
        info.n_containers = r->n_container_requests;

        if (sgx_edits_for(k, &cfg->edits, d, &info.edits) < 0) {
                resource_or_kind(cfg, k, res, sizeof(res));
                errline(err, errsz, "no SGX device present on this node for resource %s", res);
                status = GRPC_STATUS_FAILED_PRECONDITION;
                goto out_free_request;
        }

        /* the edits are data; here they become the v1beta1 messages, or the spec's name */
        if (cfg->cdi) {
                if (sgx_cdi_qualified_name(cfg->domain, k, &cfg->edits, d, info.cdi_name,
                                           sizeof(info.cdi_name)) < 0) {
                        resource_or_kind(cfg, k, res, sizeof(res));
                        errline(err, errsz, "no CDI device name for resource %s", res);
                        status = GRPC_STATUS_INTERNAL;
                        goto out_free_request;
                }
                encode_cdi(info.cdi_name, &msgs, &cresp);
        } else {
                encode_edits(&info.edits, &msgs, &cresp);
        }

        cresps = calloc(r->n_container_requests, sizeof(*cresps));
        if (!cresps)
                goto out_oom;
        for (size_t i = 0; i < r->n_container_requests; i++)
                cresps[i] = &cresp;
        resp.n_container_responses = r->n_container_requests;
        resp.container_responses = cresps;

        packed = v1beta1__allocate_response__get_packed_size(&resp);
        buf = out_alloc(packed);
        if (!buf)
                goto out_oom;
        *ret_len = v1beta1__allocate_response__pack(&resp, buf);
        *ret_buf = buf;
        if (ret_info)
                *ret_info = info;
        status = GRPC_STATUS_OK;
        goto out_free_responses;

out_oom:
        errline(err, errsz, "out of memory");
        status = GRPC_STATUS_INTERNAL;
out_free_responses:
        free(cresps);
out_free_request:
        v1beta1__allocate_request__free_unpacked(r, NULL);
        return status;
}

enum grpc_status dp_handle_allocate(const struct dp_config *cfg, enum sgx_kind k,
                                    const struct discovery *d, const uint8_t *req, size_t len,
                                    uint8_t **ret_buf, size_t *ret_len, char *err, size_t errsz) {
        return allocate(cfg, k, d, req, len, ret_buf, ret_len, NULL, err, errsz);
}

/* ---- GetPreferredAllocation ---- */

static bool bit_test_set(uint8_t *bits, unsigned n) {
        bool was = bits[n / 8] & (1u << (n % 8));

        bits[n / 8] |= (uint8_t) (1u << (n % 8));
        return was;
}

static bool check_preferred(const struct dp_config *cfg, enum sgx_kind k,
                            const V1beta1__ContainerPreferredAllocationRequest *c, size_t i,
                            char *err, size_t errsz) {
        if (!check_ids(cfg, k, c->available_deviceids, c->n_available_deviceids, err, errsz))
                return false;
        if (!check_ids(cfg, k, c->must_include_deviceids, c->n_must_include_deviceids, err, errsz))
                return false;
        if (c->allocation_size < 0 || (size_t) c->allocation_size < c->n_must_include_deviceids) {
                errline(err, errsz,
                        "container request %zu: allocation_size %d is less than the %zu must-include device IDs",
                        i, (int) c->allocation_size, c->n_must_include_deviceids);
                return false;
        }
        if ((size_t) c->allocation_size > c->n_available_deviceids) {
                errline(err, errsz,
                        "container request %zu: allocation_size %d exceeds the %zu available device IDs",
                        i, (int) c->allocation_size, c->n_available_deviceids);
                return false;
        }
        return true;
}

/*
 * Must-include IDs first (in order, deduplicated), then available ones in order, skipping those
 * already chosen, up to allocation_size. |bits| (one bit per slot) is all zero on entry and
 * cleared again before returning. The answer borrows the request's strings.
 */
static void choose_preferred(const struct dp_config *cfg, enum sgx_kind k,
                             const V1beta1__ContainerPreferredAllocationRequest *c, uint8_t *bits,
                             char **ids, size_t *ret_n) {
        size_t want = (size_t) c->allocation_size, n = 0;
        unsigned slot;

        for (size_t i = 0; i < c->n_must_include_deviceids && n < want; i++) {
                if (!sgx_parse_id(k, cfg->slots, c->must_include_deviceids[i], &slot))
                        continue;
                if (!bit_test_set(bits, slot))
                        ids[n++] = c->must_include_deviceids[i];
        }
        for (size_t i = 0; i < c->n_available_deviceids && n < want; i++) {
                if (!sgx_parse_id(k, cfg->slots, c->available_deviceids[i], &slot))
                        continue;
                if (!bit_test_set(bits, slot))
                        ids[n++] = c->available_deviceids[i];
        }
        for (size_t i = 0; i < n; i++)
                if (sgx_parse_id(k, cfg->slots, ids[i], &slot))
                        bits[slot / 8] = 0;
        *ret_n = n;
}

enum grpc_status dp_handle_preferred(const struct dp_config *cfg, enum sgx_kind k,
                                     const uint8_t *req, size_t len, uint8_t **ret_buf,
                                     size_t *ret_len, char *err, size_t errsz) {
        V1beta1__PreferredAllocationResponse resp = V1BETA1__PREFERRED_ALLOCATION_RESPONSE__INIT;
        V1beta1__ContainerPreferredAllocationResponse *cresps = NULL, **cresp_ptrs = NULL;
        V1beta1__PreferredAllocationRequest *r;
        enum grpc_status status;
        size_t n, total = 0, used = 0, packed;
        char **ids = NULL;
        uint8_t *bits = NULL, *buf;

        r = v1beta1__preferred_allocation_request__unpack(NULL, len, req);
        if (!r) {
                errline(err, errsz, "undecodable PreferredAllocationRequest (%zu bytes)", len);
                return GRPC_STATUS_INVALID_ARGUMENT;
        }
        n = r->n_container_requests;
        if (n == 0) {
                errline(err, errsz, "PreferredAllocationRequest has no container requests");
                status = GRPC_STATUS_INVALID_ARGUMENT;
                goto out_free_request;
        }
        for (size_t i = 0; i < n; i++) {
                if (!check_preferred(cfg, k, r->container_requests[i], i, err, errsz)) {
                        status = GRPC_STATUS_INVALID_ARGUMENT;
                        goto out_free_request;
                }
                /* bounded by the available IDs the request carried */
                total += (size_t) r->container_requests[i]->allocation_size;
        }

        cresps = calloc(n, sizeof(*cresps));
        cresp_ptrs = calloc(n, sizeof(*cresp_ptrs));
        ids = calloc(total ? total : 1, sizeof(*ids));
        bits = calloc(cfg->slots / 8 + 1, 1);
        if (!cresps || !cresp_ptrs || !ids || !bits) {
                errline(err, errsz, "out of memory");
                status = GRPC_STATUS_INTERNAL;
                goto out_free_answer;
        }

        for (size_t i = 0; i < n; i++) {
                size_t chosen;

                v1beta1__container_preferred_allocation_response__init(&cresps[i]);
                choose_preferred(cfg, k, r->container_requests[i], bits, ids + used, &chosen);
                cresps[i].n_deviceids = chosen;
                cresps[i].deviceids = ids + used;
                cresp_ptrs[i] = &cresps[i];
                used += chosen;
        }
        resp.n_container_responses = n;
        resp.container_responses = cresp_ptrs;

        packed = v1beta1__preferred_allocation_response__get_packed_size(&resp);
        buf = out_alloc(packed);
        if (!buf) {
                errline(err, errsz, "out of memory");
                status = GRPC_STATUS_INTERNAL;
                goto out_free_answer;
        }
        *ret_len = v1beta1__preferred_allocation_response__pack(&resp, buf);
        *ret_buf = buf;
        status = GRPC_STATUS_OK;

out_free_answer:
        free(bits);
        free(ids);
        free(cresp_ptrs);
        free(cresps);
out_free_request:
        v1beta1__preferred_allocation_request__free_unpacked(r, NULL);
        return status;
}

/* ---- PreStartContainer ---- */

enum grpc_status dp_handle_prestart(const struct dp_config *cfg, enum sgx_kind k, const uint8_t *req,
                                    size_t len, uint8_t **ret_buf, size_t *ret_len, char *err,
                                    size_t errsz) {
        V1beta1__PreStartContainerResponse resp = V1BETA1__PRE_START_CONTAINER_RESPONSE__INIT;
        V1beta1__PreStartContainerRequest *r;
        enum grpc_status status = GRPC_STATUS_OK;
        uint8_t *buf;
        size_t packed;

        r = v1beta1__pre_start_container_request__unpack(NULL, len, req);
        if (!r) {
                errline(err, errsz, "undecodable PreStartContainerRequest (%zu bytes)", len);
                return GRPC_STATUS_INVALID_ARGUMENT;
        }
        if (!check_ids(cfg, k, r->devices_ids, r->n_devices_ids, err, errsz)) {
                status = GRPC_STATUS_INVALID_ARGUMENT;
                goto out_free_request;
        }

        packed = v1beta1__pre_start_container_response__get_packed_size(&resp);
        buf = out_alloc(packed);
        if (!buf) {
                errline(err, errsz, "out of memory");
                status = GRPC_STATUS_INTERNAL;
                goto out_free_request;
        }
        *ret_len = v1beta1__pre_start_container_response__pack(&resp, buf);
        *ret_buf = buf;

out_free_request:
        v1beta1__pre_start_container_request__free_unpacked(r, NULL);
        return status;
}

/* ---- the service ---- */

/* One open ListAndWatch stream. */
struct stream {
        struct grpc_call *call;
        uint64_t sent_gen;    /* the broadcast generation this stream last got */
        uint64_t opened_usec; /* loop_now_usec() when the kubelet opened it */
};

/* One encoded list, cached per health. */
struct list_cache {
        uint8_t *buf;
        size_t len;
        bool valid;
};

struct dp_service {
        struct loop *loop;    /* borrowed */
        struct dp_config cfg; /* copied; its strings borrowed */
        enum sgx_kind kind;
        char resource[RESOURCE_MAX]; /* "sgx.k8s.io/dcap" */
        char *socket_path;           /* owned */
        const char *endpoint;        /* basename, points into socket_path */

        struct discovery disc; /* node state, copied */
        enum dp_health health;
        bool seen; /* the class was present at some point since start */

        struct grpc_server *server; /* NULL after a failed relisten */

        struct stream *streams; /* open ListAndWatch streams */
        size_t n_streams, n_alloc;
        uint64_t gen; /* broadcast generation */

        struct list_cache lists[3]; /* indexed by enum dp_health */
        bool list_too_big_logged;

        dp_stream_ended_fn on_stream_ended;
        void *userdata;
};

static void on_get_options(struct grpc_call *call, const uint8_t *req, size_t len, void *userdata);
static void on_list_and_watch(struct grpc_call *call, const uint8_t *req, size_t len,
                              void *userdata);
static void on_get_preferred(struct grpc_call *call, const uint8_t *req, size_t len,
                             void *userdata);
static void on_allocate(struct grpc_call *call, const uint8_t *req, size_t len, void *userdata);
static void on_prestart(struct grpc_call *call, const uint8_t *req, size_t len, void *userdata);

static const struct grpc_method methods[] = {
        {"/v1beta1.DevicePlugin/GetDevicePluginOptions", false, on_get_options},
        {"/v1beta1.DevicePlugin/ListAndWatch", true, on_list_and_watch},
        {"/v1beta1.DevicePlugin/GetPreferredAllocation", false, on_get_preferred},
        {"/v1beta1.DevicePlugin/Allocate", false, on_allocate},
        {"/v1beta1.DevicePlugin/PreStartContainer", false, on_prestart},
};

static enum dp_health compute_health(struct dp_service *s) {
        if (sgx_kind_present(s->kind, &s->disc)) {
                s->seen = true;
                return DP_HEALTH_HEALTHY;
        }
        return s->seen ? DP_HEALTH_UNHEALTHY : DP_HEALTH_NONE;
}

/* The encoded list for |h|, encoded on first use. NULL on ENOMEM or when over DP_LIST_LIMIT. */
static const struct list_cache *get_list(struct dp_service *s, enum dp_health h) {
        struct list_cache *c = &s->lists[h];
        int r;

        if (!c->valid) {
                r = dp_encode_list(&s->cfg, s->kind, h, &c->buf, &c->len);
                if (r < 0) {
                        log_error(s->resource, s->socket_path,
                                  "cannot encode the device list: %s, not sending it",
                                  strerror(-r));
                        return NULL;
                }
                c->valid = true;
        }
        if (c->len > DP_LIST_LIMIT) {
                if (!s->list_too_big_logged)
                        log_error(s->resource, s->socket_path,
                                  "device list of %u slots is %zu bytes, over the %u byte limit, not sending it",
                                  s->cfg.slots, c->len, DP_LIST_LIMIT);
                s->list_too_big_logged = true;
                return NULL;
        }
        return c;
}

static void send_list(struct dp_service *s, struct grpc_call *call) {
        const struct list_cache *c = get_list(s, s->health);
        int r;

        if (!c)
                return;
        /* Each list is the whole state: one a slow reader has not begun to get is dropped. */
        r = grpc_call_send_latest(call, c->buf, c->len);
        if (r < 0 && r != -EPIPE)
                log_error(s->resource, s->socket_path,
                          "cannot send the device list: %s, keeping the stream", strerror(-r));
}

/*
 * Sends the current list to every open stream. Sending may, in principle, end calls (and so
 * change the set) under us: each stream is marked with the generation it got, and the scan
 * restarts after every send, so no stream is skipped or sent twice.
 */
static size_t broadcast(struct dp_service *s) {
        size_t sent = 0;
        bool again = true;

        s->gen++;
        while (again) {
                again = false;
                for (size_t i = 0; i < s->n_streams; i++) {
                        if (s->streams[i].sent_gen == s->gen)
                                continue;
                        s->streams[i].sent_gen = s->gen;
                        send_list(s, s->streams[i].call);
                        sent++;
                        again = true;
                        break;
                }
        }
        return sent;
}

static int add_stream(struct dp_service *s, struct grpc_call *call) {
        if (s->n_streams == s->n_alloc) {
                size_t n = s->n_alloc ? s->n_alloc * 2 : 4;
                struct stream *a = realloc(s->streams, n * sizeof(*a));

                if (!a)
                        return -ENOMEM;
                s->streams = a;
                s->n_alloc = n;
        }
        s->streams[s->n_streams++] =
                (struct stream){.call = call, .sent_gen = s->gen, .opened_usec = loop_now_usec()};
        return 0;
}

/* Removes |call|'s stream; returns true and sets *ret_opened_usec if it was one. */
static bool remove_stream(struct dp_service *s, struct grpc_call *call, uint64_t *ret_opened_usec) {
        for (size_t i = 0; i < s->n_streams; i++) {
                if (s->streams[i].call != call)
                        continue;
                *ret_opened_usec = s->streams[i].opened_usec;
                memmove(&s->streams[i], &s->streams[i + 1],
                        (s->n_streams - i - 1) * sizeof(*s->streams));
                s->n_streams--;
                return true;
        }
        return false;
}

/* Logs a health change once; |n_notified| is the number of streams sent the new list. */
static void log_health(struct dp_service *s, enum dp_health old, size_t n_notified) {
        struct sgx_edits l;
        char paths[2 * DISCOVERY_PATH_MAX + 8], streams[48] = "";

        if (old != DP_HEALTH_NONE || n_notified > 0)
                snprintf(streams, sizeof(streams), ", %zu stream(s) notified", n_notified);
        switch (s->health) {
        case DP_HEALTH_HEALTHY:
                (void) sgx_edits_for(s->kind, &s->cfg.edits, &s->disc, &l);
                sgx_edits_host_paths(&l, paths, sizeof(paths));
                log_info(s->resource, s->socket_path, "devices healthy: %s, %u slots Healthy%s%s",
                         paths, s->cfg.slots, old == DP_HEALTH_UNHEALTHY ? " again" : "",
                         streams);
                break;
        case DP_HEALTH_UNHEALTHY:
                log_warn(s->resource, s->socket_path, "device vanished, %u slots Unhealthy%s",
                         s->cfg.slots, streams);
                break;
        case DP_HEALTH_NONE:
                log_info(s->resource, s->socket_path, "no device present, advertising none");
                break;
        }
}

/* Logs a rejected request and answers it. */
static void reject(struct dp_service *s, struct grpc_call *call, const char *method,
                   enum grpc_status status, const char *err) {
        log_warn(s->resource, s->socket_path, "%s rejected: %s (%s)", method, err,
                 grpc_status_name(status));
        (void) grpc_call_fail(call, status, err);
}

/* Answers a unary call with |buf| (freed here). */
static void reply(struct dp_service *s, struct grpc_call *call, const char *method, uint8_t *buf,
                  size_t len) {
        int r = grpc_call_reply(call, buf, len);

        if (r < 0 && r != -EPIPE)
                log_warn(s->resource, s->socket_path, "%s: cannot send the answer: %s", method,
                         strerror(-r));
        free(buf);
}

static void on_get_options(struct grpc_call *call, const uint8_t *req, size_t len, void *userdata) {
        struct dp_service *s = userdata;
        uint8_t *buf;
        size_t blen;

        if (dp_encode_options(&buf, &blen) < 0) {
                reject(s, call, "GetDevicePluginOptions", GRPC_STATUS_INTERNAL, "out of memory");
                return;
        }
        reply(s, call, "GetDevicePluginOptions", buf, blen);
}

static void on_list_and_watch(struct grpc_call *call, const uint8_t *req, size_t len,
                              void *userdata) {
        struct dp_service *s = userdata;

        if (add_stream(s, call) < 0) {
                reject(s, call, "ListAndWatch", GRPC_STATUS_INTERNAL, "out of memory");
                return;
        }
        grpc_call_set_userdata(call, s); /* marks the call as one of our streams */
        log_debug(s->resource, s->socket_path, "ListAndWatch opened, %zu stream(s), %s",
                  s->n_streams, dp_health_name(s->health));
        send_list(s, call);
}

static void on_get_preferred(struct grpc_call *call, const uint8_t *req, size_t len,
                             void *userdata) {
        struct dp_service *s = userdata;
        enum grpc_status st;
        char err[256];
        uint8_t *buf;
        size_t blen;

        st = dp_handle_preferred(&s->cfg, s->kind, req, len, &buf, &blen, err, sizeof(err));
        if (st != GRPC_STATUS_OK) {
                reject(s, call, "GetPreferredAllocation", st, err);
                return;
        }
        reply(s, call, "GetPreferredAllocation", buf, blen);
}

static void on_allocate(struct grpc_call *call, const uint8_t *req, size_t len, void *userdata) {
        struct dp_service *s = userdata;
        struct alloc_info info;
        enum grpc_status st;
        char err[256], paths[2 * DISCOVERY_PATH_MAX + 8];
        uint8_t *buf;
        size_t blen;

        st = allocate(&s->cfg, s->kind, &s->disc, req, len, &buf, &blen, &info, err, sizeof(err));
        if (st != GRPC_STATUS_OK) {
                reject(s, call, "Allocate", st, err);
                return;
        }
        sgx_edits_host_paths(&info.edits, paths, sizeof(paths));
        if (info.cdi_name[0])
                log_info(s->resource, s->socket_path,
                         "Allocate: %zu device ID(s) in %zu container(s), CDI device %s (%s)",
                         info.n_ids, info.n_containers, info.cdi_name, paths);
        else
                log_info(s->resource, s->socket_path,
                         "Allocate: %zu device ID(s) in %zu container(s), mapped %s%s%s",
                         info.n_ids, info.n_containers, paths,
                         s->cfg.edits.aesmd_dir ? ", mounted " : "",
                         s->cfg.edits.aesmd_dir ? s->cfg.edits.aesmd_dir : "");
        reply(s, call, "Allocate", buf, blen);
}

static void on_prestart(struct grpc_call *call, const uint8_t *req, size_t len, void *userdata) {
        struct dp_service *s = userdata;
        enum grpc_status st;
        char err[256];
        uint8_t *buf;
        size_t blen;

        st = dp_handle_prestart(&s->cfg, s->kind, req, len, &buf, &blen, err, sizeof(err));
        if (st != GRPC_STATUS_OK) {
                reject(s, call, "PreStartContainer", st, err);
                return;
        }
        reply(s, call, "PreStartContainer", buf, blen);
}

static void on_call_closed(struct grpc_call *call, bool by_peer, void *userdata) {
        struct dp_service *s = userdata;

        if (grpc_call_get_userdata(call) != s)
                return; /* a unary call */
        uint64_t opened_usec;

        if (!remove_stream(s, call, &opened_usec))
                return;
        log_debug(s->resource, s->socket_path, "ListAndWatch ended by %s, %zu stream(s) left",
                  by_peer ? "the kubelet" : "us", s->n_streams);
        if (by_peer && s->on_stream_ended)
                s->on_stream_ended(s, s->n_streams, opened_usec, s->userdata);
}

static int listen_socket(struct dp_service *s, struct grpc_server **ret) {
        const struct grpc_server_config gcfg = {
                .methods = methods,
                .n_methods = sizeof(methods) / sizeof(methods[0]),
                .on_call_closed = on_call_closed,
                .userdata = s,
                .max_recv_msg = 0,
                .log_resource = s->resource,
        };

        return grpc_server_new(s->loop, s->socket_path, &gcfg, ret);
}

int dp_service_new(struct loop *l, const struct dp_config *cfg, enum sgx_kind k,
                   const char *socket_path, const struct discovery *d,
                   dp_stream_ended_fn on_stream_ended, void *userdata, struct dp_service **ret) {
        struct dp_service *s;
        const char *slash;
        int r;

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->loop = l;
        s->cfg = *cfg;
        s->kind = k;
        s->on_stream_ended = on_stream_ended;
        s->userdata = userdata;
        s->disc = *d;

        r = sgx_resource_name(cfg->domain, k, s->resource, sizeof(s->resource));
        if (r < 0)
                goto out_free_service;
        s->socket_path = strdup(socket_path);
        if (!s->socket_path) {
                r = -ENOMEM;
                goto out_free_service;
        }
        slash = strrchr(s->socket_path, '/');
        s->endpoint = slash ? slash + 1 : s->socket_path;

        s->health = compute_health(s);
        /* encode the list now, so the kubelet's first ListAndWatch does not wait for it */
        (void) get_list(s, s->health);

        r = listen_socket(s, &s->server);
        if (r < 0)
                goto out_free_lists;

        if (s->health == DP_HEALTH_HEALTHY)
                log_health(s, DP_HEALTH_NONE, 0);
        else
                log_debug(s->resource, s->socket_path, "no device present, advertising none");

        *ret = s;
        return 0;

out_free_lists:
        for (size_t i = 0; i < sizeof(s->lists) / sizeof(s->lists[0]); i++)
                free(s->lists[i].buf);
        free(s->socket_path);
out_free_service:
        free(s);
        return r;
}

struct dp_service *dp_service_free(struct dp_service *s) {
        if (!s)
                return NULL;
        /* ends every call; on_call_closed empties the stream set (by_peer=false) */
        s->server = grpc_server_free(s->server);
        for (size_t i = 0; i < sizeof(s->lists) / sizeof(s->lists[0]); i++)
                free(s->lists[i].buf);
        free(s->streams);
        free(s->socket_path);
        free(s);
        return NULL;
}

int dp_service_relisten(struct dp_service *s) {
        /*
         * End the old server first: it ends its connections (and their streams) and unlinks the
         * path only if it still names its socket. Then bind anew. On failure there is no server
         * until the next relisten.
         */
        s->server = grpc_server_free(s->server);
        return listen_socket(s, &s->server);
}

bool dp_service_owns_socket(const struct dp_service *s) {
        return s->server && grpc_server_owns_path(s->server);
}

void dp_service_update(struct dp_service *s, const struct discovery *d) {
        enum dp_health old = s->health;
        size_t n;

        s->disc = *d;
        s->health = compute_health(s);
        if (s->health == old)
                return;
        (void) get_list(s, s->health);
        n = broadcast(s);
        log_health(s, old, n);
}

enum dp_health dp_service_health(const struct dp_service *s) {
        return s->health;
}

enum sgx_kind dp_service_kind(const struct dp_service *s) {
        return s->kind;
}

const char *dp_service_resource(const struct dp_service *s) {
        return s->resource;
}

const char *dp_service_socket_path(const struct dp_service *s) {
        return s->socket_path;
}

const char *dp_service_endpoint(const struct dp_service *s) {
        return s->endpoint;
}

size_t dp_service_n_streams(const struct dp_service *s) {
        return s->n_streams;
}
