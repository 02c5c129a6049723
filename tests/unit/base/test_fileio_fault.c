/*
 * test_fileio_fault.c - the fault twin of test_fileio.c: a bounded read with its allocation made
 * to fail is -ENOMEM and hands back nothing; an atomic write allocates nothing and so cannot
 * fail that way.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "failmalloc.h"
#include "fileio.h"
#include "unit.h"

static void test_fileio_fault_read(void) {
        char path[] = "/tmp/test_fileio_fault.XXXXXX";
        int fd = mkstemp(path);
        unsigned long n;

        CHECK(fd >= 0);
        if (fd < 0)
                return;
        CHECK(write(fd, "12345", 5) == 5);
        close(fd);
        for (n = 1; n < FAILMALLOC_MAX_STEPS; n++) {
                char *buf = NULL;
                size_t len = 0;
                int r;

                failmalloc_arm(n);
                r = fileio_read(path, 100, &buf, &len, NULL);
                failmalloc_disarm();
                if (!failmalloc_fired()) {
                        CHECK_INT(r, 0);
                        CHECK_STR(buf, "12345");
                        free(buf);
                        break;
                }
                CHECK_INT(r, -ENOMEM);
                CHECK(buf == NULL);
        }
        CHECK(n == 2); /* one allocation: the buffer */
        unlink(path);
}

static void test_fileio_fault_write_allocates_nothing(void) {
        char dir[] = "/tmp/test_fileio_fault.XXXXXX", path[64];
        unsigned long before;

        CHECK(mkdtemp(dir) != NULL);
        snprintf(path, sizeof(path), "%s/spec.json", dir);
        before = failmalloc_count();
        failmalloc_arm(1);
        CHECK_INT(fileio_write_atomic(path, "{}", 2, 0644), 0);
        failmalloc_disarm();
        CHECK(!failmalloc_fired());
        CHECK_INT(failmalloc_count(), before);
        unlink(path);
        rmdir(dir);
}

int main(void) {
        RUN(test_fileio_fault_read);
        RUN(test_fileio_fault_write_allocates_nothing);
        return unit_done();
}
