/*
 * slices.c - the node's pool as ResourceSlices (see slices.h): what the slice says (pure, JSON
 * through jansson), and the reconciler's apply function that makes the API server hold exactly
 * one slice of ours for this node saying it, with the log lines an operator reads.
 *
 * The thread, the timing (a change at once, re-assert every interval, back off after a failure)
 * and the prompt stop belong to reconciler.c, whose state here is a struct dra_pool. One apply:
 * GET the Node (its uid, for the ownerReference: a Node made again gets a new one), LIST our
 * slices by field selector, keep the first (by name), and if it already says what it should,
 * with no other slice beside it, stop there; else PUT it (its resourceVersion: a stale one is a
 * 409, retried with a fresh list) or POST a new one, with pool.generation one above the highest
 * seen, then DELETE the others with uid and resourceVersion preconditions.
 */
#include "slices.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "capabilities.h"
#include "discovery.h"
#include "log.h"
#include "reconciler.h"

/* ---- what the slice says (pure) ---- */

static const char *driver_attr(enum sgx_driver drv) {
        switch (drv) {
        case SGX_DRIVER_INKERNEL:
                return "in-kernel";
        case SGX_DRIVER_DCAP:
                return "dcap";
        case SGX_DRIVER_DCAP_LEGACY:
                return "legacy-dcap";
        case SGX_DRIVER_NONE:
                break;
        }
        return "unknown";
}

int dra_kernel_version(const char *release, char *buf, size_t size) {
        unsigned long v[3] = {0, 0, 0};
        const char *p = release;
        int n;

        for (int i = 0; i < 3; i++) {
                char *end;

                if (*p < '0' || *p > '9') {
                        if (i < 2)
                                return -EINVAL;
                        break;
                }
                v[i] = strtoul(p, &end, 10);
                if (end - p > 9)
                        return -EINVAL;
                p = end;
                if (i < 2) {
                        if (*p != '.') {
                                if (i == 0)
                                        return -EINVAL;
                                break;
                        }
                        p++;
                }
        }
        n = snprintf(buf, size, "%lu.%lu.%lu", v[0], v[1], v[2]);
        return n < 0 || (size_t) n >= size ? -ENOSPC : 0;
}

static void fill_common(const struct sgx_caps *caps, struct dra_device *dev) {
        dev->sgx1 = caps->cpu.sgx1;
        dev->sgx2 = caps->cpu.sgx2;
        dev->flc = caps->flc;
        dev->edmm = caps->sgx2_usable;
        dev->epc_bytes = caps->epc_bytes;
        if (dra_kernel_version(caps->kernel.release, dev->kernel, sizeof(dev->kernel)) < 0)
                dev->kernel[0] = '\0';
        snprintf(dev->kernel_release, sizeof(dev->kernel_release), "%.*s", DRA_ATTR_STRING_MAX,
                 caps->kernel.release);
}

void dra_pool_desired(const struct sgx_caps *caps, const struct discovery *d,
                      struct dra_pool *ret) {
        memset(ret, 0, sizeof(*ret));
        if (d && discovery_has_dcap(d)) {
                struct dra_device *dev = &ret->dev[ret->n++];

                snprintf(dev->name, sizeof(dev->name), "dcap");
                snprintf(dev->driver, sizeof(dev->driver), "%s", driver_attr(caps->driver));
                fill_common(caps, dev);
                dev->provisioning = d->dcap_provision.present;
        }
        if (d && discovery_has_ias(d)) {
                struct dra_device *dev = &ret->dev[ret->n++];

                snprintf(dev->name, sizeof(dev->name), "ias");
                snprintf(dev->driver, sizeof(dev->driver), "ias");
                fill_common(caps, dev);
                dev->provisioning = false;
        }
}

void dra_generate_name(const char *node, const char *driver, char *buf, size_t size) {
        char full[512];

        snprintf(full, sizeof(full), "%s-%s-", node, driver);
        snprintf(buf, size, "%.*s", DRA_GENERATED_PREFIX, full);
}

/* Sets |key| of |obj| to |value| (a new reference, stolen); false on ENOMEM. */
static bool put(json_t *obj, const char *key, json_t *value) {
        return value && json_object_set_new(obj, key, value) == 0;
}

