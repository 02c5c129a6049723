/*
 * plugin.c - the node (see plugin.h). Owns the node's device state, one dp_service and one reg
 * per resource, the inotify watches and the safety-net rescan timer.
 *
 * Everything here is level-triggered: an inotify event (any of them), the rescan timer and
 * start-up all run one resync that looks at the world as it is now - which directories exist,
 * which devices are present, whether our sockets are still ours, which kubelet.sock (by inode)
 * is up - and acts on the differences. A missed or coalesced event therefore costs nothing but
 * latency, and the same code handles a late kubelet, a kubelet restart and a removed directory.
 *
 * Each change of devices also re-evaluates the node's SGX capabilities (capabilities.c: the CPU's
 * and the kernel's facts, read once at start, with the devices now present) and, with --label-node
 * and/or --epc-resource, hands the labels and the EPC capacity they imply to the labeler's thread,
 * which talks to the API server: nothing here waits on it. A kubelet that starts after the one we
 * first saw (which started our pod, and had registered the node) may reset the node's extended
 * capacity: once every resource is registered with it, the capacity is sent again.
 *
 * Two things a look at the world cannot tell, and the events that say them. A kubelet restart
 * that is over before we look may leave a kubelet.sock with the old one's inode number (the
 * filesystem reuses it): the event that removed kubelet.sock is kept until the next look, which
 * then counts it as a new kubelet. And a kubelet dir removed while our sockets are bound in it
 * sends no IN_DELETE_SELF (they pin it): its parent is watched too, so its removal and
 * re-creation are seen.
 */
#include "plugin.h"

#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "apiclient.h"
#include "capabilities.h"
#include "cdispec.h"
#include "deviceplugin.h"
#include "discovery.h"
#include "draplugin.h"
#include "labeler.h"
#include "fileio.h"
#include "log.h"
#include "loop.h"
#include "registration.h"
#include "resources.h"
#include "slices.h"

#define MAX_WATCHES 5
#define KUBELET_SOCKET "kubelet.sock"
#define WATCH_MASK                                                                             \
        (IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF | \
         IN_ONLYDIR)

struct resource {
        enum sgx_kind kind;
        struct dp_config cfg;              /* the node's, with this resource's slot count */
        char name[SGX_RESOURCE_NAME_SIZE]; /* "sgx.k8s.io/dcap" */
        char socket_path[PATH_MAX]; /* DIR/sgxdevplugin-dcap.sock */
        struct dp_service *svc;     /* NULL while the kubelet dir does not exist */
        struct reg *reg;
        uint64_t reg_started_usec;  /* when the current registration started */
        bool dropped_while_pending; /* its stream ended before Register was answered */
        struct plugin *plugin;      /* back pointer, borrowed */
};

struct plugin {
        struct loop *loop;             /* borrowed */
        const struct node_config *opt; /* borrowed */
        struct dp_config cfg;

        /* devices */
        struct discovery disc;
        bool scanned;   /* disc holds a scan */
        int scan_error; /* last scan error logged, to log changes once */

        /* resources */
        struct resource res[SGX_KIND_MAX];
        size_t n_res;

        /* capabilities and labels */
        struct sgx_cpu cpu; /* read once at start: they do not change */
        struct sgx_kernel kernel;
        uint64_t epc_bytes;          /* caps_epc_bytes(), 0 when unknown */
        char verdict_line[256];      /* last verdict logged */
        struct labeler *labeler;     /* NULL without --label-node and --epc-resource */
        struct dra_plugin *dra;      /* NULL without --dra */
        struct dra_slices *slices;   /* NULL without --dra: the node's ResourceSlice */

        /* CDI */
        struct cdispec *cdi; /* NULL without --cdi or --dra */

        /* kubelet */
        char kubelet_sock[PATH_MAX];
        bool kubelet_up;      /* kubelet.sock exists; k_dev/k_ino name it */
        bool kubelet_removed; /* an event said kubelet.sock went since the last look */
        dev_t k_dev;
        ino_t k_ino;
        uint64_t kubelet_seen_usec; /* when we saw this kubelet.sock, for the timing log */
        unsigned kubelets_seen;     /* kubelet instances seen since start */
        bool timing_pending;        /* log once all resources registered */
        bool kdir_missing_logged, devroot_missing_logged;

