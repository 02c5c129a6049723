/*
 * resources.h - the resource kinds the node serves, as one table: for each kind its name (the
 * resource's suffix under the domain, the device IDs' prefix and the socket's name), when it is
 * present on a node, whether it is served by default and how many slots it advertises. Every
 * consumer iterates this table: the daemon, `probe`, `health` and the command line's length
 * checks. Knows nothing of gRPC or of the kubelet's API: pure data over what discovery found.
 *
 * Adding a kind: a row here and an enum value, and the container edits it gets (edits.c).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct discovery;

enum sgx_kind {
        SGX_KIND_SGX,             /* any SGX device: DCAP preferred, else IAS */
        SGX_KIND_DCAP,            /* DCAP enclave (+ provisioning unless --no-provision) */
        SGX_KIND_IAS,             /* /dev/isgx */
        SGX_KIND_PROVISION,       /* the provisioning device alone (--provision-resource) */
        SGX_KIND_INTEL_ENCLAVE,   /* sgx.intel.com/enclave: the enclave device (--compat intel) */
        SGX_KIND_INTEL_PROVISION, /* sgx.intel.com/provision: the provisioning device alone */
        SGX_KIND_AZURE_EPC,       /* kubernetes.azure.com/sgx_epc_mem_in_MiB: one device per MiB */
        SGX_KIND_ALIBABA_EPC,     /* alibabacloud.com/sgx_epc_MiB: one device per MiB */
        SGX_KIND_MAX,
};

/* The other SGX plugins whose resource names a node can also serve (--compat), as bits. */
enum sgx_compat {
        SGX_COMPAT_NONE = 0,
        SGX_COMPAT_INTEL = 1u << 0,   /* Intel's device plugin: sgx.intel.com/... */
        SGX_COMPAT_AZURE = 1u << 1,   /* AKS's: kubernetes.azure.com/sgx_epc_mem_in_MiB */
        SGX_COMPAT_ALIBABA = 1u << 2, /* Alibaba Cloud's: alibabacloud.com/sgx_epc_MiB */
};

/* A DNS subdomain, as Kubernetes takes a resource name's prefix: at most 253 characters. */
#define SGX_DOMAIN_MAX 253
/* The longest kind name ("intel-provision"): device IDs' prefix and the socket's name part. */
#define SGX_KIND_NAME_MAX 15
/* The longest resource suffix under --resource-domain ("provision"). */
#define SGX_SUFFIX_MAX 9
/* The longest resource name, "<domain>/<suffix>" (fixed names are shorter), and its buffer. */
#define SGX_RESOURCE_NAME_MAX (SGX_DOMAIN_MAX + 1 + SGX_SUFFIX_MAX)
#define SGX_RESOURCE_NAME_SIZE (SGX_RESOURCE_NAME_MAX + 1)
/* The socket's file name: "sgxdevplugin-<kind>.sock". */
#define SGX_SOCKET_PREFIX "sgxdevplugin-"
#define SGX_SOCKET_SUFFIX ".sock"
#define SGX_SOCKET_NAME_MAX (sizeof(SGX_SOCKET_PREFIX) - 1 + SGX_KIND_NAME_MAX + sizeof(SGX_SOCKET_SUFFIX) - 1)
/* Device IDs are "<kind>-<n>", n in 0..slots-1 (decimal, no leading zeros). */
#define SGX_ID_MAX (SGX_KIND_NAME_MAX + 1 + 10)

/* Where a kind's slot count comes from. */
enum sgx_slots {
        SGX_SLOTS_MAX_PODS, /* --max-pods: slots are places for containers, not hardware */
        SGX_SLOTS_EPC_MIB,  /* one per MiB of the node's EPC (the Azure and Alibaba plugins') */
};

