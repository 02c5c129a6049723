/*
 * test_cli.c - unit tests for src/cli.c: defaults, every flag in both forms, every error naming
 * its flag, the probe and health sub-commands (and which flags each takes), --help/--version and
 * the usage text.
 */
#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"

#define MAX_ARGS 16

static char errbuf[256];

/* Parses the NULL-terminated argument list (argv[0] is added). */
static int parse(struct cli_options *o, ...) {
        char *argv[MAX_ARGS + 2];
        int argc = 0;
        va_list ap;
        const char *a;

        argv[argc++] = (char *) "sgxdevplugin";
        va_start(ap, o);
        while ((a = va_arg(ap, const char *)) && argc <= MAX_ARGS)
                argv[argc++] = (char *) a;
        va_end(ap);
        argv[argc] = NULL;
        memset(errbuf, 'x', sizeof(errbuf) - 1);
        errbuf[sizeof(errbuf) - 1] = '\0';
        return cli_parse(argc, argv, o, errbuf, sizeof(errbuf));
}

/* The parse fails with -EINVAL and one line that starts with |prefix|. */
static void check_error(const char *prefix, int r) {
        CHECK_INT(r, -EINVAL);
        if (strncmp(errbuf, prefix, strlen(prefix)) != 0) {
                fprintf(stderr, "error '%s' does not start with '%s'\n", errbuf, prefix);
                CHECK(false);
        }
        CHECK(strchr(errbuf, '\n') == NULL);
}

static void test_cli_defaults(void) {
        struct cli_options o;

        CHECK_INT(parse(&o, NULL), 0);
        CHECK_INT(o.command, CLI_RUN);
        CHECK_STR(o.kubelet_dir, "/var/lib/kubelet/device-plugins");
        CHECK_STR(o.dev_root, "/dev");
        CHECK_INT(o.max_pods, 110);
        CHECK_STR(o.domain, "sgx.k8s.io");
        CHECK(o.provision);
        CHECK(!o.provision_resource);
        CHECK(o.aesmd_dir == NULL);
        CHECK_INT(o.log_format, LOG_FORMAT_TEXT);
        CHECK_INT(o.log_level, LOG_LEVEL_INFO);
        CHECK(!o.json);
        CHECK_INT(o.health_timeout_ms, 5000);
}

static void test_cli_every_flag_separate_form(void) {
        struct cli_options o;

        CHECK_INT(parse(&o, "--kubelet-dir", "/k", "--dev-root", "/host/dev", "--max-pods", "7",
                        "--resource-domain", "example.com", "--no-provision",
                        "--provision-resource", "--aesmd-dir", "/var/run/aesmd", "--log-format",
                        "json", "--log-level", "debug", NULL),
                  0);
        CHECK_INT(o.command, CLI_RUN);
        CHECK_STR(o.kubelet_dir, "/k");
        CHECK_STR(o.dev_root, "/host/dev");
        CHECK_INT(o.max_pods, 7);
        CHECK_STR(o.domain, "example.com");
        CHECK(!o.provision);
        CHECK(o.provision_resource);
        CHECK_STR(o.aesmd_dir, "/var/run/aesmd");
        CHECK_INT(o.log_format, LOG_FORMAT_JSON);
        CHECK_INT(o.log_level, LOG_LEVEL_DEBUG);
        CHECK(!o.json);
}

static void test_cli_every_flag_equals_form(void) {
        struct cli_options o;

        CHECK_INT(parse(&o, "--kubelet-dir=/k", "--dev-root=/host/dev", "--max-pods=100000",
                        "--resource-domain=a-b.c", "--aesmd-dir=/a=b", "--log-format=text",
                        "--log-level=warn", NULL),
                  0);
        CHECK_STR(o.kubelet_dir, "/k");
        CHECK_STR(o.dev_root, "/host/dev");
        CHECK_INT(o.max_pods, 100000);
        CHECK_STR(o.domain, "a-b.c");
        CHECK_STR(o.aesmd_dir, "/a=b"); /* only the first '=' splits */
        CHECK_INT(o.log_format, LOG_FORMAT_TEXT);
        CHECK_INT(o.log_level, LOG_LEVEL_WARN);
        CHECK(o.provision);
}

