/*
 * probe.c - `sgxdevplugin probe` (see probe.h): the device nodes found, the devices chosen, the
 * device nodes refused as not SGX with the reason, the
 * SGX capabilities (CPUID, kernel, EPC per NUMA node, driver, verdict; facts are
 * capabilities.c's), and per resource its name, slot count, health, socket and what Allocate
 * would map. The mapping is the container edits Allocate encodes (sgx/edits.c), printed as
 * they are, so the probe cannot drift from what the kubelet would get. The kinds come from the
 * resource table (sgx/resources.c). JSON is built and escaped by jansson.
 */
#include "probe.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "capabilities.h"
#include "cli.h"
#include "deviceplugin.h"
#include "discovery.h"
#include "edits.h"
#include "jsontext.h"
#include "resources.h"

/* One resource as the daemon would serve it. */
struct resource_view {
        enum sgx_kind kind;
        char name[SGX_RESOURCE_NAME_SIZE]; /* "sgx.k8s.io/dcap" */
        char socket[PATH_MAX];             /* DIR/sgxdevplugin-dcap.sock */
        unsigned count;                    /* slots advertised now */
        enum dp_health health;             /* as at start-up: Healthy or None */
        bool mapped;                       /* edits holds what a container gets */
        struct sgx_edits edits;
};

/* Another device plugin's socket in --kubelet-dir that looks like SGX. */
struct other_plugin {
        char socket[NAME_MAX + 1]; /* its file name */
        const char *resource;      /* what it is known to serve, or NULL (static) */
        bool conflict;             /* we serve that resource too: the node double-books it */
};

#define PROBE_MAX_OTHER_PLUGINS 16

struct report {
        struct resource_view res[SGX_KIND_MAX];
        size_t n_res;
        struct other_plugin other[PROBE_MAX_OTHER_PLUGINS];
        size_t n_other;
};

/* Finds other SGX device plugins' sockets in the kubelet's directory (none when it is missing). */
static void find_other_plugins(const char *kubelet_dir, struct report *rep) {
        DIR *dir = opendir(kubelet_dir);
        struct dirent *e;

        if (!dir)
                return;
        while ((e = readdir(dir)) && rep->n_other < PROBE_MAX_OTHER_PLUGINS) {
                struct other_plugin *o = &rep->other[rep->n_other];
                char path[PATH_MAX];
                struct stat st;

                if (!sgx_is_other_plugin_socket(e->d_name, &o->resource))
                        continue;
                if ((size_t) snprintf(path, sizeof(path), "%s/%s", kubelet_dir, e->d_name) >=
                            sizeof(path) ||
                    lstat(path, &st) < 0 || !S_ISSOCK(st.st_mode))
                        continue;
                snprintf(o->socket, sizeof(o->socket), "%s", e->d_name);
                o->conflict = false;
                for (size_t i = 0; o->resource && i < rep->n_res; i++)
                        if (strcmp(rep->res[i].name, o->resource) == 0)
                                o->conflict = true;
                rep->n_other++;
        }
        closedir(dir);
}

static int collect(const struct cli_options *opt, const struct discovery *d, uint64_t epc_bytes,
                   struct report *ret) {
        const struct sgx_edit_config ecfg = {.provision = opt->provision,
                                             .aesmd_dir = opt->aesmd_dir};
        const struct sgx_resource_options ro = {.provision_resource = opt->provision_resource,
                                                .compat = opt->compat};
        struct report rep = {.n_res = 0};
        int r;

        for (enum sgx_kind k = 0; k < SGX_KIND_MAX; k++) {
                struct resource_view *v = &rep.res[rep.n_res];
                bool present;

                if (!sgx_kind_enabled(k, &ro))
                        continue;
                memset(v, 0, sizeof(*v));
                v->kind = k;
                r = sgx_resource_name(opt->domain, k, v->name, sizeof(v->name));
                if (r < 0)
                        return r;
                r = sgx_socket_path(opt->kubelet_dir, k, v->socket, sizeof(v->socket));
                if (r < 0)
                        return r;
                present = sgx_kind_present(k, d);
                v->count = present ? sgx_kind_slots(k, opt->max_pods, epc_bytes) : 0;
                if (sgx_resource(k)->slots == SGX_SLOTS_EPC_MIB)
                        v->count = dp_slots_that_fit(k, v->count);
                v->health = present ? DP_HEALTH_HEALTHY : DP_HEALTH_NONE;
                v->mapped = present && sgx_edits_for(k, &ecfg, d, &v->edits) == 0;
                rep.n_res++;
        }
        find_other_plugins(opt->kubelet_dir, &rep);
        *ret = rep;
        return 0;
}