        /* event sources */
        int inotify_fd;
        struct loop_source *inotify_src;
        int wds[MAX_WATCHES];
        size_t n_wds;
        struct loop_source *rescan;
};

static void resync(struct plugin *p);
static void drain_inotify(struct plugin *p);

/* ---- watches ---- */

static void sync_watches(struct plugin *p) {
        char paths[4][PATH_MAX], parent[PATH_MAX];
        size_t n = 0;
        int wds[MAX_WATCHES];
        size_t n_wds = 0;

        fileio_nearest_existing(p->opt->kubelet_dir, paths[n++], PATH_MAX);
        fileio_parent_dir(p->opt->kubelet_dir, parent, sizeof(parent));
        fileio_nearest_existing(parent, paths[n++], PATH_MAX);
        fileio_nearest_existing(p->opt->dev_root, paths[n++], PATH_MAX);
        snprintf(paths[n], PATH_MAX, "%s/sgx", p->opt->dev_root);
        if (fileio_is_dir(paths[n]))
                n++;

        for (size_t i = 0; i < n; i++) {
                int wd = inotify_add_watch(p->inotify_fd, paths[i], WATCH_MASK);
                if (wd < 0) {
                        log_warn(NULL, paths[i], "cannot watch directory: %s, relying on rescans",
                                 strerror(errno));
                        continue;
                }
                wds[n_wds++] = wd;
        }
        /* drop watches no longer wanted (one that vanished with its dir fails harmlessly) */
        for (size_t i = 0; i < p->n_wds; i++) {
                bool keep = false;
                for (size_t j = 0; j < n_wds; j++)
                        keep = keep || wds[j] == p->wds[i];
                if (!keep)
                        (void) inotify_rm_watch(p->inotify_fd, p->wds[i]);
        }
        memcpy(p->wds, wds, n_wds * sizeof(int));
        p->n_wds = n_wds;
}

/* ---- devices ---- */

static void log_devices(const struct plugin *p, const struct discovery *d) {
        if (!discovery_has_dcap(d) && !discovery_has_ias(d)) {
                log_info(NULL, p->opt->dev_root, "no SGX enclave device found");
                return;
        }
        if (discovery_has_dcap(d))
                log_info(NULL, d->dcap_enclave.host_path, "DCAP enclave device %u:%u%s%s",
                         d->dcap_enclave.major, d->dcap_enclave.minor,
                         d->dcap_provision.present ? ", provisioning device " : "",
                         d->dcap_provision.present ? d->dcap_provision.host_path : "");
        if (discovery_has_ias(d))
                log_info(NULL, d->ias_enclave.host_path, "IAS enclave device %u:%u",
                         d->ias_enclave.major, d->ias_enclave.minor);
}

/*
 * Evaluates the node's SGX capabilities with the devices now present, logs the verdict when it
 * changed, and hands the labels and EPC capacity they imply to the labeler (which sends only
 * what changed).
 */
static void sync_capabilities(struct plugin *p) {
        struct labeler_state st = {0};
        struct sgx_caps caps;

        caps_evaluate(&p->cpu, &p->kernel, &p->disc, &caps);
        if (strcmp(caps.verdict_line, p->verdict_line) != 0) {
                log_info(NULL, p->opt->dev_root, "SGX capability: %s: %s",
                         sgx_verdict_name(caps.verdict), caps.verdict_line);
                snprintf(p->verdict_line, sizeof(p->verdict_line), "%s", caps.verdict_line);
        }
        if (p->slices) {
                struct dra_pool pool;

                dra_pool_desired(&caps, &p->disc, &pool);
                pool.slots = p->opt->dra_slots ? p->opt->max_pods : 0;
                dra_slices_set(p->slices, &pool);
                if (p->dra)
                        dra_plugin_set_devices(p->dra, &pool);
        }
        if (!p->labeler)
                return;
        if (p->opt->label_node)
                labels_desired(p->opt->domain, p->opt->compat & SGX_COMPAT_INTEL, &caps,
                               &st.labels);
        st.epc_bytes = capacity_epc_desired(&caps);
        labeler_update(p->labeler, &st);
}