static void test_cli_log_levels(void) {
        static const char *const names[] = {"error", "warn", "info", "debug"};
        static const enum log_level levels[] = {LOG_LEVEL_ERROR, LOG_LEVEL_WARN, LOG_LEVEL_INFO,
                                                LOG_LEVEL_DEBUG};
        struct cli_options o;

        for (size_t i = 0; i < 4; i++) {
                CHECK_INT(parse(&o, "--log-level", names[i], NULL), 0);
                CHECK_INT(o.log_level, levels[i]);
        }
}

static void test_cli_last_flag_wins(void) {
        struct cli_options o;

        CHECK_INT(parse(&o, "--max-pods", "5", "--max-pods=6", NULL), 0);
        CHECK_INT(o.max_pods, 6);
}

static void test_cli_max_pods_bounds(void) {
        struct cli_options o;

        CHECK_INT(parse(&o, "--max-pods", "1", NULL), 0);
        CHECK_INT(o.max_pods, 1);
        CHECK_INT(parse(&o, "--max-pods", "100000", NULL), 0);
        CHECK_INT(o.max_pods, 100000);
        CHECK_INT(parse(&o, "--max-pods", "0110", NULL), 0);
        CHECK_INT(o.max_pods, 110);
}

static void test_cli_max_pods_errors(void) {
        static const char *const bad[] = {
                "0",
                "100001",
                "10abc",
                "+5",
                "-5",
                " 5",
                "5 ",
                "0x10",
                "1e3",
                "abc",
                "99999999999999999999999999",
                "4294967296",
                "4294967306",
        };
        struct cli_options o;
        char want[128];

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                check_error("--max-pods: expected a whole number from 1 to 100000, got '",
                            parse(&o, "--max-pods", bad[i], NULL));
                snprintf(want, sizeof(want), "got '%s'", bad[i]);
                CHECK(strstr(errbuf, want) != NULL);
        }
        CHECK_STR(errbuf, "--max-pods: expected a whole number from 1 to 100000, got '4294967306'");
        check_error("--max-pods: expected a whole number from 1 to 100000, got '0'",
                    parse(&o, "--max-pods=0", NULL));
        check_error("--max-pods: empty value", parse(&o, "--max-pods=", NULL));
        check_error("--max-pods: empty value", parse(&o, "--max-pods", "", NULL));
}

static void test_cli_domain_valid(void) {
        static const char *const good[] = {
                "sgx.k8s.io",
                "a",
                "0",
                "a-b",
                "x1.y2.z3",
                "intel.com",
                /* 63-character label */
                "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij123.io",
        };
        struct cli_options o;

        for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
                CHECK_INT(parse(&o, "--resource-domain", good[i], NULL), 0);
                CHECK_STR(o.domain, good[i]);
        }
}

static void test_cli_domain_errors(void) {
        static const char *const bad[] = {
                "Sgx.k8s.io",
                "sgx..io",
                ".sgx.io",
                "sgx.io.",
                "-sgx.io",
                "sgx-.io",
                "sgx.-io",
                "sgx_io",
                "sgx/io",
                "sgx io",
                "sgx.k8s.io/",
                "é.io",
                /* 64-character label */
                "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij1234.io",
        };
        struct cli_options o;
        char longest[300];

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                check_error("--resource-domain: expected a DNS subdomain",
                            parse(&o, "--resource-domain", bad[i], NULL));
        check_error("--resource-domain: empty value", parse(&o, "--resource-domain=", NULL));

        /* 253 characters pass, 254 do not */
        memset(longest, 'a', sizeof(longest));
        for (size_t i = 50; i < 253; i += 51)
                longest[i] = '.';
        longest[253] = '\0';
        CHECK_INT(parse(&o, "--resource-domain", longest, NULL), 0);
        longest[253] = 'a';
        longest[254] = '\0';
        check_error("--resource-domain: expected a DNS subdomain",
                    parse(&o, "--resource-domain", longest, NULL));
        CHECK(strstr(errbuf, "253") != NULL);
}

