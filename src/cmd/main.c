/*
 * main.c - the entry point: parses the command line, runs `probe`, `health` or the daemon, maps
 * results to exit codes (0 ok, 1 runtime failure, 2 bad usage). Owns the loop, the signals and
 * the node's lifetime; turns the command line into the node's configuration.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "capabilities.h"
#include "cli.h"
#include "discovery.h"
#include "health.h"
#include "log.h"
#include "loop.h"
#include "plugin.h"
#include "probe.h"

static int run_probe(const struct cli_options *opt) {
        struct discovery d;
        struct sgx_caps caps;
        char err[512];
        int r = discovery_scan_at(opt->dev_root, opt->sys_root, &d);
        if (r < 0) {
                fprintf(stderr, "sgxdevplugin: cannot scan %s: %s\n", opt->dev_root, strerror(-r));
                return 1;
        }
        r = caps_collect(opt->proc_root, opt->sys_root, opt->cpuid_file, &d, &caps, err,
                         sizeof(err));
        if (r < 0) {
                if (err[0])
                        fprintf(stderr, "sgxdevplugin: --cpuid-file: %s\n", err);
                else
                        fprintf(stderr, "sgxdevplugin: cannot read the SGX capabilities: %s\n",
                                strerror(-r));
                return 1;
        }
        return probe_report(stdout, opt, &d, &caps) < 0 ? 1 : 0;
}

/* The node's configuration from the command line (strings stay argv's). */
static void node_config_from(const struct cli_options *opt, struct node_config *ret) {
        *ret = (struct node_config){
                .kubelet_dir = opt->kubelet_dir,
                .dev_root = opt->dev_root,
                .domain = opt->domain,
                .max_pods = opt->max_pods,
                .provision = opt->provision,
                .provision_resource = opt->provision_resource,
                .aesmd_dir = opt->aesmd_dir,
                .compat = opt->compat,
                .cdi = opt->cdi,
                .cdi_dir = opt->cdi_dir,
                .proc_root = opt->proc_root,
                .sys_root = opt->sys_root,
                .cpuid_file = opt->cpuid_file,
                .label_node = opt->label_node,
                .epc_resource = opt->epc_resource,
                .node_name = opt->node_name,
                .apiserver = opt->apiserver,
                .token_file = opt->token_file,
                .ca_file = opt->ca_file,
                .api_timeout_ms = opt->api_timeout_ms,
                .label_interval_ms = opt->label_interval_ms,
                .no_device_plugin = opt->no_device_plugin,
                .dra_slots = opt->dra_slots,
                .dra = opt->dra,
                .plugins_registry = opt->plugins_registry,
                .dra_dir = opt->dra_dir,
        };
}

/* SIGTERM and SIGINT end the loop with 0; the node's cleanup runs after it. */
static void on_signal(struct loop_source *s, int signo, void *userdata) {
        struct loop *l = userdata;

        log_info(NULL, NULL, "received %s, shutting down", signo == SIGTERM ? "SIGTERM" : "SIGINT");
        loop_quit(l, 0);
}

static int run_daemon(const struct cli_options *opt) {
        struct loop *l = NULL;
        struct loop_source *sigterm = NULL, *sigint = NULL;
        struct plugin *p = NULL;
        struct node_config cfg;
        int r;

        node_config_from(opt, &cfg);
        r = plugin_check_list_size(&cfg);
        if (r == -EMSGSIZE) {
                fprintf(stderr,
                        "sgxdevplugin: --max-pods: %u slots make a ListAndWatch answer over 3 MiB (the kubelet reads at most 4 MiB); use fewer\n",
                        opt->max_pods);
                return 2;
        }
        if (r < 0) {
                log_error(NULL, NULL, "cannot start: %s", strerror(-r));
                return 1;
        }
        /* a peer that vanishes mid-write must not kill us: writes report EPIPE instead */
        signal(SIGPIPE, SIG_IGN);

        r = loop_new(&l);
        if (r < 0)
                goto out;
        log_info(NULL, NULL,
                 "sgxdevplugin %s starting: kubelet dir %s, dev root %s, %u slots per resource, domain %s, provisioning %s%s%s%s%s",
                 SGXDEVPLUGIN_VERSION, opt->kubelet_dir, opt->dev_root, opt->max_pods, opt->domain,
                 opt->provision ? "mapped" : "not mapped", opt->aesmd_dir ? ", aesmd dir " : "",
                 opt->aesmd_dir ? opt->aesmd_dir : "", opt->cdi ? ", CDI spec in " : "",
                 opt->cdi ? opt->cdi_dir : "");
        r = loop_add_signal(l, SIGTERM, on_signal, l, &sigterm);
        if (r < 0)
                goto out;
        r = loop_add_signal(l, SIGINT, on_signal, l, &sigint);
        if (r < 0)
                goto out;
        r = plugin_new(l, &cfg, &p);
        if (r < 0)
                goto out;
        r = loop_run(l);
out:
        if (r < 0)
                log_error(NULL, NULL, "fatal: %s", strerror(-r));
        p = plugin_free(p);
        sigterm = loop_source_free(sigterm);
        sigint = loop_source_free(sigint);
        l = loop_free(l);
        if (r >= 0)
                log_info(NULL, NULL, "stopped");
        return r < 0 ? 1 : 0;
}

int main(int argc, char **argv) {
        struct cli_options opt;
        char err[512];

        if (cli_parse(argc, argv, &opt, err, sizeof(err)) < 0) {
                fprintf(stderr, "sgxdevplugin: %s\n", err);
                cli_usage(stderr);
                return 2;
        }
        log_setup(opt.log_level, opt.log_format);

        switch (opt.command) {
        case CLI_HELP:
                cli_usage(stdout);
                return 0;
        case CLI_VERSION:
                printf("sgxdevplugin %s\n", SGXDEVPLUGIN_VERSION);
                return 0;
        case CLI_PROBE:
                return run_probe(&opt);
        case CLI_HEALTH:
                return health_check(stdout, &opt) == 0 ? 0 : 1;
        case CLI_RUN:
                break;
        }
        return run_daemon(&opt);
}
