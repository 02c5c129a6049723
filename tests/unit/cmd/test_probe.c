/*
 * test_probe.c - unit tests for src/probe.c: fake device trees (mknod under mkdtemp, tests run as
 * root), fake proc/sys trees and recorded CPUID beside them, the options from cli_parse, the
 * capabilities from caps_collect, the report read back from a memory stream (JSON with jansson).
 */
#include "probe.h"

#include <errno.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <jansson.h>

#include "capabilities.h"
#include "cli.h"
#include "discovery.h"
#include "unit.h"

static char top[64];   /* the mkdtemp dir */
static char root[128]; /* the dev root under test: top, or a dir in it */

static void setup(void) {
        snprintf(top, sizeof(top), "/tmp/test_probe.XXXXXX");
        if (!mkdtemp(top)) {
                perror("mkdtemp");
                exit(2);
        }
        snprintf(root, sizeof(root), "%s", top);
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path);
}

static void teardown(void) {
        nftw(top, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void chr_in(const char *rel, unsigned maj, unsigned min) {
        char p[256];

        snprintf(p, sizeof(p), "%s/%s", root, rel);
        if (mknod(p, S_IFCHR | 0600, makedev(maj, min)) < 0) {
                perror(p);
                exit(2);
        }
}

static void in_kernel_tree(void) {
        char p[256];

        chr_in("sgx_enclave", 10, 125);
        chr_in("sgx_provision", 10, 126);
        snprintf(p, sizeof(p), "%s/sgx", root);
        CHECK(mkdir(p, 0755) == 0);
        snprintf(p, sizeof(p), "%s/sgx/enclave", root);
        CHECK(symlink("../sgx_enclave", p) == 0);
}

/*
 * Runs "sgxdevplugin probe --dev-root ROOT <args...>" (NULL-terminated) over the tree and returns
 * the report (caller frees), or NULL with a failed check.
 */
static char *run_probe(int *ret, ...) {
        char *argv[24], *text = NULL;
        int argc = 0, r;
        struct cli_options o;
        struct discovery d;
        struct sgx_caps caps;
        char err[256];
        size_t len = 0;
        const char *a;
        va_list ap;
        FILE *f;

        argv[argc++] = (char *) "sgxdevplugin";
        argv[argc++] = (char *) "probe";
        argv[argc++] = (char *) "--dev-root";
        argv[argc++] = root;
        va_start(ap, ret);
        while ((a = va_arg(ap, const char *)) && argc < 23)
                argv[argc++] = (char *) a;
        va_end(ap);
        argv[argc] = NULL;

        r = cli_parse(argc, argv, &o, err, sizeof(err));
        CHECK_INT(r, 0);
        if (r < 0)
                return NULL;
        /* as main.c scans, but the host's own /sys stays out of the tests */
        CHECK_INT(discovery_scan_at(
                          o.dev_root,
                          strcmp(o.sys_root, CLI_DEFAULT_SYS_ROOT) != 0 ? o.sys_root : NULL, &d),
                  0);
        r = caps_collect(o.proc_root, o.sys_root, o.cpuid_file, &d, &caps, err, sizeof(err));
        CHECK_INT(r, 0);
        if (r < 0)
                return NULL;
        f = open_memstream(&text, &len);
        CHECK(f != NULL);
        if (!f)
                return NULL;
        r = probe_report(f, &o, &d, &caps);
        fclose(f);
        if (ret)
                *ret = r;
        else
                CHECK_INT(r, 0);
        return text;
}

static json_t *run_probe_json(const char *extra1, const char *extra2) {
        char *text = run_probe(NULL, "--json", extra1, extra2, NULL);
        json_error_t jerr;
        json_t *j;

        if (!text)
                return NULL;
        j = json_loads(text, 0, &jerr);
        if (!j)
                fprintf(stderr, "bad JSON: %s\n%s\n", jerr.text, text);
        CHECK(j != NULL);
        free(text);
        return j;
}

static json_t *resource(json_t *j, const char *kind) {
        json_t *res = json_object_get(j, "resources"), *v;
        size_t i;

        json_array_foreach(res, i, v) {
                if (strcmp(json_string_value(json_object_get(v, "kind")), kind) == 0)
                        return v;
        }
        return NULL;
}

/* "container->host" of every device Allocate maps for |kind|, comma-separated. */
static void maps_of(json_t *j, const char *kind, char *buf, size_t size) {
        json_t *r = resource(j, kind), *devices, *g, *c;
        size_t i, k, n = 0;

        buf[0] = '\0';
        devices = json_object_get(json_object_get(r, "allocate"), "devices");
        json_array_foreach(devices, i, g) {
                CHECK_STR(json_string_value(json_object_get(g, "permissions")), "rw");
                json_array_foreach(json_object_get(g, "container_paths"), k, c) {
                        n += (size_t) snprintf(buf + n, size - n, "%s%s->%s", n ? "," : "",
                                               json_string_value(c),
                                               json_string_value(json_object_get(g, "host_path")));
                        if (n >= size)
                                return;
                }
        }
}

static void test_probe_nothing_found(void) {
        char want[256], *text;

        setup();
        text = run_probe(NULL, NULL);
        snprintf(want, sizeof(want), "no SGX device found under %s\n", root);
        CHECK(text && strstr(text, want) != NULL);
        CHECK(text && strstr(text, "sgx.k8s.io/dcap") != NULL);
        CHECK(text && strstr(text, "Allocate") == NULL);
        free(text);
        teardown();
}

static void test_probe_missing_root(void) {
        char want[256], *text;

        setup();
        teardown();
        text = run_probe(NULL, NULL);
        snprintf(want, sizeof(want), "no SGX device found under %s (it does not exist)", root);
        CHECK(text && strstr(text, want) != NULL);
        free(text);
}

static void test_probe_text_lists_devices(void) {
        char *text;

        setup();
        in_kernel_tree();
        text = run_probe(NULL, NULL);
        CHECK(text && strstr(text, "no SGX device found") == NULL);
        CHECK(text &&
              strstr(text, "sgx/enclave    dcap   enclave    yes   /dev/sgx_enclave") != NULL);
        CHECK(text && strstr(text, "10:125") != NULL);
        CHECK(text && strstr(text, "10:126") != NULL);
        CHECK(text && strstr(text, "sgx.k8s.io/dcap     110  Healthy") != NULL);
        CHECK(text && strstr(text, "sgx.k8s.io/ias        0  None") != NULL);
        CHECK(text && strstr(text, "device  /dev/sgx/provision -> /dev/sgx_provision  rw") != NULL);
        free(text);
        teardown();
}

static void test_probe_json_in_kernel(void) {
        json_t *j, *devs, *e, *r;
        char maps[512];

        setup();
        in_kernel_tree();
        j = run_probe_json(NULL, NULL);
        CHECK_STR(json_string_value(json_object_get(j, "dev_root")), root);
        CHECK(json_is_false(json_object_get(j, "dev_root_missing")));
        devs = json_object_get(j, "devices");
        CHECK_INT(json_array_size(devs), 3);
        e = json_array_get(devs, 1);
        CHECK_STR(json_string_value(json_object_get(e, "name")), "sgx/enclave");
        CHECK_STR(json_string_value(json_object_get(e, "class")), "dcap");
        CHECK_STR(json_string_value(json_object_get(e, "role")), "enclave");
        CHECK(json_is_true(json_object_get(e, "link")));
        CHECK_STR(json_string_value(json_object_get(e, "host_path")), "/dev/sgx_enclave");
        CHECK_INT(json_integer_value(json_object_get(e, "major")), 10);
        CHECK_INT(json_integer_value(json_object_get(e, "minor")), 125);

        CHECK_INT(json_array_size(json_object_get(j, "resources")), 3);
        CHECK(resource(j, "provision") == NULL);
        r = resource(j, "dcap");
        CHECK_STR(json_string_value(json_object_get(r, "name")), "sgx.k8s.io/dcap");
        CHECK_INT(json_integer_value(json_object_get(r, "count")), 110);
        CHECK_STR(json_string_value(json_object_get(r, "health")), "Healthy");
        r = resource(j, "ias");
        CHECK_INT(json_integer_value(json_object_get(r, "count")), 0);
        CHECK_STR(json_string_value(json_object_get(r, "health")), "None");
        CHECK(json_is_null(json_object_get(r, "allocate")));

        maps_of(j, "dcap", maps, sizeof(maps));
        CHECK_STR(maps, "/dev/sgx_enclave->/dev/sgx_enclave,/dev/sgx/enclave->/dev/sgx_enclave,"
                        "/dev/sgx_provision->/dev/sgx_provision,"
                        "/dev/sgx/provision->/dev/sgx_provision");
        maps_of(j, "sgx", maps, sizeof(maps));
        CHECK(strstr(maps, "/dev/sgx/enclave->/dev/sgx_enclave") != NULL);
        json_decref(j);
        teardown();
}

static void test_probe_json_no_provision(void) {
        json_t *j;
        char maps[512];

        setup();
        in_kernel_tree();
        j = run_probe_json("--no-provision", NULL);
        maps_of(j, "dcap", maps, sizeof(maps));
        CHECK_STR(maps, "/dev/sgx_enclave->/dev/sgx_enclave,/dev/sgx/enclave->/dev/sgx_enclave");
        json_decref(j);
        teardown();
}

static void test_probe_json_provision_resource(void) {
        json_t *j, *r;
        char maps[512];

        setup();
        in_kernel_tree();
        j = run_probe_json("--provision-resource", "--resource-domain=example.org");
        CHECK_INT(json_array_size(json_object_get(j, "resources")), 4);
        r = resource(j, "provision");
        CHECK_STR(json_string_value(json_object_get(r, "name")), "example.org/provision");
        CHECK_INT(json_integer_value(json_object_get(r, "count")), 110);
        maps_of(j, "provision", maps, sizeof(maps));
        CHECK_STR(maps, "/dev/sgx_provision->/dev/sgx_provision,"
                        "/dev/sgx/provision->/dev/sgx_provision");
        json_decref(j);
        teardown();
}

static void test_probe_json_legacy_and_ias(void) {
        json_t *j, *r;
        char maps[512];

        setup();
        chr_in("sgx", 10, 243);
        chr_in("sgx_prv", 10, 244);
        chr_in("isgx", 10, 247);
        j = run_probe_json("--max-pods", "7");
        CHECK(json_is_true(json_object_get(json_object_get(j, "in_use"), "dcap_legacy")));
        maps_of(j, "dcap", maps, sizeof(maps));
        CHECK_STR(maps, "/dev/sgx->/dev/sgx,/dev/sgx_prv->/dev/sgx_prv");
        maps_of(j, "ias", maps, sizeof(maps));
        CHECK_STR(maps, "/dev/isgx->/dev/isgx");
        r = resource(j, "ias");
        CHECK_INT(json_integer_value(json_object_get(r, "count")), 7);
        json_decref(j);
        teardown();
}

static void test_probe_json_aesmd_mount(void) {
        json_t *j, *m;

        setup();
        chr_in("isgx", 10, 247);
        j = run_probe_json("--aesmd-dir", "/var/run/aesmd");
        m = json_array_get(
                json_object_get(json_object_get(resource(j, "ias"), "allocate"), "mounts"), 0);
        CHECK_STR(json_string_value(json_object_get(m, "container_path")), "/var/run/aesmd");
        CHECK_STR(json_string_value(json_object_get(m, "host_path")), "/var/run/aesmd");
        json_decref(j);
        teardown();
}

static void test_probe_json_nothing_found(void) {
        json_t *j;

        setup();
        teardown();
        j = run_probe_json(NULL, NULL);
        CHECK(json_is_true(json_object_get(j, "dev_root_missing")));
        CHECK_INT(json_array_size(json_object_get(j, "devices")), 0);
        CHECK(json_is_null(json_object_get(json_object_get(j, "in_use"), "dcap_enclave")));
        CHECK_INT(json_integer_value(json_object_get(resource(j, "sgx"), "count")), 0);
        json_decref(j);
}

static void test_probe_json_escapes_strings(void) {
        json_t *j;

        setup();
        /* a dev root that needs escaping: the JSON must still parse and round-trip */
        snprintf(root, sizeof(root), "%s/q\"\\\n", top);
        CHECK(mkdir(root, 0755) == 0);
        chr_in("isgx", 10, 247);
        j = run_probe_json(NULL, NULL);
        CHECK_STR(json_string_value(json_object_get(j, "dev_root")), root);
        json_decref(j);
        teardown();
}

static void test_probe_write_error(void) {
        struct cli_options o;
        struct discovery d;
        char err[64];
        char *argv[] = {(char *) "sgxdevplugin", (char *) "probe", (char *) "--dev-root", root,
                        NULL};
        FILE *f;

        setup();
        chr_in("isgx", 10, 247);
        CHECK_INT(cli_parse(4, argv, &o, err, sizeof(err)), 0);
        CHECK_INT(discovery_scan(root, &d), 0);
        f = fopen("/dev/full", "w");
        CHECK(f != NULL);
        if (f) {
                CHECK_INT(probe_report(f, &o, &d, NULL), -EIO);
                fclose(f);
        }
        teardown();
}

/* ---- capabilities ---- */

/* Writes TOP/facts/REL (parents made). */
static void fact(const char *rel, const char *text) {
        char p[256];
        FILE *f;

        snprintf(p, sizeof(p), "%s/facts/%s", top, rel);
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

/* An SGX2 + FLC server (Ice Lake-SP registers) on Linux 6.5 with two NUMA nodes of EPC. */
static void sgx2_server_facts(void) {
        fact("cpuid", "# Ice Lake-SP\n"
                      "0 0 1b 756e6547 6c65746e 49656e69\n"
                      "1 0 606a6 36800800 7ffefbff bfebfbff\n"
                      "7 0 2 f3bfb7ef 40417f5e bc040412\n"
                      "12 0 403 1 0 381f\n"
                      "12 2 c00001 40 7ec00002 0\n"
                      "12 3 c00001 80 7f400002 0\n");
        fact("proc/cpuinfo", "processor\t: 0\nflags\t\t: fpu sgx sgx_lc\n");
        fact("proc/sys/kernel/osrelease", "6.5.0-18-generic\n");
        fact("sys/devices/system/node/node0/x86/sgx_total_bytes", "2126512128\n");
        fact("sys/devices/system/node/node1/x86/sgx_total_bytes", "2134900736\n");
}

static char facts_proc[128], facts_sys[128], facts_cpuid[128];

static void facts_paths(void) {
        snprintf(facts_proc, sizeof(facts_proc), "%s/facts/proc", top);
        snprintf(facts_sys, sizeof(facts_sys), "%s/facts/sys", top);
        snprintf(facts_cpuid, sizeof(facts_cpuid), "%s/facts/cpuid", top);
}

static void test_probe_text_capabilities(void) {
        char *text, *last;

        setup();
        in_kernel_tree();
        sgx2_server_facts();
        facts_paths();
        text = run_probe(NULL, "--proc-root", facts_proc, "--sys-root", facts_sys, "--cpuid-file",
                         facts_cpuid, NULL);
        CHECK(text != NULL);
        if (!text)
                goto out;
        CHECK(strstr(text, "cpu              GenuineIntel, max leaf 0x1b, hypervisor no\n"));
        CHECK(strstr(text, "  sgx1             yes\n"));
        CHECK(strstr(text, "  sgx2             yes\n"));
        CHECK(strstr(text, "  flc              yes"));
        CHECK(strstr(text, "  max enclave      2^31 bytes (32-bit), 2^56 bytes (64-bit)\n"));
        CHECK(strstr(text, "  epc (cpuid)      4064 MiB in 2 sections\n"));
        CHECK(strstr(text, "  epc (kernel)     4064 MiB in 2 NUMA nodes\n"));
        CHECK(strstr(text, "    node0          2028 MiB\n"));
        CHECK(strstr(text, "    node1          2036 MiB\n"));
        CHECK(strstr(text, "  kernel           6.5.0-18-generic\n"));
        CHECK(strstr(text, "  driver           in-kernel\n"));
        CHECK(strstr(text, "  sgx2 usable      yes\n"));
        /* the verdict is the last line */
        last = strstr(text, "\nverdict: ");
        CHECK(last != NULL);
        if (last) {
                const char want[] = "\nverdict: usable - SGX usable: in-kernel driver";

                CHECK(strncmp(last, want, sizeof(want) - 1) == 0);
                CHECK(strchr(last + 1, '\n') == text + strlen(text) - 1);
        }
out:
        free(text);
        teardown();
}

static json_t *probe_json_args(const char *a1, const char *a2, const char *a3, const char *a4,
                               const char *a5, const char *a6) {
        char *text = run_probe(NULL, "--json", a1, a2, a3, a4, a5, a6, NULL);
        json_error_t jerr;
        json_t *j;

        if (!text)
                return NULL;
        j = json_loads(text, 0, &jerr);
        CHECK(j != NULL);
        free(text);
        return j;
}

static void test_probe_json_capabilities(void) {
        json_t *j, *c, *nodes;

        setup();
        in_kernel_tree();
        sgx2_server_facts();
        facts_paths();
        j = probe_json_args("--proc-root", facts_proc, "--sys-root", facts_sys, "--cpuid-file",
                            facts_cpuid);
        c = json_object_get(j, "capabilities");
        CHECK(json_is_object(c));
        CHECK_STR(json_string_value(json_object_get(c, "cpuid_source")), facts_cpuid);
        CHECK(json_is_true(json_object_get(json_object_get(c, "cpu"), "sgx2")));
        CHECK(json_is_true(json_object_get(json_object_get(c, "cpu"), "flc")));
        CHECK_INT(json_integer_value(
                          json_object_get(json_object_get(c, "cpu"), "max_enclave_bits_64")),
                  56);
        CHECK_INT(json_array_size(json_object_get(json_object_get(c, "cpu"), "epc_sections")), 2);
        nodes = json_object_get(json_object_get(c, "kernel"), "epc_nodes");
        CHECK_INT(json_array_size(nodes), 2);
        CHECK_INT(json_integer_value(json_object_get(json_array_get(nodes, 1), "node")), 1);
        CHECK_INT(json_integer_value(json_object_get(json_array_get(nodes, 1), "bytes")),
                  2134900736);
        CHECK_STR(json_string_value(json_object_get(json_object_get(c, "kernel"), "release")),
                  "6.5.0-18-generic");
        CHECK_STR(json_string_value(json_object_get(c, "driver")), "in-kernel");
        CHECK(json_is_true(json_object_get(c, "dcap")));
        CHECK(json_is_false(json_object_get(c, "ias")));
        CHECK(json_is_true(json_object_get(c, "sgx2_usable")));
        CHECK_INT(json_integer_value(json_object_get(c, "epc_mib")), 4064);
        CHECK_STR(json_string_value(json_object_get(c, "verdict")), "usable");
        CHECK(strstr(json_string_value(json_object_get(c, "verdict_line")), "SGX2") != NULL);
        json_decref(j);
        teardown();
}

static void test_probe_json_capabilities_no_flc(void) {
        json_t *j, *c;

        setup();
        /* no device; a Skylake-like CPU: SGX1 without FLC, and a kernel without the sgx flag */
        fact("cpuid", "0 0 16 756e6547 6c65746e 49656e69\n"
                      "7 0 0 29c6fbf 0 0\n"
                      "12 0 1 0 0 241f\n"
                      "12 2 30200001 0 5d80001 0\n");
        fact("proc/cpuinfo", "processor\t: 0\nflags\t\t: fpu\n");
        fact("proc/sys/kernel/osrelease", "6.1.0\n");
        facts_paths();
        j = probe_json_args("--proc-root", facts_proc, "--sys-root", facts_sys, "--cpuid-file",
                            facts_cpuid);
        c = json_object_get(j, "capabilities");
        CHECK_STR(json_string_value(json_object_get(c, "verdict")), "no-flc");
        CHECK_STR(json_string_value(json_object_get(c, "driver")), "none");
        CHECK(json_is_false(json_object_get(c, "flc")));
        CHECK_INT(json_integer_value(json_object_get(c, "epc_bytes")), 98041856);
        CHECK_INT(json_array_size(json_object_get(json_object_get(c, "kernel"), "epc_nodes")), 0);
        json_decref(j);
        teardown();
}

static void test_probe_without_capabilities(void) {
        struct cli_options o;
        struct discovery d;
        char err[64], *text = NULL;
        size_t len = 0;
        char *argv[] = {(char *) "sgxdevplugin", (char *) "probe", (char *) "--dev-root", root,
                        NULL};
        FILE *f;

        setup();
        CHECK_INT(cli_parse(4, argv, &o, err, sizeof(err)), 0);
        CHECK_INT(discovery_scan(root, &d), 0);
        f = open_memstream(&text, &len);
        CHECK(f != NULL);
        if (f) {
                CHECK_INT(probe_report(f, &o, &d, NULL), 0);
                fclose(f);
                CHECK(strstr(text, "SGX capabilities") == NULL);
                CHECK(strstr(text, "verdict:") == NULL);
                CHECK(strstr(text, "resources (sockets in") != NULL);
        }
        free(text);
        teardown();
}

/* ---- refused device nodes (issue 10) ---- */

/* sgx_enclave -> mem (c 1 1): listed as refused with the reason, nothing advertised or mapped */
static void test_probe_issue10_refused_text(void) {
        char p[256], *text;

        setup();
        chr_in("mem", 1, 1);
        snprintf(p, sizeof(p), "%s/sgx_enclave", root);
        CHECK(symlink("mem", p) == 0);
        text = run_probe(NULL, NULL);
        CHECK(text != NULL);
        if (!text)
                goto out;
        CHECK(strstr(text, "(device nodes refused as not SGX, see below)"));
        CHECK(strstr(text, "refused device nodes (not SGX: never advertised or mapped):\n"));
        CHECK(strstr(text, "  sgx_enclave  yes   /dev/mem     1:1          not-misc: not a misc "
                           "device (major 10)"));
        CHECK(strstr(text, "sgx.k8s.io/sgx        0  None"));
        CHECK(strstr(text, "Allocate") == NULL);
        CHECK(strstr(text, "\nverdict: refused - not usable: SGX refused: /dev/sgx_enclave -> "
                           "/dev/mem (1:1)"));
        free(text);
out:
        teardown();
}

static void uevent_at(const char *sys, const char *num, const char *text) {
        char p[256];
        FILE *f;

        snprintf(p, sizeof(p), "%s/dev/char/%s", sys, num);
        for (char *c = p + strlen(sys) + 1; *c; c++)
                if (*c == '/') {
                        *c = '\0';
                        (void) mkdir(p, 0755);
                        *c = '/';
                }
        CHECK(mkdir(p, 0755) == 0);
        snprintf(p, sizeof(p), "%s/dev/char/%s/uevent", sys, num);
        f = fopen(p, "w");
        CHECK(f != NULL);
        if (f) {
                fputs(text, f);
                fclose(f);
        }
}

/* the kernel names 10:125 "watchdog": JSON lists it with the kernel's name, the verdict says so */
static void test_probe_issue10_refused_json(void) {
        char sys[128];
        json_t *j, *x, *caps;

        setup();
        snprintf(sys, sizeof(sys), "%s/sysfs", top);
        CHECK(mkdir(sys, 0755) == 0);
        uevent_at(sys, "10:125", "MAJOR=10\nMINOR=125\nDEVNAME=watchdog\n");
        chr_in("sgx_enclave", 10, 125);
        chr_in("sgx_provision", 10, 126);
        j = run_probe_json("--sys-root", sys);
        CHECK(j != NULL);
        if (!j)
                goto out;
        CHECK_INT(json_array_size(json_object_get(j, "refused")), 1);
        x = json_array_get(json_object_get(j, "refused"), 0);
        CHECK_STR(json_string_value(json_object_get(x, "name")), "sgx_enclave");
        CHECK_STR(json_string_value(json_object_get(x, "path")), "/dev/sgx_enclave");
        CHECK_STR(json_string_value(json_object_get(x, "target")), "/dev/sgx_enclave");
        CHECK_INT(json_integer_value(json_object_get(x, "major")), 10);
        CHECK_INT(json_integer_value(json_object_get(x, "minor")), 125);
        CHECK_STR(json_string_value(json_object_get(x, "kernel_name")), "watchdog");
        CHECK_STR(json_string_value(json_object_get(x, "reason")), "kernel-name");
        CHECK(json_is_false(json_object_get(x, "link")));
        CHECK(json_is_null(json_object_get(json_object_get(j, "in_use"), "dcap_enclave")));
        CHECK(json_is_null(json_object_get(resource(j, "sgx"), "allocate")));
        CHECK(json_is_null(json_object_get(resource(j, "dcap"), "allocate")));
        caps = json_object_get(j, "capabilities");
        CHECK_STR(json_string_value(json_object_get(caps, "verdict")), "refused");
        json_decref(j);
out:
        teardown();
}

/* nothing refused: an empty list */
static void test_probe_issue10_nothing_refused_json(void) {
        json_t *j;

        setup();
        in_kernel_tree();
        j = run_probe_json(NULL, NULL);
        CHECK(json_is_array(json_object_get(j, "refused")));
        CHECK_INT(json_array_size(json_object_get(j, "refused")), 0);
        CHECK(j && strcmp(json_string_value(
                                  json_object_get(json_object_get(j, "capabilities"), "verdict")),
                          "refused") != 0);
        json_decref(j);
        teardown();
}

int main(void) {
        RUN(test_probe_nothing_found);
        RUN(test_probe_missing_root);
        RUN(test_probe_text_lists_devices);
        RUN(test_probe_json_in_kernel);
        RUN(test_probe_json_no_provision);
        RUN(test_probe_json_provision_resource);
        RUN(test_probe_json_legacy_and_ias);
        RUN(test_probe_json_aesmd_mount);
        RUN(test_probe_json_nothing_found);
        RUN(test_probe_json_escapes_strings);
        RUN(test_probe_write_error);
        RUN(test_probe_text_capabilities);
        RUN(test_probe_json_capabilities);
        RUN(test_probe_json_capabilities_no_flc);
        RUN(test_probe_without_capabilities);
        RUN(test_probe_issue10_refused_text);
        RUN(test_probe_issue10_refused_json);
        RUN(test_probe_issue10_nothing_refused_json);
        return unit_done();
}
