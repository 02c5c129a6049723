/*
 * capabilities.c - the node's SGX facts beyond its device nodes (see capabilities.h): CPUID
 * decoding through a replaceable source (this CPU, or a recorded dump and its parser), the
 * kernel's view under a proc and a sys root (/proc/cpuinfo flags, the release, EPC per NUMA
 * node), the driver kind of the device nodes discovery.c found, and the verdict an operator
 * reads. Every file read is bounded; bad content leaves a fact unset, never crashes. Knows
 * nothing of gRPC, the kubelet or the API server; logs at debug at most.
 */
#include "capabilities.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#        include <cpuid.h>
#        define HAVE_CPUID 1
#else
#        define HAVE_CPUID 0
#endif

#include "discovery.h"
#include "fileio.h"
#include "log.h"
#include "text.h"

/* CPUID bits (Intel SDM Vol. 2A, CPUID; Vol. 3D, chapter "Enumeration of Intel SGX") */
#define CPUID1_ECX_HYPERVISOR (1u << 31)
#define CPUID7_EBX_SGX (1u << 2)
#define CPUID7_ECX_SGX_LC (1u << 30)
#define CPUID12_EAX_SGX1 (1u << 0)
#define CPUID12_EAX_SGX2 (1u << 1)
#define CPUID12_EPC_TYPE_MASK 0xfu /* sub-leaf >= 2, EAX[3:0] */
#define CPUID12_EPC_TYPE_INVALID 0u
#define CPUID12_EPC_TYPE_SECTION 1u
#define CPUID12_LOW_MASK 0xfffff000u  /* bits 31:12 of a base or a size */
#define CPUID12_HIGH_MASK 0x000fffffu /* bits 51:32 of a base or a size */

/* ---- CPUID sources ---- */

#if HAVE_CPUID
int cpuid_native(uint32_t leaf, uint32_t subleaf, struct cpuid_regs *ret, void *userdata) {
        unsigned a, b, c, d;

        (void) userdata;
        /* a leaf above the maximum would answer the highest leaf's data: answer zeros instead */
        if (leaf < 0x80000000u) {
                __cpuid_count(0, 0, a, b, c, d);
                if (leaf > a) {
                        *ret = (struct cpuid_regs){0};
                        return 0;
                }
        }
        __cpuid_count(leaf, subleaf, a, b, c, d);
        *ret = (struct cpuid_regs){.eax = a, .ebx = b, .ecx = c, .edx = d};
        return 0;
}
#else
int cpuid_native(uint32_t leaf, uint32_t subleaf, struct cpuid_regs *ret, void *userdata) {
        (void) leaf;
        (void) subleaf;
        (void) ret;
        (void) userdata;
        return -ENOTSUP;
}
#endif

int cpuid_recorded(uint32_t leaf, uint32_t subleaf, struct cpuid_regs *ret, void *userdata) {
        const struct cpuid_record *rec = userdata;

        for (size_t i = 0; rec && i < rec->n && i < CAPS_MAX_CPUID_RECORDS; i++) {
                if (rec->e[i].leaf == leaf && rec->e[i].subleaf == subleaf) {
                        *ret = rec->e[i].r;
                        return 0;
                }
        }
        *ret = (struct cpuid_regs){0};
        return 0;
}

/* ---- the recorded-dump parser ---- */

