/*
 * test_capabilities_fault.c - the fault twin of test_capabilities.c: every allocation of
 * cpuid_record_parse(), caps_read_kernel() and caps_collect() made to fail in turn
 * (failmalloc.h). Each must return -ENOMEM or exactly the facts it returns without the failure:
 * an allocation failure must never pass for a missing file (no EPC, no flags), which would turn
 * into a wrong verdict and wrong node labels.
 */
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "capabilities.h"
#include "discovery.h"
#include "failmalloc.h"
#include "unit.h"

static char top[64];

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path);
}

/* Writes |text| to TOP/rel, making the parent directories. */
static void put(const char *rel, const char *text) {
        char p[512];
        FILE *f;

        snprintf(p, sizeof(p), "%s/%s", top, rel);
        for (char *s = p + strlen(top) + 1; (s = strchr(s, '/')); s++) {
                *s = '\0';
                mkdir(p, 0755);
                *s = '/';
        }
        f = fopen(p, "w");
        CHECK(f != NULL);
        if (f) {
                fputs(text, f);
                fclose(f);
        }
}

static const char *in_top(const char *rel, char *buf, size_t size) {
        snprintf(buf, size, "%s/%s", top, rel);
        return buf;
}

/* The facts that must not change when an allocation fails. */
static bool same_caps(const struct sgx_caps *a, const struct sgx_caps *b) {
        return a->verdict == b->verdict && a->epc_bytes == b->epc_bytes &&
               a->sgx2_usable == b->sgx2_usable && a->flc == b->flc && a->driver == b->driver &&
               a->kernel.cpuinfo_read == b->kernel.cpuinfo_read &&
               a->kernel.flag_sgx == b->kernel.flag_sgx &&
               a->kernel.flag_sgx_lc == b->kernel.flag_sgx_lc &&
               a->kernel.n_nodes == b->kernel.n_nodes &&
               a->kernel.epc_bytes == b->kernel.epc_bytes &&
               strcmp(a->kernel.release, b->kernel.release) == 0 &&
               a->cpu.epc_bytes == b->cpu.epc_bytes && a->cpu.sgx2 == b->cpu.sgx2 &&
               strcmp(a->verdict_line, b->verdict_line) == 0;
}

static const char record[] = "# leaf subleaf eax ebx ecx edx\n"
                             "0x0 0x0 0x1b 0x756e6547 0x6c65746e 0x49656e69\n"
                             "0x7 0x0 0x0 0x4 0x40000000 0x0\n"
                             "0x12 0x0 0x3 0x0 0x0 0x0\n";

static void test_capabilities_fault_collect(void) {
        struct sgx_caps want, got;
        struct discovery d;
        char proc[256], sys[256], cpuid[256], err[256];
        unsigned long n;

        put("p/cpuinfo", "processor : 0\nflags : fpu sgx sgx_lc\n");
        put("p/sys/kernel/osrelease", "6.8.0-31-generic\n");
        put("s/devices/system/node/node0/x86/sgx_total_bytes", "2126512128\n");
        put("s/devices/system/node/node1/x86/sgx_total_bytes", "2134900736\n");
        put("rec.cpuid", record);
        in_top("p", proc, sizeof(proc));
        in_top("s", sys, sizeof(sys));
        in_top("rec.cpuid", cpuid, sizeof(cpuid));
        memset(&d, 0, sizeof(d));
        d.dcap_enclave.present = true;
        snprintf(d.dcap_enclave.host_path, DISCOVERY_PATH_MAX, "/dev/sgx_enclave");

        memset(&want, 0, sizeof(want));
        CHECK_INT(caps_collect(proc, sys, cpuid, &d, &want, err, sizeof(err)), 0);
        CHECK(want.kernel.cpuinfo_read);
        CHECK_INT(want.kernel.n_nodes, 2);

        for (n = 1; n < FAILMALLOC_MAX_STEPS; n++) {
                int r;

                memset(&got, 0, sizeof(got));
                failmalloc_arm(n);
                r = caps_collect(proc, sys, cpuid, &d, &got, err, sizeof(err));
                failmalloc_disarm();
                if (!failmalloc_fired()) {
                        CHECK_INT(r, 0);
                        CHECK(same_caps(&got, &want));
                        break;
                }
                if (r == 0) {
                        if (!same_caps(&got, &want))
                                fprintf(stderr, "allocation %lu failed: got \"%s\"\n", n,
                                        got.verdict_line);
                        CHECK(same_caps(&got, &want));
                } else {
                        CHECK_INT(r, -ENOMEM);
                }
        }
        /* caps_collect, caps_read_facts, the record file and text, cpuinfo, osrelease, 2 nodes */
        CHECK(n > 7);
}

static void test_capabilities_fault_record_parse(void) {
        unsigned long n;

        for (n = 1; n < FAILMALLOC_MAX_STEPS; n++) {
                struct cpuid_record rec;
                char err[128];
                int r;

                failmalloc_arm(n);
                r = cpuid_record_parse(record, sizeof(record) - 1, &rec, err, sizeof(err));
                failmalloc_disarm();
                if (!failmalloc_fired()) {
                        CHECK_INT(r, 0);
                        CHECK_INT(rec.n, 3);
                        break;
                }
                CHECK_INT(r, -ENOMEM);
        }
        CHECK_INT(n, 2);
}

int main(void) {
        snprintf(top, sizeof(top), "/tmp/test_caps_fault.XXXXXX");
        if (!mkdtemp(top))
                return 2;
        RUN(test_capabilities_fault_collect);
        RUN(test_capabilities_fault_record_parse);
        nftw(top, remove_one, 16, FTW_DEPTH | FTW_PHYS);
        return unit_done();
}