/* ---- text ---- */

static int max_int(int a, int b) {
        return a > b ? a : b;
}

static int width(const char *s) {
        size_t n = strlen(s);

        return n > 200 ? 200 : (int) n;
}

static void node_line(FILE *out, const char *what, const struct sgx_node *n) {
        if (n->present)
                fprintf(out, "  %-16s %s (%u:%u)\n", what, n->host_path, n->major, n->minor);
        else
                fprintf(out, "  %-16s none\n", what);
}

/* What Allocate would answer for |v|: one line per device node and path, and per mount. */
static void print_allocate(FILE *out, const struct resource_view *v) {
        const struct sgx_edits *e = &v->edits;
        int wc = 0, wh = 0;

        if (!v->mapped)
                return;
        for (size_t i = 0; i < e->n_devices; i++) {
                for (size_t j = 0; j < e->devices[i].n_container_paths; j++)
                        wc = max_int(wc, width(e->devices[i].container_paths[j]));
                wh = max_int(wh, width(e->devices[i].host_path));
        }
        for (size_t j = 0; j < e->n_mounts; j++) {
                wc = max_int(wc, width(e->mounts[j].container_path));
                wh = max_int(wh, width(e->mounts[j].host_path));
        }
        fprintf(out, "\nAllocate %s maps (container path -> host path):\n", v->name);
        for (size_t i = 0; i < e->n_devices; i++) {
                const struct sgx_device_edit *dev = &e->devices[i];

                for (size_t j = 0; j < dev->n_container_paths; j++)
                        fprintf(out, "  device  %-*s -> %-*s  %s\n", wc, dev->container_paths[j],
                                wh, dev->host_path, dev->permissions);
        }
        for (size_t j = 0; j < e->n_mounts; j++) {
                const struct sgx_mount_edit *m = &e->mounts[j];

                fprintf(out, "  mount   %-*s -> %-*s  %s\n", wc, m->container_path, wh,
                        m->host_path, m->read_only ? "ro" : "rw");
        }
        for (size_t j = 0; j < e->n_env; j++)
                fprintf(out, "  env     %s=%s\n", e->env[j].name, e->env[j].value);
}

/* "93.5 MiB", "4064 MiB" */
static const char *mib(uint64_t bytes, char *buf, size_t size) {
        if (bytes % (1024 * 1024) == 0)
                snprintf(buf, size, "%" PRIu64 " MiB", bytes >> 20);
        else
                snprintf(buf, size, "%.1f MiB", (double) bytes / (1024.0 * 1024.0));
        return buf;
}

static const char *yes_no(bool b) {
        return b ? "yes" : "no";
}