/* Sets attrs["<driver>/<name>"] = {<type>: value}; steals |value| (a new reference, or NULL). */
static bool put_attr(json_t *attrs, const char *driver, const char *name, const char *type,
                     json_t *value) {
        char key[320];
        json_t *a = json_object();

        snprintf(key, sizeof(key), "%s/%s", driver, name);
        if (!a || !put(a, type, value)) { /* put() stole |value| even when it failed */
                if (!a)
                        json_decref(value);
                json_decref(a);
                return false;
        }
        return put(attrs, key, a);
}

static json_t *quantity(uint64_t v) {
        char buf[24];

        snprintf(buf, sizeof(buf), "%" PRIu64, v);
        return json_string(buf);
}

/* {"value": V, "requestPolicy": {"default": "0", "validRange": {"min": "0"}}}. */
static json_t *epc_capacity(uint64_t bytes) {
        json_t *cap = json_object(), *policy = json_object(), *range = json_object();
        bool ok = cap && policy && range && put(range, "min", quantity(0)) &&
                  put(policy, "default", quantity(0)) && put(cap, "value", quantity(bytes));

        if (ok) {
                ok = put(policy, "validRange", range);
                range = NULL; /* stolen, even on failure */
                if (ok) {
                        ok = put(cap, "requestPolicy", policy);
                        policy = NULL;
                }
        }
        if (ok)
                return cap;
        json_decref(range);
        json_decref(policy);
        json_decref(cap);
        return NULL;
}

/* |name|: the device's own ("dcap") or a slot's ("dcap-7"); |exclusive|: a slot. */
static json_t *device_json(const char *driver, const struct dra_device *dev, const char *name,
                           bool exclusive) {
        json_t *o = json_object(), *attrs = json_object(), *caps = json_object();
        bool ok;

        ok = o && attrs && caps &&
             put_attr(attrs, driver, "driver", "string", json_string(dev->driver)) &&
             put_attr(attrs, driver, "sgx1", "bool", json_boolean(dev->sgx1)) &&
             put_attr(attrs, driver, "sgx2", "bool", json_boolean(dev->sgx2)) &&
             put_attr(attrs, driver, "flc", "bool", json_boolean(dev->flc)) &&
             put_attr(attrs, driver, "edmm", "bool", json_boolean(dev->edmm)) &&
             put_attr(attrs, driver, "provisioning", "bool", json_boolean(dev->provisioning)) &&
             put_attr(attrs, driver, "epcBytes", "int", json_integer((json_int_t) dev->epc_bytes));
        if (ok && dev->kernel[0])
                ok = put_attr(attrs, driver, "kernel", "version", json_string(dev->kernel));
        if (ok && dev->kernel_release[0])
                ok = put_attr(attrs, driver, "kernelRelease", "string",
                              json_string(dev->kernel_release));
        if (exclusive) /* no request policy without allowMultipleAllocations */
                ok = ok && put(caps, "epc", json_pack("{s:o}", "value", quantity(dev->epc_bytes)));
        else
                ok = ok && put(caps, "epc", epc_capacity(dev->epc_bytes));
        ok = ok && put(o, "name", json_string(name));
        if (ok) {
                /* put() steals: |attrs| and |caps| belong to |o| from here, even on failure */
                ok = put(o, "attributes", attrs);
                attrs = NULL;
                if (ok) {
                        ok = put(o, "capacity", caps);
                        caps = NULL;
                }
                if (!exclusive)
                        ok = ok && put(o, "allowMultipleAllocations", json_true());
        }
        if (ok)
                return o;
        json_decref(caps);
        json_decref(attrs);
        json_decref(o);
        return NULL;
}

size_t dra_slice_parts(const struct dra_pool *pool) {
        size_t total = pool->n * pool->slots;

        if (pool->slots == 0 || total == 0)
                return 1;
        return (total + DRA_SLICE_MAX_DEVICES - 1) / DRA_SLICE_MAX_DEVICES;
}

