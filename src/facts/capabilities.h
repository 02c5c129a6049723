/*
 * capabilities.h - the node's SGX facts beyond its device nodes: what the CPU reports (CPUID
 * leaves 1, 7 and 0x12), what the kernel reports (/proc/cpuinfo flags, the kernel release, EPC per
 * NUMA node in sysfs), which driver the device nodes belong to, and a verdict an operator reads.
 * Pure functions over recorded inputs (a CPUID source that tests replace, a proc root, a sys
 * root, a discovery result): no gRPC, no API server, no sockets.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct discovery;

#define CAPS_MAX_CPUID_RECORDS 128
#define CAPS_MAX_EPC_SECTIONS 16
#define CAPS_MAX_NODES 64
#define CAPS_MAX_RECORD_FILE (64 * 1024) /* a recorded CPUID file */
#define CAPS_MAX_CPUINFO (64 * 1024)     /* read of /proc/cpuinfo: the first processor is ~2 KiB */

struct cpuid_regs {
        uint32_t eax, ebx, ecx, edx;
};

/*
 * A CPUID source: fills *ret for (leaf, subleaf). Returns 0, or -ENOTSUP when there is no CPUID
 * at all (not x86). A leaf above the maximum basic leaf answers zeros, as a real CPU's would not
 * be relied on to.
 */
typedef int (*cpuid_fn)(uint32_t leaf, uint32_t subleaf, struct cpuid_regs *ret, void *userdata);

/* This CPU's CPUID instruction (userdata unused); -ENOTSUP off x86. */
int cpuid_native(uint32_t leaf, uint32_t subleaf, struct cpuid_regs *ret, void *userdata);

/* Recorded CPUID registers, e.g. of a real CPU we do not have. */
struct cpuid_record {
        size_t n;
        struct {
                uint32_t leaf, subleaf;
                struct cpuid_regs r;
        } e[CAPS_MAX_CPUID_RECORDS];
};

/*
 * Parses a recorded dump: one entry per line, "LEAF SUBLEAF EAX EBX ECX EDX", six hex numbers
 * (0x optional, at most 32 bits) separated by blanks; blank lines and '#' comments are skipped.
 * Returns 0, or -EINVAL with one line in |err| naming the line number (malformed line, too many
 * entries, a repeated leaf/subleaf pair), or saying that leaf 0 (vendor and maximum leaf) is
 * missing. |text| need not be NUL-terminated; a NUL byte in it is malformed.
 */
int cpuid_record_parse(const char *text, size_t len, struct cpuid_record *ret, char *err,
                       size_t errsz);
/*
 * Reads (at most CAPS_MAX_RECORD_FILE bytes) and parses |path|. Returns 0, -errno (the file:
 * -ENOENT, -EACCES, -EISDIR, -EFBIG when larger), -EINVAL (its content, see above); |err| then
 * holds one line starting with the path.
 */
int cpuid_record_load(const char *path, struct cpuid_record *ret, char *err, size_t errsz);
/* A cpuid_fn over a struct cpuid_record (the userdata): entries not recorded answer zeros. */
int cpuid_recorded(uint32_t leaf, uint32_t subleaf, struct cpuid_regs *ret, void *userdata);

/* What the CPU says (CPUID). */
struct sgx_cpu {
        bool valid;        /* the CPUID source answered */
        char vendor[13];   /* "GenuineIntel" (CPUID.0: EBX, EDX, ECX), NUL-terminated */
        uint32_t max_leaf; /* CPUID.0:EAX: leaves above it are never read */
        bool hypervisor; /* CPUID.1:ECX[31]: running in a VM */
        bool sgx;        /* CPUID.(7,0):EBX[2] */
        bool flc;        /* CPUID.(7,0):ECX[30] SGX_LC, Flexible Launch Control */
        bool sgx1, sgx2; /* CPUID.(0x12,0):EAX[0], EAX[1] (only read when sgx) */
        unsigned max_enclave_bits_32; /* CPUID.(0x12,0):EDX[7:0]: max enclave size 2^n, 32-bit */
        unsigned max_enclave_bits_64; /* CPUID.(0x12,0):EDX[15:8] */
        unsigned n_epc_sections;      /* valid sections in sub-leaves 2.. (type 1) */
        struct {
                uint64_t base, size;  /* bytes; EAX/EBX and ECX/EDX bits 51:12 */
        } epc[CAPS_MAX_EPC_SECTIONS]; /* the first n_epc_sections, in sub-leaf order */
        uint64_t epc_bytes;           /* their sizes added up */
};

/* Decodes the CPU's SGX facts through |fn|. Never fails: an absent source leaves valid false. */
void caps_decode_cpuid(cpuid_fn fn, void *userdata, struct sgx_cpu *ret);

/* What the kernel says. */
struct sgx_kernel {
        bool cpuinfo_read;            /* <proc>/cpuinfo could be read */
        bool flag_sgx, flag_sgx_lc;   /* in the first "flags" line */
        char release[65];             /* <proc>/sys/kernel/osrelease, "" when unknown */
        unsigned major, minor;        /* of the release, 0.0 when unknown */
        size_t n_nodes;               /* NUMA nodes with <sys>/devices/system/node/nodeN/x86/sgx_total_bytes */
        struct {
                unsigned node;
                uint64_t bytes;
        } nodes[CAPS_MAX_NODES];      /* sorted by node number */
        uint64_t epc_bytes;           /* sum over nodes */
};

