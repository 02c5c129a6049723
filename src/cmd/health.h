/*
 * health.h - `sgxdevplugin health`: a liveness check of a running daemon from outside it. Calls
 * GetDevicePluginOptions on each of the daemon's own sockets in --kubelet-dir and, with --dra, its
 * DRA sockets' cheapest calls, all at once on a private event loop, and reports one line per
 * socket. Exit codes are main.c's.
 */
#pragma once

#include <stdio.h>

struct cli_options;

/*
 * Checks DIR/sgxdevplugin-{sgx,dcap,ias}.sock and, when it exists, DIR/sgxdevplugin-provision.sock
 * (DIR is opt->kubelet_dir; none with opt->no_device_plugin) and, with opt->dra,
 * <plugins_registry>/D-reg.sock (GetInfo must answer a PluginInfo of type DRAPlugin named D, the
 * domain) and <dra_dir>/dra.sock (NodeUnprepareResources of no claims must answer an empty
 * response), each call bounded by opt->health_timeout_ms, and writes one line per socket to
 * |out|: "<resource> <socket>: ok (answered in N ms)" or "<resource> <socket>: FAILED: <why>",
 * where <resource> is "dra-registration" and "dra-plugin" for the DRA sockets. Returns 0 when every socket answered OK, the number of sockets that did not (> 0), or
 * -ENAMETOOLONG / -ENOMEM / -errno from the event loop when the check could not run at all (then
 * the one line written says so).
 */
int health_check(FILE *out, const struct cli_options *opt);