static void test_cli_kubelet_dir_fits_sun_path(void) {
        struct cli_options o;
        char dir[200];

        /* dir + "/sgxdevplugin-provision.sock" (28 bytes) may be 107 bytes: dir up to 79 */
        memset(dir, 'k', sizeof(dir));
        dir[0] = '/';
        dir[79] = '\0';
        CHECK_INT(parse(&o, "--kubelet-dir", dir, NULL), 0);
        CHECK_STR(o.kubelet_dir, dir);
        dir[79] = 'k';
        dir[80] = '\0';
        check_error("--kubelet-dir: ", parse(&o, "--kubelet-dir", dir, NULL));
        CHECK(strstr(errbuf, "108 bytes") != NULL);
        check_error("--kubelet-dir: empty value", parse(&o, "--kubelet-dir", "", NULL));
}

static void test_cli_aesmd_dir_must_be_absolute(void) {
        struct cli_options o;

        check_error("--aesmd-dir: expected an absolute path, got 'var/run/aesmd'",
                    parse(&o, "--aesmd-dir", "var/run/aesmd", NULL));
        check_error("--aesmd-dir: empty value", parse(&o, "--aesmd-dir=", NULL));
}

static void test_cli_cdi_flags(void) {
        struct cli_options o;

        CHECK_INT(parse(&o, NULL), 0);
        CHECK(!o.cdi);
        CHECK_STR(o.cdi_dir, "/var/run/cdi");
        CHECK_INT(parse(&o, "--cdi", "--cdi-dir", "/run/cdi", NULL), 0);
        CHECK(o.cdi);
        CHECK_STR(o.cdi_dir, "/run/cdi");
        CHECK_INT(parse(&o, "--cdi-dir=/etc/cdi", NULL), 0);
        CHECK(!o.cdi);
        CHECK_STR(o.cdi_dir, "/etc/cdi");
        check_error("--cdi-dir: expected an absolute path, got 'run/cdi'",
                    parse(&o, "--cdi-dir", "run/cdi", NULL));
        check_error("--cdi-dir: empty value", parse(&o, "--cdi-dir=", NULL));
        check_error("--cdi: takes no value, got 'true'", parse(&o, "--cdi=true", NULL));
        check_error("--cdi-dir: missing value", parse(&o, "--cdi-dir", NULL));
        /* the daemon's: probe and health do not take them */
        check_error("--cdi: not valid with the probe sub-command",
                    parse(&o, "probe", "--cdi", NULL));
}

static void test_cli_dev_root_empty(void) {
        struct cli_options o;

        check_error("--dev-root: empty value", parse(&o, "--dev-root", "", NULL));
        check_error("--dev-root: empty value", parse(&o, "--dev-root=", NULL));
}

static void test_cli_log_errors(void) {
        struct cli_options o;

        check_error("--log-format: expected text or json, got 'xml'",
                    parse(&o, "--log-format", "xml", NULL));
        check_error("--log-level: expected error, warn, info or debug, got 'INFO'",
                    parse(&o, "--log-level=INFO", NULL));
        check_error("--log-level: empty value", parse(&o, "--log-level=", NULL));
}

static void test_cli_missing_value(void) {
        static const char *const with_value[] = {
                "--kubelet-dir", "--dev-root",   "--max-pods",  "--resource-domain",
                "--aesmd-dir",   "--log-format", "--log-level",
        };
        struct cli_options o;
        char want[64];

        for (size_t i = 0; i < sizeof(with_value) / sizeof(with_value[0]); i++) {
                snprintf(want, sizeof(want), "%s: missing value", with_value[i]);
                check_error(want, parse(&o, with_value[i], NULL));
                CHECK_STR(errbuf, want);
                /* the next flag is not taken as the value */
                check_error(want, parse(&o, with_value[i], "--no-provision", NULL));
        }
}

