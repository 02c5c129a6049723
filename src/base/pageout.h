/*
 * pageout.h - gives back to the kernel the clean, file-backed pages (code and read-only data of
 * the binary and its libraries) that a rare burst of work mapped in, as malloc_trim() gives back
 * its heap. Take a snapshot before the burst, call pageout_new_pages() after it: every page of a
 * read-only file mapping that is resident now, was not before, and is a page of the file (not a
 * private copy) is handed to madvise(MADV_PAGEOUT). The pages resident before the burst (the
 * event loop's working set) are left alone. Linux only; reads /proc/self/maps and
 * /proc/self/pagemap (its present and file-page bits, readable without privileges).
 */
#pragma once

#include <stddef.h>

struct pageout_snapshot;

/*
 * Records which pages of the process's read-only file mappings are resident now. Sets |*ret|
 * (free with pageout_snapshot_free). Returns 0, -ENOMEM, or -errno from opening or reading
 * /proc/self/maps or /proc/self/pagemap.
 */
int pageout_snapshot_take(struct pageout_snapshot **ret);

/* Frees |s| (NULL is fine); returns NULL. */
struct pageout_snapshot *pageout_snapshot_free(struct pageout_snapshot *s);

/*
 * Pages out what became resident in the read-only file mappings since |before| was taken (a
 * mapping absent from |before| counts as wholly new). Returns the number of pages handed to
 * madvise(MADV_PAGEOUT) (the kernel may keep some: pages another process maps too), -EOPNOTSUPP
 * when the kernel has no MADV_PAGEOUT (before 5.4), -ENOMEM, or -errno from /proc/self.
 */
long pageout_new_pages(const struct pageout_snapshot *before);

/*
 * The same for one range [|addr|, |addr| + |len|) (page-aligned) against nothing: every resident
 * page of a file there is paged out. For tests and callers that know their range. Returns as
 * pageout_new_pages().
 */
long pageout_range(void *addr, size_t len);
