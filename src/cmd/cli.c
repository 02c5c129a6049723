/*
 * cli.c - the command line (see cli.h): the probe and health sub-commands, flags in "--flag value"
 * and "--flag=value" form (each valid with the commands it means something to), value validation
 * and the usage text. Hand-parsed, no getopt state, so
 * cli_parse() can run any number of times in one process. Printing and exiting are main.c's.
 */
#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

/* The longest socket name the daemon creates in --kubelet-dir. */
#define CLI_LONGEST_SOCKET "sgxdevplugin-provision.sock"

enum flag_id {
        FLAG_KUBELET_DIR,
        FLAG_DEV_ROOT,
        FLAG_MAX_PODS,
        FLAG_RESOURCE_DOMAIN,
        FLAG_NO_PROVISION,
        FLAG_PROVISION_RESOURCE,
        FLAG_AESMD_DIR,
        FLAG_LOG_FORMAT,
        FLAG_LOG_LEVEL,
        FLAG_JSON,
        FLAG_TIMEOUT,
        FLAG_PROC_ROOT,
        FLAG_SYS_ROOT,
        FLAG_CPUID_FILE,
        FLAG_LABEL_NODE,
        FLAG_NODE_NAME,
        FLAG_APISERVER,
        FLAG_TOKEN_FILE,
        FLAG_CA_FILE,
        FLAG_API_TIMEOUT,
        FLAG_LABEL_INTERVAL,
        FLAG_HELP,
        FLAG_VERSION,
};

/* The commands a flag is valid with. */
#define ON_RUN (1u << CLI_RUN)
#define ON_PROBE (1u << CLI_PROBE)
#define ON_HEALTH (1u << CLI_HEALTH)
#define ON_ALL (ON_RUN | ON_PROBE | ON_HEALTH)

static const struct flag {
        const char *name;
        enum flag_id id;
        bool has_value;
        unsigned commands; /* ON_* */
} flags[] = {
        {"--kubelet-dir", FLAG_KUBELET_DIR, true, ON_ALL},
        {"--dev-root", FLAG_DEV_ROOT, true, ON_RUN | ON_PROBE},
        {"--max-pods", FLAG_MAX_PODS, true, ON_RUN | ON_PROBE},
        {"--resource-domain", FLAG_RESOURCE_DOMAIN, true, ON_ALL},
        {"--no-provision", FLAG_NO_PROVISION, false, ON_RUN | ON_PROBE},
        {"--provision-resource", FLAG_PROVISION_RESOURCE, false, ON_RUN | ON_PROBE},
        {"--aesmd-dir", FLAG_AESMD_DIR, true, ON_RUN | ON_PROBE},
        {"--log-format", FLAG_LOG_FORMAT, true, ON_ALL},
        {"--log-level", FLAG_LOG_LEVEL, true, ON_ALL},
        {"--json", FLAG_JSON, false, ON_PROBE},
        {"--timeout", FLAG_TIMEOUT, true, ON_HEALTH},
        {"--proc-root", FLAG_PROC_ROOT, true, ON_RUN | ON_PROBE},
        {"--sys-root", FLAG_SYS_ROOT, true, ON_RUN | ON_PROBE},
        {"--cpuid-file", FLAG_CPUID_FILE, true, ON_RUN | ON_PROBE},
        {"--label-node", FLAG_LABEL_NODE, false, ON_RUN},
        {"--node-name", FLAG_NODE_NAME, true, ON_RUN},
        {"--apiserver", FLAG_APISERVER, true, ON_RUN},
        {"--token-file", FLAG_TOKEN_FILE, true, ON_RUN},
        {"--ca-file", FLAG_CA_FILE, true, ON_RUN},
        {"--api-timeout", FLAG_API_TIMEOUT, true, ON_RUN},
        {"--label-interval", FLAG_LABEL_INTERVAL, true, ON_RUN},
        {"--help", FLAG_HELP, false, ON_ALL},
        {"-h", FLAG_HELP, false, ON_ALL},
        {"--version", FLAG_VERSION, false, ON_ALL},
};

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
                for (char *c = err; *c; c++)
                        if ((unsigned char) *c < 0x20 || *c == 0x7f)
                                *c = '?';
        }
        return -EINVAL;
}