static void test_cli_flag_without_value_given_one(void) {
        struct cli_options o;

        check_error("--no-provision: takes no value, got 'x'", parse(&o, "--no-provision=x", NULL));
        check_error("--provision-resource: takes no value, got ''",
                    parse(&o, "--provision-resource=", NULL));
        check_error("--json: takes no value", parse(&o, "probe", "--json=1", NULL));
        check_error("--help: takes no value", parse(&o, "--help=yes", NULL));
        check_error("--version: takes no value", parse(&o, "--version=1", NULL));
}

static void test_cli_unknown_flag(void) {
        struct cli_options o;

        check_error("--frobnicate: unknown flag", parse(&o, "--frobnicate", NULL));
        CHECK_STR(errbuf, "--frobnicate: unknown flag");
        check_error("--frob: unknown flag", parse(&o, "--frob=1", NULL));
        check_error("-x: unknown flag", parse(&o, "-x", NULL));
        check_error("--max-pod: unknown flag", parse(&o, "--max-pod", "5", NULL));
        check_error("--Dev-root: unknown flag", parse(&o, "--Dev-root", "/d", NULL));
}

static void test_cli_stray_argument(void) {
        struct cli_options o;

        check_error("'extra': unexpected argument", parse(&o, "extra", NULL));
        check_error("'-': unexpected argument", parse(&o, "-", NULL));
        check_error("'x': unexpected argument", parse(&o, "--dev-root", "/d", "x", NULL));
        check_error("'x': unexpected argument", parse(&o, "probe", "x", NULL));
        check_error("'--json': unexpected argument", parse(&o, "probe", "--", "--json", NULL));
        check_error("probe: the sub-command must come first",
                    parse(&o, "--dev-root", "/d", "probe", NULL));
        check_error("probe: the sub-command must come first", parse(&o, "probe", "probe", NULL));
        /* "--" alone ends the flags */
        CHECK_INT(parse(&o, "--max-pods", "3", "--", NULL), 0);
        CHECK_INT(o.max_pods, 3);
}

static void test_cli_probe(void) {
        struct cli_options o;

        CHECK_INT(parse(&o, "probe", NULL), 0);
        CHECK_INT(o.command, CLI_PROBE);
        CHECK(!o.json);
        CHECK_STR(o.dev_root, "/dev");

        CHECK_INT(parse(&o, "probe", "--dev-root", "/host/dev", "--json", NULL), 0);
        CHECK_INT(o.command, CLI_PROBE);
        CHECK(o.json);
        CHECK_STR(o.dev_root, "/host/dev");

        CHECK_INT(parse(&o, "probe", "--json", "--max-pods=3", "--resource-domain", "x.io",
                        "--no-provision", "--provision-resource", "--log-level", "debug",
                        "--log-format=json", NULL),
                  0);
        CHECK_INT(o.command, CLI_PROBE);
        CHECK_INT(o.max_pods, 3);
        CHECK_STR(o.domain, "x.io");
        CHECK(!o.provision);
        CHECK(o.provision_resource);
        CHECK_INT(o.log_level, LOG_LEVEL_DEBUG);
        CHECK_INT(o.log_format, LOG_FORMAT_JSON);

        /* the probe validates like the daemon */
        check_error("--max-pods: expected", parse(&o, "probe", "--max-pods", "0", NULL));
}

static void test_cli_json_only_for_probe(void) {
        struct cli_options o;

        check_error("--json: only valid with the probe sub-command", parse(&o, "--json", NULL));
}

