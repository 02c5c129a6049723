/*
 * plugin.h - the node: its SGX devices and the resources served for them. Ties device scans to
 * the device-plugin services (their sockets and ListAndWatch streams) and to registration with
 * the kubelet; watches --dev-root and --kubelet-dir with inotify (and their nearest existing
 * ancestor while they do not exist yet), with a slow periodic rescan as a safety net; with
 * --label-node, keeps the node's labels in step with its devices through the labeler, and with
 * --epc-resource its EPC capacity (re-sent after each kubelet restart) through the same worker;
 * with --cdi, keeps the CDI spec file in step with them (cdispec.c).
 */
#pragma once

#include <stdbool.h>

struct loop;
struct plugin;

/* What the node runs with: filled by the entry layer (from the command line). Strings borrowed. */
struct node_config {
        const char *kubelet_dir; /* the kubelet's device-plugin directory */
        const char *dev_root;    /* where the host's /dev is visible */
        const char *domain;      /* resource domain: D/sgx, D/dcap, ... and label prefix */
        unsigned max_pods;       /* slots advertised per resource */
        bool provision;          /* map provisioning devices with the enclave */
        bool provision_resource; /* also register D/provision */
        const char *aesmd_dir;   /* mounted into containers, NULL when off */
        unsigned compat;         /* enum sgx_compat bits: the other plugins' names also served */
        bool cdi;                /* write a CDI spec; Allocate names its devices */
        const char *cdi_dir;     /* where the CDI spec goes (--cdi-dir) */

        /* capability facts */
        const char *proc_root;
        const char *sys_root;
        const char *cpuid_file; /* recorded CPUID registers; NULL = this CPU */

        /* node labels and EPC capacity, through the API server */
        bool label_node;
        bool epc_resource; /* D/epc (--compat intel: sgx.intel.com/epc) in status.capacity */
        const char *node_name;
        const char *apiserver;  /* https://HOST[:PORT]; NULL = in-cluster */
        const char *token_file; /* NULL = the service account's */
        const char *ca_file;    /* NULL = the service account's ca.crt */
        unsigned api_timeout_ms;
        unsigned label_interval_ms;

        /* DRA (src/dra/) */
        bool no_device_plugin;        /* --no-device-plugin: serve no device-plugin socket */
        bool dra;                     /* serve the DRA kubelet plugin API (--dra) */
        bool dra_slots;               /* publish max_pods exclusive devices per class */
        const char *plugins_registry; /* the kubelet's plugins_registry directory */
        const char *dra_dir;          /* our DRA directory (dra.sock), absolute */
};

#define PLUGIN_RESCAN_USEC (30u * 1000000u) /* safety-net rescan period */

/*
 * Creates the node state from |cfg| (borrowed: must outlive the plugin), binds our sockets if the
 * kubelet dir exists, and registers if kubelet.sock exists; otherwise logs and waits. Signals are
 * the caller's. Returns 0, -ENOMEM, -errno from inotify or the loop, -EINVAL (a bad --cpuid-file, no API
 * server to label the node through: logged).
 */
int plugin_new(struct loop *l, const struct node_config *cfg, struct plugin **ret);

/* Ends the streams, removes our sockets (only those still ours), stops registering.
 * Accepts NULL, returns NULL. */
struct plugin *plugin_free(struct plugin *p);

/*
 * Checks that the largest ListAndWatch answer |cfg| implies stays under the limit the kubelet
 * reads. Returns 0, -EMSGSIZE, -ENOMEM.
 */
int plugin_check_list_size(const struct node_config *cfg);
