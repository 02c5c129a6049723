/*
 * cli.h - the command line: flags, sub-commands, validation and usage text. Pure: parses argv into
 * a struct and a one-line error; printing and exiting are main.c's.
 */
#pragma once

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "log.h"

/* Defaults and bounds. Numbers are plain decimal literals: --help shows them as written. */
#define CLI_DEFAULT_KUBELET_DIR "/var/lib/kubelet/device-plugins"
#define CLI_DEFAULT_DEV_ROOT "/dev"
#define CLI_DEFAULT_MAX_PODS 110
#define CLI_MAX_MAX_PODS 100000
#define CLI_DEFAULT_DOMAIN "sgx.k8s.io"
#define CLI_DEFAULT_HEALTH_TIMEOUT_S 5
#define CLI_MAX_TIMEOUT_MS 3600000 /* every seconds flag: at most an hour */
#define CLI_DEFAULT_PROC_ROOT "/proc"
#define CLI_DEFAULT_SYS_ROOT "/sys"
#define CLI_DEFAULT_API_TIMEOUT_S 10
#define CLI_DEFAULT_LABEL_INTERVAL_S 600 /* re-assert the labels every 10 minutes */
#define CLI_DEFAULT_CDI_DIR "/var/run/cdi"
#define CLI_DEFAULT_PLUGINS_REGISTRY "/var/lib/kubelet/plugins_registry"
#define CLI_DEFAULT_DRA_PARENT "/var/lib/kubelet/plugins" /* --dra-dir is this/D */
#define CLI_MAX_DRA_SLOTS 512 /* --dra-slots: --max-pods at most this (DRA_MAX_SLOTS) */

enum cli_command {
        CLI_RUN,     /* the daemon */
        CLI_PROBE,   /* print what is found and would be advertised */
        CLI_HEALTH,  /* check that the daemon's sockets answer */
        CLI_HELP,    /* --help */
        CLI_VERSION, /* --version */
};

/* Strings are borrowed from argv. */
struct cli_options {
        enum cli_command command;
        const char *kubelet_dir;    /* --kubelet-dir */
        const char *dev_root;       /* --dev-root */
        unsigned max_pods;          /* --max-pods, 1..100000 */
        const char *domain;         /* --resource-domain */
        bool provision;             /* map provisioning devices with the enclave (--no-provision) */
        bool provision_resource;    /* also register D/provision (--provision-resource) */
        const char *aesmd_dir;      /* --aesmd-dir, NULL when off */
        unsigned compat;            /* --compat: enum sgx_compat bits */
        enum log_format log_format; /* --log-format */
        enum log_level log_level;   /* --log-level */
        bool json;                  /* probe --json */
        unsigned health_timeout_ms; /* health --timeout, 1 ms..3600 s */

        /* capability facts (capabilities.c) */
        const char *proc_root;  /* --proc-root: where the host's /proc is visible */
        const char *sys_root;   /* --sys-root: where the host's /sys is visible */
        const char *cpuid_file; /* --cpuid-file: recorded CPUID registers; NULL = this CPU */

        /* node labels (labeler.c, apiclient.c) */
        bool label_node;             /* --label-node */
        bool epc_resource;           /* --epc-resource: D/epc in the node's status.capacity */
        const char *node_name;       /* --node-name, else $NODE_NAME; required with --label-node */
        const char *apiserver;       /* --apiserver https://HOST[:PORT]; NULL = in-cluster */
        const char *token_file;      /* --token-file; NULL = the service account's */
        const char *ca_file;         /* --ca-file; NULL = the service account's ca.crt */
        unsigned api_timeout_ms;     /* --api-timeout: one API request, 1 ms..3600 s */
        unsigned label_interval_ms;  /* --label-interval: re-assert period, 1 ms..3600 s */

        /* CDI (cdi.c, cdispec.c) */
        bool cdi;            /* --cdi: write a CDI spec, Allocate names its devices */
        const char *cdi_dir; /* --cdi-dir: where the spec goes */
        /* DRA driver (src/dra/) */
        bool dra;                     /* --dra */
        bool no_device_plugin;        /* --no-device-plugin (needs --dra) */
        bool dra_slots;               /* --dra-slots: --max-pods exclusive devices per class */
        const char *plugins_registry; /* --plugins-registry, absolute */
        const char *dra_dir;          /* --dra-dir, absolute; default CLI_DEFAULT_DRA_PARENT/D,
                                         then pointing into dra_dir_buf */
        char dra_dir_buf[PATH_MAX];
};

/*
 * Parses argv (argv[0] is the program). On success returns 0 and fills *ret. On a malformed flag
 * or value returns -EINVAL and writes one line naming the flag into |err| (no newline).
 * The node name defaults to the environment's NODE_NAME (the downward API in the chart).
 */
int cli_parse(int argc, char **argv, struct cli_options *ret, char *err, size_t errsz);

/* Writes the usage text. */
void cli_usage(FILE *f);