static void test_cli_health(void) {
        struct cli_options o;

        CHECK_INT(parse(&o, "health", NULL), 0);
        CHECK_INT(o.command, CLI_HEALTH);
        CHECK_STR(o.kubelet_dir, "/var/lib/kubelet/device-plugins");
        CHECK_STR(o.domain, "sgx.k8s.io");
        CHECK_INT(o.health_timeout_ms, 5000);

        CHECK_INT(parse(&o, "health", "--kubelet-dir", "/k", "--resource-domain", "x.io",
                        "--timeout", "2", "--log-level", "debug", "--log-format", "json", NULL),
                  0);
        CHECK_INT(o.command, CLI_HEALTH);
        CHECK_STR(o.kubelet_dir, "/k");
        CHECK_STR(o.domain, "x.io");
        CHECK_INT(o.health_timeout_ms, 2000);
        CHECK_INT(o.log_level, LOG_LEVEL_DEBUG);
        CHECK_INT(o.log_format, LOG_FORMAT_JSON);

        CHECK_INT(parse(&o, "health", "--kubelet-dir=/k2", "--timeout=0.25", NULL), 0);
        CHECK_STR(o.kubelet_dir, "/k2");
        CHECK_INT(o.health_timeout_ms, 250);

        /* health validates its flags like the daemon */
        check_error("--kubelet-dir: too long", parse(&o, "health", "--kubelet-dir",
                                                     "/0123456789012345678901234567890123456789"
                                                     "0123456789012345678901234567890123456789",
                                                     NULL));
        check_error("--resource-domain: expected",
                    parse(&o, "health", "--resource-domain", "Bad", NULL));
}

static void test_cli_health_timeout_values(void) {
        static const struct {
                const char *in;
                unsigned ms;
        } good[] = {
                {"5", 5000},       {"0.5", 500},  {"2.125", 2125}, {"0.001", 1},
                {"3600", 3600000}, {"007", 7000}, {"1.0", 1000},   {"3600.000", 3600000},
        };
        struct cli_options o;

        for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
                CHECK_INT(parse(&o, "health", "--timeout", good[i].in, NULL), 0);
                if (o.health_timeout_ms != good[i].ms)
                        fprintf(stderr, "--timeout %s\n", good[i].in);
                CHECK_INT(o.health_timeout_ms, good[i].ms);
        }
}

static void test_cli_health_timeout_errors(void) {
        static const char *const bad[] = {
                "0",     "0.0",  "0.0004", "0.0001", "3600.001",
                "3601",  "-1",   "+1",     "1.",     ".5",
                "1e3",   "5s",   " 5",     "5 ",     "1..2",
                "1.2.3", "0x10", "inf",    "nan",    "99999999999999999999999",
        };
        struct cli_options o;

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                int r = parse(&o, "health", "--timeout", bad[i], NULL);

                if (r != -EINVAL)
                        fprintf(stderr, "--timeout '%s' was accepted\n", bad[i]);
                check_error("--timeout: expected seconds from 0.001 to 3600", r);
        }
        check_error("--timeout: empty value", parse(&o, "health", "--timeout=", NULL));
        check_error("--timeout: missing value", parse(&o, "health", "--timeout", NULL));
}

static void test_cli_timeout_only_for_health(void) {
        struct cli_options o;

        check_error("--timeout: only valid with the health sub-command",
                    parse(&o, "--timeout", "1", NULL));
        check_error("--timeout: only valid with the health sub-command",
                    parse(&o, "probe", "--timeout", "1", NULL));
        check_error("--json: only valid with the probe sub-command",
                    parse(&o, "health", "--json", NULL));
}

static void test_cli_health_rejects_daemon_flags(void) {
        struct cli_options o;

        check_error("--dev-root: not valid with the health sub-command",
                    parse(&o, "health", "--dev-root", "/d", NULL));
        check_error("--max-pods: not valid with the health sub-command",
                    parse(&o, "health", "--max-pods=3", NULL));
        check_error("--no-provision: not valid with the health sub-command",
                    parse(&o, "health", "--no-provision", NULL));
        check_error("--provision-resource: not valid with the health sub-command",
                    parse(&o, "health", "--provision-resource", NULL));
        check_error("--aesmd-dir: not valid with the health sub-command",
                    parse(&o, "health", "--aesmd-dir", "/a", NULL));
}

/*
 * health takes the daemon's DRA flags (the chart passes the same): the default --dra-dir under
 * the resource domain, no node name needed; --no-device-plugin still needs --dra, --dra-slots is
 * the daemon's alone.
 */
