/*
 * test_pageout.c - giving back file pages: on a private read-only mapping of a temporary file
 * (in the current directory, which must not be a tmpfs: its pages have no file to go back to),
 * pages touched are resident before and gone after (page tables through /proc/self/pagemap, the
 * page cache through mincore); a snapshot keeps the pages resident when it was taken; a private
 * copy of a page in a read-only mapping keeps its content; bad ranges are refused.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "pageout.h"
#include "unit.h"

#define NPAGES 8
#define TMPFS_MAGIC 0x01021994

static size_t ps;

/* Present in our page tables (pagemap bit 63). */
static bool is_mapped(const void *addr) {
        uint64_t e = 0;
        int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);

        if (fd < 0)
                return false;
        if (pread(fd, &e, sizeof(e), (off_t) ((uintptr_t) addr / ps * sizeof(e))) != sizeof(e))
                e = 0;
        close(fd);
        return e >> 63 & 1;
}

/* In the page cache (mincore). */
static bool is_cached(const void *addr) {
        unsigned char v = 0;

        if (mincore((void *) addr, ps, &v) < 0)
                return false;
        return v & 1;
}

static void touch(const volatile char *p) {
        (void) p[0];
}

/*
 * Pages faulted in on another CPU may still sit in that CPU's LRU batch, where MADV_PAGEOUT
 * cannot take them (it drains only its own CPU's): asks again, briefly, until none of the
 * |n| pages at |m| is mapped. The kernel makes no promise here; the daemon's use is best effort.
 */
static void settle(char *m, int n) {
        for (int tries = 0; tries < 100; tries++) {
                bool any = false;

                for (int i = 0; i < n; i++)
                        any = any || is_mapped(m + (size_t) i * ps);
                if (!any)
                        return;
                usleep(10000);
                (void) pageout_range(m, (size_t) n * ps);
        }
}

/*
 * A file of NPAGES pages, each filled with its index, written back to disk (a dirty page is not
 * reclaimed by MADV_PAGEOUT), mapped private and read-only with |prot|. NULL when the directory
 * is a tmpfs or something fails (the caller skips).
 */
static char *map_file(int prot) {
        char path[] = "test_pageout.XXXXXX", page[4096];
        struct statfs sf;
        void *m = NULL;
        int fd;

        fd = mkstemp(path);
        CHECK(fd >= 0);
        if (fd < 0)
                return NULL;
        unlink(path);
        if (fstatfs(fd, &sf) == 0 && sf.f_type == TMPFS_MAGIC) {
                printf("# skipped: the current directory is a tmpfs\n");
                close(fd);
                return NULL;
        }
        for (int i = 0; i < NPAGES; i++) {
                memset(page, 'a' + i, sizeof(page));
                for (size_t off = 0; off < ps; off += sizeof(page))
                        CHECK(write(fd, page, sizeof(page)) == (ssize_t) sizeof(page));
        }
        CHECK(fsync(fd) == 0);
        m = mmap(NULL, NPAGES * ps, prot, MAP_PRIVATE, fd, 0);
        close(fd);
        CHECK(m != MAP_FAILED);
        return m == MAP_FAILED ? NULL : m;
}

/*
 * Out of our page tables and out of the page cache, so that the kernel's fault-around has no
 * neighbour to map (a fault may still bring in more than one page: readahead, large folios).
 */
static void make_cold(char *m) {
        for (int i = 0; i < NPAGES; i++)
                touch(m + i * ps); /* MADV_PAGEOUT reclaims only pages mapped here */
        CHECK(pageout_range(m, NPAGES * ps) >= NPAGES);
        settle(m, NPAGES);
        for (int i = 0; i < NPAGES; i++)
                CHECK(!is_mapped(m + i * ps) && !is_cached(m + i * ps));
}

