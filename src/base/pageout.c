/*
 * pageout.c - hands the file pages a burst of work mapped in back to the kernel (see pageout.h).
 * Owns the parsing of /proc/self/maps and the reading of /proc/self/pagemap; knows nothing of
 * what the burst was.
 *
 * Which mappings: file-backed (a path and an inode), readable and not writable: code (r-x) and
 * read-only data (r--, the RELRO part included). Which pages: present in the page tables (pagemap
 * bit 63) and pages of the file or shared (bit 61): a private copy (a RELRO page a relocation
 * wrote) has bit 61 clear and is never touched. MADV_PAGEOUT unmaps those pages and reclaims
 * them if nobody else maps them; they are clean, so nothing is written, and the next access
 * reads them back (a minor fault while the page cache holds them, a read from disk otherwise).
 */
#include "pageout.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fileio.h"

#define MAPS_MAX (4u << 20) /* /proc/self/maps: a few KiB here; more is read in part */
#define PM_PRESENT (1ull << 63)
#define PM_FILE (1ull << 61) /* a file page or shared anonymous memory */
#define PM_CHUNK 512u        /* pagemap entries read at a time */

struct range {
        uintptr_t lo, hi;
        uint64_t *present; /* one bit per page of [lo, hi) */
};

struct pageout_snapshot {
        size_t n;
        struct range *r;
};

static size_t page_size(void) {
        static size_t ps;

        if (!ps)
                ps = (size_t) sysconf(_SC_PAGESIZE);
        return ps;
}

/*
 * The next read-only file mapping of |*pos| (a /proc/self/maps text), as [*lo, *hi). Returns
 * true while one is found; advances |*pos|.
 */
static bool next_mapping(const char **pos, uintptr_t *lo, uintptr_t *hi) {
        const char *p = *pos;

        while (*p) {
                const char *eol = strchr(p, '\n');
                unsigned long long a, b, ino;
                char perms[5];
                int n, path_at = 0;

                if (!eol)
                        break; /* a line cut by the read limit */
                *pos = eol + 1;
                n = sscanf(p, "%llx-%llx %4s %*s %*s %llu %n", &a, &b, perms, &ino, &path_at);
                if (n == 4 && path_at > 0 && p[path_at] == '/' && ino != 0 && perms[0] == 'r' &&
                    perms[1] != 'w' && b > a) {
                        *lo = (uintptr_t) a;
                        *hi = (uintptr_t) b;
                        return true;
                }
                p = *pos;
        }
        *pos = p + strlen(p);
        return false;
}

static int read_maps(char **ret) {
        size_t len;

        return fileio_read("/proc/self/maps", MAPS_MAX, ret, &len, NULL);
}

/*
 * Calls |fn| on each run of pages of [lo, hi) that are present and file pages, as pagemap reads
 * them from |pm|. Returns 0 or -errno.
 */
typedef void (*page_fn)(uintptr_t addr, void *userdata);

static int each_file_page(int pm, uintptr_t lo, uintptr_t hi, page_fn fn, void *userdata) {
        uint64_t e[PM_CHUNK];
        size_t ps = page_size();

        for (uintptr_t a = lo; a < hi;) {
                size_t n = (hi - a) / ps;
                ssize_t got;

                if (n > PM_CHUNK)
                        n = PM_CHUNK;
                got = pread(pm, e, n * sizeof(e[0]), (off_t) (a / ps * sizeof(e[0])));
                if (got < 0)
                        return -errno;
                if ((size_t) got < sizeof(e[0]))
                        return -EIO;
                n = (size_t) got / sizeof(e[0]);
                for (size_t i = 0; i < n; i++)
                        if ((e[i] & (PM_PRESENT | PM_FILE)) == (PM_PRESENT | PM_FILE))
                                fn(a + i * ps, userdata);
                a += n * ps;
        }
        return 0;
}

static void mark_present(uintptr_t addr, void *userdata) {
        struct range *r = userdata;
        size_t i = (addr - r->lo) / page_size();

        r->present[i / 64] |= 1ull << (i % 64);
}

struct pageout_snapshot *pageout_snapshot_free(struct pageout_snapshot *s) {
        if (!s)
                return NULL;
        for (size_t i = 0; i < s->n; i++)
                free(s->r[i].present);
        free(s->r);
        free(s);
        return NULL;
}