/*
 * One warn line per device node refused as not SGX (discovery.c), naming the SGX path, the node
 * it resolves to, its numbers and why: nothing of it is advertised or mapped.
 */
static void log_refusals(const struct plugin *p, const struct discovery *d) {
        for (size_t i = 0; i < d->n_refused; i++) {
                const struct discovery_refused *x = &d->refused[i];

                log_warn(NULL, x->path,
                         "refusing %s device node: target=%s dev=%u:%u reason=%s: %s%s%s%s; not advertised or mapped",
                         sgx_class_name(x->cls), x->target, x->major, x->minor,
                         discovery_refusal_name(x->reason), discovery_refusal_reason(x->reason),
                         x->kernel_name[0] ? " \"" : "", x->kernel_name,
                         x->kernel_name[0] ? "\"" : "");
        }
}

static void sync_devices(struct plugin *p) {
        struct discovery d;
        bool same_refusals;
        int r = discovery_scan_at(p->opt->dev_root, p->opt->sys_root, &d);

        if (r < 0) {
                if (r != p->scan_error)
                        log_error(NULL, p->opt->dev_root, "cannot scan for SGX devices: %s",
                                  strerror(-r));
                p->scan_error = r;
                memset(&d, 0, sizeof(d));
        } else {
                p->scan_error = 0;
        }
        if (d.dev_root_missing && !p->devroot_missing_logged)
                log_warn(NULL, p->opt->dev_root, "device root does not exist yet, watching for it");
        p->devroot_missing_logged = d.dev_root_missing;

        /* Refusals are logged when they change, not on every rescan. */
        same_refusals = p->scanned && discovery_same_refusals(&p->disc, &d);
        if (!same_refusals)
                log_refusals(p, &d);
        if (p->scanned && discovery_same_devices(&p->disc, &d)) {
                if (!same_refusals) {
                        p->disc = d; /* the verdict tells of refusals */
                        sync_capabilities(p);
                }
                if (p->cdi && p->cdi->pending) /* the last write failed: again */
                        (void) cdispec_sync(p->cdi, &p->disc);
                return;
        }
        log_devices(p, &d);
        p->disc = d;
        p->scanned = true;
        for (size_t i = 0; i < p->n_res; i++)
                if (p->res[i].svc)
                        dp_service_update(p->res[i].svc, &p->disc);
        if (p->cdi)
                (void) cdispec_sync(p->cdi, &p->disc);
        sync_capabilities(p);
}

/* ---- kubelet ---- */

/* Starts (or restarts) the registration of |res| with the kubelet that is up now. */
static void register_resource(struct resource *res) {
        res->reg_started_usec = loop_now_usec();
        res->dropped_while_pending = false;
        reg_start(res->reg);
}

static void on_stream_ended(struct dp_service *s, size_t remaining, uint64_t opened_usec,
                            void *userdata) {
        struct resource *res = userdata;
        struct plugin *p = res->plugin;
        struct stat st;

        /* only the stream of our current registration matters, and only when it was the last */
        if (remaining > 0 || !p->kubelet_up || opened_usec < res->reg_started_usec)
                return;
        /*
         * A kubelet restart shows as its streams ending too. If kubelet.sock was removed since
         * the last look, a new kubelet (perhaps with the old inode number) is coming: leave it
         * to a resync, which we bring forward since the events it needs were just read.
         */
        drain_inotify(p);
        if (p->kubelet_removed) {
                loop_timer_arm(p->rescan, 1, PLUGIN_RESCAN_USEC);
                return;
        }
        if (stat(p->kubelet_sock, &st) < 0 || st.st_dev != p->k_dev || st.st_ino != p->k_ino)
                return; /* a new kubelet: the resync registers with it */
        if (!reg_is_registered(res->reg)) {
                /* the kubelet may open and drop the stream before it answers Register */
                res->dropped_while_pending = true;
                return;
        }
        log_warn(res->name, p->kubelet_sock,
                 "kubelet ended the ListAndWatch stream while still up, registering again");
        register_resource(res);
}