static void test_pageout_range_unmaps_and_drops_touched_pages(void) {
        char *m = map_file(PROT_READ);

        if (!m)
                return;
        for (int i = 0; i < NPAGES; i++)
                touch(m + i * ps);
        CHECK(is_mapped(m) && is_mapped(m + (NPAGES - 1) * ps));
        CHECK(is_cached(m));
        CHECK(pageout_range(m, NPAGES * ps) == NPAGES);
        settle(m, NPAGES);
        for (int i = 0; i < NPAGES; i++) {
                CHECK(!is_mapped(m + i * ps));
                CHECK(!is_cached(m + i * ps));
        }
        /* read back from the file, unchanged */
        for (int i = 0; i < NPAGES; i++)
                CHECK(m[i * ps] == 'a' + i && m[i * ps + ps - 1] == 'a' + i);
        munmap(m, NPAGES * ps);
}

static void test_pageout_new_pages_keeps_what_the_snapshot_saw(void) {
        struct pageout_snapshot *s = NULL;
        char *before = map_file(PROT_READ | PROT_EXEC), *burst = map_file(PROT_READ);
        long n;

        if (!before || !burst)
                goto out_unmap;
        /* whole mappings, as a fault may bring in more than the page it needs */
        make_cold(burst);
        for (int i = 0; i < NPAGES; i++)
                touch(before + i * ps);
        CHECK(pageout_snapshot_take(&s) == 0);
        for (int i = 0; i < NPAGES; i++)
                touch(burst + i * ps);
        n = pageout_new_pages(s);
        /* the burst's pages, and perhaps a few of the test's own code touched since the snapshot */
        CHECK(n >= NPAGES);
        for (int tries = 0; tries < 100 && is_mapped(burst + (NPAGES - 1) * ps); tries++) {
                usleep(10000); /* see settle() */
                (void) pageout_new_pages(s);
        }
        for (int i = 0; i < NPAGES; i++) {
                CHECK(is_mapped(before + i * ps));
                CHECK(!is_mapped(burst + i * ps));
        }
        pageout_snapshot_free(s);
out_unmap:
        if (before)
                munmap(before, NPAGES * ps);
        if (burst)
                munmap(burst, NPAGES * ps);
}

static void test_pageout_leaves_private_copies_alone(void) {
        char *m = map_file(PROT_READ | PROT_WRITE);

        if (!m)
                return;
        CHECK(mprotect(m, NPAGES * ps, PROT_READ) == 0);
        make_cold(m);
        CHECK(mprotect(m, NPAGES * ps, PROT_READ | PROT_WRITE) == 0);
        touch(m + ps);
        /* a private copy of page 0 in a read-only mapping, as RELRO after relocation */
        m[0] = 'Z';
        CHECK(mprotect(m, NPAGES * ps, PROT_READ) == 0);
        CHECK(pageout_range(m, NPAGES * ps) >= 1); /* page 1 at least, perhaps its neighbours */
        settle(m + ps, NPAGES - 1);
        CHECK(is_mapped(m));
        for (int i = 1; i < NPAGES; i++)
                CHECK(!is_mapped(m + i * ps));
        CHECK(m[0] == 'Z' && m[1] == 'a');
        munmap(m, NPAGES * ps);
}

static void test_pageout_leaves_writable_mappings_alone(void) {
        char *m = map_file(PROT_READ | PROT_WRITE);

        if (!m)
                return;
        touch(m);
        CHECK(pageout_range(m, NPAGES * ps) == 0);
        CHECK(is_mapped(m));
        munmap(m, NPAGES * ps);
}

static void test_pageout_range_refuses_unaligned(void) {
        char *p = (char *) (uintptr_t) ps;

        CHECK(pageout_range(p + 1, ps) == -EINVAL);
        CHECK(pageout_range(p, ps + 1) == -EINVAL);
        CHECK(pageout_range((void *) (UINTPTR_MAX & ~(uintptr_t) (ps - 1)), 2 * ps) == -EINVAL);
}

static void test_pageout_snapshot_free_takes_null(void) {
        CHECK(pageout_snapshot_free(NULL) == NULL);
}

int main(void) {
        ps = (size_t) sysconf(_SC_PAGESIZE);
        RUN(test_pageout_range_unmaps_and_drops_touched_pages);
        RUN(test_pageout_new_pages_keeps_what_the_snapshot_saw);
        RUN(test_pageout_leaves_private_copies_alone);
        RUN(test_pageout_leaves_writable_mappings_alone);
        RUN(test_pageout_range_refuses_unaligned);
        RUN(test_pageout_snapshot_free_takes_null);
        return unit_done();
}