json_t *dra_slice_spec_part(const char *driver, const char *node, const struct dra_pool *pool,
                            int64_t generation, size_t part) {
        size_t parts = dra_slice_parts(pool), first, end;
        json_t *devices = json_array(), *spec;
        char name[32];

        if (!devices)
                return NULL;
        if (pool->slots == 0) {
                first = 0;
                end = part == 0 ? pool->n : 0;
        } else {
                /* the devices of every class, slot after slot, cut every 128 */
                first = part * DRA_SLICE_MAX_DEVICES;
                end = first + DRA_SLICE_MAX_DEVICES;
                if (end > pool->n * pool->slots)
                        end = pool->n * pool->slots;
        }
        for (size_t i = first; i < end; i++) {
                const struct dra_device *dev = &pool->dev[pool->slots ? i / pool->slots : i];
                json_t *j;

                if (pool->slots)
                        snprintf(name, sizeof(name), "%s-%zu", dev->name, i % pool->slots);
                else
                        snprintf(name, sizeof(name), "%s", dev->name);
                j = device_json(driver, dev, name, pool->slots > 0);
                if (!j || json_array_append_new(devices, j) < 0) {
                        json_decref(devices);
                        return NULL;
                }
        }
        spec = json_pack("{s:s,s:s,s:{s:s,s:I,s:I},s:o}", "driver", driver, "nodeName", node,
                         "pool", "name", node, "generation", (json_int_t) generation,
                         "resourceSliceCount", (json_int_t) parts, "devices", devices);
        return spec; /* json_pack stole |devices|, even on failure */
}

json_t *dra_slice_spec(const char *driver, const char *node, const struct dra_pool *pool,
                       int64_t generation) {
        return dra_slice_spec_part(driver, node, pool, generation, 0);
}

/* [{apiVersion v1, kind Node, name, uid, controller true}]. */
static json_t *owner_refs(const char *node, const char *node_uid) {
        return json_pack("[{s:s,s:s,s:s,s:s,s:b}]", "apiVersion", "v1", "kind", "Node", "name",
                         node, "uid", node_uid, "controller", 1);
}

json_t *dra_slice_new(const char *driver, const char *node, const char *node_uid,
                      const struct dra_pool *pool, int64_t generation) {
        return dra_slice_new_part(driver, node, node_uid, pool, generation, 0);
}

json_t *dra_slice_new_part(const char *driver, const char *node, const char *node_uid,
                           const struct dra_pool *pool, int64_t generation, size_t part) {
        char prefix[DRA_GENERATED_PREFIX + 1];
        json_t *spec = dra_slice_spec_part(driver, node, pool, generation, part), *refs;

        if (!spec)
                return NULL;
        refs = owner_refs(node, node_uid);
        if (!refs) {
                json_decref(spec);
                return NULL;
        }
        dra_generate_name(node, driver, prefix, sizeof(prefix));
        return json_pack("{s:s,s:s,s:{s:s,s:o},s:o}", "apiVersion", "resource.k8s.io/v1", "kind",
                         "ResourceSlice", "metadata", "generateName", prefix, "ownerReferences",
                         refs, "spec", spec);
}

int dra_quantity_parse(const char *s, uint64_t *ret) {
        static const struct {
                const char *suffix;
                uint64_t mul;
        } units[] = {
                {"", 1},
                {"k", 1000ull},
                {"M", 1000000ull},
                {"G", 1000000000ull},
                {"T", 1000000000000ull},
                {"P", 1000000000000000ull},
                {"E", 1000000000000000000ull},
                {"Ki", 1ull << 10},
                {"Mi", 1ull << 20},
                {"Gi", 1ull << 30},
                {"Ti", 1ull << 40},
                {"Pi", 1ull << 50},
                {"Ei", 1ull << 60},
        };
        uint64_t v = 0;
        const char *p = s;

        if (*p < '0' || *p > '9')
                return -EINVAL;
        for (; *p >= '0' && *p <= '9'; p++) {
                if (v > (UINT64_MAX - 9) / 10)
                        return -ERANGE;
                v = v * 10 + (uint64_t) (*p - '0');
        }
        for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
                if (strcmp(p, units[i].suffix) != 0)
                        continue;
                if (v > UINT64_MAX / units[i].mul)
                        return -ERANGE;
                *ret = v * units[i].mul;
                return 0;
        }
        return -EINVAL;
}