static bool is_blank(char c) {
        return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* One hex number of at most 32 bits ("0x" optional). Returns 0 or -EINVAL. */
static int parse_hex32(const char *s, size_t n, uint32_t *ret) {
        uint64_t v = 0;
        size_t i = 0;

        if (n >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
                i = 2;
        if (i == n)
                return -EINVAL;
        for (; i < n; i++) {
                int dig;

                if (s[i] >= '0' && s[i] <= '9')
                        dig = s[i] - '0';
                else if (s[i] >= 'a' && s[i] <= 'f')
                        dig = s[i] - 'a' + 10;
                else if (s[i] >= 'A' && s[i] <= 'F')
                        dig = s[i] - 'A' + 10;
                else
                        return -EINVAL;
                v = v * 16 + (uint64_t) dig;
                if (v > UINT32_MAX)
                        return -EINVAL;
        }
        *ret = (uint32_t) v;
        return 0;
}

/* Parses one line (comment already cut off) into *ret->e[ret->n] when it holds an entry. */
static int parse_line(const char *line, size_t len, unsigned lineno, struct cpuid_record *ret,
                      char *err, size_t errsz) {
        uint32_t v[6];
        size_t ntok = 0, i = 0;
        char shown[32];

        while (i < len) {
                size_t start;

                while (i < len && is_blank(line[i]))
                        i++;
                if (i == len)
                        break;
                start = i;
                while (i < len && !is_blank(line[i]))
                        i++;
                if (ntok >= 6) {
                        ntok++;
                        continue;
                }
                if (parse_hex32(line + start, i - start, &v[ntok]) < 0) {
                        text_printable(line + start, i - start, shown, sizeof(shown));
                        snprintf(err, errsz, "line %u: \"%s\" is not a 32-bit hex number", lineno,
                                 shown);
                        return -EINVAL;
                }
                ntok++;
        }
        if (ntok == 0)
                return 0;
        if (ntok != 6) {
                snprintf(err, errsz,
                         "line %u: expected 6 hex numbers (LEAF SUBLEAF EAX EBX ECX EDX), got %zu",
                         lineno, ntok);
                return -EINVAL;
        }
        for (size_t k = 0; k < ret->n; k++) {
                if (ret->e[k].leaf == v[0] && ret->e[k].subleaf == v[1]) {
                        snprintf(err, errsz,
                                 "line %u: leaf 0x%x sub-leaf 0x%x is given twice (entry %zu)",
                                 lineno, v[0], v[1], k + 1);
                        return -EINVAL;
                }
        }
        if (ret->n >= CAPS_MAX_CPUID_RECORDS) {
                snprintf(err, errsz, "line %u: too many entries (at most %d)", lineno,
                         CAPS_MAX_CPUID_RECORDS);
                return -EINVAL;
        }
        ret->e[ret->n].leaf = v[0];
        ret->e[ret->n].subleaf = v[1];
        ret->e[ret->n].r = (struct cpuid_regs){.eax = v[2], .ebx = v[3], .ecx = v[4], .edx = v[5]};
        ret->n++;
        return 0;
}

int cpuid_record_parse(const char *text, size_t len, struct cpuid_record *ret, char *err,
                       size_t errsz) {
        struct cpuid_record *rec;
        unsigned lineno = 0;
        size_t pos = 0;
        bool have_leaf0 = false;
        int r;

        if (errsz > 0)
                err[0] = '\0';
        rec = calloc(1, sizeof(*rec));
        if (!rec)
                return -ENOMEM;
        while (pos < len) {
                const char *line = text + pos, *nl = memchr(line, '\n', len - pos), *hash;
                size_t n = nl ? (size_t) (nl - line) : len - pos;

                pos += n + (nl ? 1 : 0);
                lineno++;
                if (memchr(line, '\0', n)) {
                        snprintf(err, errsz, "line %u: a NUL byte", lineno);
                        r = -EINVAL;
                        goto out_free;
                }
                hash = memchr(line, '#', n);
                if (hash)
                        n = (size_t) (hash - line);
                r = parse_line(line, n, lineno, rec, err, errsz);
                if (r < 0)
                        goto out_free;
        }
        for (size_t k = 0; k < rec->n; k++)
                if (rec->e[k].leaf == 0 && rec->e[k].subleaf == 0)
                        have_leaf0 = true;
        if (!have_leaf0) {
                snprintf(err, errsz, "no entry for leaf 0 sub-leaf 0 (vendor and maximum leaf)");
                r = -EINVAL;
                goto out_free;
        }
        *ret = *rec;
        r = 0;
out_free:
        free(rec);
        return r;
}

int cpuid_record_load(const char *path, struct cpuid_record *ret, char *err, size_t errsz) {
        char *text = NULL, sub[200];
        size_t len;
        bool truncated;
        struct stat st;
        int r;

        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
                snprintf(err, errsz, "cannot read %s: %s", path, strerror(EISDIR));
                return -EISDIR;
        }
        r = fileio_read(path, CAPS_MAX_RECORD_FILE, &text, &len, &truncated);
        if (r < 0) {
                snprintf(err, errsz, "cannot read %s: %s", path, strerror(-r));
                return r;
        }
        if (truncated) {
                snprintf(err, errsz, "%s: larger than %d bytes, not a CPUID recording", path,
                         CAPS_MAX_RECORD_FILE);
                r = -EFBIG;
                goto out_free;
        }
        r = cpuid_record_parse(text, len, ret, sub, sizeof(sub));
        if (r < 0)
                snprintf(err, errsz, "%s: %s", path, sub);
out_free:
        free(text);
        return r;
}

/* ---- CPUID decoding ---- */

void caps_decode_cpuid(cpuid_fn fn, void *userdata, struct sgx_cpu *ret) {
        struct cpuid_regs r;
        struct sgx_cpu c;

        memset(&c, 0, sizeof(c));
        if (!fn || fn(0, 0, &r, userdata) < 0)
                goto out;
        c.valid = true;
        c.max_leaf = r.eax;
        memcpy(c.vendor, &r.ebx, 4);
        memcpy(c.vendor + 4, &r.edx, 4);
        memcpy(c.vendor + 8, &r.ecx, 4);
        c.vendor[12] = '\0';
        for (size_t i = 0; i < 12; i++)
                if (c.vendor[i] && !isprint((unsigned char) c.vendor[i]))
                        c.vendor[i] = '?';

        if (c.max_leaf >= 1 && fn(1, 0, &r, userdata) == 0)
                c.hypervisor = (r.ecx & CPUID1_ECX_HYPERVISOR) != 0;
        if (c.max_leaf >= 7 && fn(7, 0, &r, userdata) == 0) {
                c.sgx = (r.ebx & CPUID7_EBX_SGX) != 0;
                c.flc = (r.ecx & CPUID7_ECX_SGX_LC) != 0;
        }
        if (!c.sgx || c.max_leaf < 0x12)
                goto out;
        if (fn(0x12, 0, &r, userdata) == 0) {
                c.sgx1 = (r.eax & CPUID12_EAX_SGX1) != 0;
                c.sgx2 = (r.eax & CPUID12_EAX_SGX2) != 0;
                c.max_enclave_bits_32 = r.edx & 0xffu;
                c.max_enclave_bits_64 = (r.edx >> 8) & 0xffu;
        }
        /* EPC sections: sub-leaves 2.. until the first invalid one; other types are skipped */
        for (uint32_t sub = 2; sub < 2 + CAPS_MAX_EPC_SECTIONS; sub++) {
                uint32_t type;
                uint64_t base, size;

                if (fn(0x12, sub, &r, userdata) < 0)
                        break;
                type = r.eax & CPUID12_EPC_TYPE_MASK;
                if (type == CPUID12_EPC_TYPE_INVALID)
                        break;
                if (type != CPUID12_EPC_TYPE_SECTION)
                        continue;
                base = (uint64_t) (r.eax & CPUID12_LOW_MASK) |
                       ((uint64_t) (r.ebx & CPUID12_HIGH_MASK) << 32);
                size = (uint64_t) (r.ecx & CPUID12_LOW_MASK) |
                       ((uint64_t) (r.edx & CPUID12_HIGH_MASK) << 32);
                c.epc[c.n_epc_sections].base = base;
                c.epc[c.n_epc_sections].size = size;
                c.n_epc_sections++;
                c.epc_bytes += size; /* at most 16 × 2^52: no overflow */
        }
out:
        *ret = c;
}

/* ---- the kernel's view ---- */

int caps_parse_cpuinfo(const char *text, size_t len, bool *sgx, bool *sgx_lc) {
        size_t pos = 0;
        bool in_block = false;

        while (pos < len) {
                const char *line = text + pos, *nl = memchr(line, '\n', len - pos), *colon;
                size_t n = nl ? (size_t) (nl - line) : len - pos, k, i;
                bool found_sgx = false, found_lc = false;

                pos += n + (nl ? 1 : 0);
                for (i = 0; i < n && is_blank(line[i]); i++)
                        ;
                if (i == n) {
                        /* a blank line ends the first processor's block */
                        if (in_block)
                                return -ENOENT;
                        continue;
                }
                in_block = true;
                colon = memchr(line, ':', n);
                if (!colon)
                        continue;
                k = (size_t) (colon - line);
                while (k > 0 && is_blank(line[k - 1]))
                        k--;
                if (k != 5 || memcmp(line, "flags", 5) != 0)
                        continue;
                for (i = (size_t) (colon - line) + 1; i < n;) {
                        size_t start;

                        while (i < n && is_blank(line[i]))
                                i++;
                        start = i;
                        while (i < n && !is_blank(line[i]))
                                i++;
                        if (i - start == 3 && memcmp(line + start, "sgx", 3) == 0)
                                found_sgx = true;
                        else if (i - start == 6 && memcmp(line + start, "sgx_lc", 6) == 0)
                                found_lc = true;
                }
                *sgx = found_sgx;
                *sgx_lc = found_lc;
                return 0;
        }
        return -ENOENT;
}

/* Decimal digits at *s into *ret (at most 1000000). Returns the count, or -EINVAL. */
static int parse_small_uint(const char *s, unsigned *ret) {
        uint64_t v;
        int n = text_digits(s, strlen(s), 1000000, &v);

        if (n < 0)
                return -EINVAL;
        *ret = (unsigned) v;
        return n;
}

int caps_parse_release(const char *s, unsigned *major, unsigned *minor) {
        unsigned ma, mi;
        int n, m;

        if (!s)
                return -EINVAL;
        n = parse_small_uint(s, &ma);
        if (n < 0 || s[n] != '.')
                return -EINVAL;
        m = parse_small_uint(s + n + 1, &mi);
        if (m < 0)
                return -EINVAL;
        *major = ma;
        *minor = mi;
        return 0;
}

int caps_parse_u64(const char *text, size_t len, uint64_t *ret) {
        /* the number, then only blanks and newlines (sysfs ends its values with one) */
        while (len > 0 && (text[len - 1] == '\n' || is_blank(text[len - 1])))
                len--;
        return text_parse_u64n(text, len, UINT64_MAX, ret);
}

/*
 * The readers below leave a fact unset when its file is missing or unreadable, but return
 * -ENOMEM when it could not be read for want of memory: that is no fact about the system.
 */
static int read_cpuinfo(const char *proc_root, struct sgx_kernel *k) {
        char path[PATH_MAX], *text;
        size_t len;
        bool truncated;
        int r;

        r = snprintf(path, sizeof(path), "%s/cpuinfo", proc_root);
        if (r < 0 || (size_t) r >= sizeof(path))
                return 0;
        r = fileio_read(path, CAPS_MAX_CPUINFO, &text, &len, &truncated);
        if (r < 0)
                return r == -ENOMEM ? r : 0;
        k->cpuinfo_read = true;
        r = caps_parse_cpuinfo(text, len, &k->flag_sgx, &k->flag_sgx_lc);
        if (r < 0)
                log_debug(NULL, path, "no flags line for the first processor, flags unknown");
        free(text);
        return 0;
}

static int read_release(const char *proc_root, struct sgx_kernel *k) {
        char path[PATH_MAX], *text;
        size_t len, n = 0;
        bool truncated;
        int r;

        r = snprintf(path, sizeof(path), "%s/sys/kernel/osrelease", proc_root);
        if (r < 0 || (size_t) r >= sizeof(path))
                return 0;
        r = fileio_read(path, sizeof(k->release) - 1, &text, &len, &truncated);
        if (r < 0)
                return r == -ENOMEM ? r : 0;
        /* the first line, printable characters only */
        while (n < len && text[n] != '\n' && isprint((unsigned char) text[n]))
                n++;
        memcpy(k->release, text, n);
        k->release[n] = '\0';
        free(text);
        if (caps_parse_release(k->release, &k->major, &k->minor) < 0) {
                log_debug(NULL, path, "release \"%s\" does not start with N.N, ignoring",
                          k->release);
                k->major = k->minor = 0;
        }
        return 0;
}

static int cmp_node(const void *a, const void *b) {
        unsigned x = *(const unsigned *) a, y = *(const unsigned *) b;

        return x < y ? -1 : x > y;
}

/* "node12" → 12; -EINVAL for anything else. */
static int node_number(const char *name, unsigned *ret) {
        int n;

        if (strncmp(name, "node", 4) != 0)
                return -EINVAL;
        n = parse_small_uint(name + 4, ret);
        if (n < 0 || name[4 + n] != '\0')
                return -EINVAL;
        return 0;
}

static int read_epc_nodes(const char *sys_root, struct sgx_kernel *k) {
        char dir[PATH_MAX], path[PATH_MAX], *text;
        struct dirent *de;
        DIR *dp;
        int r;

        r = snprintf(dir, sizeof(dir), "%s/devices/system/node", sys_root);
        if (r < 0 || (size_t) r >= sizeof(dir))
                return 0;
        dp = opendir(dir);
        if (!dp)
                return errno == ENOMEM ? -ENOMEM : 0;
        while ((de = readdir(dp))) {
                unsigned node;
                uint64_t bytes;
                size_t len;
                bool truncated;

                if (node_number(de->d_name, &node) < 0)
                        continue;
                if (k->n_nodes >= CAPS_MAX_NODES) {
                        log_debug(NULL, dir, "more than %d NUMA nodes, ignoring node%u",
                                  CAPS_MAX_NODES, node);
                        continue;
                }
                r = snprintf(path, sizeof(path), "%s/%s/x86/sgx_total_bytes", dir, de->d_name);
                if (r < 0 || (size_t) r >= sizeof(path))
                        continue;
                r = fileio_read(path, 64, &text, &len, &truncated);
                if (r == -ENOMEM) {
                        closedir(dp);
                        return r;
                }
                if (r < 0)
                        continue;
                r = truncated ? -EINVAL : caps_parse_u64(text, len, &bytes);
                free(text);
                if (r < 0) {
                        log_debug(NULL, path, "not a byte count, ignoring");
                        continue;
                }
                k->nodes[k->n_nodes].node = node;
                k->nodes[k->n_nodes].bytes = bytes;
                k->n_nodes++;
        }
        closedir(dp);
        /* node is the first member: sort the pairs by it */
        qsort(k->nodes, k->n_nodes, sizeof(k->nodes[0]), cmp_node);
        for (size_t i = 0; i < k->n_nodes; i++)
                k->epc_bytes = k->nodes[i].bytes > UINT64_MAX - k->epc_bytes
                                       ? UINT64_MAX
                                       : k->epc_bytes + k->nodes[i].bytes;
        return 0;
}

int caps_read_kernel(const char *proc_root, const char *sys_root, struct sgx_kernel *ret) {
        int r = 0;

        memset(ret, 0, sizeof(*ret));
        if (proc_root) {
                r = read_cpuinfo(proc_root, ret);
                if (r >= 0)
                        r = read_release(proc_root, ret);
        }
        if (r >= 0 && sys_root)
                r = read_epc_nodes(sys_root, ret);
        return r;
}

/* ---- the verdict ---- */

static enum sgx_driver driver_of(const struct discovery *d) {
        const char *p;

        if (!d || !d->dcap_enclave.present)
                return SGX_DRIVER_NONE;
        if (d->dcap_legacy)
                return SGX_DRIVER_DCAP_LEGACY;
        p = d->dcap_enclave.host_path;
        if (strcmp(p, "/dev/sgx_enclave") == 0)
                return SGX_DRIVER_INKERNEL;
        /* /dev/sgx/enclave, /dev/sgx/sgx_enclave: the out-of-tree DCAP driver's names */
        return SGX_DRIVER_DCAP;
}

static bool release_at_least(const struct sgx_kernel *k, unsigned major, unsigned minor) {
        return k->major > major || (k->major == major && k->minor >= minor);
}

static void verdict(struct sgx_caps *c, enum sgx_verdict v, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static void verdict(struct sgx_caps *c, enum sgx_verdict v, const char *fmt, ...) {
        va_list ap;

        c->verdict = v;
        va_start(ap, fmt);
        vsnprintf(c->verdict_line, sizeof(c->verdict_line), fmt, ap);
        va_end(ap);
}

/* "SGX1", "SGX1+SGX2", with "+FLC" */
static const char *cpu_summary(const struct sgx_caps *c, char *buf, size_t size) {
        snprintf(buf, size, "%s%s%s", c->cpu.sgx1 ? "SGX1" : "SGX", c->cpu.sgx2 ? "+SGX2" : "",
                 c->flc ? "+FLC" : " without FLC");
        return buf;
}

static void evaluate_with_device(struct sgx_caps *c, const struct sgx_kernel *k) {
        const struct sgx_cpu *cpu = &c->cpu;
        char what[96], sum[32];

        if (c->dcap && c->ias)
                snprintf(what, sizeof(what), "%s driver and legacy isgx (DCAP and IAS)",
                         sgx_driver_name(c->driver));
        else if (c->dcap)
                snprintf(what, sizeof(what), "%s driver (DCAP)", sgx_driver_name(c->driver));
        else
                snprintf(what, sizeof(what), "legacy isgx driver (IAS only)");

        if (!cpu->valid) {
                verdict(c, SGX_VERDICT_USABLE,
                        "SGX usable: %s; no CPUID here (not x86), trusting the device nodes", what);
                return;
        }
        if (!cpu->sgx) {
                verdict(c, SGX_VERDICT_USABLE,
                        "SGX usable: %s; CPUID shows no SGX (masked by a hypervisor?), trusting the device nodes",
                        what);
                return;
        }
        cpu_summary(c, sum, sizeof(sum));
        if (!c->dcap && !c->flc) {
                verdict(c, SGX_VERDICT_USABLE,
                        "SGX usable: %s, %s; without FLC the in-kernel and DCAP drivers cannot run, so only IAS attestation works here",
                        what, sum);
                return;
        }
        if (cpu->sgx2 && c->driver == SGX_DRIVER_INKERNEL && !c->sgx2_usable && k->major) {
                verdict(c, SGX_VERDICT_USABLE,
                        "SGX usable: %s, %s, EPC %llu MiB; SGX2 (EDMM) needs Linux 6.0+, kernel is %s",
                        what, sum, (unsigned long long) (c->epc_bytes >> 20), k->release);
                return;
        }
        if (cpu->sgx2 && c->dcap && c->driver != SGX_DRIVER_INKERNEL) {
                verdict(c, SGX_VERDICT_USABLE,
                        "SGX usable: %s, %s, EPC %llu MiB; SGX2 (EDMM) needs the in-kernel driver of Linux 6.0+",
                        what, sum, (unsigned long long) (c->epc_bytes >> 20));
                return;
        }
        verdict(c, SGX_VERDICT_USABLE, "SGX usable: %s, %s, EPC %llu MiB%s", what, sum,
                (unsigned long long) (c->epc_bytes >> 20),
                c->sgx2_usable ? ", SGX2 (EDMM) usable" : "");
}

static void evaluate_without_device(struct sgx_caps *c, const struct sgx_kernel *k) {
        const struct sgx_cpu *cpu = &c->cpu;
        char sum[32];

        if (!cpu->valid) {
                verdict(c, SGX_VERDICT_NO_SGX,
                        "no SGX: no CPUID here (not x86) and no SGX device node");
                return;
        }
        if (!cpu->sgx) {
                if (strcmp(cpu->vendor, "GenuineIntel") == 0)
                        verdict(c, SGX_VERDICT_NO_SGX,
                                "no SGX: CPUID reports none on this %sIntel CPU (some firmware hides it when SGX is disabled; check the BIOS if the part should have it)",
                                cpu->hypervisor ? "virtual " : "");
                else
                        verdict(c, SGX_VERDICT_NO_SGX, "no SGX: %s CPU%s without SGX",
                                cpu->vendor[0] ? cpu->vendor : "unknown",
                                cpu->hypervisor ? " (virtual)" : "");
                return;
        }
        if (cpu->hypervisor) {
                verdict(c, SGX_VERDICT_VM_NO_DEVICE,
                        "not usable: a VM whose CPUID claims SGX, but no SGX device is passed through; give the VM EPC memory and an SGX driver, or run SGX pods on other nodes");
                return;
        }
        if (!cpu->sgx1 || cpu->n_epc_sections == 0) {
                verdict(c, SGX_VERDICT_FIRMWARE_OFF,
                        "not usable: the CPU has SGX but it is disabled in firmware (%s); set SGX to Enabled in the BIOS with a PRM size, and reboot",
                        !cpu->sgx1 ? "SGX1 off" : "no EPC");
                return;
        }
        cpu_summary(c, sum, sizeof(sum));
        if (!c->flc) {
                verdict(c, SGX_VERDICT_NO_FLC,
                        "not usable: %s, so /proc/cpuinfo shows no sgx flag and the in-kernel and DCAP drivers cannot run; install the legacy isgx driver (IAS attestation only)",
                        sum);
                return;
        }
        if (k->major && !release_at_least(k, 5, 11)) {
                verdict(c, SGX_VERDICT_NO_DRIVER,
                        "not usable: %s, EPC %llu MiB, but no SGX device node: kernel %s has no in-kernel driver (5.11+), install the DCAP driver or upgrade",
                        sum, (unsigned long long) (c->epc_bytes >> 20), k->release);
                return;
        }
        if (k->cpuinfo_read && !k->flag_sgx) {
                verdict(c, SGX_VERDICT_NO_DRIVER,
                        "not usable: %s, EPC %llu MiB, but no SGX device node and no sgx flag in /proc/cpuinfo: the kernel disabled SGX (see dmesg) or lacks CONFIG_X86_SGX",
                        sum, (unsigned long long) (c->epc_bytes >> 20));
                return;
        }
        verdict(c, SGX_VERDICT_NO_DRIVER,
                "not usable: %s, EPC %llu MiB, but no SGX device node: load the driver, or mount the host's /dev at --dev-root",
                sum, (unsigned long long) (c->epc_bytes >> 20));
}

/*
 * No SGX device node is usable because discovery refused what lay under the SGX names (issue 10):
 * say so, and which, rather than "load the driver".
 */
static void evaluate_refused(struct sgx_caps *c, const struct discovery *d) {
        const struct discovery_refused *x = &d->refused[0];

        verdict(c, SGX_VERDICT_REFUSED,
                "not usable: SGX refused: %s -> %s (%u:%u): %s%s; fix the device node (a udev rule, a package) so it is the SGX driver's",
                x->path, x->target, x->major, x->minor, discovery_refusal_reason(x->reason),
                d->n_refused > 1 ? ", and more (see probe)" : "");
}

/* Usable, but some names were refused: the verdict line says so at its end. */
static void note_refused(struct sgx_caps *c, const struct discovery *d) {
        size_t n = strlen(c->verdict_line);

        snprintf(c->verdict_line + n, sizeof(c->verdict_line) - n,
                 "; refused %zu node%s as not SGX (%s)", d->n_refused, d->n_refused == 1 ? "" : "s",
                 d->refused[0].path);
}

void caps_evaluate(const struct sgx_cpu *cpu, const struct sgx_kernel *kernel,
                   const struct discovery *d, struct sgx_caps *ret) {
        struct sgx_caps c;

        memset(&c, 0, sizeof(c));
        c.cpu = *cpu;
        c.kernel = *kernel;
        c.driver = driver_of(d);
        c.dcap = d && discovery_has_dcap(d);
        c.ias = d && discovery_has_ias(d);
        c.flc = cpu->flc || kernel->flag_sgx_lc;
        c.sgx2_usable =
                cpu->sgx2 && c.driver == SGX_DRIVER_INKERNEL && release_at_least(kernel, 6, 0);
        c.epc_bytes = caps_epc_bytes(cpu, kernel);
        if (c.dcap || c.ias)
                evaluate_with_device(&c, kernel);
        else if (d && d->n_refused > 0)
                evaluate_refused(&c, d);
        else
                evaluate_without_device(&c, kernel);
        if ((c.dcap || c.ias) && d && d->n_refused > 0)
                note_refused(&c, d);
        *ret = c;
}

uint64_t caps_epc_bytes(const struct sgx_cpu *cpu, const struct sgx_kernel *kernel) {
        return kernel->n_nodes > 0 ? kernel->epc_bytes : cpu->epc_bytes;
}

int caps_read_facts(const char *proc_root, const char *sys_root, const char *cpuid_file,
                    struct sgx_cpu *cpu, struct sgx_kernel *kernel, char *err, size_t errsz) {
        struct cpuid_record *rec;
        int r;

        if (errsz > 0)
                err[0] = '\0';
        r = caps_read_kernel(proc_root, sys_root, kernel);
        if (r < 0)
                return r;
        if (!cpuid_file) {
                caps_decode_cpuid(cpuid_native, NULL, cpu);
                return 0;
        }
        rec = malloc(sizeof(*rec));
        if (!rec)
                return -ENOMEM;
        r = cpuid_record_load(cpuid_file, rec, err, errsz);
        if (r >= 0)
                caps_decode_cpuid(cpuid_recorded, rec, cpu);
        free(rec);
        return r;
}

int caps_collect(const char *proc_root, const char *sys_root, const char *cpuid_file,
                 const struct discovery *d, struct sgx_caps *ret, char *err, size_t errsz) {
        struct sgx_kernel *k = malloc(sizeof(*k));
        struct sgx_cpu cpu;
        int r;

        if (!k)
                return -ENOMEM;
        r = caps_read_facts(proc_root, sys_root, cpuid_file, &cpu, k, err, errsz);
        if (r >= 0)
                caps_evaluate(&cpu, k, d, ret);
        free(k);
        return r;
}

const char *sgx_driver_name(enum sgx_driver drv) {
        switch (drv) {
        case SGX_DRIVER_NONE:
                return "none";
        case SGX_DRIVER_INKERNEL:
                return "in-kernel";
        case SGX_DRIVER_DCAP:
                return "dcap";
        case SGX_DRIVER_DCAP_LEGACY:
                return "dcap-legacy";
        }
        return "unknown";
}

const char *sgx_verdict_name(enum sgx_verdict v) {
        switch (v) {
        case SGX_VERDICT_USABLE:
                return "usable";
        case SGX_VERDICT_NO_SGX:
                return "no-sgx";
        case SGX_VERDICT_FIRMWARE_OFF:
                return "firmware-off";
        case SGX_VERDICT_NO_FLC:
                return "no-flc";
        case SGX_VERDICT_VM_NO_DEVICE:
                return "vm-no-device";
        case SGX_VERDICT_NO_DRIVER:
                return "no-driver";
        case SGX_VERDICT_REFUSED:
                return "refused";
        }
        return "unknown";
}
