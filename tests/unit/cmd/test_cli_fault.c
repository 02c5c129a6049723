/*
 * test_cli_fault.c - the fault twin of test_cli.c, and of the container edits it leads to
 * (sgx/edits.c): flag parsing and the edits allocate nothing, so an allocation failure cannot
 * touch them. failmalloc.h counts every allocation our code makes; the count must not move,
 * whether the flags are good or bad.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "discovery.h"
#include "edits.h"
#include "failmalloc.h"
#include "unit.h"

static void test_cli_fault_parse_allocates_nothing(void) {
        char *good[] = {"sgxdevplugin",
                        "--kubelet-dir",
                        "/var/lib/kubelet/device-plugins",
                        "--dev-root",
                        "/host",
                        "--max-pods",
                        "250",
                        "--resource-domain",
                        "sgx.example.com",
                        "--provision-resource",
                        "--aesmd-dir",
                        "/var/run/aesmd",
                        "--log-format",
                        "json",
                        "--log-level",
                        "debug",
                        "--label-node",
                        "--node-name",
                        "n1",
                        "--api-timeout",
                        "5",
                        "--label-interval",
                        "600",
                        NULL};
        char *bad[] = {"sgxdevplugin", "--max-pods", "-1", NULL};
        struct cli_options o;
        char err[256] = "";
        unsigned long before = failmalloc_count();

        failmalloc_arm(1);
        CHECK_INT(cli_parse(sizeof(good) / sizeof(good[0]) - 1, good, &o, err, sizeof(err)), 0);
        if (err[0])
                fprintf(stderr, "%s\n", err);
        CHECK_INT(cli_parse(3, bad, &o, err, sizeof(err)), -EINVAL);
        failmalloc_disarm();
        CHECK(!failmalloc_fired());
        CHECK_INT(failmalloc_count(), before);
}

static void test_cli_fault_edits_allocate_nothing(void) {
        struct sgx_edit_config cfg = {.provision = true, .aesmd_dir = "/var/run/aesmd"};
        struct discovery d;
        struct sgx_edits e;
        unsigned long before = failmalloc_count();

        memset(&d, 0, sizeof(d));
        d.dcap_enclave.present = true;
        strcpy(d.dcap_enclave.host_path, "/dev/sgx_enclave");
        d.dcap_provision.present = true;
        strcpy(d.dcap_provision.host_path, "/dev/sgx_provision");
        failmalloc_arm(1);
        for (int k = 0; k < SGX_KIND_MAX; k++)
                (void) sgx_edits_for((enum sgx_kind) k, &cfg, &d, &e);
        CHECK_INT(sgx_edits_for(SGX_KIND_DCAP, &cfg, &d, &e), 0);
        failmalloc_disarm();
        CHECK(!failmalloc_fired());
        CHECK_INT(failmalloc_count(), before);
        CHECK(sgx_edits_n_specs(&e) >= 2);
}

int main(void) {
        RUN(test_cli_fault_parse_allocates_nothing);
        RUN(test_cli_fault_edits_allocate_nothing);
        return unit_done();
}