static void print_caps(FILE *out, const struct cli_options *opt, const struct sgx_caps *c) {
        const struct sgx_cpu *cpu = &c->cpu;
        const struct sgx_kernel *k = &c->kernel;
        char b1[32], b2[32];

        fprintf(out, "\nSGX capabilities (CPUID %s%s):\n",
                opt->cpuid_file ? "recorded in " : "of this CPU",
                opt->cpuid_file ? opt->cpuid_file : "");
        if (cpu->valid)
                fprintf(out, "  %-16s %s, max leaf 0x%" PRIx32 ", hypervisor %s\n", "cpu",
                        cpu->vendor[0] ? cpu->vendor : "(no vendor)", cpu->max_leaf,
                        yes_no(cpu->hypervisor));
        else
                fprintf(out, "  %-16s no CPUID (not x86)\n", "cpu");
        fprintf(out, "  %-16s %s\n", "sgx", yes_no(cpu->sgx));
        fprintf(out, "  %-16s %s\n", "sgx1", yes_no(cpu->sgx1));
        fprintf(out, "  %-16s %s\n", "sgx2", yes_no(cpu->sgx2));
        fprintf(out, "  %-16s %s (CPUID %s, kernel sgx_lc flag %s)\n", "flc", yes_no(c->flc),
                yes_no(cpu->flc), yes_no(k->flag_sgx_lc));
        if (cpu->max_enclave_bits_32 || cpu->max_enclave_bits_64)
                fprintf(out, "  %-16s 2^%u bytes (32-bit), 2^%u bytes (64-bit)\n", "max enclave",
                        cpu->max_enclave_bits_32, cpu->max_enclave_bits_64);
        else
                fprintf(out, "  %-16s unknown\n", "max enclave");
        fprintf(out, "  %-16s %s in %u section%s\n", "epc (cpuid)",
                mib(cpu->epc_bytes, b1, sizeof(b1)), cpu->n_epc_sections,
                cpu->n_epc_sections == 1 ? "" : "s");
        if (k->n_nodes > 0) {
                fprintf(out, "  %-16s %s in %zu NUMA node%s\n", "epc (kernel)",
                        mib(k->epc_bytes, b1, sizeof(b1)), k->n_nodes, k->n_nodes == 1 ? "" : "s");
                for (size_t i = 0; i < k->n_nodes; i++) {
                        snprintf(b2, sizeof(b2), "node%u", k->nodes[i].node);
                        fprintf(out, "    %-14s %s\n", b2, mib(k->nodes[i].bytes, b1, sizeof(b1)));
                }
        } else {
                fprintf(out, "  %-16s not reported (no sgx_total_bytes under --sys-root)\n",
                        "epc (kernel)");
        }
        fprintf(out, "  %-16s %s\n", "epc total", mib(c->epc_bytes, b1, sizeof(b1)));
        fprintf(out, "  %-16s %s\n", "kernel", k->release[0] ? k->release : "unknown");
        if (k->cpuinfo_read)
                fprintf(out, "  %-16s sgx %s, sgx_lc %s\n", "cpuinfo flags", yes_no(k->flag_sgx),
                        yes_no(k->flag_sgx_lc));
        else
                fprintf(out, "  %-16s unknown (no cpuinfo under --proc-root)\n", "cpuinfo flags");
        fprintf(out, "  %-16s %s\n", "driver", sgx_driver_name(c->driver));
        fprintf(out, "  %-16s %s\n", "sgx2 usable", yes_no(c->sgx2_usable));
}

/* The device nodes refused as not SGX (discovery.c), with the reason: none of them is used. */
static void print_refused(FILE *out, const struct discovery *d) {
        int wn = (int) strlen("NAME"), wt = (int) strlen("RESOLVES TO");

        if (d->n_refused == 0)
                return;
        for (size_t i = 0; i < d->n_refused; i++) {
                wn = max_int(wn, width(d->refused[i].name));
                wt = max_int(wt, width(d->refused[i].target));
        }
        fprintf(out, "\nrefused device nodes (not SGX: never advertised or mapped):\n");
        fprintf(out, "  %-*s  %-4s  %-*s  %-11s  %s\n", wn, "NAME", "LINK", wt, "RESOLVES TO",
                "MAJOR:MINOR", "REASON");
        for (size_t i = 0; i < d->n_refused; i++) {
                const struct discovery_refused *x = &d->refused[i];
                char num[32];

                snprintf(num, sizeof(num), "%u:%u", x->major, x->minor);
                fprintf(out, "  %-*s  %-4s  %-*s  %-11s  %s: %s%s%s%s\n", wn, x->name,
                        x->is_link ? "yes" : "no", wt, x->target, num,
                        discovery_refusal_name(x->reason), discovery_refusal_reason(x->reason),
                        x->kernel_name[0] ? " \"" : "", x->kernel_name,
                        x->kernel_name[0] ? "\"" : "");
        }
}

