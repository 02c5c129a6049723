/*
 * fuzz_cli.c - libFuzzer target for flag parsing (cli_parse): argv is the input split at NUL
 * bytes (argv[0] first), each argument an exact-size heap copy so ASan sees a read past its end.
 * Checks: a failure leaves a non-empty message in |err|; a success gives options in range, whose
 * strings are the defaults or arguments of argv; parsing again, with a tiny message buffer and
 * with none, gives the same result.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "cli.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_ARGS 128

/*
 * |s| is NULL, the default |def| (compared by value: the literals of two files need not be one
 * object), or points into one of the arguments.
 */
static bool from_argv(const char *s, const char *def, int argc, char **argv) {
        if (!s || (def && strcmp(s, def) == 0))
                return true;
        for (int i = 0; i < argc; i++)
                if (s >= argv[i] && s <= argv[i] + strlen(argv[i]))
                        return true;
        return false;
}

static void check_options(const struct cli_options *o, int argc, char **argv) {
        if (o->max_pods < 1 || o->max_pods > CLI_MAX_MAX_PODS)
                abort();
        if (!o->kubelet_dir || !o->dev_root || !o->domain)
                abort();
        if (!from_argv(o->kubelet_dir, CLI_DEFAULT_KUBELET_DIR, argc, argv) ||
            !from_argv(o->dev_root, CLI_DEFAULT_DEV_ROOT, argc, argv) ||
            !from_argv(o->domain, CLI_DEFAULT_DOMAIN, argc, argv) ||
            !from_argv(o->aesmd_dir, NULL, argc, argv))
                abort();
        /* The daemon's sockets must fit in sockaddr_un; the domain is a DNS subdomain. */
        if (strlen(o->kubelet_dir) + sizeof("/sgxdevplugin-provision.sock") >
            sizeof(((struct sockaddr_un *) NULL)->sun_path))
                abort();
        if (strlen(o->domain) == 0 || strlen(o->domain) > 253)
                abort();
        if (o->aesmd_dir && o->aesmd_dir[0] != '/')
                abort();
        if ((unsigned) o->log_level > LOG_LEVEL_DEBUG || (unsigned) o->log_format > LOG_FORMAT_JSON)
                abort();
}

/* Field by field: the structs' padding is not ours to compare. */
static bool same_options(const struct cli_options *a, const struct cli_options *b) {
        return a->command == b->command && a->kubelet_dir == b->kubelet_dir &&
               a->dev_root == b->dev_root && a->max_pods == b->max_pods &&
               a->domain == b->domain && a->provision == b->provision &&
               a->provision_resource == b->provision_resource && a->aesmd_dir == b->aesmd_dir &&
               a->log_format == b->log_format && a->log_level == b->log_level &&
               a->json == b->json;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *argv[MAX_ARGS + 1];
        struct cli_options o, o2;
        char err[256], small[8];
        size_t start = 0;
        int argc = 0, r, r2;

        /* Split at NULs; a trailing piece without a NUL is an argument too. */
        for (size_t i = 0; i <= size && argc < MAX_ARGS; i++) {
                if (i < size && data[i] != '\0')
                        continue;
                if (i == size && start == size && argc > 0)
                        break;
                argv[argc] = malloc(i - start + 1);
                if (!argv[argc])
                        abort();
                memcpy(argv[argc], data + start, i - start);
                argv[argc][i - start] = '\0';
                argc++;
                start = i + 1;
        }
        argv[argc] = NULL;

        memset(err, 'x', sizeof(err));
        r = cli_parse(argc, argv, &o, err, sizeof(err));
        if (r == 0)
                check_options(&o, argc, argv);
        else if (r != -EINVAL || !memchr(err, '\0', sizeof(err)) || err[0] == '\0')
                abort();

        /* Same answer with a message buffer too small for it, and with none at all. */
        r2 = cli_parse(argc, argv, &o2, small, sizeof(small));
        if (r2 != r || (r == 0 && !same_options(&o, &o2)))
                abort();
        if (r < 0 && (!memchr(small, '\0', sizeof(small)) || strncmp(small, err, 7) != 0))
                abort();
        r2 = cli_parse(argc, argv, &o2, NULL, 0);
        if (r2 != r || (r == 0 && !same_options(&o, &o2)))
                abort();

        for (int i = 0; i < argc; i++)
                free(argv[i]);
        return 0;
}
