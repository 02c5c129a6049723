/*
 * cli.h - the command line: flags, sub-commands, validation and usage text. Pure: parses argv into
 * a struct and a one-line error; printing and exiting are main.c's.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "log.h"

#define CLI_DEFAULT_KUBELET_DIR "/var/lib/kubelet/device-plugins"
#define CLI_DEFAULT_DEV_ROOT "/dev"
#define CLI_DEFAULT_MAX_PODS 110u
#define CLI_MAX_MAX_PODS 100000u
#define CLI_DEFAULT_DOMAIN "sgx.k8s.io"
#define CLI_DEFAULT_HEALTH_TIMEOUT_MS 5000u
#define CLI_MAX_HEALTH_TIMEOUT_MS 3600000u

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
        enum log_format log_format; /* --log-format */
        enum log_level log_level;   /* --log-level */
        bool json;                  /* probe --json */
        unsigned health_timeout_ms; /* health --timeout, 1 ms..3600 s */
};

/*
 * Parses argv (argv[0] is the program). On success returns 0 and fills *ret. On a malformed flag
 * or value returns -EINVAL and writes one line naming the flag into |err| (no newline).
 */
int cli_parse(int argc, char **argv, struct cli_options *ret, char *err, size_t errsz);

/* Writes the usage text. */
void cli_usage(FILE *f);