static void on_registered(struct reg *r, void *userdata) {
        struct resource *res = userdata;
        struct plugin *p = res->plugin;

        if (res->dropped_while_pending) {
                log_warn(res->name, p->kubelet_sock,
                         "kubelet ended the ListAndWatch stream before answering Register, registering again");
                register_resource(res);
                return;
        }
        if (!p->timing_pending)
                return;
        for (size_t i = 0; i < p->n_res; i++)
                if (!reg_is_registered(p->res[i].reg))
                        return;
        p->timing_pending = false;
        /* a kubelet after the first may have reset our extended capacity: send it again */
        if (p->labeler && p->kubelets_seen > 1)
                labeler_reassert_capacity(p->labeler);
        log_info(NULL, p->kubelet_sock,
                 "all %zu resources registered %.1f ms after kubelet.sock appeared", p->n_res,
                 (double) (loop_now_usec() - p->kubelet_seen_usec) / 1000.0);
}

/*
 * Binds the sockets of services not created yet; with |kubelet_changed| (a new kubelet.sock:
 * the kubelet restarted and wiped its directory) also re-binds every socket no longer ours.
 * A socket of ours removed while the same kubelet stays up is left alone: during a rolling update
 * the new pod unlinks and re-binds the path, and it must keep it. The kubelet only dials us when
 * we register, and we re-bind before every registration with a new kubelet.
 * Returns true when the kubelet dir exists.
 */
static bool sync_sockets(struct plugin *p, bool kubelet_changed) {
        if (!fileio_is_dir(p->opt->kubelet_dir)) {
                if (!p->kdir_missing_logged)
                        log_warn(NULL, p->opt->kubelet_dir,
                                 "kubelet device-plugin directory does not exist yet, watching for it");
                p->kdir_missing_logged = true;
                return false;
        }
        p->kdir_missing_logged = false;
        for (size_t i = 0; i < p->n_res; i++) {
                struct resource *res = &p->res[i];
                int r;

                if (!res->svc) {
                        r = dp_service_new(p->loop, &res->cfg, res->kind, res->socket_path, &p->disc,
                                           on_stream_ended, res, &res->svc);
                        if (r < 0)
                                log_error(res->name, res->socket_path,
                                          "cannot serve the device-plugin socket: %s, retrying on the next change",
                                          strerror(-r));
                        else
                                log_info(res->name, res->socket_path, "serving");
                } else if (kubelet_changed && !dp_service_owns_socket(res->svc)) {
                        r = dp_service_relisten(res->svc);
                        if (r < 0)
                                log_error(res->name, res->socket_path,
                                          "cannot re-create the device-plugin socket: %s, retrying on the next change",
                                          strerror(-r));
                        else
                                log_info(res->name, res->socket_path,
                                         "socket was removed, serving again");
                }
        }
        return true;
}

static void sync_kubelet(struct plugin *p) {
        struct stat st;
        bool dir, removed;

        if (p->n_res == 0)
                return; /* --no-device-plugin */
        dir = sync_sockets(p, false);
        removed = p->kubelet_removed;
        p->kubelet_removed = false;
        if (dir && stat(p->kubelet_sock, &st) == 0 && S_ISSOCK(st.st_mode)) {
                /* the same inode number is the same kubelet, unless we saw it removed meanwhile */
                if (p->kubelet_up && st.st_dev == p->k_dev && st.st_ino == p->k_ino && !removed)
                        return;
                log_info(NULL, p->kubelet_sock, "%s, registering %zu resources",
                         p->kubelet_up ? "kubelet restarted" : "kubelet is up", p->n_res);
                p->kubelet_up = true;
                p->k_dev = st.st_dev;
                p->k_ino = st.st_ino;
                p->kubelet_seen_usec = loop_now_usec();
                p->kubelets_seen++;
                p->timing_pending = true;
                sync_sockets(p, true);
                for (size_t i = 0; i < p->n_res; i++)
                        register_resource(&p->res[i]);
                return;
        }
        if (p->kubelet_up) {
                log_warn(NULL, p->kubelet_sock, "kubelet socket is gone, waiting for the kubelet");
                p->kubelet_up = false;
                p->timing_pending = false;
                for (size_t i = 0; i < p->n_res; i++)
                        reg_stop(p->res[i].reg);
        }
}

