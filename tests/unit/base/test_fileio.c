/* test_fileio.c - bounded whole-file reads and atomic writes (src/base/fileio.c). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"
#include "unit.h"

static char dir[] = "/tmp/test_fileio.XXXXXX";

static void path_in(char *buf, size_t size, const char *name) {
        snprintf(buf, size, "%s/%s", dir, name);
}

static void put(const char *name, const char *text) {
        char p[256];
        FILE *f;

        path_in(p, sizeof(p), name);
        f = fopen(p, "w");
        if (f) {
                fputs(text, f);
                fclose(f);
        }
}

/* Files in |dir| (the temp files a write must not leave). */
static int n_files(void) {
        DIR *d = opendir(dir);
        struct dirent *e;
        int n = 0;

        if (!d)
                return -1;
        while ((e = readdir(d)))
                if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
                        n++;
        closedir(d);
        return n;
}

static void test_fileio_read_whole_and_truncated(void) {
        char p[256], *buf = NULL;
        size_t len = 0;
        bool cut = true;

        put("five", "12345");
        path_in(p, sizeof(p), "five");
        CHECK_INT(fileio_read(p, 5, &buf, &len, &cut), 0);
        CHECK_STR(buf, "12345");
        CHECK_INT(len, 5);
        CHECK(!cut);
        free(buf);
        buf = NULL;
        CHECK_INT(fileio_read(p, 3, &buf, &len, &cut), 0);
        CHECK_STR(buf, "123");
        CHECK_INT(len, 3);
        CHECK(cut);
        free(buf);
        buf = NULL;
        CHECK_INT(fileio_read(p, 3, &buf, NULL, NULL), 0);
        CHECK_STR(buf, "123");
        free(buf);
}

static void test_fileio_read_errors(void) {
        char p[256], *buf = NULL;
        size_t len;

        path_in(p, sizeof(p), "missing");
        CHECK_INT(fileio_read(p, 10, &buf, &len, NULL), -ENOENT);
        CHECK(buf == NULL);
        CHECK_INT(fileio_read(dir, 10, &buf, &len, NULL), -EISDIR);
        CHECK(buf == NULL);
}

static void test_fileio_write_atomic_replaces_and_leaves_no_temp(void) {
        char p[256], *buf = NULL;
        struct stat st;
        int before;

        put("spec.json", "old");
        before = n_files();
        path_in(p, sizeof(p), "spec.json");
        CHECK_INT(fileio_write_atomic(p, "new contents", 12, 0644), 0);
        CHECK_INT(fileio_read(p, 100, &buf, NULL, NULL), 0);
        CHECK_STR(buf, "new contents");
        free(buf);
        CHECK_INT(n_files(), before);
        CHECK_INT(stat(p, &st), 0);
        CHECK_INT(st.st_mode & 07777, 0644);
        /* the mode is the caller's, whatever the umask */
        umask(0077);
        CHECK_INT(fileio_write_atomic(p, "x", 1, 0644), 0);
        umask(0022);
        CHECK_INT(stat(p, &st), 0);
        CHECK_INT(st.st_mode & 07777, 0644);
}

static void test_fileio_write_atomic_failure_keeps_the_old_file(void) {
        char p[256], sub[256], *buf = NULL;

        /* the target is a directory: rename fails, the temp file is removed */
        path_in(sub, sizeof(sub), "adir");
        CHECK_INT(mkdir(sub, 0755), 0);
        put("adir/keep", "k");
        CHECK(fileio_write_atomic(sub, "data", 4, 0644) < 0);
        path_in(p, sizeof(p), "adir/keep");
        CHECK_INT(fileio_read(p, 10, &buf, NULL, NULL), 0);
        CHECK_STR(buf, "k");
        free(buf);
        /* a directory that does not exist: an error, nothing written */
        path_in(p, sizeof(p), "nodir/spec.json");
        CHECK_INT(fileio_write_atomic(p, "data", 4, 0644), -ENOENT);
        CHECK_INT(n_files(), 3); /* five, spec.json, adir: no temp file beside them */
}

static void test_fileio_paths(void) {
        char out[256], p[256];

        fileio_parent_dir("/a/b/c", out, sizeof(out));
        CHECK_STR(out, "/a/b");
        fileio_parent_dir("/a/b/", out, sizeof(out));
        CHECK_STR(out, "/a");
        fileio_parent_dir("/top", out, sizeof(out));
        CHECK_STR(out, "/");
        fileio_parent_dir("bare", out, sizeof(out));
        CHECK_STR(out, ".");
        CHECK(fileio_is_dir(dir));
        path_in(p, sizeof(p), "five"); /* a file, made by an earlier test */
        CHECK(!fileio_is_dir(p));
        path_in(p, sizeof(p), "no/such/dir");
        fileio_nearest_existing(p, out, sizeof(out));
        CHECK_STR(out, dir);
        fileio_nearest_existing("/", out, sizeof(out));
        CHECK_STR(out, "/");
}

static void test_fileio_make_dirs(void) {
        char p[256], file[256];
        struct stat st;

        path_in(p, sizeof(p), "x/y/z");
        umask(0077);
        CHECK_INT(fileio_make_dirs(p, 0755), 0);
        umask(0022);
        CHECK(fileio_is_dir(p));
        CHECK_INT(stat(p, &st), 0);
        CHECK_INT(st.st_mode & 07777, 0755); /* the mode asked for, whatever the umask */
        CHECK_INT(fileio_make_dirs(p, 0700), 0); /* existing: left as it is */
        CHECK_INT(stat(p, &st), 0);
        CHECK_INT(st.st_mode & 07777, 0755);
        path_in(file, sizeof(file), "five/under");
        CHECK_INT(fileio_make_dirs(file, 0755), -ENOTDIR);
}

int main(void) {
        if (!mkdtemp(dir)) {
                perror("mkdtemp");
                return 1;
        }
        RUN(test_fileio_read_whole_and_truncated);
        RUN(test_fileio_read_errors);
        RUN(test_fileio_write_atomic_replaces_and_leaves_no_temp);
        RUN(test_fileio_write_atomic_failure_keeps_the_old_file);
        RUN(test_fileio_paths);
        RUN(test_fileio_make_dirs);
        {
                char cmd[300];

                snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
                if (system(cmd) != 0)
                        fprintf(stderr, "could not remove %s\n", dir);
        }
        return unit_done();
}