/* json_equal(), but strings that are quantities compare by value when |quantities|. */
static bool same(const json_t *a, const json_t *b, bool quantities) {
        if (json_typeof(a) != json_typeof(b))
                return false;
        switch (json_typeof(a)) {
        case JSON_OBJECT: {
                const char *key;
                json_t *va;

                if (json_object_size(a) != json_object_size(b))
                        return false;
                json_object_foreach((json_t *) a, key, va) {
                        json_t *vb = json_object_get(b, key);

                        if (!vb || !same(va, vb, quantities || strcmp(key, "capacity") == 0))
                                return false;
                }
                return true;
        }
        case JSON_ARRAY:
                if (json_array_size(a) != json_array_size(b))
                        return false;
                for (size_t i = 0; i < json_array_size(a); i++)
                        if (!same(json_array_get(a, i), json_array_get(b, i), quantities))
                                return false;
                return true;
        case JSON_STRING: {
                uint64_t qa, qb;

                if (quantities && dra_quantity_parse(json_string_value(a), &qa) == 0 &&
                    dra_quantity_parse(json_string_value(b), &qb) == 0)
                        return qa == qb;
                return json_equal((json_t *) a, (json_t *) b);
        }
        default:
                return json_equal((json_t *) a, (json_t *) b);
        }
}

bool dra_spec_same(const json_t *have, const json_t *want) {
        json_t *h, *w, *hp, *wp;
        bool r;

        if (!json_is_object(have) || !json_is_object(want))
                return false;
        /* compare copies without pool.generation */
        h = json_deep_copy(have);
        w = json_deep_copy(want);
        hp = json_object_get(h, "pool");
        wp = json_object_get(w, "pool");
        if (json_is_object(hp))
                json_object_del(hp, "generation");
        if (json_is_object(wp))
                json_object_del(wp, "generation");
        r = h && w && same(h, w, false);
        json_decref(h);
        json_decref(w);
        return r;
}

/* ---- the publisher ---- */

struct dra_slices {
        char driver[256];
        char node[256];
        char node_path[320];    /* /api/v1/nodes/NODE */
        char list_path[1024];   /* the collection with our field selector */
        struct api_client *api; /* the default request's client */
        dra_request_fn request;
        void *request_userdata;
        struct reconciler *rc; /* its state is a struct dra_pool */
};

static int default_request(void *userdata, const char *method, const char *path, const char *body,
                           int cancel_fd, struct api_response *resp, char *err, size_t errsz) {
        struct dra_slices *s = userdata;

        return api_client_request(s->api, method, path, body ? "application/json" : NULL, body,
                                  body ? strlen(body) : 0, cancel_fd, resp, err, errsz);
}

/* What an operator should do about an HTTP error |status|. */
static const char *status_hint(int status) {
        switch (status) {
        case 401:
                return "the service account token was refused (expired or not mounted?)";
        case 403:
                return "the service account needs RBAC: get, list, watch, create, update, patch and delete on resourceslices (ClusterRole rule apiGroups [\"resource.k8s.io\"], resources [\"resourceslices\"]) and get on nodes (apiGroups [\"\"], resources [\"nodes\"]), or an admission policy refused the change";
        case 404:
                return "not found: the node (check --node-name / NODE_NAME), or resource.k8s.io/v1 is not served (Kubernetes 1.34 or later)";
        case 409:
                return "the slice changed meanwhile, trying again with a fresh list";
        case 422:
                return "the API server refused the slice as invalid";
        case 429:
                return "the API server is throttling requests";
        default:
                return status >= 500 ? "the API server failed" : "unexpected answer";
        }
}

static void format_secs(unsigned ms, char *buf, size_t size) {
        if (ms % 1000 == 0)
                snprintf(buf, size, "%u s", ms / 1000);
        else
                snprintf(buf, size, "%.3g s", ms / 1000.0);
}

/*
 * One request whose answer must be |want| (or |also|, when non-zero). On anything else logs one
 * line ("<what> failed: ...; hint, retrying in N s") and returns negative; -ECANCELED quietly.
 * On success the caller owns *resp.
 */