static void test_cli_health_takes_the_dra_flags(void) {
        struct cli_options o;

        unsetenv("NODE_NAME");
        CHECK_INT(parse(&o, "health", "--dra", "--resource-domain=sgx.example.com", NULL), 0);
        CHECK(o.dra && !o.no_device_plugin);
        CHECK_STR(o.plugins_registry, CLI_DEFAULT_PLUGINS_REGISTRY);
        CHECK_STR(o.dra_dir, CLI_DEFAULT_DRA_PARENT "/sgx.example.com");
        CHECK_INT(parse(&o, "health", "--dra", "--no-device-plugin", "--plugins-registry=/r",
                        "--dra-dir", "/d", NULL),
                  0);
        CHECK(o.dra && o.no_device_plugin);
        CHECK_STR(o.plugins_registry, "/r");
        CHECK_STR(o.dra_dir, "/d");
        CHECK_INT(parse(&o, "health", NULL), 0);
        CHECK(!o.dra && !o.no_device_plugin);
        check_error("--no-device-plugin: needs --dra",
                    parse(&o, "health", "--no-device-plugin", NULL));
        check_error("--dra-dir: expected an absolute path",
                    parse(&o, "health", "--dra", "--dra-dir=d", NULL));
        check_error("--dra-slots: not valid with the health sub-command",
                    parse(&o, "health", "--dra", "--dra-slots", NULL));
        check_error("--dra: not valid with the probe sub-command", parse(&o, "probe", "--dra", NULL));
}

static void test_cli_health_must_come_first(void) {
        struct cli_options o;

        check_error("health: the sub-command must come first",
                    parse(&o, "--kubelet-dir", "/k", "health", NULL));
        check_error("probe: the sub-command must come first", parse(&o, "health", "probe", NULL));
        check_error("health: the sub-command must come first", parse(&o, "probe", "health", NULL));
        check_error("'healthy': unexpected argument", parse(&o, "healthy", NULL));
}

static void test_cli_help_and_version(void) {
        struct cli_options o;

        CHECK_INT(parse(&o, "--help", NULL), 0);
        CHECK_INT(o.command, CLI_HELP);
        CHECK_INT(parse(&o, "-h", NULL), 0);
        CHECK_INT(o.command, CLI_HELP);
        CHECK_INT(parse(&o, "--version", NULL), 0);
        CHECK_INT(o.command, CLI_VERSION);
        CHECK_INT(parse(&o, "probe", "--help", NULL), 0);
        CHECK_INT(o.command, CLI_HELP);
        CHECK_INT(parse(&o, "health", "--help", NULL), 0);
        CHECK_INT(o.command, CLI_HELP);
        CHECK_INT(parse(&o, "health", "--version", NULL), 0);
        CHECK_INT(o.command, CLI_VERSION);
        /* what follows --help is not parsed; what precedes it is */
        CHECK_INT(parse(&o, "--help", "--bogus", NULL), 0);
        CHECK_INT(o.command, CLI_HELP);
        check_error("--bogus: unknown flag", parse(&o, "--bogus", "--help", NULL));
}

static void test_cli_out_untouched_on_error(void) {
        struct cli_options o;

        memset(&o, 0, sizeof(o));
        o.max_pods = 42;
        CHECK_INT(parse(&o, "--max-pods", "7", "--bogus", NULL), -EINVAL);
        CHECK_INT(o.max_pods, 42);
}

static void test_cli_parse_repeatable(void) {
        struct cli_options o;

        /* no state carried between calls */
        CHECK_INT(parse(&o, "probe", "--json", "--max-pods", "9", NULL), 0);
        CHECK_INT(parse(&o, NULL), 0);
        CHECK_INT(o.command, CLI_RUN);
        CHECK(!o.json);
        CHECK_INT(o.max_pods, 110);
        CHECK_INT(parse(&o, "health", "--timeout", "1", NULL), 0);
        CHECK_INT(parse(&o, NULL), 0);
        CHECK_INT(o.command, CLI_RUN);
        CHECK_INT(o.health_timeout_ms, 5000);
}