static void print_text(FILE *out, const struct cli_options *opt, const struct discovery *d,
                       const struct sgx_caps *caps, const struct report *rep) {
        int wn = (int) strlen("NAME"), wp = (int) strlen("HOST PATH"),
            wr = (int) strlen("RESOURCE");

        fprintf(out, "dev root: %s\n", opt->dev_root);
        if (!discovery_has_dcap(d) && !discovery_has_ias(d))
                fprintf(out, "no SGX device found under %s%s\n", opt->dev_root,
                        d->dev_root_missing ? " (it does not exist)"
                        : d->n_refused > 0  ? " (device nodes refused as not SGX, see below)"
                                            : "");
        if (d->n_entries > 0) {
                for (size_t i = 0; i < d->n_entries; i++) {
                        wn = max_int(wn, width(d->entries[i].name));
                        wp = max_int(wp, width(d->entries[i].host_path));
                }
                fprintf(out, "\ndevice nodes:\n");
                fprintf(out, "  %-*s  %-5s  %-9s  %-4s  %-*s  %s\n", wn, "NAME", "CLASS", "ROLE",
                        "LINK", wp, "HOST PATH", "MAJOR:MINOR");
                for (size_t i = 0; i < d->n_entries; i++) {
                        const struct discovery_entry *e = &d->entries[i];

                        fprintf(out, "  %-*s  %-5s  %-9s  %-4s  %-*s  %u:%u\n", wn, e->name,
                                sgx_class_name(e->cls), sgx_role_name(e->role),
                                e->is_link ? "yes" : "no", wp, e->host_path, e->major, e->minor);
                }
                fprintf(out, "\ndevices in use:\n");
                node_line(out, d->dcap_legacy ? "dcap (legacy)" : "dcap enclave", &d->dcap_enclave);
                node_line(out, "dcap provision", &d->dcap_provision);
                node_line(out, "ias enclave", &d->ias_enclave);
                if (d->dcap_provision.present && !discovery_has_dcap(d))
                        fprintf(out, "  (a provisioning device without an enclave device is not used)\n");
        }

        print_refused(out, d);

        if (caps)
                print_caps(out, opt, caps);

        for (size_t i = 0; i < rep->n_res; i++)
                wr = max_int(wr, width(rep->res[i].name));
        fprintf(out, "\nresources (sockets in %s):\n", opt->kubelet_dir);
        fprintf(out, "  %-*s  %6s  %-9s  %s\n", wr, "RESOURCE", "COUNT", "HEALTH", "SOCKET");
        for (size_t i = 0; i < rep->n_res; i++) {
                const struct resource_view *v = &rep->res[i];
                const char *base = strrchr(v->socket, '/');

                fprintf(out, "  %-*s  %6u  %-9s  %s\n", wr, v->name, v->count,
                        dp_health_name(v->health), base ? base + 1 : v->socket);
        }

        for (size_t i = 0; i < rep->n_res; i++)
                print_allocate(out, &rep->res[i]);

        for (size_t i = 0; i < rep->n_other; i++) {
                const struct other_plugin *o = &rep->other[i];

                fprintf(out, "\nwarning: %s/%s looks like another SGX device plugin's socket%s%s%s%s: two plugins for one device double-book it; run sgxdevplugin alone\n",
                        opt->kubelet_dir, o->socket, o->resource ? " (it serves " : "",
                        o->resource ? o->resource : "", o->conflict ? ", which this node serves too" : "",
                        o->resource ? ")" : "");
        }

        if (caps)
                fprintf(out, "\nverdict: %s - %s\n", sgx_verdict_name(caps->verdict),
                        caps->verdict_line);
}

/* ---- JSON ---- */

static json_t *node_json(const struct sgx_node *n) {
        if (!n->present)
                return json_null();
        return json_pack("{s:s, s:I, s:I}", "host_path", n->host_path, "major",
                         (json_int_t) n->major, "minor", (json_int_t) n->minor);
}

/*
 * What Allocate maps, one object per host device node with every container path it appears at
 * ({"host_path":"/dev/sgx_enclave","container_paths":["/dev/sgx_enclave","/dev/sgx/enclave"]}),
 * and the mounts. JSON null when nothing would be mapped; NULL on ENOMEM.
 */
static json_t *alloc_json(const struct resource_view *v) {
        const struct sgx_edits *e = &v->edits;
        json_t *o, *devices, *mounts, *g, *paths;

        if (!v->mapped)
                return json_null();
        o = json_pack("{s:[], s:[]}", "devices", "mounts");
        if (!o)
                return NULL;
        devices = json_object_get(o, "devices");
        mounts = json_object_get(o, "mounts");
        for (size_t i = 0; i < e->n_devices; i++) {
                const struct sgx_device_edit *dev = &e->devices[i];

                g = json_pack("{s:s, s:[], s:s}", "host_path", dev->host_path, "container_paths",
                              "permissions", dev->permissions);
                if (json_array_append_new(devices, g) < 0)
                        goto out_free_object;
                paths = json_object_get(g, "container_paths");
                for (size_t j = 0; j < dev->n_container_paths; j++)
                        if (json_array_append_new(paths, json_string(dev->container_paths[j])) < 0)
                                goto out_free_object;
        }
        for (size_t i = 0; i < e->n_mounts; i++) {
                const struct sgx_mount_edit *m = &e->mounts[i];

                if (json_array_append_new(mounts,
                                          json_pack("{s:s, s:s, s:b}", "host_path", m->host_path,
                                                    "container_path", m->container_path,
                                                    "read_only", (int) m->read_only)) < 0)
                        goto out_free_object;
        }
        return o;

out_free_object:
        json_decref(o);
        return NULL;
}