static int call(struct dra_slices *s, const struct reconciler_attempt *a, const char *what,
                const char *method, const char *path, const char *body, int want, int also,
                struct api_response *resp) {
        char err[512] = "", retry[32];
        int r;

        memset(resp, 0, sizeof(*resp));
        r = s->request(s->request_userdata, method, path, body, a->cancel_fd, resp, err,
                       sizeof(err));
        format_secs(a->retry_ms, retry, sizeof(retry));
        if (r == -ECANCELED)
                return r;
        if (r < 0) {
                log_warn(s->driver, path, "%s failed: %s, retrying in %s", what,
                         err[0] ? err : strerror(-r), retry);
                return r;
        }
        if (resp->status == want || (also && resp->status == also))
                return 0;
        log_warn(s->driver, path, "%s failed: HTTP %d: %s; %s, retrying in %s", what, resp->status,
                 resp->message[0] ? resp->message : "(no message)", status_hint(resp->status),
                 retry);
        api_response_clear(resp);
        return -EPROTO;
}

/* The JSON body of |resp|, or NULL (logged) when it is not an object. */
static json_t *parse_body(struct dra_slices *s, const char *path, const struct api_response *resp) {
        json_error_t e;
        json_t *j = json_loadb(resp->body, resp->body_len, 0, &e);

        if (!json_is_object(j)) {
                log_warn(s->driver, path, "the API server's answer is not a JSON object: %s",
                         j ? "another type" : e.text);
                json_decref(j);
                return NULL;
        }
        return j;
}

/* metadata.<key> of |obj| as a string, "" when missing. */
static const char *meta(const json_t *obj, const char *key) {
        const char *v = json_string_value(json_object_get(json_object_get(obj, "metadata"), key));
        return v ? v : "";
}

/* The kept slice already points at this Node as its controller. */
static bool owned_by(const json_t *slice, const char *node_uid) {
        json_t *refs = json_object_get(json_object_get(slice, "metadata"), "ownerReferences");
        json_t *ref = json_array_get(refs, 0);
        const char *uid = json_string_value(json_object_get(ref, "uid"));

        return json_array_size(refs) == 1 && uid && strcmp(uid, node_uid) == 0 &&
               json_is_true(json_object_get(ref, "controller"));
}

static void describe(const struct dra_pool *pool, char *buf, size_t size) {
        size_t n = 0;

        buf[0] = '\0';
        for (size_t i = 0; i < pool->n && n < size; i++)
                n += (size_t) snprintf(buf + n, size - n,
                                       "%s%s (driver %s, epc %" PRIu64 " bytes%s%.0u%s)",
                                       i ? ", " : "", pool->dev[i].name, pool->dev[i].driver,
                                       pool->dev[i].epc_bytes, pool->slots ? ", " : "", pool->slots,
                                       pool->slots ? " exclusive slots" : "");
        if (pool->n == 0)
                snprintf(buf, size, "no devices");
}

/* DELETE |slice| with uid and resourceVersion preconditions; a 404 means it is gone already. */
static int delete_slice(struct dra_slices *s, const struct reconciler_attempt *a,
                        const json_t *slice) {
        char path[512], *body;
        struct api_response resp;
        json_t *opts;
        int r;

        snprintf(path, sizeof(path), DRA_SLICES_API "/%s", meta(slice, "name"));
        opts = json_pack("{s:s,s:s,s:{s:s,s:s}}", "apiVersion", "v1", "kind", "DeleteOptions",
                         "preconditions", "uid", meta(slice, "uid"), "resourceVersion",
                         meta(slice, "resourceVersion"));
        body = opts ? json_dumps(opts, JSON_COMPACT) : NULL;
        json_decref(opts);
        if (!body)
                return -ENOMEM;
        r = call(s, a, "deleting an extra ResourceSlice", "DELETE", path, body, 200, 404, &resp);
        free(body);
        if (r < 0)
                return r;
        log_info(s->driver, path, "deleted extra ResourceSlice %s of node %s%s",
                 meta(slice, "name"), s->node, resp.status == 404 ? " (already gone)" : "");
        api_response_clear(&resp);
        return 0;
}

