/*
 * cli.c - the command line (see cli.h): the probe and health sub-commands, flags in "--flag value"
 * and "--flag=value" form (each valid with the commands it means something to), value validation
 * and the usage text. Hand-parsed, no getopt state, so
 * cli_parse() can run any number of times in one process. Printing and exiting are main.c's.
 */
#include "cli.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "resources.h"
#include "text.h"

/* The longest socket name the daemon creates in --kubelet-dir. */
#define CLI_SOCKET_PATH_MAX (sizeof(((struct sockaddr_un *) NULL)->sun_path) - 1)

/* The commands a flag is valid with. */
#define ON_RUN (1u << CLI_RUN)
#define ON_PROBE (1u << CLI_PROBE)
#define ON_HEALTH (1u << CLI_HEALTH)
#define ON_ALL (ON_RUN | ON_PROBE | ON_HEALTH)

/* The groups of flags in --help, in order. */
enum section {
        SECTION_OPTIONS,
        SECTION_FACTS,
        SECTION_LABELS,
        SECTION_CDI,
        SECTION_DRA,
        SECTION_END,
        SECTION_MAX,
};

static const char *const section_titles[SECTION_MAX] = {
        [SECTION_OPTIONS] = "Options:",
        [SECTION_FACTS] = "Capability facts (probe and daemon):",
        [SECTION_LABELS] = "Node labels and EPC capacity (daemon):",
        [SECTION_CDI] = "CDI (daemon):",
        [SECTION_DRA] = "DRA driver (daemon, and health with --dra; the driver name is D, --resource-domain):",
        [SECTION_END] = "",
};

struct flag;

/*
 * Applies flag |f| with value |v| (NULL for a switch) to |o|. Returns 0, or -EINVAL with one line
 * naming the flag in |err|.
 */
typedef int (*flag_parse_fn)(const struct flag *f, const char *v, struct cli_options *o, char *err,
                             size_t errsz);

/*
 * One flag: how it is parsed, which field it sets and how --help shows it. The default, when the
 * row has one, is applied by the row's own parser before argv is read, so the value --help shows
 * is the value the daemon runs with.
 */
static const struct flag {
        const char *name;      /* "--max-pods" */
        const char *alias;     /* "-h", or NULL */
        const char *metavar;   /* "N" for a flag with a value, NULL for a switch */
        unsigned commands;     /* ON_*: where the flag means something */
        enum section section;  /* where --help lists it */
        flag_parse_fn parse;   /* sets the field */
        size_t offset;         /* the field of struct cli_options it sets */
        uint64_t min, max;     /* numbers: the range (seconds flags: in milliseconds) */
        const char *help;      /* one line for --help */
        const char *deflt;     /* the default as a value the parser takes, or NULL */
        const char *deflt_doc; /* the default in words, when |deflt| is NULL */
} flags[];

