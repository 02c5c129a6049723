/*
 * fuzz_caps.c - libFuzzer target for the capability decoders of capabilities.h that read
 * outside input: the recorded-CPUID parser (cpuid_record_parse), the CPUID decoding over what it
 * parsed (caps_decode_cpuid through cpuid_recorded) and the verdict over it (caps_evaluate, for
 * several device layouts and kernels), and the kernel-file decoders caps_parse_cpuinfo,
 * caps_parse_release and caps_parse_u64 (the last against an independent reference). Every
 * length-taking function gets an exact-size heap copy, so ASan sees a read past the end.
 *
 * Input: the whole input goes to every decoder (a recording, a cpuinfo, a release, a number).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "capabilities.h"
#include "discovery.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *copy(const uint8_t *p, size_t n, bool nul) {
        char *c = malloc(n + (nul ? 1 : 0) ? n + (nul ? 1 : 0) : 1);

        if (!c)
                abort();
        if (n)
                memcpy(c, p, n);
        if (nul)
                c[n] = '\0';
        return c;
}

static void check(bool ok, const char *what) {
        if (!ok) {
                fprintf(stderr, "fuzz_caps: broken promise: %s\n", what);
                abort();
        }
}

/* A decimal number, then only blanks and newlines, written independently. */
static int ref_u64(const char *s, size_t n, uint64_t *ret) {
        unsigned __int128 v = 0;
        size_t i = 0;

        while (i < n && s[i] >= '0' && s[i] <= '9') {
                v = v * 10 + (unsigned) (s[i] - '0');
                if (v > UINT64_MAX)
                        v = (unsigned __int128) UINT64_MAX + 1; /* stays "too big" */
                i++;
        }
        if (i == 0)
                return -EINVAL;
        for (; i < n; i++)
                if (!strchr(" \t\r\n\v\f", s[i]) || s[i] == '\0')
                        return -EINVAL;
        if (v > UINT64_MAX)
                return -ERANGE;
        *ret = (uint64_t) v;
        return 0;
}

static void fuzz_record(const char *text, size_t n) {
        struct cpuid_record *rec = malloc(sizeof(*rec));
        struct sgx_kernel *k = calloc(1, sizeof(*k));
        struct discovery *d = calloc(1, sizeof(*d));
        struct sgx_caps *c = malloc(sizeof(*c));
        struct sgx_cpu cpu;
        char err[128];
        uint64_t sum = 0;
        int r;

        if (!rec || !k || !d || !c)
                abort();
        memset(err, 'x', sizeof(err));
        r = cpuid_record_parse(text, n, rec, err, sizeof(err));
        check(r == 0 || r == -EINVAL, "cpuid_record_parse returns 0 or -EINVAL");
        if (r < 0) {
                check(memchr(err, '\0', sizeof(err)) != NULL, "the error is a string");
                check(strchr(err, '\n') == NULL, "the error is one line");
                goto out_free;
        }
        check(rec->n >= 1 && rec->n <= CAPS_MAX_CPUID_RECORDS, "entry count in range");

        caps_decode_cpuid(cpuid_recorded, rec, &cpu);
        check(cpu.valid, "a parsed recording is a CPUID source");
        check(strlen(cpu.vendor) <= 12, "vendor is NUL-terminated");
        check(!cpu.sgx1 || cpu.sgx, "SGX1 only with SGX");
        check(!cpu.sgx2 || cpu.sgx, "SGX2 only with SGX");
        check(cpu.n_epc_sections <= CAPS_MAX_EPC_SECTIONS, "section count in range");
        check(cpu.max_enclave_bits_32 <= 0xff && cpu.max_enclave_bits_64 <= 0xff, "8-bit fields");
        for (unsigned i = 0; i < cpu.n_epc_sections; i++) {
                check((cpu.epc[i].size & 0xfff) == 0 && cpu.epc[i].size < (1ull << 52),
                      "a section size is bits 51:12");
                sum += cpu.epc[i].size;
        }
        check(sum == cpu.epc_bytes, "epc_bytes is the sum of the sections");

        /* the verdict over this CPU: no device, the in-kernel driver, isgx; two kernels */
        for (int layout = 0; layout < 3; layout++) {
                for (int kern = 0; kern < 2; kern++) {
                        memset(d, 0, sizeof(*d));
                        memset(k, 0, sizeof(*k));
                        if (layout == 1) {
                                d->dcap_enclave.present = true;
                                snprintf(d->dcap_enclave.host_path, DISCOVERY_PATH_MAX,
                                         "/dev/sgx_enclave");
                        } else if (layout == 2) {
                                d->ias_enclave.present = true;
                                snprintf(d->ias_enclave.host_path, DISCOVERY_PATH_MAX, "/dev/isgx");
                        }
                        if (kern == 1) {
                                snprintf(k->release, sizeof(k->release), "6.2.0");
                                k->major = 6;
                                k->minor = 2;
                                k->cpuinfo_read = true;
                                k->flag_sgx = k->flag_sgx_lc = true;
                        }
                        caps_evaluate(&cpu, k, d, c);
                        check(c->verdict_line[0] != '\0', "a verdict line");
                        check(strchr(c->verdict_line, '\n') == NULL, "the verdict is one line");
                        check((c->verdict == SGX_VERDICT_USABLE) == (layout != 0),
                              "usable exactly when a device is present");
                        check(!c->sgx2_usable || (cpu.sgx2 && layout == 1 && kern == 1),
                              "SGX2 usable only with SGX2, the in-kernel driver and 6.0+");
                        check(strcmp(sgx_verdict_name(c->verdict), "unknown") != 0,
                              "a named verdict");
                }
        }
out_free:
        free(c);
        free(d);
        free(k);
        free(rec);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *exact = copy(data, size, false), *str = copy(data, size, true);
        uint64_t v = 0, ref = 0;
        unsigned ma = 0, mi = 0;
        bool sgx = false, lc = false;
        int r, rr;

        fuzz_record(exact, size);

        r = caps_parse_cpuinfo(exact, size, &sgx, &lc);
        check(r == 0 || r == -ENOENT, "caps_parse_cpuinfo returns 0 or -ENOENT");

        r = caps_parse_release(str, &ma, &mi);
        check(r == 0 || r == -EINVAL, "caps_parse_release returns 0 or -EINVAL");
        if (r == 0)
                check(str[0] >= '0' && str[0] <= '9' && strchr(str, '.') != NULL,
                      "a release starts with N.N");

        r = caps_parse_u64(exact, size, &v);
        rr = ref_u64(exact, size, &ref);
        check(r == rr, "caps_parse_u64 agrees with the reference on the result");
        check(r != 0 || v == ref, "caps_parse_u64 agrees with the reference on the value");

        free(str);
        free(exact);
        return 0;
}