/* ---- events ---- */

static void resync(struct plugin *p) {
        sync_watches(p);
        sync_devices(p);
        sync_kubelet(p);
}

/*
 * Reads every queued event, keeping only the fact that kubelet.sock was removed (or that events
 * were lost, which may have said so). Runs before every look at the world, so that an event
 * read after a look is always about a change that look did not see.
 */
static void drain_inotify(struct plugin *p) {
        char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));

        for (;;) {
                ssize_t n = read(p->inotify_fd, buf, sizeof(buf));
                if (n <= 0)
                        break;
                for (size_t off = 0; off + sizeof(struct inotify_event) <= (size_t) n;) {
                        const struct inotify_event *ev = (const void *) (buf + off);

                        /* by name in any watched dir: the kubelet dir's watch may be a new one */
                        if ((ev->mask & IN_Q_OVERFLOW) ||
                            ((ev->mask & (IN_DELETE | IN_MOVED_FROM)) && ev->len > 0 &&
                             strcmp(ev->name, KUBELET_SOCKET) == 0))
                                p->kubelet_removed = true;
                        off += sizeof(struct inotify_event) + ev->len;
                }
        }
}

static void on_inotify(struct loop_source *s, int fd, uint32_t events, void *userdata) {
        struct plugin *p = userdata;

        /* drain everything queued, then look at the world once */
        drain_inotify(p);
        resync(p);
}

static void on_rescan(struct loop_source *s, void *userdata) {
        struct plugin *p = userdata;

        drain_inotify(p);
        resync(p);
}

/* ---- lifetime ---- */

int plugin_check_list_size(const struct node_config *opt) {
        struct dp_config cfg = {.domain = opt->domain, .slots = opt->max_pods};

        /* the --max-pods kinds; the EPC kinds are cut to fit instead (add_resource) */
        for (enum sgx_kind k = 0; k < SGX_KIND_MAX; k++) {
                uint8_t *buf;
                size_t len;
                int r;

                const struct sgx_resource_options ro = {
                        .provision_resource = opt->provision_resource,
                        .compat = opt->compat,
                };

                if (sgx_resource(k)->slots != SGX_SLOTS_MAX_PODS || !sgx_kind_enabled(k, &ro))
                        continue;
                r = dp_encode_list(&cfg, k, DP_HEALTH_UNHEALTHY, &buf, &len);
                if (r < 0)
                        return r;
                free(buf);
                if (len >= DP_LIST_LIMIT)
                        return -EMSGSIZE;
        }
        return 0;
}

static int add_resource(struct plugin *p, enum sgx_kind kind) {
        struct resource *res = &p->res[p->n_res];
        int r;

        res->kind = kind;
        res->plugin = p;
        r = sgx_resource_name(p->opt->domain, kind, res->name, sizeof(res->name));
        if (r < 0)
                return r;
        res->cfg = p->cfg;
        res->cfg.slots = sgx_kind_slots(kind, p->opt->max_pods, p->epc_bytes);
        if (sgx_resource(kind)->slots == SGX_SLOTS_EPC_MIB) {
                unsigned fit = dp_slots_that_fit(kind, res->cfg.slots);

                if (fit < res->cfg.slots)
                        log_warn(res->name, NULL,
                                 "%u MiB of EPC make a device list over the kubelet's limit, advertising %u devices",
                                 res->cfg.slots, fit);
                else if (res->cfg.slots == 0)
                        log_warn(res->name, NULL, "the EPC size is unknown, advertising no devices");
                res->cfg.slots = fit;
        }
        r = sgx_socket_path(p->opt->kubelet_dir, kind, res->socket_path, sizeof(res->socket_path));
        if (r < 0)
                return r;
        r = reg_new(p->loop, p->kubelet_sock, res->name, strrchr(res->socket_path, '/') + 1,
                    on_registered, res, &res->reg);
        if (r < 0)
                return r;
        p->n_res++;
        return 0;
}