static int fail(char *err, size_t errsz, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/*
 * Writes one line into |err| and returns -EINVAL. Values are echoed as given, so control bytes
 * in them (a newline, a terminal escape) become '?': the error stays one printable line.
 */
static int fail(char *err, size_t errsz, const char *fmt, ...) {
        va_list ap;

        if (err && errsz > 0) {
                va_start(ap, fmt);
                vsnprintf(err, errsz, fmt, ap);
                va_end(ap);
                text_make_printable(err);
        }
        return -EINVAL;
}

#define FIELD(o, f, type) ((type *) (void *) ((char *) (o) + (f)->offset))

static int parse_string(const struct flag *f, const char *v, struct cli_options *o, char *err,
                        size_t errsz) {
        *FIELD(o, f, const char *) = v;
        return 0;
}

static int parse_on(const struct flag *f, const char *v, struct cli_options *o, char *err,
                    size_t errsz) {
        *FIELD(o, f, bool) = true;
        return 0;
}

static int parse_off(const struct flag *f, const char *v, struct cli_options *o, char *err,
                     size_t errsz) {
        *FIELD(o, f, bool) = false;
        return 0;
}

static int parse_command(const struct flag *f, const char *v, struct cli_options *o, char *err,
                         size_t errsz) {
        *FIELD(o, f, enum cli_command) = f->min == CLI_HELP ? CLI_HELP : CLI_VERSION;
        return 0;
}

/* Digits only, f->min..f->max, no sign, no space, no overflow. */
static int parse_count(const struct flag *f, const char *v, struct cli_options *o, char *err,
                       size_t errsz) {
        uint64_t n;

        if (text_parse_u64(v, f->max, &n) < 0 || n < f->min)
                return fail(err, errsz, "%s: expected a whole number from %" PRIu64 " to %" PRIu64
                            ", got '%s'", f->name, f->min, f->max, v);
        *FIELD(o, f, unsigned) = (unsigned) n;
        return 0;
}

/*
 * Seconds as digits with at most three decimals ("5", "0.5", "2.125") into milliseconds.
 * Returns 0, -EINVAL, -ERANGE (outside |min_ms|..|max_ms|).
 */
static int seconds_to_ms(const char *s, uint64_t min_ms, uint64_t max_ms, uint64_t *ret_ms) {
        uint64_t whole, frac = 0;
        size_t len = strlen(s);
        int n, m = 0;

        n = text_digits(s, len, max_ms / 1000, &whole);
        if (n == -ERANGE)
                return -ERANGE;
        if (n < 0)
                return -EINVAL;
        if (s[n] == '.') {
                m = text_digits(s + n + 1, len - (size_t) n - 1, 999, &frac);
                if (m < 0 || m > 3)
                        return -EINVAL;
                for (int i = m; i < 3; i++)
                        frac *= 10;
                m++;
        }
        if (s[n + m] != '\0')
                return -EINVAL;
        if (whole * 1000 + frac < min_ms || whole * 1000 + frac > max_ms)
                return -ERANGE;
        *ret_ms = whole * 1000 + frac;
        return 0;
}

static int parse_seconds(const struct flag *f, const char *v, struct cli_options *o, char *err,
                         size_t errsz) {
        uint64_t ms;

        if (seconds_to_ms(v, f->min, f->max, &ms) < 0)
                return fail(err, errsz, "%s: expected seconds from 0.001 to %" PRIu64
                            ", such as 10 or 0.5, got '%s'", f->name, f->max / 1000, v);
        *FIELD(o, f, unsigned) = (unsigned) ms;
        return 0;
}

static bool is_lower_alnum(char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/*
 * Checks a DNS subdomain (RFC 1123, as Kubernetes takes it): lowercase letters, digits, '-' and
 * '.', dot-separated labels of 1..63 characters that start and end with a letter or digit, 253
 * characters at most. Returns NULL when valid, else why not.
 */
static const char *check_domain(const char *s) {
        size_t len = strlen(s), label = 0;

        if (len > SGX_DOMAIN_MAX)
                return "longer than 253 characters";
        for (size_t i = 0; i <= len; i++) {
                char c = s[i];

                if (c == '.' || c == '\0') {
                        if (label == 0)
                                return "empty label";
                        if (label > 63)
                                return "a label is longer than 63 characters";
                        if (s[i - 1] == '-')
                                return "a label ends with '-'";
                        label = 0;
                        continue;
                }
                if (c == '-') {
                        if (label == 0)
                                return "a label starts with '-'";
                } else if (!is_lower_alnum(c)) {
                        return "only lowercase letters, digits, '-' and '.' are allowed";
                }
                label++;
        }
        return NULL;
}

static int parse_domain(const struct flag *f, const char *v, struct cli_options *o, char *err,
                        size_t errsz) {
        const char *why = check_domain(v);

        if (why)
                return fail(err, errsz, "%s: expected a DNS subdomain such as %s (%s), got '%s'",
                            f->name, CLI_DEFAULT_DOMAIN, why, v);
        return parse_string(f, v, o, err, errsz);
}

static int parse_node_name(const struct flag *f, const char *v, struct cli_options *o, char *err,
                           size_t errsz) {
        const char *why = check_domain(v);

        if (why)
                return fail(err, errsz, "%s: expected a node name (a DNS subdomain: %s), got '%s'",
                            f->name, why, v);
        return parse_string(f, v, o, err, errsz);
}

/*
 * The directory the daemon binds its sockets in: the longest socket path of the kinds served
 * (--compat adds longer names) must fit sun_path. Checked once every flag is read.
 */
static int check_socket_dir(const struct cli_options *o, char *err, size_t errsz) {
        const char *longest = sgx_longest_socket_name(o->compat);
        size_t len = strlen(o->kubelet_dir) + 1 + strlen(longest);

        if (len > CLI_SOCKET_PATH_MAX)
                return fail(err, errsz, "--kubelet-dir: too long for a unix socket: DIR/%s would be %zu bytes, at most %zu fit, got '%s'",
                            longest, len, CLI_SOCKET_PATH_MAX, o->kubelet_dir);
        return 0;
}

/*
 * --dra (the daemon's, or the one health checks): the default --dra-dir (CLI_DEFAULT_DRA_PARENT/D) and both socket paths fitting a unix
 * socket address; --no-device-plugin without --dra would serve nothing.
 */
static int check_dra(struct cli_options *o, char *err, size_t errsz) {
        size_t reg, dra;

        if (o->no_device_plugin && !o->dra)
                return fail(err, errsz, "--no-device-plugin: needs --dra (else nothing is served)");
        if (o->dra_slots && !o->dra)
                return fail(err, errsz, "--dra-slots: needs --dra");
        if (o->dra_slots && o->max_pods > CLI_MAX_DRA_SLOTS)
                return fail(err, errsz,
                            "--dra-slots: at most %u devices per class (--max-pods), got %u",
                            CLI_MAX_DRA_SLOTS, o->max_pods);
        if (!o->dra)
                return 0;
        if (!o->dra_dir) {
                snprintf(o->dra_dir_buf, sizeof(o->dra_dir_buf), CLI_DEFAULT_DRA_PARENT "/%s",
                         o->domain);
                o->dra_dir = o->dra_dir_buf;
        }
        reg = strlen(o->plugins_registry) + 1 + strlen(o->domain) + strlen("-reg.sock");
        if (reg > CLI_SOCKET_PATH_MAX)
                return fail(err, errsz, "--plugins-registry: too long for a unix socket: DIR/%s-reg.sock would be %zu bytes, at most %zu fit, got '%s'",
                            o->domain, reg, CLI_SOCKET_PATH_MAX, o->plugins_registry);
        dra = strlen(o->dra_dir) + strlen("/dra.sock");
        if (dra > CLI_SOCKET_PATH_MAX)
                return fail(err, errsz, "--dra-dir: too long for a unix socket: DIR/dra.sock would be %zu bytes, at most %zu fit, got '%s'",
                            dra, CLI_SOCKET_PATH_MAX, o->dra_dir);
        return 0;
}

static int parse_abs_path(const struct flag *f, const char *v, struct cli_options *o, char *err,
                          size_t errsz) {
        if (v[0] != '/')
                return fail(err, errsz, "%s: expected an absolute path, got '%s'", f->name, v);
        return parse_string(f, v, o, err, errsz);
}

/* "intel", "azure,alibaba": the other plugins' resource names to serve as well. */
static int parse_compat(const struct flag *f, const char *v, struct cli_options *o, char *err,
                        size_t errsz) {
        const char *bad = v;

        if (sgx_compat_parse(v, FIELD(o, f, unsigned), &bad) < 0)
                return fail(err, errsz, "%s: expected a comma-separated list of intel, azure and alibaba, each at most once, got '%s' (at '%s')",
                            f->name, v, bad);
        return 0;
}

static int parse_log_format(const struct flag *f, const char *v, struct cli_options *o, char *err,
                            size_t errsz) {
        if (log_format_from_string(v, FIELD(o, f, enum log_format)) < 0)
                return fail(err, errsz, "%s: expected text or json, got '%s'", f->name, v);
        return 0;
}

static int parse_log_level(const struct flag *f, const char *v, struct cli_options *o, char *err,
                           size_t errsz) {
        if (log_level_from_string(v, FIELD(o, f, enum log_level)) < 0)
                return fail(err, errsz, "%s: expected error, warn, info or debug, got '%s'",
                            f->name, v);
        return 0;
}

static int parse_apiserver(const struct flag *f, const char *v, struct cli_options *o, char *err,
                           size_t errsz) {
        if (strncmp(v, "https://", 8) != 0 || v[8] == '\0' || v[8] == '/')
                return fail(err, errsz, "%s: expected https://HOST[:PORT] (TLS is always on), got '%s'",
                            f->name, v);
        return parse_string(f, v, o, err, errsz);
}

#define OFF(field) offsetof(struct cli_options, field)
#define STR_(x) #x
#define STR(x) STR_(x)

static const struct flag flags[] = {
        {"--kubelet-dir", NULL, "DIR", ON_ALL, SECTION_OPTIONS, parse_string, OFF(kubelet_dir), 0, 0,
         "the kubelet's device-plugin socket directory", CLI_DEFAULT_KUBELET_DIR, NULL},
        {"--dev-root", NULL, "DIR", ON_RUN | ON_PROBE, SECTION_OPTIONS, parse_string, OFF(dev_root), 0, 0,
         "where the host's /dev is visible", CLI_DEFAULT_DEV_ROOT, NULL},
        {"--max-pods", NULL, "N", ON_RUN | ON_PROBE, SECTION_OPTIONS, parse_count, OFF(max_pods), 1, CLI_MAX_MAX_PODS,
         "slots advertised per resource, 1.." STR(CLI_MAX_MAX_PODS), STR(CLI_DEFAULT_MAX_PODS), NULL},
        {"--resource-domain", NULL, "D", ON_ALL, SECTION_OPTIONS, parse_domain, OFF(domain), 0, 0,
         "resources are D/sgx, D/dcap, D/ias, D/provision", CLI_DEFAULT_DOMAIN, NULL},
        {"--no-provision", NULL, NULL, ON_RUN | ON_PROBE, SECTION_OPTIONS, parse_off, OFF(provision), 0, 0,
         "do not map the provisioning device with the DCAP enclave", NULL, "mapped"},
        {"--provision-resource", NULL, NULL, ON_RUN | ON_PROBE, SECTION_OPTIONS, parse_on, OFF(provision_resource), 0, 0,
         "also register D/provision, the provisioning device alone", NULL, "off"},
        {"--aesmd-dir", NULL, "DIR", ON_RUN | ON_PROBE, SECTION_OPTIONS, parse_abs_path, OFF(aesmd_dir), 0, 0,
         "absolute host directory (the AESM socket) mounted at the same path into SGX containers", NULL, "none"},
        {"--compat", NULL, "LIST", ON_RUN | ON_PROBE, SECTION_OPTIONS, parse_compat, OFF(compat), 0, 0,
         "also serve the other SGX plugins' resources: intel (sgx.intel.com/enclave, sgx.intel.com/provision), azure (kubernetes.azure.com/sgx_epc_mem_in_MiB), alibaba (alibabacloud.com/sgx_epc_MiB)", NULL, "none"},
        {"--log-format", NULL, "FORMAT", ON_ALL, SECTION_OPTIONS, parse_log_format, OFF(log_format), 0, 0,
         "text or json", "text", NULL},
        {"--log-level", NULL, "LEVEL", ON_ALL, SECTION_OPTIONS, parse_log_level, OFF(log_level), 0, 0,
         "error, warn, info or debug", "info", NULL},
        {"--json", NULL, NULL, ON_PROBE, SECTION_OPTIONS, parse_on, OFF(json), 0, 0,
         "probe only: print one JSON document", NULL, "text"},
        {"--timeout", NULL, "SECONDS", ON_HEALTH, SECTION_OPTIONS, parse_seconds,
         OFF(health_timeout_ms), 1, CLI_MAX_TIMEOUT_MS,
         "health only: how long each socket may take, 0.001..3600",
         STR(CLI_DEFAULT_HEALTH_TIMEOUT_S), NULL},

        {"--proc-root", NULL, "DIR", ON_RUN | ON_PROBE, SECTION_FACTS, parse_string, OFF(proc_root),
         0, 0, "where the host's /proc is visible", CLI_DEFAULT_PROC_ROOT, NULL},
        {"--sys-root", NULL, "DIR", ON_RUN | ON_PROBE, SECTION_FACTS, parse_string, OFF(sys_root),
         0, 0, "where the host's /sys is visible", CLI_DEFAULT_SYS_ROOT, NULL},
        {"--cpuid-file", NULL, "FILE", ON_RUN | ON_PROBE, SECTION_FACTS, parse_string,
         OFF(cpuid_file), 0, 0,
         "read CPUID from a recorded dump, lines of \"LEAF SUBLEAF EAX EBX ECX EDX\" in hex", NULL,
         "this CPU"},

        {"--label-node", NULL, NULL, ON_RUN, SECTION_LABELS, parse_on, OFF(label_node), 0, 0,
         "label this node through the Kubernetes API", NULL, "off"},
        {"--epc-resource", NULL, NULL, ON_RUN, SECTION_LABELS, parse_on, OFF(epc_resource), 0, 0,
         "publish the node's EPC in bytes as D/epc (with --compat intel also sgx.intel.com/epc) in its status.capacity through the Kubernetes API", NULL, "off"},
        {"--node-name", NULL, "NAME", ON_RUN, SECTION_LABELS, parse_node_name, OFF(node_name), 0, 0,
         "the node to label, and whose ResourceSlice --dra publishes", NULL, "$NODE_NAME"},
        {"--apiserver", NULL, "URL", ON_RUN, SECTION_LABELS, parse_apiserver, OFF(apiserver), 0, 0,
         "https://HOST[:PORT]", NULL, "in-cluster, from $KUBERNETES_SERVICE_HOST and _PORT"},
        {"--token-file", NULL, "FILE", ON_RUN, SECTION_LABELS, parse_string, OFF(token_file), 0, 0,
         "bearer token, re-read for every request", NULL, "the service account's"},
        {"--ca-file", NULL, "FILE", ON_RUN, SECTION_LABELS, parse_string, OFF(ca_file), 0, 0,
         "CA bundle the API server's certificate must chain to", NULL,
         "the service account's ca.crt"},
        {"--api-timeout", NULL, "SECONDS", ON_RUN, SECTION_LABELS, parse_seconds,
         OFF(api_timeout_ms), 1, CLI_MAX_TIMEOUT_MS, "how long one API request may take",
         STR(CLI_DEFAULT_API_TIMEOUT_S), NULL},
        {"--label-interval", NULL, "SECONDS", ON_RUN, SECTION_LABELS, parse_seconds,
         OFF(label_interval_ms), 1, CLI_MAX_TIMEOUT_MS, "re-assert the labels this often",
         STR(CLI_DEFAULT_LABEL_INTERVAL_S), NULL},

        {"--cdi", NULL, NULL, ON_RUN, SECTION_CDI, parse_on, OFF(cdi), 0, 0,
         "write a CDI spec (kind D/sgx) of the devices and answer Allocate with its device names instead of device nodes (kubelet 1.31+)",
         NULL, "off"},
        {"--cdi-dir", NULL, "DIR", ON_RUN, SECTION_CDI, parse_abs_path, OFF(cdi_dir), 0, 0,
         "absolute directory the CDI spec D-sgx.json is written to, created if missing",
         CLI_DEFAULT_CDI_DIR, NULL},

        {"--dra", NULL, NULL, ON_RUN | ON_HEALTH, SECTION_DRA, parse_on, OFF(dra), 0, 0,
         "serve the kubelet's DRA plugin API (registration and NodePrepareResources) beside the device-plugin API", NULL, "off"},
        {"--no-device-plugin", NULL, NULL, ON_RUN | ON_HEALTH, SECTION_DRA, parse_on, OFF(no_device_plugin), 0, 0,
         "with --dra: serve no device-plugin socket", NULL, "served"},
        {"--dra-slots", NULL, NULL, ON_RUN, SECTION_DRA, parse_on, OFF(dra_slots), 0, 0,
         "with --dra: publish --max-pods exclusive devices per class instead of one shared device with EPC capacity (clusters without consumable capacity: Kubernetes 1.34, 1.35); at most " STR(CLI_MAX_DRA_SLOTS), NULL, "shared"},
        {"--plugins-registry", NULL, "DIR", ON_RUN | ON_HEALTH, SECTION_DRA, parse_abs_path, OFF(plugins_registry), 0, 0,
         "the kubelet's plugin registry directory: D-reg.sock goes there", CLI_DEFAULT_PLUGINS_REGISTRY, NULL},
        {"--dra-dir", NULL, "DIR", ON_RUN | ON_HEALTH, SECTION_DRA, parse_abs_path, OFF(dra_dir), 0, 0,
         "our DRA directory: dra.sock goes there", NULL, CLI_DEFAULT_DRA_PARENT "/D"},

        {"--help", "-h", NULL, ON_ALL, SECTION_END, parse_command, OFF(command), CLI_HELP, 0,
         "print this help and exit", NULL, NULL},
        {"--version", NULL, NULL, ON_ALL, SECTION_END, parse_command, OFF(command), CLI_VERSION, 0,
         "print the version and exit", NULL, NULL},
};

#define N_FLAGS (sizeof(flags) / sizeof(flags[0]))

static const char *const sub_commands[] = {
        [CLI_PROBE] = "probe",
        [CLI_HEALTH] = "health",
};

/* The sub-command named |s|, or CLI_RUN when |s| names none. */
static enum cli_command sub_command_from_string(const char *s) {
        for (size_t i = 0; i < sizeof(sub_commands) / sizeof(sub_commands[0]); i++)
                if (sub_commands[i] && strcmp(sub_commands[i], s) == 0)
                        return (enum cli_command) i;
        return CLI_RUN;
}

static const struct flag *find_flag(const char *name, size_t len) {
        for (size_t i = 0; i < N_FLAGS; i++) {
                const struct flag *f = &flags[i];

                if ((strlen(f->name) == len && strncmp(f->name, name, len) == 0) ||
                    (f->alias && strlen(f->alias) == len && strncmp(f->alias, name, len) == 0))
                        return f;
        }
        return NULL;
}

/* Every row's default, through the row's own parser; then the fields without a row. */
static void set_defaults(struct cli_options *o) {
        *o = (struct cli_options){.command = CLI_RUN, .provision = true};
        for (size_t i = 0; i < N_FLAGS; i++) {
                int r;

                if (!flags[i].deflt)
                        continue;
                r = flags[i].parse(&flags[i], flags[i].deflt, o, NULL, 0);
                assert(r == 0); /* a default its own parser refuses is a bug in the table */
                (void) r;
        }
}

/* Why flag |f| is refused with |command|: one sub-command of its own, or not this one. */
static int fail_wrong_command(const struct flag *f, enum cli_command command, char *err,
                              size_t errsz) {
        for (size_t i = 0; i < sizeof(sub_commands) / sizeof(sub_commands[0]); i++)
                if (sub_commands[i] && f->commands == (1u << i))
                        return fail(err, errsz, "%s: only valid with the %s sub-command", f->name,
                                    sub_commands[i]);
        if (command == CLI_RUN)
                return fail(err, errsz, "%s: not valid when running the daemon", f->name);
        return fail(err, errsz, "%s: not valid with the %s sub-command", f->name,
                    sub_commands[command]);
}

int cli_parse(int argc, char **argv, struct cli_options *ret, char *err, size_t errsz) {
        struct cli_options o;
        enum cli_command command = CLI_RUN;
        bool end_of_flags = false;
        int i = 1, r;

        if (err && errsz > 0)
                err[0] = '\0';
        set_defaults(&o);

        if (argc > 1 && argv[1]) {
                command = sub_command_from_string(argv[1]);
                if (command != CLI_RUN) {
                        o.command = command;
                        i = 2;
                }
        }

        for (; i < argc && argv[i]; i++) {
                const char *arg = argv[i], *eq, *v = NULL;
                const struct flag *f;
                size_t name_len;

                if (end_of_flags || arg[0] != '-' || strcmp(arg, "-") == 0) {
                        if (sub_command_from_string(arg) != CLI_RUN)
                                return fail(err, errsz,
                                            "%s: the sub-command must come first, before any flag",
                                            arg);
                        return fail(err, errsz, "'%s': unexpected argument", arg);
                }
                if (strcmp(arg, "--") == 0) {
                        end_of_flags = true;
                        continue;
                }

                eq = strchr(arg, '=');
                name_len = eq ? (size_t) (eq - arg) : strlen(arg);
                f = find_flag(arg, name_len);
                if (!f)
                        return fail(err, errsz, "%.*s: unknown flag", (int) name_len, arg);
                if (!(f->commands & (1u << command)))
                        return fail_wrong_command(f, command, err, errsz);

                if (!f->metavar) {
                        if (eq)
                                return fail(err, errsz, "%s: takes no value, got '%s'", f->name,
                                            eq + 1);
                } else if (eq) {
                        v = eq + 1;
                } else {
                        /* "--flag --other": the value is missing, not "--other" */
                        if (i + 1 >= argc || !argv[i + 1] || strncmp(argv[i + 1], "--", 2) == 0)
                                return fail(err, errsz, "%s: missing value", f->name);
                        v = argv[++i];
                }

                if (f->metavar && v[0] == '\0')
                        return fail(err, errsz, "%s: empty value", f->name);
                r = f->parse(f, v, &o, err, errsz);
                if (r < 0)
                        return r;
                /* --help and --version win over whatever follows */
                if (o.command == CLI_HELP || o.command == CLI_VERSION)
                        break;
        }

        if (o.command != CLI_HELP && o.command != CLI_VERSION) {
                r = check_socket_dir(&o, err, errsz);
                if (r < 0)
                        return r;
        }

        if (o.command == CLI_RUN && (o.label_node || o.epc_resource || o.dra)) {
                const char *env = getenv("NODE_NAME"), *why;
                const char *flag = o.label_node     ? "--label-node"
                                   : o.epc_resource ? "--epc-resource"
                                                    : "--dra";

                if (!o.node_name && env && env[0]) {
                        why = check_domain(env);
                        if (why)
                                return fail(err, errsz,
                                            "%s: $NODE_NAME is not a node name (a DNS subdomain: %s): '%s'",
                                            flag, why, env);
                        o.node_name = env;
                }
                if (!o.node_name)
                        return fail(err, errsz,
                                    "%s: needs the node's name: pass --node-name or set NODE_NAME",
                                    flag);
        }

        if (o.command == CLI_RUN || o.command == CLI_HEALTH) {
                r = check_dra(&o, err, errsz);
                if (r < 0)
                        return r;
        }

        *ret = o;
        if (ret->dra_dir == o.dra_dir_buf)
                ret->dra_dir = ret->dra_dir_buf; /* the copy's own buffer */
        return 0;
}

/* Writes |text| from column |col| on, wrapped at USAGE_WIDTH with continuation lines at |indent|. */
#define USAGE_WIDTH 100
#define USAGE_INDENT 27

static void put_wrapped(FILE *out, const char *text, size_t col, size_t indent) {
        const char *p = text;

        while (*p) {
                const char *end = p, *brk = NULL;

                /* the longest run of whole words that fits */
                while (*end && col + (size_t) (end - p) < USAGE_WIDTH) {
                        if (*end == ' ')
                                brk = end;
                        end++;
                }
                if (!*end)
                        brk = end;
                else if (!brk)
                        brk = strchr(p, ' ') ? strchr(p, ' ') : p + strlen(p);
                fprintf(out, "%.*s\n", (int) (brk - p), p);
                p = *brk ? brk + 1 : brk;
                if (*p)
                        fprintf(out, "%*s", (int) indent, "");
                col = indent;
        }
}

/* One flag's line(s): "  --max-pods N             slots ... (default: 110)". */
static void usage_flag(FILE *out, const struct flag *f) {
        char head[64], line[512];
        int n;

        snprintf(head, sizeof(head), "%s%s%s%s%s", f->alias ? f->alias : "", f->alias ? ", " : "",
                 f->name, f->metavar ? " " : "", f->metavar ? f->metavar : "");
        n = fprintf(out, "  %-24s ", head);
        if (f->deflt || f->deflt_doc)
                snprintf(line, sizeof(line), "%s (default: %s)", f->help,
                         f->deflt ? f->deflt : f->deflt_doc);
        else
                snprintf(line, sizeof(line), "%s", f->help);
        put_wrapped(out, line, n > 0 ? (size_t) n : 0, USAGE_INDENT);
}

void cli_usage(FILE *f) {
        fputs("Usage: sgxdevplugin [options]          run the device plugin daemon\n", f);
        fputs("       sgxdevplugin probe [options]    print the SGX devices found and what would be\n", f);
        fputs("                                       advertised, then exit\n", f);
        fputs("       sgxdevplugin health [options]   ask the running daemon's sockets (with --dra its DRA\n", f);
        fputs("                                       sockets too) to answer; exit 0 when all answer, else 1\n", f);
        fputs("                                       (a liveness probe)\n", f);
        fputs("\n", f);
        fputs("A Kubernetes device plugin for Intel SGX: registers D/sgx, D/dcap and D/ias (and D/provision) with\n", f);
        fputs("the kubelet and maps the SGX device nodes into containers.\n", f);
        for (enum section sec = 0; sec < SECTION_MAX; sec++) {
                fprintf(f, "\n%s%s", section_titles[sec], section_titles[sec][0] ? "\n" : "");
                for (size_t i = 0; i < N_FLAGS; i++)
                        if (flags[i].section == sec)
                                usage_flag(f, &flags[i]);
        }
        {
                char line[512] = "health takes";
                size_t len = strlen(line);

                for (size_t i = 0, n = 0; i < N_FLAGS; i++)
                        if ((flags[i].commands & ON_HEALTH) && flags[i].parse != parse_command &&
                            len < sizeof(line))
                                len += (size_t) snprintf(line + len, sizeof(line) - len, "%s %s",
                                                         n++ ? "," : "", flags[i].name);
                if (len < sizeof(line))
                        snprintf(line + len, sizeof(line) - len, ".");
                fputs("\n", f);
                put_wrapped(f, line, 0, 0);
        }
        fputs("Values go as \"--flag value\" or \"--flag=value\".\n", f);
}
