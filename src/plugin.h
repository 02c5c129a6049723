/*
 * plugin.h - the node: its SGX devices and the resources served for them. Ties device scans to
 * the device-plugin services (their sockets and ListAndWatch streams) and to registration with
 * the kubelet; watches --dev-root and --kubelet-dir with inotify (and their nearest existing
 * ancestor while they do not exist yet), with a slow periodic rescan as a safety net; with
 * --label-node, keeps the node's labels in step with its devices through the labeler.
 */
#pragma once

#include <stdbool.h>

struct loop;
struct cli_options;
struct plugin;

#define PLUGIN_RESCAN_USEC (30u * 1000000u) /* safety-net rescan period */

/*
 * Creates the node state from |opt| (borrowed: must outlive the plugin), binds our sockets if the
 * kubelet dir exists, and registers if kubelet.sock exists; otherwise logs and waits.
 * SIGTERM and SIGINT end the loop with 0 after plugin_free()'s cleanup is due.
 * Returns 0, -ENOMEM, -errno from inotify or the loop, -EINVAL (a bad --cpuid-file, no API
 * server to label the node through: logged).
 */
int plugin_new(struct loop *l, const struct cli_options *opt, struct plugin **ret);

/* Ends the streams, removes our sockets (only those still ours), stops registering.
 * Accepts NULL, returns NULL. */
struct plugin *plugin_free(struct plugin *p);

/*
 * Checks that the largest ListAndWatch answer |opt| implies stays under the limit the kubelet
 * reads. Returns 0, -EMSGSIZE, -ENOMEM.
 */
int plugin_check_list_size(const struct cli_options *opt);
