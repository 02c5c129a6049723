/* test_cdispec.c - the node's CDI spec file (src/node/cdispec.c): written where asked (the dir
 * made), removed when no device is left, a failure kept pending, removed on exit only while ours.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cdispec.h"
#include "discovery.h"
#include "log.h"
#include "fake_nodes.h"
#include "unit.h"

static char tmp[64];

static const struct sgx_cdi_config cfg = {.domain = "sgx.k8s.io", .edits = {.provision = true}};

static bool exists(const char *path) {
        struct stat st;

        return lstat(path, &st) == 0;
}

static void test_cdispec_written_in_a_new_dir_and_removed_on_exit(void) {
        struct discovery d = node_in_kernel();
        struct cdispec s;
        char dir[128];
        struct stat st;

        snprintf(dir, sizeof(dir), "%s/run/cdi", tmp);
        CHECK_INT(cdispec_init(&s, dir, &cfg), 0);
        CHECK(!exists(s.path)); /* init touches nothing */
        CHECK_INT(cdispec_sync(&s, &d), 0);
        CHECK(exists(s.path));
        CHECK(stat(dir, &st) == 0 && (st.st_mode & 07777) == 0755);
        CHECK(stat(s.path, &st) == 0 && (st.st_mode & 07777) == 0644);
        CHECK(cdispec_owns(&s));
        CHECK(!s.pending);
        cdispec_release(&s);
        CHECK(!exists(s.path));
}

static void test_cdispec_no_device_removes_the_file(void) {
        struct discovery d = node_in_kernel(), none = {0};
        struct cdispec s;

        CHECK_INT(cdispec_init(&s, tmp, &cfg), 0);
        CHECK_INT(cdispec_sync(&s, &d), 0);
        CHECK(exists(s.path));
        CHECK_INT(cdispec_sync(&s, &none), 0);
        CHECK(!exists(s.path));
        CHECK(!cdispec_owns(&s));
        /* nothing to remove is no error */
        CHECK_INT(cdispec_sync(&s, &none), 0);
        cdispec_release(&s);
}

static void test_cdispec_replaced_file_survives_release(void) {
        struct discovery d = node_in_kernel();
        struct cdispec s;
        char other[160];
        FILE *f;

        CHECK_INT(cdispec_init(&s, tmp, &cfg), 0);
        CHECK_INT(cdispec_sync(&s, &d), 0);
        snprintf(other, sizeof(other), "%s/other", tmp);
        f = fopen(other, "w");
        CHECK(f != NULL);
        if (!f)
                return;
        fputs("{}\n", f);
        fclose(f);
        CHECK(rename(other, s.path) == 0);
        CHECK(!cdispec_owns(&s));
        cdispec_release(&s);
        CHECK(exists(s.path));
        unlink(s.path);
}

static void test_cdispec_unwritable_dir_is_pending(void) {
        struct discovery d = node_in_kernel();
        struct cdispec s;
        char blocker[128], dir[160];
        FILE *f;

        snprintf(blocker, sizeof(blocker), "%s/blocker", tmp);
        snprintf(dir, sizeof(dir), "%s/cdi", blocker);
        f = fopen(blocker, "w");
        CHECK(f != NULL);
        if (!f)
                return;
        fclose(f);
        CHECK_INT(cdispec_init(&s, dir, &cfg), 0);
        CHECK_INT(cdispec_sync(&s, &d), -ENOTDIR);
        CHECK(s.pending);
        CHECK(!s.ours);
        CHECK_INT(s.last_error, -ENOTDIR);
        /* the way is clear: the next try writes it */
        CHECK(unlink(blocker) == 0);
        CHECK_INT(cdispec_sync(&s, &d), 0);
        CHECK(!s.pending);
        CHECK_INT(s.last_error, 0);
        CHECK(exists(s.path));
        cdispec_release(&s);
        CHECK(!exists(s.path));
        rmdir(dir);
        rmdir(blocker);
}

static void test_cdispec_too_long_a_path(void) {
        struct cdispec s;
        char dir[PATH_MAX + 8];

        memset(dir, 'a', sizeof(dir) - 1);
        dir[0] = '/';
        dir[sizeof(dir) - 1] = '\0';
        CHECK_INT(cdispec_init(&s, dir, &cfg), -ENAMETOOLONG);
}

int main(void) {
        char run[128], run_cdi[128];

        log_setup(LOG_LEVEL_ERROR, LOG_FORMAT_TEXT);
        snprintf(tmp, sizeof(tmp), "/tmp/test_cdispec.XXXXXX");
        if (!mkdtemp(tmp)) {
                perror("mkdtemp");
                return 1;
        }
        RUN(test_cdispec_written_in_a_new_dir_and_removed_on_exit);
        RUN(test_cdispec_no_device_removes_the_file);
        RUN(test_cdispec_replaced_file_survives_release);
        RUN(test_cdispec_unwritable_dir_is_pending);
        RUN(test_cdispec_too_long_a_path);
        /* the directories the tests made, empty when they passed */
        snprintf(run_cdi, sizeof(run_cdi), "%s/run/cdi", tmp);
        snprintf(run, sizeof(run), "%s/run", tmp);
        rmdir(run_cdi);
        rmdir(run);
        rmdir(tmp);
        return unit_done();
}
