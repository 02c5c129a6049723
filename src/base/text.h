/*
 * text.h - small, pure helpers for text that comes from outside: decimal numbers as the command
 * line, the kernel and peers write them, and untrusted bytes made safe for one log or error line.
 * No allocation, no locale.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

/*
 * Reads the decimal digits at the start of |s| (at most |len| bytes; no sign, no space) into
 * *ret_value. Returns the number of digits read (> 0), -EINVAL when |s| does not start with a
 * digit, -ERANGE when the number is larger than |max| (all its digits are still consumed for the
 * syntax). *ret_value is set only on success.
 */
int text_digits(const char *s, size_t len, uint64_t max, uint64_t *ret_value);

/*
 * The whole of |s| (|len| bytes) as one decimal number no larger than |max|. Returns 0, -EINVAL
 * (empty, or anything but digits: the syntax is checked before the range), -ERANGE.
 */
int text_parse_u64n(const char *s, size_t len, uint64_t max, uint64_t *ret_value);

/* text_parse_u64n() over a NUL-terminated string. */
int text_parse_u64(const char *s, uint64_t max, uint64_t *ret_value);

/*
 * Copies |n| bytes of |in| into |out| (|outsz| bytes, NUL-terminated) for a log or error line:
 * control bytes, DEL and bytes >= 0x80 become '?'. When |in| does not fit, the copy ends in "..."
 * (when |outsz| > 4). Returns the length written. |in| and |out| may be the same buffer.
 */
size_t text_printable(const char *in, size_t n, char *out, size_t outsz);

/* text_printable() in place over a NUL-terminated string. */
void text_make_printable(char *s);