/* PUT |keep| with |spec| (stolen) and our ownerReference, or POST a new slice when !keep. */
static int write_slice(struct dra_slices *s, const struct reconciler_attempt *a, const json_t *keep,
                       const struct dra_pool *pool, size_t part, const char *node_uid,
                       int64_t generation, char *ret_name, size_t namesz) {
        struct api_response resp;
        char path[512], *body;
        json_t *obj, *created;
        int r;

        if (keep) {
                json_t *refs = owner_refs(s->node, node_uid);
                json_t *spec = dra_slice_spec_part(s->driver, s->node, pool, generation, part);

                bool ok;

                obj = json_deep_copy(keep);
                /* json_object_set_new() steals the value even when it fails */
                ok = obj && refs && spec &&
                     json_object_set_new(json_object_get(obj, "metadata"), "ownerReferences",
                                         json_incref(refs)) == 0 &&
                     json_object_set_new(obj, "spec", json_incref(spec)) == 0;
                json_decref(refs);
                json_decref(spec);
                if (!ok) {
                        json_decref(obj);
                        return -ENOMEM;
                }
                json_object_del(obj, "status");
                snprintf(path, sizeof(path), DRA_SLICES_API "/%s", meta(keep, "name"));
        } else {
                obj = dra_slice_new_part(s->driver, s->node, node_uid, pool, generation, part);
                snprintf(path, sizeof(path), DRA_SLICES_API);
        }
        body = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
        json_decref(obj);
        if (!body)
                return -ENOMEM;
        if (keep)
                r = call(s, a, "updating the ResourceSlice", "PUT", path, body, 200, 0, &resp);
        else
                r = call(s, a, "creating the ResourceSlice", "POST", path, body, 201, 200, &resp);
        free(body);
        if (r < 0)
                return r;
        created = parse_body(s, path, &resp);
        snprintf(ret_name, namesz, "%s", created ? meta(created, "name") : "?");
        json_decref(created);
        api_response_clear(&resp);
        return 0;
}

/*
 * True when |items| (ours, by name) are exactly the |parts| slices the pool needs, each owned by
 * the Node, saying what it should, all of one generation.
 */
static bool up_to_date(struct dra_slices *s, const json_t *items, const struct dra_pool *pool,
                       size_t parts, const char *node_uid) {
        json_int_t gen = -1;

        if (json_array_size(items) != parts)
                return false;
        for (size_t i = 0; i < parts; i++) {
                const json_t *item = json_array_get(items, i);
                json_t *want = dra_slice_spec_part(s->driver, s->node, pool, 0, i);
                json_int_t g = json_integer_value(json_object_get(
                        json_object_get(json_object_get(item, "spec"), "pool"), "generation"));
                bool same = want && owned_by(item, node_uid) &&
                            dra_spec_same(json_object_get(item, "spec"), want) &&
                            (gen < 0 || g == gen);

                json_decref(want);
                if (!same)
                        return false;
                gen = g;
        }
        return true;
}

/*
 * The reconciler's apply function: makes the API server hold exactly the slices of ours for this
 * node saying |state| (one; with slots, one per 128 devices). Returns 0, -ECANCELED when stopping,
 * else negative after logging why.
 */