static json_t *bytes_json(uint64_t v) {
        return json_integer(v > INT64_MAX ? INT64_MAX : (json_int_t) v);
}

/* The capabilities as one object; NULL on ENOMEM. */
static json_t *caps_json(const struct cli_options *opt, const struct sgx_caps *c) {
        const struct sgx_cpu *cpu = &c->cpu;
        const struct sgx_kernel *k = &c->kernel;
        json_t *o, *sections, *nodes;

        o = json_pack("{s:o, s:{s:b, s:s, s:I, s:b, s:b, s:b, s:b, s:b, s:I, s:I, s:[], s:o}, s:{s:s, s:I, s:I, s:b, s:b, s:b, s:[], s:o}, s:s, s:b, s:b, s:b, s:b, s:o, s:I, s:s, s:s}",
                      "cpuid_source",
                      opt->cpuid_file ? json_string(opt->cpuid_file) : json_string("native"), "cpu",
                      "valid", (int) cpu->valid, "vendor", cpu->vendor, "max_leaf",
                      (json_int_t) cpu->max_leaf, "hypervisor", (int) cpu->hypervisor, "sgx",
                      (int) cpu->sgx, "sgx1", (int) cpu->sgx1, "sgx2", (int) cpu->sgx2, "flc",
                      (int) cpu->flc, "max_enclave_bits_32", (json_int_t) cpu->max_enclave_bits_32,
                      "max_enclave_bits_64", (json_int_t) cpu->max_enclave_bits_64, "epc_sections",
                      "epc_bytes", bytes_json(cpu->epc_bytes), "kernel", "release", k->release,
                      "major", (json_int_t) k->major, "minor", (json_int_t) k->minor,
                      "cpuinfo_read", (int) k->cpuinfo_read, "flag_sgx", (int) k->flag_sgx,
                      "flag_sgx_lc", (int) k->flag_sgx_lc, "epc_nodes", "epc_bytes",
                      bytes_json(k->epc_bytes), "driver", sgx_driver_name(c->driver), "dcap",
                      (int) c->dcap, "ias", (int) c->ias, "flc", (int) c->flc, "sgx2_usable",
                      (int) c->sgx2_usable, "epc_bytes", bytes_json(c->epc_bytes), "epc_mib",
                      (json_int_t) (c->epc_bytes >> 20), "verdict", sgx_verdict_name(c->verdict),
                      "verdict_line", c->verdict_line);
        if (!o)
                return NULL;
        sections = json_object_get(json_object_get(o, "cpu"), "epc_sections");
        nodes = json_object_get(json_object_get(o, "kernel"), "epc_nodes");
        for (unsigned i = 0; i < cpu->n_epc_sections && i < CAPS_MAX_EPC_SECTIONS; i++)
                if (json_array_append_new(sections, json_pack("{s:o, s:o}", "base",
                                                              bytes_json(cpu->epc[i].base), "bytes",
                                                              bytes_json(cpu->epc[i].size))) < 0)
                        goto out_free_object;
        for (size_t i = 0; i < k->n_nodes && i < CAPS_MAX_NODES; i++)
                if (json_array_append_new(nodes, json_pack("{s:I, s:o}", "node",
                                                           (json_int_t) k->nodes[i].node, "bytes",
                                                           bytes_json(k->nodes[i].bytes))) < 0)
                        goto out_free_object;
        return o;

out_free_object:
        json_decref(o);
        return NULL;
}