/* Reads the CPU's and the kernel's SGX facts once (--cpuid-file, --proc-root, --sys-root). */
static int setup_facts(struct plugin *p) {
        char err[256] = "";
        int r = caps_read_facts(p->opt->proc_root, p->opt->sys_root, p->opt->cpuid_file, &p->cpu,
                                &p->kernel, err, sizeof(err));

        if (r < 0)
                log_error(NULL, p->opt->cpuid_file, "cannot read the SGX capability facts: %s",
                          err[0] ? err : strerror(-r));
        return r;
}

/*
 * With --label-node and/or --epc-resource: the API server's address and credentials, and the
 * labeler's thread, which keeps both through one worker.
 */
static int setup_labeler(struct plugin *p) {
        const struct node_config *opt = p->opt;
        struct labeler_config cfg = {
                .domain = opt->domain,
                .node_name = opt->node_name,
                .labels = opt->label_node,
                .capacity = opt->epc_resource,
                .intel = opt->compat & SGX_COMPAT_INTEL,
                .interval_ms = opt->label_interval_ms,
        };
        char err[512] = "";
        int r;

        if (!opt->label_node && !opt->epc_resource)
                return 0;
        r = api_config_init(&cfg.api, opt->apiserver, opt->token_file, opt->ca_file,
                            opt->api_timeout_ms, err, sizeof(err));
        if (r < 0) {
                log_error(NULL, opt->apiserver, "cannot %s the node: %s",
                          opt->label_node ? "label" : "publish the EPC capacity of",
                          err[0] ? err : strerror(-r));
                return r;
        }
        /*
         * One malloc arena for the process, set before the labeler's thread exists: glibc would
         * give that thread an arena of its own, whose freed pages (OpenSSL's, after each PATCH)
         * stay resident; in the main heap the worker's malloc_trim() returns them.
         */
        mallopt(M_ARENA_MAX, 1);
        r = labeler_start(&cfg, &p->labeler);
        if (r < 0) {
                log_error(NULL, NULL, "cannot start the node labeller: %s", strerror(-r));
                return r;
        }
        log_info(NULL, NULL, "%s node %s%s through https://%s%s%s:%s",
                 opt->label_node ? "labelling" : "publishing the EPC capacity of", opt->node_name,
                 opt->label_node && opt->epc_resource ? " and publishing its EPC capacity" : "",
                 cfg.api.host_is_ip && strchr(cfg.api.host, ':') ? "[" : "", cfg.api.host,
                 cfg.api.host_is_ip && strchr(cfg.api.host, ':') ? "]" : "", cfg.api.port);
        return 0;
}

/* With --cdi: the spec file's state; the first scan writes it. */
static int setup_cdi(struct plugin *p) {
        const struct sgx_cdi_config cfg = {
                .domain = p->opt->domain,
                .kinds = {.provision_resource = p->opt->provision_resource,
                          .compat = p->opt->compat},
                .edits = p->cfg.edits,
        };
        int r;

        /* --dra writes it too: a prepared claim's CDI IDs resolve in it */
        if (!p->opt->cdi && !p->opt->dra)
                return 0;
        p->cdi = malloc(sizeof(*p->cdi));
        if (!p->cdi)
                return -ENOMEM;
        r = cdispec_init(p->cdi, p->opt->cdi_dir, &cfg);
        if (r < 0) {
                log_error(NULL, p->opt->cdi_dir, "cannot write the CDI spec here: %s",
                          strerror(-r));
                return r;
        }
        return 0;
}

/*
 * With --dra: the DRA driver's kubelet side (src/dra/draplugin.c: its own sockets and watches,
 * and claims.c's worker, which reads claims and checkpoints them) and the publisher of the
 * node's ResourceSlice (src/dra/slices.c: a worker thread of its own).
 */