int pageout_snapshot_take(struct pageout_snapshot **ret) {
        struct pageout_snapshot *s;
        const char *pos;
        char *maps = NULL;
        uintptr_t lo, hi;
        size_t cap = 0;
        int pm, r;

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        r = read_maps(&maps);
        if (r < 0)
                goto out_free;
        pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
        if (pm < 0) {
                r = -errno;
                goto out_free;
        }
        for (pos = maps; next_mapping(&pos, &lo, &hi);) {
                struct range *x;
                size_t words = ((hi - lo) / page_size() + 63) / 64;

                if (s->n == cap) {
                        size_t ncap = cap ? cap * 2 : 16;
                        struct range *nr = realloc(s->r, ncap * sizeof(*nr));

                        if (!nr) {
                                r = -ENOMEM;
                                goto out_close;
                        }
                        s->r = nr;
                        cap = ncap;
                }
                x = &s->r[s->n];
                x->lo = lo;
                x->hi = hi;
                x->present = calloc(words, sizeof(uint64_t));
                if (!x->present) {
                        r = -ENOMEM;
                        goto out_close;
                }
                s->n++;
                r = each_file_page(pm, lo, hi, mark_present, x);
                if (r < 0)
                        goto out_close;
        }
        close(pm);
        free(maps);
        *ret = s;
        return 0;

out_close:
        close(pm);
out_free:
        free(maps);
        pageout_snapshot_free(s);
        return r;
}

/* The pages of one mapping to page out, coalesced into runs. */
struct runs {
        const struct range *before; /* the same mapping in the snapshot, or NULL */
        uintptr_t start, end;       /* the run being built; start == end when none */
        long pages;
        int err;
};

static void flush_run(struct runs *k) {
        if (k->start == k->end)
                return;
        if (!k->err && madvise((void *) k->start, k->end - k->start, MADV_PAGEOUT) < 0)
                k->err = errno == EINVAL ? -EOPNOTSUPP : -errno;
        if (!k->err)
                k->pages += (long) ((k->end - k->start) / page_size());
        k->start = k->end = 0;
}

static bool was_present(const struct range *b, uintptr_t addr) {
        size_t i;

        if (!b || addr < b->lo || addr >= b->hi)
                return false;
        i = (addr - b->lo) / page_size();
        return b->present[i / 64] >> (i % 64) & 1;
}

static void add_page(uintptr_t addr, void *userdata) {
        struct runs *k = userdata;

        if (was_present(k->before, addr))
                return;
        if (k->start != k->end && addr == k->end) {
                k->end += page_size();
                return;
        }
        flush_run(k);
        k->start = addr;
        k->end = addr + page_size();
}

static const struct range *find_range(const struct pageout_snapshot *s, uintptr_t lo,
                                      uintptr_t hi) {
        for (size_t i = 0; s && i < s->n; i++)
                if (s->r[i].lo == lo && s->r[i].hi == hi)
                        return &s->r[i];
        return NULL;
}

static long page_out(const struct pageout_snapshot *before, uintptr_t only_lo, uintptr_t only_hi) {
        const char *pos;
        char *maps = NULL;
        uintptr_t lo, hi;
        long pages = 0;
        int pm, r;

        r = read_maps(&maps);
        if (r < 0)
                return r;
        pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
        if (pm < 0) {
                r = -errno;
                free(maps);
                return r;
        }
        for (pos = maps; next_mapping(&pos, &lo, &hi);) {
                struct runs k = {.before = find_range(before, lo, hi)};

                if (lo < only_lo)
                        lo = only_lo;
                if (hi > only_hi)
                        hi = only_hi;
                if (lo >= hi)
                        continue;
                r = each_file_page(pm, lo, hi, add_page, &k);
                flush_run(&k);
                pages += k.pages;
                if (r == 0)
                        r = k.err;
                if (r < 0)
                        break;
        }
        close(pm);
        free(maps);
        return r < 0 ? r : pages;
}

long pageout_new_pages(const struct pageout_snapshot *before) {
        return page_out(before, 0, UINTPTR_MAX);
}

long pageout_range(void *addr, size_t len) {
        uintptr_t lo = (uintptr_t) addr;

        if (lo % page_size() || len % page_size() || lo + len < lo)
                return -EINVAL;
        return page_out(NULL, lo, lo + len);
}