static const struct flag *find_flag(const char *name, size_t len) {
        for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
                if (strlen(flags[i].name) == len && strncmp(flags[i].name, name, len) == 0)
                        return &flags[i];
        return NULL;
}

/* Digits only, 1..CLI_MAX_MAX_PODS, no sign, no space, no overflow. */
static int parse_max_pods(const char *s, unsigned *ret) {
        unsigned long v = 0;

        if (*s == '\0')
                return -EINVAL;
        for (const char *p = s; *p; p++) {
                if (*p < '0' || *p > '9')
                        return -EINVAL;
                v = v * 10 + (unsigned long) (*p - '0');
                if (v > CLI_MAX_MAX_PODS)
                        return -ERANGE;
        }
        if (v < 1)
                return -ERANGE;
        *ret = (unsigned) v;
        return 0;
}

/*
 * Seconds as digits with at most three decimals ("5", "0.5", "2.125"), 0.001..3600, into
 * milliseconds.
 */
static int parse_timeout(const char *s, unsigned *ret) {
        unsigned long ms = 0;
        const char *p = s;
        unsigned decimals = 0;

        if (*p < '0' || *p > '9')
                return -EINVAL;
        for (; *p >= '0' && *p <= '9'; p++) {
                ms = ms * 10 + (unsigned long) (*p - '0');
                if (ms > CLI_MAX_HEALTH_TIMEOUT_MS / 1000)
                        return -ERANGE;
        }
        ms *= 1000;
        if (*p == '.') {
                unsigned long scale = 100;

                for (p++; *p >= '0' && *p <= '9'; p++, decimals++) {
                        if (decimals == 3)
                                return -EINVAL;
                        ms += (unsigned long) (*p - '0') * scale;
                        scale /= 10;
                }
                if (decimals == 0)
                        return -EINVAL;
        }
        if (*p != '\0')
                return -EINVAL;
        if (ms < 1 || ms > CLI_MAX_HEALTH_TIMEOUT_MS)
                return -ERANGE;
        *ret = (unsigned) ms;
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

        if (len > 253)
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

static void set_defaults(struct cli_options *o) {
        *o = (struct cli_options){
                .command = CLI_RUN,
                .kubelet_dir = CLI_DEFAULT_KUBELET_DIR,
                .dev_root = CLI_DEFAULT_DEV_ROOT,
                .max_pods = CLI_DEFAULT_MAX_PODS,
                .domain = CLI_DEFAULT_DOMAIN,
                .provision = true,
                .provision_resource = false,
                .aesmd_dir = NULL,
                .log_format = LOG_FORMAT_TEXT,
                .log_level = LOG_LEVEL_INFO,
                .json = false,
                .health_timeout_ms = CLI_DEFAULT_HEALTH_TIMEOUT_MS,
                .proc_root = CLI_DEFAULT_PROC_ROOT,
                .sys_root = CLI_DEFAULT_SYS_ROOT,
                .cpuid_file = NULL,
                .label_node = false,
                .node_name = NULL,
                .apiserver = NULL,
                .token_file = NULL,
                .ca_file = NULL,
                .api_timeout_ms = CLI_DEFAULT_API_TIMEOUT_MS,
                .label_interval_ms = CLI_DEFAULT_LABEL_INTERVAL_MS,
        };
}

/* Applies one flag with its value (NULL for a flag without one) to |o|. */
static int apply(struct cli_options *o, const struct flag *f, const char *v, char *err,
                 size_t errsz) {
        size_t len;
        int r;

        if (f->has_value && v[0] == '\0')
                return fail(err, errsz, "%s: empty value", f->name);

        switch (f->id) {
        case FLAG_KUBELET_DIR:
                len = strlen(v) + 1 + strlen(CLI_LONGEST_SOCKET);
                if (len >= sizeof(((struct sockaddr_un *) NULL)->sun_path))
                        return fail(err, errsz,
                                    "%s: too long for a unix socket: DIR/%s would be %zu bytes, "
                                    "at most %zu fit, got '%s'",
                                    f->name, CLI_LONGEST_SOCKET, len,
                                    sizeof(((struct sockaddr_un *) NULL)->sun_path) - 1, v);
                o->kubelet_dir = v;
                break;
        case FLAG_DEV_ROOT:
                o->dev_root = v;
                break;
        case FLAG_MAX_PODS:
                if (parse_max_pods(v, &o->max_pods) < 0)
                        return fail(err, errsz,
                                    "%s: expected a whole number from 1 to %u, got '%s'", f->name,
                                    CLI_MAX_MAX_PODS, v);
                break;
        case FLAG_RESOURCE_DOMAIN: {
                const char *why = check_domain(v);

                if (why)
                        return fail(err, errsz,
                                    "%s: expected a DNS subdomain such as %s (%s), got '%s'",
                                    f->name, CLI_DEFAULT_DOMAIN, why, v);
                o->domain = v;
                break;
        }
        case FLAG_NO_PROVISION:
                o->provision = false;
                break;
        case FLAG_PROVISION_RESOURCE:
                o->provision_resource = true;
                break;
        case FLAG_AESMD_DIR:
                if (v[0] != '/')
                        return fail(err, errsz, "%s: expected an absolute path, got '%s'", f->name,
                                    v);
                o->aesmd_dir = v;
                break;
        case FLAG_LOG_FORMAT:
                r = log_format_from_string(v, &o->log_format);
                if (r < 0)
                        return fail(err, errsz, "%s: expected text or json, got '%s'", f->name, v);
                break;
        case FLAG_LOG_LEVEL:
                r = log_level_from_string(v, &o->log_level);
                if (r < 0)
                        return fail(err, errsz, "%s: expected error, warn, info or debug, got '%s'",
                                    f->name, v);
                break;
        case FLAG_JSON:
                o->json = true;
                break;
        case FLAG_TIMEOUT:
                if (parse_timeout(v, &o->health_timeout_ms) < 0)
                        return fail(err, errsz,
                                    "%s: expected seconds from 0.001 to %u, such as 5 or 0.5, "
                                    "got '%s'",
                                    f->name, CLI_MAX_HEALTH_TIMEOUT_MS / 1000, v);
                break;
        case FLAG_PROC_ROOT:
                o->proc_root = v;
                break;
        case FLAG_SYS_ROOT:
                o->sys_root = v;
                break;
        case FLAG_CPUID_FILE:
                o->cpuid_file = v;
                break;
        case FLAG_LABEL_NODE:
                o->label_node = true;
                break;
        case FLAG_NODE_NAME: {
                const char *why = check_domain(v);

                if (why)
                        return fail(err, errsz,
                                    "%s: expected a node name (a DNS subdomain: %s), got '%s'",
                                    f->name, why, v);
                o->node_name = v;
                break;
        }
        case FLAG_APISERVER:
                if (strncmp(v, "https://", 8) != 0 || v[8] == '\0' || v[8] == '/')
                        return fail(err, errsz,
                                    "%s: expected https://HOST[:PORT] (TLS is always on), got "
                                    "'%s'",
                                    f->name, v);
                o->apiserver = v;
                break;
        case FLAG_TOKEN_FILE:
                o->token_file = v;
                break;
        case FLAG_CA_FILE:
                o->ca_file = v;
                break;
        case FLAG_API_TIMEOUT:
        case FLAG_LABEL_INTERVAL:
                if (parse_timeout(v, f->id == FLAG_API_TIMEOUT ? &o->api_timeout_ms
                                                               : &o->label_interval_ms) < 0)
                        return fail(err, errsz,
                                    "%s: expected seconds from 0.001 to %u, such as 10 or 0.5, "
                                    "got '%s'",
                                    f->name, CLI_MAX_HEALTH_TIMEOUT_MS / 1000, v);
                break;
        case FLAG_HELP:
                o->command = CLI_HELP;
                break;
        case FLAG_VERSION:
                o->command = CLI_VERSION;
                break;
        }
        return 0;
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
                                            "%s: the sub-command must come first, before "
                                            "any flag",
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

                if (!f->has_value) {
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

                r = apply(&o, f, v, err, errsz);
                if (r < 0)
                        return r;
                /* --help and --version win over whatever follows */
                if (o.command == CLI_HELP || o.command == CLI_VERSION)
                        break;
        }

        if (o.command == CLI_RUN && o.label_node) {
                const char *env = getenv("NODE_NAME"), *why;

                if (!o.node_name && env && env[0]) {
                        why = check_domain(env);
                        if (why)
                                return fail(err, errsz,
                                            "--label-node: $NODE_NAME is not a node name (a "
                                            "DNS subdomain: %s): '%s'",
                                            why, env);
                        o.node_name = env;
                }
                if (!o.node_name)
                        return fail(err, errsz,
                                    "--label-node: needs the node's name: pass --node-name or "
                                    "set NODE_NAME");
        }

        *ret = o;
        return 0;
}

void cli_usage(FILE *f) {
        fprintf(f,
                "Usage: sgxdevplugin [options]          run the device plugin daemon\n"
                "       sgxdevplugin probe [options]    print the SGX devices found and what "
                "would be\n"
                "                                       advertised, then exit\n"
                "       sgxdevplugin health [options]   ask the running daemon's sockets for "
                "their\n"
                "                                       options; exit 0 when all answer, else 1 "
                "(a\n"
                "                                       liveness probe)\n"
                "\n"
                "A Kubernetes device plugin for Intel SGX: registers D/sgx, D/dcap and D/ias\n"
                "(and D/provision) with the kubelet and maps the SGX device nodes into "
                "containers.\n"
                "\n"
                "Options:\n"
                "  --kubelet-dir DIR        the kubelet's device-plugin socket directory\n"
                "                           (default: %s)\n"
                "  --dev-root DIR           where the host's /dev is visible (default: %s)\n"
                "  --max-pods N             slots advertised per resource, 1..%u (default: %u)\n"
                "  --resource-domain D      resources are D/sgx, D/dcap, D/ias, D/provision\n"
                "                           (default: %s)\n"
                "  --no-provision           do not map the provisioning device with the DCAP "
                "enclave\n"
                "                           (default: mapped)\n"
                "  --provision-resource     also register D/provision, the provisioning device "
                "alone\n"
                "                           (default: off)\n"
                "  --aesmd-dir DIR          absolute host directory (the AESM socket) mounted at "
                "the\n"
                "                           same path into SGX containers (default: none)\n"
                "  --log-format FORMAT      text or json (default: text)\n"
                "  --log-level LEVEL        error, warn, info or debug (default: info)\n"
                "  --json                   probe only: print one JSON document (default: "
                "text)\n"
                "  --timeout SECONDS        health only: how long each socket may take to "
                "answer,\n"
                "                           0.001..%u (default: %u)\n"
                "\n"
                "Capability facts (probe and daemon):\n"
                "  --proc-root DIR          where the host's /proc is visible (default: %s)\n"
                "  --sys-root DIR           where the host's /sys is visible (default: %s)\n"
                "  --cpuid-file FILE        read CPUID from a recorded dump, lines of\n"
                "                           \"LEAF SUBLEAF EAX EBX ECX EDX\" in hex (default: "
                "this CPU)\n"
                "\n"
                "Node labels (daemon):\n"
                "  --label-node             label this node through the Kubernetes API "
                "(default: off)\n"
                "  --node-name NAME         the node to label (default: $NODE_NAME)\n"
                "  --apiserver URL          https://HOST[:PORT] (default: in-cluster, from\n"
                "                           $KUBERNETES_SERVICE_HOST and _PORT)\n"
                "  --token-file FILE        bearer token, re-read for every request (default: "
                "the\n"
                "                           service account's)\n"
                "  --ca-file FILE           CA bundle the API server's certificate must chain "
                "to\n"
                "                           (default: the service account's ca.crt)\n"
                "  --api-timeout SECONDS    how long one API request may take (default: %u)\n"
                "  --label-interval SECONDS re-assert the labels this often (default: %u)\n"
                "\n"
                "  -h, --help               print this help and exit\n"
                "  --version                print the version and exit\n"
                "\n"
                "health takes --kubelet-dir, --resource-domain, --timeout and the log "
                "flags.\n"
                "Values go as \"--flag value\" or \"--flag=value\".\n",
                CLI_DEFAULT_KUBELET_DIR, CLI_DEFAULT_DEV_ROOT, CLI_MAX_MAX_PODS,
                CLI_DEFAULT_MAX_PODS, CLI_DEFAULT_DOMAIN, CLI_MAX_HEALTH_TIMEOUT_MS / 1000,
                CLI_DEFAULT_HEALTH_TIMEOUT_MS / 1000, CLI_DEFAULT_PROC_ROOT,
                CLI_DEFAULT_SYS_ROOT, CLI_DEFAULT_API_TIMEOUT_MS / 1000,
                CLI_DEFAULT_LABEL_INTERVAL_MS / 1000);
}