struct sgx_resource_desc {
        enum sgx_kind kind;
        const char *name;        /* "dcap": ID prefix and socket name part */
        const char *domain;      /* a fixed resource domain ("sgx.intel.com"), NULL: --resource-domain */
        const char *suffix;      /* the resource name after the domain: "dcap", "sgx_epc_MiB" */
        const char *socket_name; /* "sgxdevplugin-dcap.sock" */
        const char *help;        /* one line for usage and probe */
        bool opt_in;             /* served only when asked for (--provision-resource, --compat) */
        enum sgx_compat compat;  /* the --compat value that serves it, NONE for ours */
        enum sgx_slots slots;
        /* The devices this kind needs are present in |d|. */
        bool (*present)(const struct discovery *d);
};

/* Which kinds a node serves (from the flags). */
struct sgx_resource_options {
        bool provision_resource; /* serve the opt-in D/provision too */
        unsigned compat;         /* enum sgx_compat bits: serve the other plugins' names */
};

/* The table, indexed by kind. */
extern const struct sgx_resource_desc sgx_resources[SGX_KIND_MAX];

/* The row of |k|; NULL for a value outside the table. */
const struct sgx_resource_desc *sgx_resource(enum sgx_kind k);

/* "sgx", "dcap", "ias", "provision", "intel-enclave", ...; "unknown" outside the table. */
const char *sgx_kind_name(enum sgx_kind k);

/* The kind is served with |opt|. */
bool sgx_kind_enabled(enum sgx_kind k, const struct sgx_resource_options *opt);

/* The kind's devices are present in |d|. */
bool sgx_kind_present(enum sgx_kind k, const struct discovery *d);

/*
 * The slots advertised for |k| while present: |max_pods| from the flags, or one per whole MiB of
 * |epc_bytes| (capped at UINT32_MAX; 0 when the EPC size is unknown).
 */
unsigned sgx_kind_slots(enum sgx_kind k, unsigned max_pods, uint64_t epc_bytes);

/*
 * Parses a --compat list: "intel", "azure,alibaba" (names from sgx_compat_name, comma-separated,
 * each at most once). Sets *ret_bits. Returns 0, or -EINVAL (*ret_bad then points at the name
 * that is not one, within |s|).
 */
int sgx_compat_parse(const char *s, unsigned *ret_bits, const char **ret_bad);

/* "intel", "azure", "alibaba" for one bit; "none" for 0, "unknown" otherwise. */
const char *sgx_compat_name(enum sgx_compat c);

/* Writes the resource name into |buf|: "<domain>/<suffix>", or the kind's fixed name. Returns 0,
 * -ENAMETOOLONG (|size| too small), -EINVAL (a domain longer than SGX_DOMAIN_MAX or a kind
 * outside the table). */
int sgx_resource_name(const char *domain, enum sgx_kind k, char *buf, size_t size);

/* Writes "<dir>/sgxdevplugin-<kind>.sock" into |buf|. Returns 0, -ENAMETOOLONG, -EINVAL. */
int sgx_socket_path(const char *dir, enum sgx_kind k, char *buf, size_t size);

/* The longest socket file name of our kinds and the --compat kinds in |compat| (enum sgx_compat
 * bits): "sgxdevplugin-provision.sock" for ours alone. */
const char *sgx_longest_socket_name(unsigned compat);

/*
 * Another device plugin's socket in the kubelet's directory that looks like SGX: a name other
 * than kubelet.sock and ours ("sgxdevplugin-*") holding "sgx" or "epc" in any case. Sets
 * *ret_resource (may be NULL) to the resource it is known to serve ("sgx.intel.com/enclave" for
 * Intel's plugin's sgx.intel.com-enclave.sock), or NULL when not known.
 */
bool sgx_is_other_plugin_socket(const char *name, const char **ret_resource);

/* Parses |id| as one of the IDs of |k| with |slots| slots; sets *ret_n (may be NULL). */
bool sgx_parse_id(enum sgx_kind k, unsigned slots, const char *id, unsigned *ret_n);
