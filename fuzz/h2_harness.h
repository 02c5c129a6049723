/*
 * h2_harness.h - what the two HTTP/2 fuzz targets (fuzz_h2_server, fuzz_h2_client) share: the
 * event loop run a bounded number of rounds, our end of the unix socket (written piece by piece,
 * read and discarded), the split of an input into HTTP/2 frames with the harness frames that
 * steer a run, and deterministic timers. Test code only: not part of the daemon.
 *
 * Harness frames: a frame of type H2H_FRAME (0xf0, an extension type no real peer sends) is not
 * written to the socket; its flags byte says what the target should do (each target documents
 * its bits). Two bits mean the same everywhere and are handled here:
 *   H2H_FLIP_READING  stop / resume reading what the peer under test sends (so its writes block);
 *   H2H_FLIP_GLUE     glue on / off: while on, pieces are written back to back without running
 *                     the loop, so several frames arrive in one read.
 *
 * Timers: h2_harness.c replaces timerfd_settime(): a timer of at most H2H_FIRE_NOW_USEC fires at
 * the next loop round, a longer one never does (within one input). So timeouts are exercised,
 * and the outcome does not depend on how fast the fuzzer runs.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct loop;
struct loop_source;

#define H2H_FRAME 0xf0
#define H2H_FLIP_READING 0x02
#define H2H_FLIP_GLUE 0x04
#define H2H_FIRE_NOW_USEC (100 * 1000)
/* Pieces written one by one; what follows goes in one last write. */
#define H2H_MAX_PIECES 256
/* Loop rounds after each piece. */
#define H2H_ROUNDS_PER_PIECE 3

struct h2h {
        struct loop *loop;
        struct loop_source *tick; /* always readable: one callback per epoll round */
        int tick_fd;
        int fd;       /* our end of the connection, -1 when none */
        bool reading; /* read (and discard) what the peer sends */
        bool glue;    /* H2H_FLIP_GLUE is on */
        unsigned rounds_left;
        size_t pos;      /* next input byte */
        unsigned pieces; /* pieces taken so far */
};

/* A new loop with the round counter; no connection yet. Aborts on failure. */
void h2h_init(struct h2h *h);
/* Closes the connection, frees the counter and the loop (every other source must be gone). */
void h2h_done(struct h2h *h);

/* Runs |n| epoll rounds, reading what arrived after each when reading. */
void h2h_run(struct h2h *h, unsigned n);

/* Writes all of |p|, running the loop while the socket is full; gives up if the peer is gone. */
void h2h_send(struct h2h *h, const uint8_t *p, size_t n);

/* Closes our end of the connection. */
void h2h_close(struct h2h *h);

/*
 * Takes the next piece of |data|: the first |first| bytes (a preface, 0 for none), then one
 * frame at a time as its 9-byte header announces it, the last piece being whatever is left.
 * Returns false at the end. Sets *ret_p and *ret_n to the piece, and *ret_harness to the flags
 * of a harness frame (with bit 0x100 set so that 0 flags still count), else 0. Applies the
 * shared bits (reading, glue) itself. The caller sends a piece that is not a harness frame, acts
 * on the bits of one that is, and calls h2h_after_piece() either way.
 */
bool h2h_next(struct h2h *h, const uint8_t *data, size_t size, size_t first, const uint8_t **ret_p,
              size_t *ret_n, unsigned *ret_harness);

/* Runs the loop after a piece unless glued. */
void h2h_after_piece(struct h2h *h);
