/*
 * test_cdi_fault.c - the fault twin of test_cdi.c: the CDI spec rendered with each of its
 * allocations (jansson's included) made to fail in turn is -ENOMEM with nothing handed back, or
 * the exact spec a run without failures renders; never a mangled document.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdi.h"
#include "discovery.h"
#include "failmalloc.h"
#include "fake_nodes.h"
#include "unit.h"

static void test_cdi_fault_render(void) {
        struct sgx_cdi_config cfg = {
                .domain = "sgx.k8s.io",
                .kinds = {.provision_resource = true, .compat = SGX_COMPAT_INTEL},
                .edits = {.provision = true, .aesmd_dir = "/var/run/aesmd"},
        };
        struct discovery d = {0};
        char *want = NULL, *got;
        size_t want_len = 0, len;
        unsigned long n;
        int r;

        set_node(&d.dcap_enclave, "/dev/sgx_enclave", 10, 125);
        set_node(&d.dcap_provision, "/dev/sgx_provision", 10, 126);
        failmalloc_hook_jansson();
        CHECK_INT(sgx_cdi_render(&cfg, &d, &want, &want_len), 0);
        if (!want)
                return;
        for (n = 1; n < FAILMALLOC_MAX_STEPS; n++) {
                got = NULL;
                len = 0;
                failmalloc_arm(n);
                r = sgx_cdi_render(&cfg, &d, &got, &len);
                failmalloc_disarm();
                if (r == 0) {
                        CHECK_INT(len, want_len);
                        CHECK_STR(got, want);
                        free(got);
                } else {
                        CHECK_INT(r, -ENOMEM);
                        CHECK(got == NULL);
                }
                if (!failmalloc_fired())
                        break;
        }
        CHECK(n > 5); /* the spec took several allocations, each made to fail */
        free(want);
}

int main(void) {
        RUN(test_cdi_fault_render);
        return unit_done();
}