/* One object per refused device node; NULL on ENOMEM. */
static json_t *refused_json(const struct discovery_refused *x) {
        return json_pack("{s:s, s:s, s:s, s:b, s:s, s:s, s:I, s:I, s:o, s:s, s:s}", "name", x->name,
                         "class", sgx_class_name(x->cls), "role", sgx_role_name(x->role), "link",
                         (int) x->is_link, "path", x->path, "target", x->target, "major",
                         (json_int_t) x->major, "minor", (json_int_t) x->minor, "kernel_name",
                         x->kernel_name[0] ? json_string(x->kernel_name) : json_null(), "reason",
                         discovery_refusal_name(x->reason), "reason_text",
                         discovery_refusal_reason(x->reason));
}

static int print_json(FILE *out, const struct cli_options *opt, const struct discovery *d,
                      const struct sgx_caps *caps, const struct report *rep) {
        json_t *root, *devices, *resources, *refused, *other;
        char *text;
        int r = -ENOMEM;

        root = json_pack("{s:s, s:b, s:s, s:[], s:{s:o, s:o, s:o, s:b}, s:[]}", "dev_root",
                         opt->dev_root, "dev_root_missing", (int) d->dev_root_missing,
                         "kubelet_dir", opt->kubelet_dir, "devices", "in_use", "dcap_enclave",
                         node_json(&d->dcap_enclave), "dcap_provision",
                         node_json(&d->dcap_provision), "ias_enclave", node_json(&d->ias_enclave),
                         "dcap_legacy", (int) d->dcap_legacy, "resources");
        if (!root)
                return -ENOMEM;
        devices = json_object_get(root, "devices");
        resources = json_object_get(root, "resources");
        refused = json_array();
        if (json_object_set_new(root, "refused", refused) < 0)
                goto out_free_root;
        for (size_t i = 0; i < d->n_refused; i++)
                if (json_array_append_new(refused, refused_json(&d->refused[i])) < 0)
                        goto out_free_root;
        if (caps && json_object_set_new(root, "capabilities", caps_json(opt, caps)) < 0)
                goto out_free_root;
        other = json_array();
        if (json_object_set_new(root, "other_plugins", other) < 0)
                goto out_free_root;
        for (size_t i = 0; i < rep->n_other; i++) {
                const struct other_plugin *o = &rep->other[i];

                if (json_array_append_new(other, json_pack("{s:s, s:s?, s:b}", "socket", o->socket,
                                                           "resource", o->resource, "conflict",
                                                           (int) o->conflict)) < 0)
                        goto out_free_root;
        }

        for (size_t i = 0; i < d->n_entries; i++) {
                const struct discovery_entry *e = &d->entries[i];

                if (json_array_append_new(devices,
                                          json_pack("{s:s, s:s, s:s, s:b, s:s, s:I, s:I}", "name",
                                                    e->name, "class", sgx_class_name(e->cls),
                                                    "role", sgx_role_name(e->role), "link",
                                                    (int) e->is_link, "host_path", e->host_path,
                                                    "major", (json_int_t) e->major, "minor",
                                                    (json_int_t) e->minor)) < 0)
                        goto out_free_root;
        }
        for (size_t i = 0; i < rep->n_res; i++) {
                const struct resource_view *v = &rep->res[i];

                if (json_array_append_new(resources,
                                          json_pack("{s:s, s:s, s:I, s:s, s:s, s:o}", "name",
                                                    v->name, "kind", sgx_kind_name(v->kind), "count",
                                                    (json_int_t) v->count, "health",
                                                    dp_health_name(v->health), "socket", v->socket,
                                                    "allocate", alloc_json(v))) < 0)
                        goto out_free_root;
        }

        r = json_text(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER, 0, &text, NULL);
        if (r < 0)
                goto out_free_root;
        fprintf(out, "%s\n", text);
        free(text);
        r = 0;

out_free_root:
        json_decref(root);
        return r;
}

int probe_report(FILE *out, const struct cli_options *opt, const struct discovery *d,
                 const struct sgx_caps *caps) {
        struct report rep;
        int r;

        r = collect(opt, d, caps ? caps->epc_bytes : 0, &rep);
        if (r < 0)
                return r;
        if (opt->json)
                r = print_json(out, opt, d, caps, &rep);
        else
                print_text(out, opt, d, caps, &rep);
        if (r < 0)
                return r;
        if (fflush(out) != 0 || ferror(out))
                return -EIO;
        return 0;
}