static int publish(void *userdata, const void *state, const struct reconciler_attempt *a) {
        struct dra_slices *s = userdata;
        const struct dra_pool *pool = state;
        struct api_response resp;
        json_t *node = NULL, *list = NULL, *items, *keep;
        char node_uid[128], name[256], devs[512];
        int64_t max_gen = 0, generation;
        size_t n_items, parts;
        int r;

        /* the Node's uid, for the ownerReference */
        r = call(s, a, "reading the node for its ResourceSlice", "GET", s->node_path, NULL, 200, 0,
                 &resp);
        if (r < 0)
                return r;
        node = parse_body(s, s->node_path, &resp);
        api_response_clear(&resp);
        snprintf(node_uid, sizeof(node_uid), "%s", node ? meta(node, "uid") : "");
        json_decref(node);
        if (!node_uid[0]) {
                log_warn(s->driver, s->node_path, "node %s has no metadata.uid, retrying", s->node);
                return -EPROTO;
        }

        /* our slices for this node */
        r = call(s, a, "listing ResourceSlices", "GET", s->list_path, NULL, 200, 0, &resp);
        if (r < 0)
                return r;
        list = parse_body(s, s->list_path, &resp);
        api_response_clear(&resp);
        if (!list)
                return -EPROTO;
        items = json_object_get(list, "items"); /* may be missing or null: an empty list */
        n_items = json_array_size(items);
        for (size_t i = 0; i < n_items; i++) {
                json_t *g = json_object_get(
                        json_object_get(json_object_get(json_array_get(items, i), "spec"), "pool"),
                        "generation");
                if (json_integer_value(g) > max_gen)
                        max_gen = json_integer_value(g);
        }
        parts = dra_slice_parts(pool);
        describe(pool, devs, sizeof(devs));
        if (up_to_date(s, items, pool, parts, node_uid)) {
                if (a->changed)
                        log_info(s->driver, DRA_SLICES_API,
                                 "the %zu ResourceSlice(s) of node %s are already up to date: %s",
                                 parts, s->node, devs);
                else
                        log_debug(s->driver, DRA_SLICES_API,
                                  "the %zu ResourceSlice(s) of node %s re-asserted", parts,
                                  s->node);
                r = 0;
                goto out;
        }

        /* every slice of the pool carries the new generation: the scheduler uses only those */
        generation = max_gen + 1;
        for (size_t i = 0; i < parts; i++) {
                keep = json_array_get(items, i); /* NULL past the existing ones: POST */
                r = write_slice(s, a, keep, pool, i, node_uid, generation, name, sizeof(name));
                if (r < 0)
                        goto out;
                log_info(s->driver, DRA_SLICES_API,
                         "%s ResourceSlice %s (%zu of %zu) of node %s: pool generation %" PRId64
                         ", %s",
                         keep ? "updated" : "created", name, i + 1, parts, s->node, generation,
                         devs);
        }
        for (size_t i = parts; i < n_items; i++) {
                r = delete_slice(s, a, json_array_get(items, i));
                if (r < 0)
                        goto out;
        }
        r = 0;
out:
        json_decref(list);
        return r;
}

int dra_slices_start(const struct dra_slices_config *cfg, struct dra_slices **ret) {
        struct reconciler_config rcfg = {
                .state_size = sizeof(struct dra_pool),
                .interval_ms = cfg->interval_ms,
                .backoff_min_ms = cfg->backoff_min_ms,
                .backoff_max_ms = cfg->backoff_max_ms,
                .apply = publish,
                .equal = NULL, /* memcmp: pools are zeroed before filling */
        };
        struct dra_slices *s;
        int r;

        if (!cfg->driver || !cfg->node_name || cfg->interval_ms == 0)
                return -EINVAL;
        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        snprintf(s->driver, sizeof(s->driver), "%s", cfg->driver);
        snprintf(s->node, sizeof(s->node), "%s", cfg->node_name);
        snprintf(s->node_path, sizeof(s->node_path), "/api/v1/nodes/%s", cfg->node_name);
        /* "spec.driver=D,spec.nodeName=NODE", URL-encoded ('=' %3D, ',' %2C; names need none) */
        snprintf(s->list_path, sizeof(s->list_path),
                 DRA_SLICES_API "?fieldSelector=spec.driver%%3D%s%%2Cspec.nodeName%%3D%s",
                 cfg->driver, cfg->node_name);
        s->request = cfg->request ? cfg->request : default_request;
        s->request_userdata = cfg->request ? cfg->request_userdata : s;
        if (!cfg->request) {
                r = api_client_new(&cfg->api, &s->api);
                if (r < 0)
                        goto out_free;
        }
        rcfg.userdata = s;
        r = reconciler_start(&rcfg, &s->rc);
        if (r < 0)
                goto out_free;
        *ret = s;
        return 0;

out_free:
        api_client_free(s->api);
        free(s);
        return r;
}

void dra_slices_set(struct dra_slices *s, const struct dra_pool *pool) {
        reconciler_set(s->rc, pool);
}

struct dra_slices *dra_slices_stop(struct dra_slices *s) {
        if (!s)
                return NULL;
        s->rc = reconciler_stop(s->rc);
        s->api = api_client_free(s->api);
        free(s);
        return NULL;
}
