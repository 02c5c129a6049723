/*
 * test_capabilities.c - unit tests for src/capabilities.c: the recorded CPUs of
 * tests/fixtures/cpuid/ decoded to their exact facts, the record parser (good and malformed
 * input), the cpuinfo / release / number decoders, the kernel's view over fake proc and sys
 * trees under a temp dir, and the verdict for each trap.
 *
 * The fixtures are found from this file's path (__FILE__, relative to the build directory
 * meson runs the tests in), or from $SGXDEVPLUGIN_SRCDIR.
 */
#include "capabilities.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "discovery.h"
#include "unit.h"

#define MIB (1024ull * 1024ull)

static char top[64]; /* the mkdtemp dir */

static void setup(void) {
        snprintf(top, sizeof(top), "/tmp/test_caps.XXXXXX");
        if (!mkdtemp(top)) {
                perror("mkdtemp");
                exit(2);
        }
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path);
}

static void teardown(void) {
        nftw(top, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Writes |len| bytes (strlen when -1) to TOP/rel, making the parent directories. */
static void put_n(const char *rel, const char *text, ssize_t len) {
        char p[512];
        FILE *f;

        snprintf(p, sizeof(p), "%s/%s", top, rel);
        for (char *s = p + strlen(top) + 1; (s = strchr(s, '/')); s++) {
                *s = '\0';
                mkdir(p, 0755);
                *s = '/';
        }
        f = fopen(p, "w");
        if (!f) {
                perror(p);
                exit(2);
        }
        fwrite(text, 1, len < 0 ? strlen(text) : (size_t) len, f);
        fclose(f);
}

static void put(const char *rel, const char *text) {
        put_n(rel, text, -1);
}

static const char *in_top(const char *rel, char *buf, size_t size) {
        snprintf(buf, size, "%s/%s", top, rel);
        return buf;
}

/* The path of tests/fixtures/cpuid/NAME. */
static const char *fixture(const char *name, char *buf, size_t size) {
        const char *src = getenv("SGXDEVPLUGIN_SRCDIR");

        if (src) {
                snprintf(buf, size, "%s/tests/fixtures/cpuid/%s", src, name);
        } else {
                const char *f = __FILE__, *cut = strstr(f, "tests/unit/");

                snprintf(buf, size, "%.*stests/fixtures/cpuid/%s", (int) (cut ? cut - f : 0), f,
                         name);
                /* run from the source root rather than the build directory */
                if (access(buf, F_OK) < 0 && strncmp(buf, "../", 3) == 0)
                        memmove(buf, buf + 3, strlen(buf + 3) + 1);
        }
        return buf;
}

/* Decodes the recorded CPU |name|; a failed check when it does not load. */
static void decode_fixture(const char *name, struct sgx_cpu *cpu) {
        struct cpuid_record rec;
        char path[512], err[256];
        int r;

        r = cpuid_record_load(fixture(name, path, sizeof(path)), &rec, err, sizeof(err));
        if (r < 0)
                fprintf(stderr, "%s\n", err);
        CHECK_INT(r, 0);
        memset(cpu, 0xaa, sizeof(*cpu));
        caps_decode_cpuid(cpuid_recorded, &rec, cpu);
}

/* ---- the recorded CPUs ---- */

static void test_caps_decode_icelake_sp(void) {
        struct sgx_cpu c;

        decode_fixture("icelake-sp-xeon.cpuid", &c);
        CHECK(c.valid);
        CHECK_STR(c.vendor, "GenuineIntel");
        CHECK_INT(c.max_leaf, 0x1b);
        CHECK(!c.hypervisor);
        CHECK(c.sgx);
        CHECK(c.flc);
        CHECK(c.sgx1);
        CHECK(c.sgx2);
        CHECK_INT(c.max_enclave_bits_32, 31);
        CHECK_INT(c.max_enclave_bits_64, 56);
        CHECK_INT(c.n_epc_sections, 2);
        CHECK_INT(c.epc[0].base, 0x4000c00000ull);
        CHECK_INT(c.epc[0].size, 2028 * MIB);
        CHECK_INT(c.epc[1].base, 0x8000c00000ull);
        CHECK_INT(c.epc[1].size, 2036 * MIB);
        CHECK_INT(c.epc_bytes, 4064 * MIB);
}

static void test_caps_decode_skylake(void) {
        struct sgx_cpu c;

        decode_fixture("skylake-i7-6700k.cpuid", &c);
        CHECK(c.valid);
        CHECK_STR(c.vendor, "GenuineIntel");
        CHECK(!c.hypervisor);
        CHECK(c.sgx);
        CHECK(!c.flc);
        CHECK(c.sgx1);
        CHECK(!c.sgx2);
        CHECK_INT(c.max_enclave_bits_32, 31);
        CHECK_INT(c.max_enclave_bits_64, 36);
        CHECK_INT(c.n_epc_sections, 1);
        CHECK_INT(c.epc[0].base, 0x30200000);
        CHECK_INT(c.epc[0].size, 0x5d80000); /* 93.5 MiB */
        CHECK_INT(c.epc_bytes, 98041856);
}

static void test_caps_decode_skylake_sgx_off(void) {
        struct sgx_cpu c;

        decode_fixture("skylake-i7-6700k-sgx-off.cpuid", &c);
        CHECK(c.valid);
        CHECK(c.sgx);
        CHECK(!c.flc);
        CHECK(!c.sgx1);
        CHECK(!c.sgx2);
        CHECK_INT(c.max_enclave_bits_64, 0);
        CHECK_INT(c.n_epc_sections, 0);
        CHECK_INT(c.epc_bytes, 0);
}

static void test_caps_decode_coffeelake(void) {
        struct sgx_cpu c;

        decode_fixture("coffeelake-xeon-e2276g.cpuid", &c);
        CHECK(c.valid);
        CHECK(!c.hypervisor);
        CHECK(c.sgx);
        CHECK(c.flc);
        CHECK(c.sgx1);
        CHECK(!c.sgx2);
        CHECK_INT(c.max_enclave_bits_64, 36);
        CHECK_INT(c.n_epc_sections, 1);
        CHECK_INT(c.epc[0].base, 0x70200000);
        CHECK_INT(c.epc_bytes, 0x5d80000);
}

static void test_caps_decode_amd(void) {
        struct sgx_cpu c;

        decode_fixture("amd-ryzen7-1800x.cpuid", &c);
        CHECK(c.valid);
        CHECK_STR(c.vendor, "AuthenticAMD");
        CHECK_INT(c.max_leaf, 0xd);
        CHECK(!c.hypervisor);
        CHECK(!c.sgx);
        CHECK(!c.flc);
        CHECK(!c.sgx1);
        CHECK_INT(c.n_epc_sections, 0);
}

static void test_caps_decode_vm(void) {
        struct sgx_cpu c;

        decode_fixture("vm-alibaba-sgx2.cpuid", &c);
        CHECK(c.valid);
        CHECK(c.hypervisor);
        CHECK(c.sgx);
        CHECK(c.flc);
        CHECK(c.sgx1);
        CHECK(c.sgx2);
        CHECK_INT(c.n_epc_sections, 1);
        CHECK_INT(c.epc[0].base, 0x640000000ull);
        /* size bits 51:32 from EDX: 0x5_d0000000 */
        CHECK_INT(c.epc[0].size, 23808 * MIB);
        CHECK_INT(c.epc_bytes, 0x5d0000000ull);
}

/* ---- decoding rules ---- */

/* A source that records the leaves asked, over a record. */
struct asked {
        struct cpuid_record *rec;
        uint32_t max_asked;
        unsigned n_asked;
};

static int asking(uint32_t leaf, uint32_t subleaf, struct cpuid_regs *ret, void *userdata) {
        struct asked *a = userdata;

        if (leaf > a->max_asked)
                a->max_asked = leaf;
        a->n_asked++;
        return cpuid_recorded(leaf, subleaf, ret, a->rec);
}

static int parse_ok(const char *text, struct cpuid_record *rec) {
        char err[256];
        int r = cpuid_record_parse(text, strlen(text), rec, err, sizeof(err));

        if (r < 0)
                fprintf(stderr, "parse: %s\n", err);
        return r;
}

static void test_caps_decode_respects_max_leaf(void) {
        struct cpuid_record rec;
        struct asked a = {.rec = &rec};
        struct sgx_cpu c;

        /* maximum leaf 7: leaf 0x12 (which says SGX1 and an EPC here) must not be read */
        CHECK_INT(parse_ok("0 0 7 756e6547 6c65746e 49656e69\n"
                           "7 0 0 4 40000000 0\n"
                           "12 0 3 0 0 241f\n"
                           "12 2 70200001 0 5d80001 0\n",
                           &rec),
                  0);
        caps_decode_cpuid(asking, &a, &c);
        CHECK(c.valid);
        CHECK(c.sgx);
        CHECK(c.flc);
        CHECK(!c.sgx1);
        CHECK_INT(c.n_epc_sections, 0);
        CHECK_INT(a.max_asked, 7);

        /* maximum leaf 0: nothing but leaf 0 */
        CHECK_INT(parse_ok("0 0 0 756e6547 6c65746e 49656e69\n7 0 0 4 0 0\n", &rec), 0);
        a.max_asked = 0;
        a.n_asked = 0;
        caps_decode_cpuid(asking, &a, &c);
        CHECK(c.valid);
        CHECK(!c.sgx);
        CHECK_INT(a.n_asked, 1);
}

static void test_caps_decode_sgx_bit_gates_leaf_12(void) {
        struct cpuid_record rec;
        struct sgx_cpu c;

        /* leaf 0x12 filled but CPUID.7 without SGX: not read */
        CHECK_INT(parse_ok("0 0 16 756e6547 6c65746e 49656e69\n"
                           "7 0 0 0 0 0\n"
                           "12 0 1 0 0 241f\n"
                           "12 2 70200001 0 5d80001 0\n",
                           &rec),
                  0);
        caps_decode_cpuid(cpuid_recorded, &rec, &c);
        CHECK(!c.sgx);
        CHECK(!c.sgx1);
        CHECK_INT(c.epc_bytes, 0);
}

static void test_caps_decode_epc_section_types(void) {
        struct cpuid_record rec;
        struct sgx_cpu c;

        /* sub-leaf 2: a reserved type (skipped); 3: a 63.6 GiB section with EDX bits (Xeon
         * Gold 5315Y, ayeks/SGX-hardware#87); 4: invalid, ends; 5: never read */
        CHECK_INT(parse_ok("0 0 1b 756e6547 6c65746e 49656e69\n"
                           "7 0 0 4 40000000 0\n"
                           "12 0 403 1 0 381f\n"
                           "12 2 12345672 0 ffff0001 0\n"
                           "12 3 18000001 70 e7800002 f\n"
                           "12 4 0 0 0 0\n"
                           "12 5 10000001 0 10000001 0\n",
                           &rec),
                  0);
        caps_decode_cpuid(cpuid_recorded, &rec, &c);
        CHECK_INT(c.n_epc_sections, 1);
        CHECK_INT(c.epc[0].base, 0x7018000000ull);
        CHECK_INT(c.epc[0].size, 65144 * MIB);
        CHECK_INT(c.epc_bytes, 0xfe7800000ull);

        /* every sub-leaf valid (no end marker): at most CAPS_MAX_EPC_SECTIONS read */
        {
                char text[4096];
                size_t n = (size_t) snprintf(text, sizeof(text),
                                             "0 0 1b 756e6547 6c65746e 49656e69\n"
                                             "7 0 0 4 0 0\n12 0 1 0 0 241f\n");

                for (unsigned s = 2; s < 2 + CAPS_MAX_EPC_SECTIONS + 4; s++)
                        n += (size_t) snprintf(text + n, sizeof(text) - n,
                                               "12 %x 1 0 100001 fffff\n", s);
                CHECK_INT(parse_ok(text, &rec), 0);
        }
        caps_decode_cpuid(cpuid_recorded, &rec, &c);
        CHECK_INT(c.n_epc_sections, CAPS_MAX_EPC_SECTIONS);
        CHECK_INT(c.epc[0].size, 0xfffff00100000ull);
        CHECK_INT(c.epc_bytes, CAPS_MAX_EPC_SECTIONS * 0xfffff00100000ull);
}

static int no_cpuid(uint32_t leaf, uint32_t subleaf, struct cpuid_regs *ret, void *userdata) {
        return -ENOTSUP;
}

static void test_caps_decode_no_source(void) {
        struct sgx_cpu c;

        memset(&c, 0xaa, sizeof(c));
        caps_decode_cpuid(no_cpuid, NULL, &c);
        CHECK(!c.valid);
        CHECK(!c.sgx);
        CHECK_STR(c.vendor, "");
        caps_decode_cpuid(NULL, NULL, &c);
        CHECK(!c.valid);
}

static void test_caps_native(void) {
        struct cpuid_regs r;
        struct sgx_cpu c;
        int ret = cpuid_native(0, 0, &r, NULL);

#if defined(__x86_64__) || defined(__i386__)
        CHECK_INT(ret, 0);
        caps_decode_cpuid(cpuid_native, NULL, &c);
        CHECK(c.valid);
        CHECK_INT(strlen(c.vendor), 12);
        CHECK_INT(c.max_leaf, r.eax);
        /* a leaf above the maximum answers zeros */
        CHECK_INT(cpuid_native(c.max_leaf + 1, 0, &r, NULL), 0);
        CHECK(r.eax == 0 && r.ebx == 0 && r.ecx == 0 && r.edx == 0);
#else
        CHECK_INT(ret, -ENOTSUP);
        caps_decode_cpuid(cpuid_native, NULL, &c);
        CHECK(!c.valid);
#endif
}

/* ---- the record parser ---- */

static void test_caps_record_parse_good(void) {
        struct cpuid_record rec;
        struct cpuid_regs r;
        const char text[] = "# a comment\n"
                            "\n"
                            "   \t\n"
                            "0x0 0x0 0x16 0x756E6547 6c65746e 49656e69   # trailing comment\n"
                            "\t7\t0\t0\t29C6FBF\t0X40000000\t0\r\n"
                            "12 2 70200001 0 5d80001 ffffffff"; /* no newline at the end */

        CHECK_INT(parse_ok(text, &rec), 0);
        CHECK_INT(rec.n, 3);
        CHECK_INT(cpuid_recorded(7, 0, &r, &rec), 0);
        CHECK_INT(r.ebx, 0x29c6fbf);
        CHECK_INT(r.ecx, 0x40000000);
        CHECK_INT(cpuid_recorded(0x12, 2, &r, &rec), 0);
        CHECK_INT(r.edx, 0xffffffffu);
        /* not recorded: zeros */
        r.eax = 1;
        CHECK_INT(cpuid_recorded(0x12, 3, &r, &rec), 0);
        CHECK(r.eax == 0 && r.ebx == 0 && r.ecx == 0 && r.edx == 0);
        CHECK_INT(cpuid_recorded(0, 0, &r, &rec), 0);
        CHECK_INT(r.eax, 0x16);
}

/* Parses |text|, expects -EINVAL and |want| in the one-line error. */
static void parse_fails(const char *text, size_t len, const char *want) {
        struct cpuid_record rec;
        char err[256];
        int r;

        memset(err, 'x', sizeof(err));
        r = cpuid_record_parse(text, len, &rec, err, sizeof(err));
        CHECK_INT(r, -EINVAL);
        if (r == -EINVAL) {
                if (!strstr(err, want))
                        fprintf(stderr, "error \"%s\" lacks \"%s\"\n", err, want);
                CHECK(strstr(err, want) != NULL);
                CHECK(strchr(err, '\n') == NULL);
        }
}

#define LEAF0 "0 0 16 756e6547 6c65746e 49656e69\n"
/* |lit| is a string literal, NUL bytes in it included */
#define PARSE_FAILS(lit, want) parse_fails(lit, sizeof(lit) - 1, want)

static void test_caps_record_parse_errors(void) {
        static char big[CAPS_MAX_CPUID_RECORDS * 40 + 200];
        size_t n = 0;

        PARSE_FAILS(LEAF0 "# c\n7 0 0 4 0\n", "line 3: expected 6");
        PARSE_FAILS(LEAF0 "7 0 0 4 0 0 0\n", "got 7");
        PARSE_FAILS(LEAF0 "\n\n7 0 0 zz 0 0\n", "line 4: \"zz\"");
        PARSE_FAILS(LEAF0 "7 0 0 100000000 0 0\n", "\"100000000\"");
        PARSE_FAILS(LEAF0 "7 0 0 0x 0 0\n", "line 2: \"0x\"");
        PARSE_FAILS(LEAF0 "7 0 -1 0 0 0\n", "\"-1\"");
        PARSE_FAILS(LEAF0 "7 0 0 4 0 0\n7 0 1 1 1 1\n",
                    "line 3: leaf 0x7 sub-leaf 0x0 is given twice");
        PARSE_FAILS("7 0 0 4 0 0\n", "no entry for leaf 0");
        PARSE_FAILS("", "no entry for leaf 0");
        PARSE_FAILS("# only a comment\n", "no entry for leaf 0");
        PARSE_FAILS(LEAF0 "7 0 0\0 4 0 0\n", "line 2: a NUL byte");
        /* an error echoing control bytes stays one printable line */
        PARSE_FAILS(LEAF0 "7 0 0 4\x1b[31m 0 0\n", "line 2: \"4?[31m\"");

        n += (size_t) snprintf(big + n, sizeof(big) - n, LEAF0);
        for (unsigned i = 1; i <= CAPS_MAX_CPUID_RECORDS; i++)
                n += (size_t) snprintf(big + n, sizeof(big) - n, "12 %x 0 0 0 0\n", i);
        parse_fails(big, n, "line 129: too many entries");
}

static void test_caps_record_load(void) {
        struct cpuid_record rec;
        char path[512], err[512];
        char *huge;

        CHECK_INT(
                cpuid_record_load(in_top("nope.cpuid", path, sizeof(path)), &rec, err, sizeof(err)),
                -ENOENT);
        CHECK(strstr(err, path) != NULL);
        CHECK(strstr(err, "No such file") != NULL);

        CHECK_INT(cpuid_record_load(top, &rec, err, sizeof(err)), -EISDIR);
        CHECK(strstr(err, top) != NULL);

        put("bad.cpuid", LEAF0 "# x\n7 0 0 4 0\n");
        CHECK_INT(
                cpuid_record_load(in_top("bad.cpuid", path, sizeof(path)), &rec, err, sizeof(err)),
                -EINVAL);
        CHECK(strncmp(err, path, strlen(path)) == 0);
        CHECK(strstr(err, ": line 3: expected 6") != NULL);

        huge = malloc(CAPS_MAX_RECORD_FILE + 10);
        CHECK(huge != NULL);
        if (huge) {
                memset(huge, '#', CAPS_MAX_RECORD_FILE + 10);
                put_n("huge.cpuid", huge, CAPS_MAX_RECORD_FILE + 10);
                free(huge);
        }
        CHECK_INT(
                cpuid_record_load(in_top("huge.cpuid", path, sizeof(path)), &rec, err, sizeof(err)),
                -EFBIG);
        CHECK(strstr(err, "larger than") != NULL);

        put("good.cpuid", LEAF0 "7 0 0 4 0 0\n");
        CHECK_INT(
                cpuid_record_load(in_top("good.cpuid", path, sizeof(path)), &rec, err, sizeof(err)),
                0);
        CHECK_INT(rec.n, 2);
}

/* ---- the kernel's decoders ---- */

static int cpuinfo(const char *text, bool *sgx, bool *lc) {
        *sgx = *lc = true; /* must be overwritten */
        return caps_parse_cpuinfo(text, strlen(text), sgx, lc);
}

static void test_caps_parse_cpuinfo(void) {
        bool sgx, lc;
        const char two[] = "processor\t: 0\n"
                           "vendor_id\t: GenuineIntel\n"
                           "flags\t\t: fpu vme sgx sgx_lc avx512f\n"
                           "vmx flags\t: vnmi ept\n"
                           "\n"
                           "processor\t: 1\n"
                           "flags\t\t: fpu\n";

        CHECK_INT(cpuinfo(two, &sgx, &lc), 0);
        CHECK(sgx && lc);
        /* the first processor only */
        CHECK_INT(cpuinfo("processor : 0\nflags : fpu\n\nprocessor : 1\nflags : sgx sgx_lc\n", &sgx,
                          &lc),
                  0);
        CHECK(!sgx && !lc);
        /* whole words: sgx_lc alone is no sgx, sgx2/nosgx are neither */
        CHECK_INT(cpuinfo("flags : fpu sgx_lc\n", &sgx, &lc), 0);
        CHECK(!sgx && lc);
        CHECK_INT(cpuinfo("flags : sgx2 nosgx sgx_lcx xsgx_lc\n", &sgx, &lc), 0);
        CHECK(!sgx && !lc);
        /* the last word, no newline; a tab before it */
        CHECK_INT(cpuinfo("flags:fpu\tsgx", &sgx, &lc), 0);
        CHECK(sgx && !lc);
        /* "vmx flags" mentioning sgx is not "flags" */
        CHECK_INT(cpuinfo("vmx flags : sgx sgx_lc\n", &sgx, &lc), -ENOENT);
        CHECK_INT(cpuinfo("processor : 0\nflags_x : sgx\n", &sgx, &lc), -ENOENT);
        /* the first block ends before any flags line */
        CHECK_INT(cpuinfo("processor : 0\n\nflags : sgx\n", &sgx, &lc), -ENOENT);
        /* leading blank lines are not the end of the first block */
        CHECK_INT(cpuinfo("\n\nflags : sgx\n", &sgx, &lc), 0);
        CHECK(sgx);
        CHECK_INT(cpuinfo("", &sgx, &lc), -ENOENT);
        CHECK_INT(cpuinfo("flags", &sgx, &lc), -ENOENT);
        CHECK_INT(cpuinfo("flags :", &sgx, &lc), 0);
        CHECK(!sgx && !lc);
        /* a NUL byte inside the line ends no word early or late */
        CHECK_INT(caps_parse_cpuinfo("flags : s\0gx sgx", 16, &sgx, &lc), 0);
        CHECK(sgx && !lc);
        /* non-x86 cpuinfo: no flags line */
        CHECK_INT(cpuinfo("processor\t: 0\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd\n", &sgx, &lc),
                  -ENOENT);
}

static void test_caps_parse_release(void) {
        unsigned ma = 99, mi = 99;

        CHECK_INT(caps_parse_release("6.5.0-18-generic", &ma, &mi), 0);
        CHECK_INT(ma, 6);
        CHECK_INT(mi, 5);
        CHECK_INT(caps_parse_release("5.15.0-91-generic", &ma, &mi), 0);
        CHECK_INT(ma, 5);
        CHECK_INT(mi, 15);
        CHECK_INT(caps_parse_release("6.2", &ma, &mi), 0);
        CHECK_INT(mi, 2);
        CHECK_INT(caps_parse_release("10.0rc1", &ma, &mi), 0);
        CHECK_INT(ma, 10);
        CHECK_INT(mi, 0);
        ma = mi = 7;
        CHECK_INT(caps_parse_release("6", &ma, &mi), -EINVAL);
        CHECK_INT(caps_parse_release("6.", &ma, &mi), -EINVAL);
        CHECK_INT(caps_parse_release(".6", &ma, &mi), -EINVAL);
        CHECK_INT(caps_parse_release("", &ma, &mi), -EINVAL);
        CHECK_INT(caps_parse_release("v6.1", &ma, &mi), -EINVAL);
        CHECK_INT(caps_parse_release(" 6.1", &ma, &mi), -EINVAL);
        CHECK_INT(caps_parse_release("99999999999999999999.1", &ma, &mi), -EINVAL);
        CHECK_INT(caps_parse_release("6.99999999999999999999", &ma, &mi), -EINVAL);
        CHECK_INT(caps_parse_release(NULL, &ma, &mi), -EINVAL);
        /* unchanged on failure */
        CHECK_INT(ma, 7);
        CHECK_INT(mi, 7);
}

static void test_caps_parse_u64(void) {
        uint64_t v = 5;

        CHECK_INT(caps_parse_u64("1234\n", 5, &v), 0);
        CHECK_INT(v, 1234);
        CHECK_INT(caps_parse_u64("0", 1, &v), 0);
        CHECK_INT(v, 0);
        CHECK_INT(caps_parse_u64("2126512128 \n", 12, &v), 0);
        CHECK_INT(v, 2126512128);
        CHECK(caps_parse_u64("18446744073709551615\n", 21, &v) == 0 && v == UINT64_MAX);
        /* the length bounds the text */
        CHECK_INT(caps_parse_u64("123456", 3, &v), 0);
        CHECK_INT(v, 123);
        v = 5;
        CHECK_INT(caps_parse_u64("18446744073709551616", 20, &v), -ERANGE);
        CHECK_INT(caps_parse_u64("99999999999999999999999", 23, &v), -ERANGE);
        CHECK_INT(caps_parse_u64("", 0, &v), -EINVAL);
        CHECK_INT(caps_parse_u64("\n", 1, &v), -EINVAL);
        CHECK_INT(caps_parse_u64("-1", 2, &v), -EINVAL);
        CHECK_INT(caps_parse_u64("+1", 2, &v), -EINVAL);
        CHECK_INT(caps_parse_u64(" 12", 3, &v), -EINVAL);
        CHECK_INT(caps_parse_u64("12a", 3, &v), -EINVAL);
        CHECK_INT(caps_parse_u64("12\n13\n", 6, &v), -EINVAL);
        CHECK_INT(caps_parse_u64("1\0", 2, &v), -EINVAL);
        CHECK_INT(v, 5);
}

/* Found by fuzz_caps: overflowing digits followed by garbage were -ERANGE, not -EINVAL. */
static void test_caps_fuzz_u64_malformed_and_too_big(void) {
        const char text[] = "2126511222222222222222222222222\x12"
                            "2229\n";
        uint64_t v = 5;

        CHECK_INT(caps_parse_u64(text, sizeof(text) - 1, &v), -EINVAL);
        CHECK_INT(caps_parse_u64("99999999999999999999999x", 24, &v), -EINVAL);
        CHECK_INT(caps_parse_u64("99999999999999999999999 \n", 25, &v), -ERANGE);
        CHECK_INT(v, 5);
}

/* ---- the kernel's view over fake trees ---- */

static void test_caps_read_kernel_tree(void) {
        struct sgx_kernel k;
        char proc[256], sys[256];

        put("proc/cpuinfo", "processor\t: 0\nflags\t\t: fpu sgx sgx_lc\n\nprocessor\t: 1\n"
                            "flags\t\t: fpu\n");
        put("proc/sys/kernel/osrelease", "6.2.0-39-generic\n");
        put("sys/devices/system/node/node0/x86/sgx_total_bytes", "2126512128\n");
        put("sys/devices/system/node/node1/x86/sgx_total_bytes", "2134900736\n");
        put("sys/devices/system/node/node10/x86/sgx_total_bytes", "4096\n");
        put("sys/devices/system/node/node2/cpulist", "0-3\n");              /* no x86 dir */
        put("sys/devices/system/node/node3/x86/sgx_total_bytes", "lots\n"); /* bad */
        put("sys/devices/system/node/nodeX/x86/sgx_total_bytes", "1\n");    /* not a node */
        put("sys/devices/system/node/node4x/x86/sgx_total_bytes", "1\n");   /* not a node */
        put("sys/devices/system/node/possible", "0-10\n");

        memset(&k, 0xaa, sizeof(k));
        CHECK_INT(caps_read_kernel(in_top("proc", proc, sizeof(proc)),
                                   in_top("sys", sys, sizeof(sys)), &k),
                  0);
        CHECK(k.cpuinfo_read);
        CHECK(k.flag_sgx);
        CHECK(k.flag_sgx_lc);
        CHECK_STR(k.release, "6.2.0-39-generic");
        CHECK_INT(k.major, 6);
        CHECK_INT(k.minor, 2);
        CHECK_INT(k.n_nodes, 3);
        /* sorted by number, not by name */
        CHECK_INT(k.nodes[0].node, 0);
        CHECK_INT(k.nodes[0].bytes, 2126512128);
        CHECK_INT(k.nodes[1].node, 1);
        CHECK_INT(k.nodes[1].bytes, 2134900736);
        CHECK_INT(k.nodes[2].node, 10);
        CHECK_INT(k.nodes[2].bytes, 4096);
        CHECK_INT(k.epc_bytes, 2126512128ull + 2134900736ull + 4096);
}

static void test_caps_read_kernel_missing(void) {
        struct sgx_kernel k;
        char p[256];

        memset(&k, 0xaa, sizeof(k));
        CHECK_INT(caps_read_kernel(in_top("no-proc", p, sizeof(p)), in_top("no-sys", p, sizeof(p)),
                                   &k),
                  0);
        CHECK(!k.cpuinfo_read);
        CHECK(!k.flag_sgx && !k.flag_sgx_lc);
        CHECK_STR(k.release, "");
        CHECK_INT(k.major, 0);
        CHECK_INT(k.n_nodes, 0);
        CHECK_INT(k.epc_bytes, 0);
        CHECK_INT(caps_read_kernel(NULL, NULL, &k), 0);
        CHECK(!k.cpuinfo_read);
}

static void test_caps_read_kernel_bad_content(void) {
        struct sgx_kernel k;
        char proc[256], sys[256], *big;
        size_t n = 200000;

        /* a cpuinfo whose first flags line lies beyond the bounded read */
        big = malloc(n + 64);
        CHECK(big != NULL);
        if (!big)
                return;
        memset(big, 'x', n);
        memcpy(big, "processor : 0\nmodel name : ", 27);
        snprintf(big + n, 64, "\nflags : sgx sgx_lc\n");
        put("p1/cpuinfo", big);
        free(big);
        /* a release too long and with control bytes; a byte count too long and one overflowing */
        put("p1/sys/kernel/osrelease",
            "6.1.0-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n");
        put("s1/devices/system/node/node0/x86/sgx_total_bytes",
            "1111111111111111111111111111111111111111111111111111111111111111111111111111\n");
        put("s1/devices/system/node/node1/x86/sgx_total_bytes", "18446744073709551615\n");
        put("s1/devices/system/node/node2/x86/sgx_total_bytes", "18446744073709551615\n");

        CHECK_INT(caps_read_kernel(in_top("p1", proc, sizeof(proc)), in_top("s1", sys, sizeof(sys)),
                                   &k),
                  0);
        CHECK(k.cpuinfo_read);
        CHECK(!k.flag_sgx);
        CHECK_INT(strlen(k.release), sizeof(k.release) - 1);
        CHECK(strncmp(k.release, "6.1.0-aaaa", 10) == 0);
        CHECK_INT(k.major, 6);
        CHECK_INT(k.minor, 1);
        CHECK_INT(k.n_nodes, 2);
        CHECK(k.epc_bytes == UINT64_MAX); /* saturated, not wrapped */

        put("p2/sys/kernel/osrelease", "\x1b[2Jbad\n");
        CHECK_INT(caps_read_kernel(in_top("p2", proc, sizeof(proc)), NULL, &k), 0);
        CHECK_STR(k.release, "");
        CHECK_INT(k.major, 0);
        put("p3/sys/kernel/osrelease", "garbage\n");
        CHECK_INT(caps_read_kernel(in_top("p3", proc, sizeof(proc)), NULL, &k), 0);
        CHECK_STR(k.release, "garbage");
        CHECK_INT(k.major, 0);
}

/* ---- verdicts ---- */

enum layout { NONE, INKERNEL, DCAPDRV, SGXDIR, LEGACY, ISGX, INKERNEL_ISGX };

static void make_disc(enum layout l, struct discovery *d) {
        memset(d, 0, sizeof(*d));
        switch (l) {
        case NONE:
                break;
        case INKERNEL:
        case INKERNEL_ISGX:
                d->dcap_enclave.present = true;
                snprintf(d->dcap_enclave.host_path, DISCOVERY_PATH_MAX, "/dev/sgx_enclave");
                break;
        case DCAPDRV:
                d->dcap_enclave.present = true;
                snprintf(d->dcap_enclave.host_path, DISCOVERY_PATH_MAX, "/dev/sgx/enclave");
                break;
        case SGXDIR:
                d->dcap_enclave.present = true;
                snprintf(d->dcap_enclave.host_path, DISCOVERY_PATH_MAX, "/dev/sgx/sgx_enclave");
                break;
        case LEGACY:
                d->dcap_enclave.present = true;
                d->dcap_legacy = true;
                snprintf(d->dcap_enclave.host_path, DISCOVERY_PATH_MAX, "/dev/sgx");
                break;
        case ISGX:
                break;
        }
        if (l == ISGX || l == INKERNEL_ISGX) {
                d->ias_enclave.present = true;
                snprintf(d->ias_enclave.host_path, DISCOVERY_PATH_MAX, "/dev/isgx");
        }
}

/* A kernel view: release, cpuinfo flags ("sgx sgx_lc", "" = read without them, NULL = not
 * read), and per-node EPC MiB (0-terminated). */
static void make_kernel(struct sgx_kernel *k, const char *release, const char *flags, ...) {
        va_list ap;
        unsigned mib;

        memset(k, 0, sizeof(*k));
        snprintf(k->release, sizeof(k->release), "%s", release);
        caps_parse_release(release, &k->major, &k->minor);
        if (flags) {
                char line[128];

                snprintf(line, sizeof(line), "flags : %s\n", flags);
                k->cpuinfo_read = true;
                caps_parse_cpuinfo(line, strlen(line), &k->flag_sgx, &k->flag_sgx_lc);
        }
        va_start(ap, flags);
        while ((mib = va_arg(ap, unsigned)) != 0 && k->n_nodes < CAPS_MAX_NODES) {
                k->nodes[k->n_nodes].node = (unsigned) k->n_nodes;
                k->nodes[k->n_nodes].bytes = mib * MIB;
                k->epc_bytes += mib * MIB;
                k->n_nodes++;
        }
        va_end(ap);
}

static void eval(const char *fixture_name, const struct sgx_kernel *k, enum layout l,
                 struct sgx_caps *c) {
        struct sgx_cpu cpu;
        struct discovery d;

        if (fixture_name)
                decode_fixture(fixture_name, &cpu);
        else
                caps_decode_cpuid(no_cpuid, NULL, &cpu);
        make_disc(l, &d);
        memset(c, 0xaa, sizeof(*c));
        caps_evaluate(&cpu, k, &d, c);
        CHECK(strlen(c->verdict_line) > 20);
        CHECK(strchr(c->verdict_line, '\n') == NULL);
}

#define HAS(line, s)                                                                    \
        do {                                                                            \
                if (!strstr(line, s))                                                   \
                        fprintf(stderr, "verdict line \"%s\" lacks \"%s\"\n", line, s); \
                CHECK(strstr(line, s) != NULL);                                         \
        } while (0)

static void test_caps_verdict_icelake_inkernel_6_2(void) {
        struct sgx_kernel k;
        struct sgx_caps c;

        make_kernel(&k, "6.2.0-39-generic", "fpu sgx sgx_lc", 2028u, 2036u, 0u);
        eval("icelake-sp-xeon.cpuid", &k, INKERNEL, &c);
        CHECK_INT(c.verdict, SGX_VERDICT_USABLE);
        CHECK_INT(c.driver, SGX_DRIVER_INKERNEL);
        CHECK(c.dcap);
        CHECK(!c.ias);
        CHECK(c.flc);
        CHECK(c.sgx2_usable);
        CHECK_INT(c.epc_bytes, 4064 * MIB);
        CHECK_STR(c.kernel.release, "6.2.0-39-generic");
        CHECK(c.cpu.sgx2);
        HAS(c.verdict_line, "usable");
        HAS(c.verdict_line, "SGX2");
        HAS(c.verdict_line, "4064 MiB");
}

static void test_caps_verdict_icelake_inkernel_5_15(void) {
        struct sgx_kernel k;
        struct sgx_caps c;

        make_kernel(&k, "5.15.0-91-generic", "fpu sgx sgx_lc", 0u);
        eval("icelake-sp-xeon.cpuid", &k, INKERNEL, &c);
        CHECK_INT(c.verdict, SGX_VERDICT_USABLE);
        CHECK(!c.sgx2_usable);
        /* no sysfs EPC on 5.15: CPUID's sum */
        CHECK_INT(c.epc_bytes, 4064 * MIB);
        HAS(c.verdict_line, "6.0");
        HAS(c.verdict_line, "5.15.0-91-generic");

        /* exactly 6.0 is enough; 5.99 is not */
        make_kernel(&k, "6.0.0", "sgx sgx_lc", 0u);
        eval("icelake-sp-xeon.cpuid", &k, INKERNEL, &c);
        CHECK(c.sgx2_usable);
        make_kernel(&k, "5.99", "sgx sgx_lc", 0u);
        eval("icelake-sp-xeon.cpuid", &k, INKERNEL, &c);
        CHECK(!c.sgx2_usable);
        /* an unknown release is not 6.0 */
        make_kernel(&k, "", NULL, 0u);
        eval("icelake-sp-xeon.cpuid", &k, INKERNEL, &c);
        CHECK(!c.sgx2_usable);
}

static void test_caps_verdict_icelake_dcap_driver(void) {
        struct sgx_kernel k;
        struct sgx_caps c;

        make_kernel(&k, "6.2.0", "sgx sgx_lc", 0u);
        eval("icelake-sp-xeon.cpuid", &k, DCAPDRV, &c);
        CHECK_INT(c.verdict, SGX_VERDICT_USABLE);
        CHECK_INT(c.driver, SGX_DRIVER_DCAP);
        CHECK(c.dcap);
        CHECK(!c.sgx2_usable);
        HAS(c.verdict_line, "in-kernel driver");
        eval("icelake-sp-xeon.cpuid", &k, SGXDIR, &c);
        CHECK_INT(c.driver, SGX_DRIVER_DCAP);
        CHECK(!c.sgx2_usable);
        eval("icelake-sp-xeon.cpuid", &k, LEGACY, &c);
        CHECK_INT(c.driver, SGX_DRIVER_DCAP_LEGACY);
        CHECK(!c.sgx2_usable);
        CHECK_INT(c.verdict, SGX_VERDICT_USABLE);
}

static void test_caps_verdict_skylake_no_flc(void) {
        struct sgx_kernel k;
        struct sgx_caps c;

        /* the kernel shows no sgx flag on a CPU without FLC */
        make_kernel(&k, "6.5.0", "fpu vme", 0u);
        eval("skylake-i7-6700k.cpuid", &k, NONE, &c);
        CHECK_INT(c.verdict, SGX_VERDICT_NO_FLC);
        CHECK(!c.flc);
        CHECK(!c.dcap && !c.ias);
        CHECK_INT(c.driver, SGX_DRIVER_NONE);
        CHECK_INT(c.epc_bytes, 98041856);
        HAS(c.verdict_line, "FLC");
        HAS(c.verdict_line, "isgx");
        HAS(c.verdict_line, "/proc/cpuinfo");

        /* with the legacy isgx driver it is usable, for IAS only */
        eval("skylake-i7-6700k.cpuid", &k, ISGX, &c);
        CHECK_INT(c.verdict, SGX_VERDICT_USABLE);
        CHECK(c.ias);
        CHECK(!c.dcap);
        CHECK(!c.sgx2_usable);
        HAS(c.verdict_line, "IAS");
}

static void test_caps_verdict_flc_from_kernel(void) {
        struct sgx_kernel k;
        struct sgx_caps c;

        /* CPUID without FLC (as a hypervisor may mask it), the kernel's sgx_lc says it has */
        make_kernel(&k, "6.5.0", "sgx sgx_lc", 0u);
        eval("skylake-i7-6700k.cpuid", &k, NONE, &c);
        CHECK(c.flc);
        CHECK_INT(c.verdict, SGX_VERDICT_NO_DRIVER);
}

static void test_caps_verdict_firmware_off(void) {
        struct sgx_kernel k;
        struct sgx_caps c;

        make_kernel(&k, "6.5.0", "fpu", 0u);
        eval("skylake-i7-6700k-sgx-off.cpuid", &k, NONE, &c);
        CHECK_INT(c.verdict, SGX_VERDICT_FIRMWARE_OFF);
        CHECK_INT(c.epc_bytes, 0);
        HAS(c.verdict_line, "BIOS");

        /* SGX1 on but no EPC section: also firmware */
        {
                struct cpuid_record rec;
                struct sgx_cpu cpu;
                struct discovery d;

                CHECK_INT(parse_ok(LEAF0 "7 0 0 4 40000000 0\n12 0 1 0 0 241f\n", &rec), 0);
                caps_decode_cpuid(cpuid_recorded, &rec, &cpu);
                make_disc(NONE, &d);
                caps_evaluate(&cpu, &k, &d, &c);
                CHECK_INT(c.verdict, SGX_VERDICT_FIRMWARE_OFF);
                HAS(c.verdict_line, "no EPC");
        }
}

static void test_caps_verdict_no_sgx(void) {
        struct sgx_kernel k;
        struct sgx_caps c;

        make_kernel(&k, "6.1.0", "fpu", 0u);
        eval("amd-ryzen7-1800x.cpuid", &k, NONE, &c);
        CHECK_INT(c.verdict, SGX_VERDICT_NO_SGX);
        HAS(c.verdict_line, "AuthenticAMD");
        CHECK(!c.flc);
        CHECK(!c.sgx2_usable);

        /* an Intel part whose CPUID has no SGX bit */
        {
                struct cpuid_record rec;
                struct sgx_cpu cpu;
                struct discovery d;

                CHECK_INT(parse_ok(LEAF0 "7 0 0 0 0 0\n", &rec), 0);
                caps_decode_cpuid(cpuid_recorded, &rec, &cpu);
                make_disc(NONE, &d);
                caps_evaluate(&cpu, &k, &d, &c);
                CHECK_INT(c.verdict, SGX_VERDICT_NO_SGX);
                HAS(c.verdict_line, "Intel");
                HAS(c.verdict_line, "BIOS");
        }
}

static void test_caps_verdict_vm_no_device(void) {
        struct sgx_kernel k;
        struct sgx_caps c;

        make_kernel(&k, "5.10.0", "fpu hypervisor", 0u);
        eval("vm-alibaba-sgx2.cpuid", &k, NONE, &c);
        CHECK_INT(c.verdict, SGX_VERDICT_VM_NO_DEVICE);
        CHECK(c.cpu.hypervisor);
        HAS(c.verdict_line, "VM");
        HAS(c.verdict_line, "passed through");

        /* the same VM with a device passed through is usable */
        make_kernel(&k, "6.2.0", "sgx sgx_lc hypervisor", 0u);
        eval("vm-alibaba-sgx2.cpuid", &k, INKERNEL, &c);
        CHECK_INT(c.verdict, SGX_VERDICT_USABLE);
        CHECK(c.sgx2_usable);
}

static void test_caps_verdict_no_driver(void) {
        struct sgx_kernel k;
        struct sgx_caps c;

        make_kernel(&k, "6.1.0", "fpu sgx sgx_lc", 93u, 0u);
        eval("coffeelake-xeon-e2276g.cpuid", &k, NONE, &c);
        CHECK_INT(c.verdict, SGX_VERDICT_NO_DRIVER);
        CHECK(c.flc);
        CHECK_INT(c.epc_bytes, 93 * MIB); /* the kernel's figure wins */
        HAS(c.verdict_line, "--dev-root");

        /* a kernel before the in-kernel driver */
        make_kernel(&k, "5.4.0-150-generic", "fpu", 0u);
        eval("coffeelake-xeon-e2276g.cpuid", &k, NONE, &c);
        CHECK_INT(c.verdict, SGX_VERDICT_NO_DRIVER);
        HAS(c.verdict_line, "5.11");
        HAS(c.verdict_line, "DCAP driver");

        /* a recent kernel that shows no sgx flag: it disabled SGX */
        make_kernel(&k, "6.1.0", "fpu", 0u);
        eval("coffeelake-xeon-e2276g.cpuid", &k, NONE, &c);
        CHECK_INT(c.verdict, SGX_VERDICT_NO_DRIVER);
        HAS(c.verdict_line, "dmesg");

        /* with the device: usable */
        make_kernel(&k, "6.1.0", "fpu sgx sgx_lc", 0u);
        eval("coffeelake-xeon-e2276g.cpuid", &k, INKERNEL_ISGX, &c);
        CHECK_INT(c.verdict, SGX_VERDICT_USABLE);
        CHECK(c.dcap && c.ias);
        CHECK(!c.sgx2_usable);
}

static void test_caps_verdict_no_cpuid(void) {
        struct sgx_kernel k;
        struct sgx_caps c;

        /* not x86: devices present → usable */
        make_kernel(&k, "6.1.0", NULL, 0u);
        eval(NULL, &k, INKERNEL, &c);
        CHECK_INT(c.verdict, SGX_VERDICT_USABLE);
        CHECK(!c.cpu.valid);
        HAS(c.verdict_line, "not x86");
        /* and without devices: no SGX */
        eval(NULL, &k, NONE, &c);
        CHECK_INT(c.verdict, SGX_VERDICT_NO_SGX);
        /* a device beside a CPUID without SGX: the driver is trusted */
        eval("amd-ryzen7-1800x.cpuid", &k, INKERNEL, &c);
        CHECK_INT(c.verdict, SGX_VERDICT_USABLE);
        HAS(c.verdict_line, "trusting");
}

static void test_caps_verdict_null_discovery(void) {
        struct sgx_kernel k;
        struct sgx_cpu cpu;
        struct sgx_caps c;

        make_kernel(&k, "6.1.0", "sgx sgx_lc", 0u);
        decode_fixture("icelake-sp-xeon.cpuid", &cpu);
        caps_evaluate(&cpu, &k, NULL, &c);
        CHECK_INT(c.verdict, SGX_VERDICT_NO_DRIVER);
        CHECK_INT(c.driver, SGX_DRIVER_NONE);
}

/* ---- caps_collect ---- */

static void test_caps_collect(void) {
        struct sgx_caps c;
        struct discovery d;
        char proc[256], sys[256], path[512], err[512];

        put("cp/cpuinfo", "processor : 0\nflags : fpu sgx sgx_lc\n");
        put("cp/sys/kernel/osrelease", "6.8.0-31-generic\n");
        put("cs/devices/system/node/node0/x86/sgx_total_bytes", "2126512128\n");
        put("cs/devices/system/node/node1/x86/sgx_total_bytes", "2134900736\n");
        in_top("cp", proc, sizeof(proc));
        in_top("cs", sys, sizeof(sys));
        make_disc(INKERNEL, &d);

        CHECK_INT(caps_collect(proc, sys, fixture("icelake-sp-xeon.cpuid", path, sizeof(path)), &d,
                               &c, err, sizeof(err)),
                  0);
        CHECK_INT(c.verdict, SGX_VERDICT_USABLE);
        CHECK(c.sgx2_usable);
        CHECK_INT(c.kernel.n_nodes, 2);
        CHECK_INT(c.epc_bytes, 2126512128ull + 2134900736ull);
        CHECK_INT(c.cpu.epc_bytes, 4064 * MIB);

        /* a missing or malformed cpuid file: -errno and one line */
        CHECK_INT(caps_collect(proc, sys, in_top("missing.cpuid", path, sizeof(path)), &d, &c, err,
                               sizeof(err)),
                  -ENOENT);
        CHECK(strstr(err, "missing.cpuid") != NULL);
        CHECK(strchr(err, '\n') == NULL);
        put("mal.cpuid", "0 0 1\n");
        CHECK_INT(caps_collect(proc, sys, in_top("mal.cpuid", path, sizeof(path)), &d, &c, err,
                               sizeof(err)),
                  -EINVAL);
        CHECK(strstr(err, "line 1") != NULL);

        /* this CPU, roots that do not exist: no error */
        CHECK_INT(caps_collect(in_top("np", proc, sizeof(proc)), in_top("ns", sys, sizeof(sys)),
                               NULL, &d, &c, err, sizeof(err)),
                  0);
        CHECK_INT(c.verdict, SGX_VERDICT_USABLE);
        CHECK(!c.kernel.cpuinfo_read);
}

static void test_caps_names(void) {
        CHECK_STR(sgx_driver_name(SGX_DRIVER_NONE), "none");
        CHECK_STR(sgx_driver_name(SGX_DRIVER_INKERNEL), "in-kernel");
        CHECK_STR(sgx_driver_name(SGX_DRIVER_DCAP), "dcap");
        CHECK_STR(sgx_driver_name(SGX_DRIVER_DCAP_LEGACY), "dcap-legacy");
        CHECK_STR(sgx_verdict_name(SGX_VERDICT_USABLE), "usable");
        CHECK_STR(sgx_verdict_name(SGX_VERDICT_NO_SGX), "no-sgx");
        CHECK_STR(sgx_verdict_name(SGX_VERDICT_FIRMWARE_OFF), "firmware-off");
        CHECK_STR(sgx_verdict_name(SGX_VERDICT_NO_FLC), "no-flc");
        CHECK_STR(sgx_verdict_name(SGX_VERDICT_VM_NO_DEVICE), "vm-no-device");
        CHECK_STR(sgx_verdict_name(SGX_VERDICT_NO_DRIVER), "no-driver");
}

/* Discovery refused /dev/sgx_enclave -> /dev/mem (issue 10): the verdict says so. */
static void add_refusal(struct discovery *d, const char *path, const char *target, unsigned maj,
                        unsigned min) {
        struct discovery_refused *x = &d->refused[d->n_refused++];

        snprintf(x->name, sizeof(x->name), "%s", path + strlen("/dev/"));
        snprintf(x->path, sizeof(x->path), "%s", path);
        snprintf(x->target, sizeof(x->target), "%s", target);
        x->major = maj;
        x->minor = min;
        x->reason = DISCOVERY_REFUSED_NOT_MISC;
}

static void test_caps_verdict_issue10_refused(void) {
        struct sgx_kernel k;
        struct sgx_caps c;
        struct sgx_cpu cpu;
        struct discovery d;

        make_kernel(&k, "6.2.0-39-generic", "fpu sgx sgx_lc", 2028u, 2036u, 0u);
        decode_fixture("icelake-sp-xeon.cpuid", &cpu);

        /* nothing usable: refused, not "load the driver" */
        make_disc(NONE, &d);
        add_refusal(&d, "/dev/sgx_enclave", "/dev/mem", 1, 1);
        caps_evaluate(&cpu, &k, &d, &c);
        CHECK_INT(c.verdict, SGX_VERDICT_REFUSED);
        CHECK(!c.dcap && !c.ias);
        HAS(c.verdict_line, "not usable: SGX refused: /dev/sgx_enclave -> /dev/mem (1:1)");
        HAS(c.verdict_line, "major 10");
        CHECK_STR(sgx_verdict_name(c.verdict), "refused");

        /* usable beside a refused name: usable, and the line ends with the refusal */
        make_disc(INKERNEL, &d);
        add_refusal(&d, "/dev/isgx", "/dev/mem", 1, 1);
        add_refusal(&d, "/dev/sgx_prv", "/dev/zero", 1, 5);
        caps_evaluate(&cpu, &k, &d, &c);
        CHECK_INT(c.verdict, SGX_VERDICT_USABLE);
        HAS(c.verdict_line, "SGX usable");
        HAS(c.verdict_line, "; refused 2 nodes as not SGX (/dev/isgx)");

        /* no refusal, no note */
        make_disc(INKERNEL, &d);
        caps_evaluate(&cpu, &k, &d, &c);
        CHECK(strstr(c.verdict_line, "refused") == NULL);
}

int main(void) {
        setup();
        RUN(test_caps_decode_icelake_sp);
        RUN(test_caps_decode_skylake);
        RUN(test_caps_decode_skylake_sgx_off);
        RUN(test_caps_decode_coffeelake);
        RUN(test_caps_decode_amd);
        RUN(test_caps_decode_vm);
        RUN(test_caps_decode_respects_max_leaf);
        RUN(test_caps_decode_sgx_bit_gates_leaf_12);
        RUN(test_caps_decode_epc_section_types);
        RUN(test_caps_decode_no_source);
        RUN(test_caps_native);
        RUN(test_caps_record_parse_good);
        RUN(test_caps_record_parse_errors);
        RUN(test_caps_record_load);
        RUN(test_caps_parse_cpuinfo);
        RUN(test_caps_parse_release);
        RUN(test_caps_parse_u64);
        RUN(test_caps_fuzz_u64_malformed_and_too_big);
        RUN(test_caps_read_kernel_tree);
        RUN(test_caps_read_kernel_missing);
        RUN(test_caps_read_kernel_bad_content);
        RUN(test_caps_verdict_icelake_inkernel_6_2);
        RUN(test_caps_verdict_icelake_inkernel_5_15);
        RUN(test_caps_verdict_icelake_dcap_driver);
        RUN(test_caps_verdict_skylake_no_flc);
        RUN(test_caps_verdict_flc_from_kernel);
        RUN(test_caps_verdict_firmware_off);
        RUN(test_caps_verdict_no_sgx);
        RUN(test_caps_verdict_vm_no_device);
        RUN(test_caps_verdict_no_driver);
        RUN(test_caps_verdict_no_cpuid);
        RUN(test_caps_verdict_null_discovery);
        RUN(test_caps_collect);
        RUN(test_caps_names);
        RUN(test_caps_verdict_issue10_refused);
        teardown();
        return unit_done();
}