/*
 * Pure decoders (fuzz targets): the "flags" of the first processor in a /proc/cpuinfo text
 * (-ENOENT when there is no flags line); "6.5.0-18-generic" → 6, 5 (-EINVAL when it does not
 * start with N.N); a sysfs number file ("1234\n") → 1234 (-EINVAL, -ERANGE).
 */
int caps_parse_cpuinfo(const char *text, size_t len, bool *sgx, bool *sgx_lc);
int caps_parse_release(const char *s, unsigned *major, unsigned *minor);
int caps_parse_u64(const char *text, size_t len, uint64_t *ret);

/*
 * Reads the kernel's facts under |proc_root| and |sys_root|. Missing or unreadable files and bad
 * content are no error (the fields stay unset, bad content is logged at debug); every read is
 * bounded. Returns 0, or -ENOMEM.
 */
int caps_read_kernel(const char *proc_root, const char *sys_root, struct sgx_kernel *ret);

/* The driver the DCAP-side device node belongs to. */
enum sgx_driver {
        SGX_DRIVER_NONE,
        SGX_DRIVER_INKERNEL,    /* /dev/sgx_enclave: Linux 5.11+ */
        SGX_DRIVER_DCAP,        /* /dev/sgx/enclave, /dev/sgx/sgx_enclave: out-of-tree DCAP */
        SGX_DRIVER_DCAP_LEGACY, /* /dev/sgx: the old DCAP driver's single node */
};

enum sgx_verdict {
        SGX_VERDICT_USABLE,       /* a device node exists and the CPU agrees (or is unknown) */
        SGX_VERDICT_NO_SGX,       /* the CPU has no SGX */
        SGX_VERDICT_FIRMWARE_OFF, /* CPUID has SGX but SGX1 is off or no EPC: BIOS setting */
        SGX_VERDICT_NO_FLC,       /* SGX without FLC and no isgx: only the legacy driver works */
        SGX_VERDICT_VM_NO_DEVICE, /* a VM's CPUID claims SGX, no device is passed through */
        SGX_VERDICT_NO_DRIVER, /* the CPU can, no device node: driver not loaded or /dev not mounted
                                */
        SGX_VERDICT_REFUSED, /* no SGX device node, but nodes under SGX names refused as not SGX */
};

/* Everything together, as probe shows it and the labeler uses it. */
struct sgx_caps {
        struct sgx_cpu cpu;
        struct sgx_kernel kernel;
        enum sgx_driver driver;  /* of the DCAP enclave node */
        bool dcap, ias;          /* enclave devices present (discovery) */
        bool flc;                /* cpu.flc or the kernel's sgx_lc flag */
        bool sgx2_usable;        /* cpu.sgx2, the in-kernel driver, and Linux >= 6.0 (EDMM) */
        uint64_t epc_bytes;      /* kernel.epc_bytes when known, else cpu.epc_bytes */
        enum sgx_verdict verdict;
        char verdict_line[256];  /* one line for an operator: what it is and what to do */
};

/*
 * Combines the facts. Pure. The driver comes from d->dcap_enclave (host path "/dev/sgx_enclave":
 * in-kernel; "/dev/sgx/enclave" or "/dev/sgx/sgx_enclave": out-of-tree DCAP; dcap_legacy: the old
 * DCAP driver); |d| may be NULL (no devices). The verdict, in this order: a device node (DCAP
 * or isgx) is present → usable, whatever CPUID says (the driver loaded, so the kernel found
 * SGX; a disagreeing or absent CPUID is noted in the line); else no CPUID or no SGX bit →
 * no-sgx; a hypervisor → vm-no-device; SGX1 clear or no EPC section → firmware-off; no FLC
 * (CPUID nor the kernel's sgx_lc) → no-flc; else → no-driver.
 */
void caps_evaluate(const struct sgx_cpu *cpu, const struct sgx_kernel *kernel,
                   const struct discovery *d, struct sgx_caps *ret);

/* The node's EPC in bytes: the kernel's per-NUMA-node total when sysfs has it, else CPUID's
 * EPC sections added up; 0 when neither is known. */
uint64_t caps_epc_bytes(const struct sgx_cpu *cpu, const struct sgx_kernel *kernel);

/*
 * The facts that do not change while the system runs: caps_read_kernel(proc_root, sys_root) into
 * *kernel, and CPUID from |cpuid_file| (a recorded dump, cpuid_record_load) or from this CPU when
 * NULL (cpuid_native) into *cpu. The daemon reads them once and evaluates them again with each
 * new device scan. Returns 0, -ENOMEM, or -errno with one line in |err| when the cpuid file cannot
 * be read or parsed (the caller prints or logs it). Missing proc/sys files are no error.
 */
int caps_read_facts(const char *proc_root, const char *sys_root, const char *cpuid_file,
                    struct sgx_cpu *cpu, struct sgx_kernel *kernel, char *err, size_t errsz);

/*
 * The whole collection, as probe does it: caps_read_facts, then caps_evaluate with |d|. Returns
 * what caps_read_facts returns.
 */
int caps_collect(const char *proc_root, const char *sys_root, const char *cpuid_file,
                 const struct discovery *d, struct sgx_caps *ret, char *err, size_t errsz);

const char *sgx_driver_name(enum sgx_driver drv);   /* "none", "in-kernel", "dcap", "dcap-legacy" */
const char *sgx_verdict_name(enum sgx_verdict v);   /* "usable", "no-sgx", "firmware-off", ... */
