/*
 * log.c - operator-facing log lines (see log.h): formatting in text or JSON, level threshold.
 * Owns the process-wide log settings (set once at start-up, read-only afterwards).
 * JSON escaping is jansson's; each line is written with a single write(2) to stderr.
 */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "jsontext.h"

static enum log_level log_threshold = LOG_LEVEL_INFO;
static enum log_format log_fmt = LOG_FORMAT_TEXT;

static const char *const level_names[] = {
        [LOG_LEVEL_ERROR] = "error",
        [LOG_LEVEL_WARN] = "warn",
        [LOG_LEVEL_INFO] = "info",
        [LOG_LEVEL_DEBUG] = "debug",
};

void log_setup(enum log_level level, enum log_format format) {
        log_threshold = level;
        log_fmt = format;
}

bool log_enabled(enum log_level level) {
        return level <= log_threshold;
}

int log_level_from_string(const char *s, enum log_level *ret) {
        for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
                if (strcmp(s, level_names[i]) == 0) {
                        *ret = (enum log_level) i;
                        return 0;
                }
        return -EINVAL;
}

int log_format_from_string(const char *s, enum log_format *ret) {
        if (strcmp(s, "text") == 0)
                *ret = LOG_FORMAT_TEXT;
        else if (strcmp(s, "json") == 0)
                *ret = LOG_FORMAT_JSON;
        else
                return -EINVAL;
        return 0;
}

static void format_time(char *buf, size_t size) {
        struct timespec ts;
        struct tm tm;
        char secs[32];

        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        strftime(secs, sizeof(secs), "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(buf, size, "%s.%03dZ", secs, (int) (ts.tv_nsec / 1000000) % 1000);
}

/* Replaces control characters so that one event stays one line. */
static void flatten(char *s) {
        for (; *s; s++)
                if ((unsigned char) *s < 0x20)
                        *s = ' ';
}

static void write_all(const char *buf, size_t len) {
        while (len > 0) {
                ssize_t n = write(STDERR_FILENO, buf, len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return;
                }
                buf += n;
                len -= (size_t) n;
        }
}

/* Writes the JSON line whole, or (out of memory) not at all: never one with a field missing. */
static void emit_json(const char *when, enum log_level level, const char *resource,
                      const char *path, const char *msg) {
        const size_t flags = JSON_COMPACT | JSON_PRESERVE_ORDER;
        json_t *o = json_object();
        char *line;
        size_t len;

        if (!o)
                return;
        if (json_object_set_new(o, "time", json_string(when)) < 0 ||
            json_object_set_new(o, "level", json_string(level_names[level])) < 0 ||
            (resource && json_object_set_new(o, "resource", json_string(resource)) < 0) ||
            (path && json_object_set_new(o, "path", json_string(path)) < 0) ||
            json_object_set_new(o, "msg", json_string(msg)) < 0)
                goto out_free_object;
        if (json_text(o, flags, 1, &line, &len) == 0) {
                line[len] = '\n';
                write_all(line, len + 1);
                free(line);
        }
out_free_object:
        json_decref(o);
}

void log_event(enum log_level level, const char *resource, const char *path, const char *fmt, ...) {
        char when[48], msg[1024], line[1536];
        va_list ap;
        int n;

        if (!log_enabled(level))
                return;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        flatten(msg);
        format_time(when, sizeof(when));

        if (log_fmt == LOG_FORMAT_JSON) {
                emit_json(when, level, resource, path, msg);
                return;
        }
        n = snprintf(line, sizeof(line), "%s %s%s%s%s%s %s\n", when, level_names[level],
                     resource ? " resource=" : "", resource ? resource : "", path ? " path=" : "",
                     path ? path : "", msg);
        if (n < 0)
                return;
        if ((size_t) n >= sizeof(line)) {
                n = sizeof(line) - 1;
                line[n - 1] = '\n';
        }
        write_all(line, (size_t) n);
}

void errline(char *err, size_t errsz, const char *fmt, ...) {
        va_list ap;

        if (!err || errsz == 0)
                return;
        va_start(ap, fmt);
        (void) vsnprintf(err, errsz, fmt, ap);
        va_end(ap);
}