static void test_cli_small_error_buffer(void) {
        struct cli_options o;
        char small[8];
        char *argv[] = {(char *) "sgxdevplugin", (char *) "--max-pods", (char *) "0", NULL};

        CHECK_INT(cli_parse(3, argv, &o, small, sizeof(small)), -EINVAL);
        CHECK_STR(small, "--max-p");
        CHECK_INT(cli_parse(3, argv, &o, NULL, 0), -EINVAL);
}

static void test_cli_usage_lists_every_flag(void) {
        static const char *const want[] = {
                "--kubelet-dir",
                "--dev-root",
                "--max-pods",
                "--resource-domain",
                "--no-provision",
                "--provision-resource",
                "--aesmd-dir",
                "--log-format",
                "--log-level",
                "--json",
                "--timeout",
                "--help",
                "-h,",
                "--version",
                "probe",
                "health",
                "0.001..3600 (default: 5)",
                "/var/lib/kubelet/device-plugins",
                "(default: /dev)",
                "(default: 110)",
                "sgx.k8s.io",
                "(default: text)",
                "(default: info)",
                "1..100000",
        };
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);

        CHECK(f != NULL);
        if (!f)
                return;
        cli_usage(f);
        fclose(f);
        for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
                if (!strstr(text, want[i])) {
                        fprintf(stderr, "usage lacks '%s'\n", want[i]);
                        CHECK(false);
                }
        }
        /* no line wider than 100 columns */
        for (char *line = text, *nl; line && *line; line = nl ? nl + 1 : NULL) {
                nl = strchr(line, '\n');
                CHECK((nl ? (size_t) (nl - line) : strlen(line)) <= 100);
        }
        free(text);
}

/* A value holding a newline or other control bytes still makes a one-line error. */
static void test_cli_error_with_control_bytes_is_one_line(void) {
        struct cli_options o;

        check_error("--max-pods: ", parse(&o, "--max-pods", "1\n2", NULL));
        check_error("--log-format: ", parse(&o, "--log-format=te\rxt\n", NULL));
        check_error("'a?[2Jb'", parse(&o, "a\x1b[2Jb", NULL));
        CHECK(strchr(errbuf, 0x1b) == NULL);
}

int main(void) {
        RUN(test_cli_defaults);
        RUN(test_cli_error_with_control_bytes_is_one_line);
        RUN(test_cli_every_flag_separate_form);
        RUN(test_cli_every_flag_equals_form);
        RUN(test_cli_log_levels);
        RUN(test_cli_last_flag_wins);
        RUN(test_cli_max_pods_bounds);
        RUN(test_cli_max_pods_errors);
        RUN(test_cli_domain_valid);
        RUN(test_cli_domain_errors);
        RUN(test_cli_kubelet_dir_fits_sun_path);
        RUN(test_cli_aesmd_dir_must_be_absolute);
        RUN(test_cli_cdi_flags);
        RUN(test_cli_dev_root_empty);
        RUN(test_cli_log_errors);
        RUN(test_cli_missing_value);
        RUN(test_cli_flag_without_value_given_one);
        RUN(test_cli_unknown_flag);
        RUN(test_cli_stray_argument);
        RUN(test_cli_probe);
        RUN(test_cli_json_only_for_probe);
        RUN(test_cli_health);
        RUN(test_cli_health_timeout_values);
        RUN(test_cli_health_timeout_errors);
        RUN(test_cli_timeout_only_for_health);
        RUN(test_cli_health_rejects_daemon_flags);
        RUN(test_cli_health_takes_the_dra_flags);
        RUN(test_cli_health_must_come_first);
        RUN(test_cli_help_and_version);
        RUN(test_cli_out_untouched_on_error);
        RUN(test_cli_parse_repeatable);
        RUN(test_cli_small_error_buffer);
        RUN(test_cli_usage_lists_every_flag);
        return unit_done();
}