static int setup_dra(struct plugin *p) {
        const struct node_config *opt = p->opt;
        struct dra_config cfg = {
                .driver = opt->domain,
                .registry_dir = opt->plugins_registry,
                .dra_dir = opt->dra_dir,
                .pool = opt->node_name,
                .provision = opt->provision,
        };
        struct dra_slices_config scfg = {
                .driver = opt->domain,
                .node_name = opt->node_name,
                .interval_ms = opt->label_interval_ms,
        };
        char err[512] = "";
        int r;

        if (!opt->dra)
                return 0;
        r = api_config_init(&scfg.api, opt->apiserver, opt->token_file, opt->ca_file,
                            opt->api_timeout_ms, err, sizeof(err));
        if (r < 0) {
                log_error(opt->domain, opt->apiserver, "cannot publish ResourceSlices: %s",
                          err[0] ? err : strerror(-r));
                return r;
        }
        mallopt(M_ARENA_MAX, 1); /* before the worker exists: see setup_labeler() */
        r = dra_slices_start(&scfg, &p->slices);
        if (r < 0) {
                log_error(opt->domain, NULL, "cannot start the ResourceSlice publisher: %s",
                          strerror(-r));
                return r;
        }
        cfg.api = &scfg.api; /* claims are read where the slices go */
        r = dra_plugin_new(p->loop, &cfg, &p->dra);
        if (r < 0)
                log_error(opt->domain, opt->dra_dir, "cannot start the DRA driver: %s",
                          strerror(-r));
        return r;
}

int plugin_new(struct loop *l, const struct node_config *opt, struct plugin **ret) {
        struct plugin *p = calloc(1, sizeof(*p));
        int r;

        if (!p)
                return -ENOMEM;
        p->loop = l;
        p->opt = opt;
        p->inotify_fd = -1;
        p->cfg = (struct dp_config){
                .domain = opt->domain,
                .slots = opt->max_pods,
                .edits = {.provision = opt->provision, .aesmd_dir = opt->aesmd_dir},
                .cdi = opt->cdi,
        };
        if ((size_t) snprintf(p->kubelet_sock, sizeof(p->kubelet_sock), "%s/" KUBELET_SOCKET,
                              opt->kubelet_dir) >= sizeof(p->kubelet_sock)) {
                r = -ENAMETOOLONG;
                goto out_free;
        }
        /* the facts first: the EPC kinds' slot counts come from them */
        r = setup_facts(p);
        if (r < 0)
                goto out_free;
        p->epc_bytes = caps_epc_bytes(&p->cpu, &p->kernel);
        for (enum sgx_kind k = 0; !opt->no_device_plugin && k < SGX_KIND_MAX; k++) {
                const struct sgx_resource_options ro = {
                        .provision_resource = opt->provision_resource,
                        .compat = opt->compat,
                };

                if (!sgx_kind_enabled(k, &ro))
                        continue;
                r = add_resource(p, k);
                if (r < 0)
                        goto out_free;
        }

        p->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        if (p->inotify_fd < 0) {
                r = -errno;
                goto out_free;
        }
        r = loop_add_io(l, p->inotify_fd, EPOLLIN, on_inotify, p, &p->inotify_src);
        if (r < 0)
                goto out_free;
        r = loop_add_timer(l, on_rescan, p, &p->rescan);
        if (r < 0)
                goto out_free;
        r = loop_timer_arm(p->rescan, PLUGIN_RESCAN_USEC, PLUGIN_RESCAN_USEC);
        if (r < 0)
                goto out_free;
        r = setup_labeler(p);
        if (r < 0)
                goto out_free;
        r = setup_cdi(p);
        if (r < 0)
                goto out_free;
        r = setup_dra(p);
        if (r < 0)
                goto out_free;

        resync(p);
        *ret = p;
        return 0;

out_free:
        plugin_free(p);
        return r;
}

struct plugin *plugin_free(struct plugin *p) {
        if (!p)
                return NULL;
        p->dra = dra_plugin_free(p->dra);
        p->slices = dra_slices_stop(p->slices);
        p->labeler = labeler_stop(p->labeler);
        if (p->cdi) {
                cdispec_release(p->cdi);
                free(p->cdi);
                p->cdi = NULL;
        }
        for (size_t i = 0; i < p->n_res; i++) {
                p->res[i].svc = dp_service_free(p->res[i].svc);
                p->res[i].reg = reg_free(p->res[i].reg);
        }
        p->rescan = loop_source_free(p->rescan);
        p->inotify_src = loop_source_free(p->inotify_src);
        if (p->inotify_fd >= 0)
                close(p->inotify_fd);
        free(p);
        return NULL;
}
