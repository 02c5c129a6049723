/* test_log.c - operator log lines: fields, text and JSON forms, one line per event, threshold. */
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "log.h"
#include "unit.h"

static char out[8192];
static size_t out_len; /* bytes written, NULs included */

/* Runs |fn| with stderr sent to a temp file, and reads what it wrote into |out|. */
static void capture(void (*fn)(void)) {
        char path[] = "/tmp/test_log.XXXXXX";
        int fd = mkstemp(path), saved = dup(STDERR_FILENO);
        ssize_t n;

        unlink(path);
        dup2(fd, STDERR_FILENO);
        fn();
        dup2(saved, STDERR_FILENO);
        close(saved);
        lseek(fd, 0, SEEK_SET);
        n = read(fd, out, sizeof(out) - 1);
        out_len = n > 0 ? (size_t) n : 0;
        out[out_len] = '\0';
        close(fd);
}

static size_t count_lines(const char *s) {
        size_t n = 0;
        for (; *s; s++)
                n += *s == '\n';
        return n;
}

static void emit_text(void) {
        log_setup(LOG_LEVEL_INFO, LOG_FORMAT_TEXT);
        log_warn("sgx.k8s.io/dcap", "/k/kubelet.sock", "register failed: %s, retrying in %d ms",
                 "Connection refused", 5);
}

static void test_log_text_line_has_level_resource_path_and_message(void) {
        capture(emit_text);
        CHECK_INT(count_lines(out), 1);
        CHECK(strstr(out, " warn resource=sgx.k8s.io/dcap path=/k/kubelet.sock register failed: "
                          "Connection refused, retrying in 5 ms\n") != NULL);
        CHECK(out[4] == '-' && strchr(out, 'T') && strchr(out, 'Z')); /* RFC 3339, UTC */
}

static void emit_json_with_newline(void) {
        log_setup(LOG_LEVEL_DEBUG, LOG_FORMAT_JSON);
        log_error("sgx.k8s.io/sgx", "/dev/\"odd\"", "two\nlines and a \"quote\"");
        log_info(NULL, NULL, "no fields");
}

static void test_log_json_is_one_object_per_line_with_fields(void) {
        json_error_t e;
        char *second;

        capture(emit_json_with_newline);
        CHECK_INT(count_lines(out), 2);
        second = strchr(out, '\n');
        CHECK(second != NULL);
        if (!second)
                return;
        *second++ = '\0';
        json_t *a = json_loads(out, 0, &e), *b = json_loads(second, 0, &e);
        CHECK(a != NULL && b != NULL);
        if (a && b) {
                CHECK_STR(json_string_value(json_object_get(a, "level")), "error");
                CHECK_STR(json_string_value(json_object_get(a, "resource")), "sgx.k8s.io/sgx");
                CHECK_STR(json_string_value(json_object_get(a, "path")), "/dev/\"odd\"");
                CHECK_STR(json_string_value(json_object_get(a, "msg")), "two lines and a \"quote\"");
                CHECK(json_object_get(a, "time") != NULL);
                CHECK(json_object_get(b, "resource") == NULL);
                CHECK(json_object_get(b, "path") == NULL);
                CHECK_STR(json_string_value(json_object_get(b, "msg")), "no fields");
        }
        json_decref(a);
        json_decref(b);
}

static void emit_below_threshold(void) {
        log_setup(LOG_LEVEL_WARN, LOG_FORMAT_TEXT);
        log_info(NULL, NULL, "hidden");
        log_debug(NULL, NULL, "hidden too");
        log_error(NULL, NULL, "shown");
}

static void test_log_threshold_drops_lower_levels(void) {
        capture(emit_below_threshold);
        CHECK_INT(count_lines(out), 1);
        CHECK(strstr(out, " error shown\n") != NULL);
        CHECK(strstr(out, "hidden") == NULL);
        CHECK(!log_enabled(LOG_LEVEL_INFO));
        CHECK(log_enabled(LOG_LEVEL_ERROR));
}

static void emit_long(void) {
        char big[4000];
        memset(big, 'a', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        log_setup(LOG_LEVEL_INFO, LOG_FORMAT_TEXT);
        log_info("r", "/p", "%s", big);
}

/* A path of PATH_MAX bytes (PATH_MAX - 1 characters and the NUL): the line is over log.c's
 * 1536-byte buffer whatever the message. */
static char long_path[PATH_MAX];

static void emit_long_path(void) {
        memset(long_path, 'p', sizeof(long_path) - 1);
        long_path[0] = '/';
        long_path[sizeof(long_path) - 1] = '\0';
        log_setup(LOG_LEVEL_INFO, LOG_FORMAT_TEXT);
        log_warn("sgx.k8s.io/sgx", long_path, "gone");
}

static void test_log_long_message_is_cut_but_stays_one_line(void) {
        const char *p;
        size_t len;

        /* a long message: cut to 1023 characters, one line */
        capture(emit_long);
        CHECK_INT(count_lines(out), 1);
        CHECK(out[strlen(out) - 1] == '\n');
        p = strstr(out, " path=/p ");
        CHECK(p != NULL);
        if (p)
                CHECK_INT(strlen(p + 9), 1023 + 1);

        /* a long path: the whole line is cut at 1535 bytes, the last one the newline */
        capture(emit_long_path);
        len = strlen(out);
        CHECK_INT(out_len, 1535);
        CHECK_INT(len, out_len);
        CHECK_INT(count_lines(out), 1);
        CHECK(out[len - 1] == '\n');
        p = strstr(out, " warn resource=sgx.k8s.io/sgx path=/ppp");
        CHECK(p != NULL);
        if (p) {
                /* time, the fields, then nothing but the path's bytes up to the newline */
                size_t head = (size_t) (p - out) + strlen(" warn resource=sgx.k8s.io/sgx path=");

                CHECK(strspn(out + head + 1, "p") == len - head - 2);
                CHECK(strncmp(out + head, long_path, len - head - 1) == 0);
        }
}

static void test_log_level_and_format_names(void) {
        enum log_level l;
        enum log_format f;

        CHECK_INT(log_level_from_string("debug", &l), 0);
        CHECK_INT(l, LOG_LEVEL_DEBUG);
        CHECK_INT(log_level_from_string("verbose", &l), -22);
        CHECK_INT(log_format_from_string("json", &f), 0);
        CHECK_INT(f, LOG_FORMAT_JSON);
        CHECK_INT(log_format_from_string("yaml", &f), -22);
}

static void test_errline_formats_truncates_and_accepts_null(void) {
        char buf[16];

        errline(buf, sizeof(buf), "%s: %d", "port", 6443);
        CHECK_STR(buf, "port: 6443");
        errline(buf, sizeof(buf), "cannot connect to %s", "api.example.com:6443");
        CHECK_INT(strlen(buf), sizeof(buf) - 1); /* cut to fit, still terminated */
        CHECK(strncmp(buf, "cannot connect ", 15) == 0);
        buf[0] = 'x';
        errline(buf, 0, "ignored");
        CHECK(buf[0] == 'x');
        errline(NULL, 16, "ignored"); /* no buffer: nothing written, no crash */
}

int main(void) {
        RUN(test_log_text_line_has_level_resource_path_and_message);
        RUN(test_log_json_is_one_object_per_line_with_fields);
        RUN(test_log_threshold_drops_lower_levels);
        RUN(test_log_long_message_is_cut_but_stays_one_line);
        RUN(test_log_level_and_format_names);
        RUN(test_errline_formats_truncates_and_accepts_null);
        return unit_done();
}
