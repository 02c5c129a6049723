/*
 * log.h - operator-facing log lines, one line per event.
 *
 * Every line carries the same fields in text and JSON form: time, level, the resource it concerns
 * (or none), the path it concerns (a socket, a device node, a directory; or none) and a message
 * that says what happened and, for a non-fatal problem, what happens next (", retrying in 1 s").
 *
 *   text: 2026-11-27T18:00:00.123Z info resource=sgx.k8s.io/dcap path=/var/lib/.../x.sock
 * registered json:
 * {"time":"...","level":"info","resource":"sgx.k8s.io/dcap","path":"...","msg":"registered"}
 *
 * Lines go to stderr, written with one write(2) so concurrent threads never interleave.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

enum log_level {
        LOG_LEVEL_ERROR,
        LOG_LEVEL_WARN,
        LOG_LEVEL_INFO,
        LOG_LEVEL_DEBUG,
};

enum log_format {
        LOG_FORMAT_TEXT,
        LOG_FORMAT_JSON,
};

/* Sets the threshold and the format for the whole process (call once, before threads start). */
void log_setup(enum log_level level, enum log_format format);

/* Returns true when lines of |level| are written. */
bool log_enabled(enum log_level level);

/* Parses "error|warn|info|debug" / "text|json". Returns 0 or -EINVAL. */
int log_level_from_string(const char *s, enum log_level *ret);
int log_format_from_string(const char *s, enum log_format *ret);

/*
 * Writes one line. |resource| and |path| may be NULL (the field is left out). The message is
 * printf-formatted; a newline in it is escaped, so one event is always one line.
 */
void log_event(enum log_level level, const char *resource, const char *path, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

/*
 * Formats one line into |err| (|errsz| bytes; nothing when NULL or 0): the "why" that a function
 * returning -errno hands to its caller, who logs it. Truncates to fit.
 */
void errline(char *err, size_t errsz, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#define log_error(res, path, ...) log_event(LOG_LEVEL_ERROR, res, path, __VA_ARGS__)
#define log_warn(res, path, ...) log_event(LOG_LEVEL_WARN, res, path, __VA_ARGS__)
#define log_info(res, path, ...) log_event(LOG_LEVEL_INFO, res, path, __VA_ARGS__)
#define log_debug(res, path, ...)                                           \
        do {                                                                \
                if (log_enabled(LOG_LEVEL_DEBUG))                           \
                        log_event(LOG_LEVEL_DEBUG, res, path, __VA_ARGS__); \
        } while (0)
