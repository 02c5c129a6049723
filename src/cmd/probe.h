/*
 * probe.h - `sgxdevplugin probe`: reports the SGX device nodes found under --dev-root, the node's
 * SGX capabilities (CPUID, kernel, driver, verdict) and what the daemon would advertise and map
 * with the same flags, as aligned text for an operator or as one JSON document. Pure output:
 * scanning is discovery.c's and capabilities.c's, exit codes are main.c's.
 */
#pragma once

#include <stdio.h>

struct cli_options;
struct discovery;
struct sgx_caps;

/*
 * Writes the report for |d| (the result of discovery_scan(opt->dev_root)) and |caps| (the result
 * of caps_collect over |d|; NULL leaves the capabilities out) to |out|: one JSON document when
 * opt->json, else text ending with the verdict line. The Allocate mappings shown are those of the
 * real handler (dp_handle_allocate). Returns 0, -ENOMEM, -EPROTO (the handler's answer did not
 * decode) or -EIO (writing to |out| failed).
 */
int probe_report(FILE *out, const struct cli_options *opt, const struct discovery *d,
                 const struct sgx_caps *caps);
