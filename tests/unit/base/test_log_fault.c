/*
 * test_log_fault.c - the fault twin of test_log.c: a JSON log line with each of its allocations
 * (jansson's included) made to fail in turn (failmalloc.h). A line is either written whole and
 * exact, or not at all; never a mangled one. Text lines allocate nothing.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "failmalloc.h"
#include "log.h"
#include "unit.h"

static char out[8192];

/* Runs log_error() with stderr sent to a temp file; what it wrote goes into |out|. */
static void capture_one(void) {
        char path[] = "/tmp/test_log_fault.XXXXXX";
        int fd = mkstemp(path), saved = dup(STDERR_FILENO);
        ssize_t n;

        unlink(path);
        dup2(fd, STDERR_FILENO);
        log_error("sgx.k8s.io/sgx", "/dev/\"odd\"", "two\nlines");
        dup2(saved, STDERR_FILENO);
        close(saved);
        lseek(fd, 0, SEEK_SET);
        n = read(fd, out, sizeof(out) - 1);
        out[n > 0 ? n : 0] = '\0';
        close(fd);
}

static void test_log_fault_json_line_whole_or_none(void) {
        const char *tail = "\"level\":\"error\",\"resource\":\"sgx.k8s.io/sgx\","
                           "\"path\":\"/dev/\\\"odd\\\"\",\"msg\":\"two lines\"}\n";
        unsigned long n;
        unsigned written = 0;

        log_setup(LOG_LEVEL_INFO, LOG_FORMAT_JSON);
        for (n = 1; n < FAILMALLOC_MAX_STEPS; n++) {
                failmalloc_arm(n);
                capture_one();
                failmalloc_disarm();
                if (out[0]) {
                        written++;
                        CHECK(strncmp(out, "{\"time\":\"", 9) == 0);
                        CHECK(strlen(out) > strlen(tail) &&
                              strcmp(out + strlen(out) - strlen(tail), tail) == 0);
                        if (strlen(out) <= strlen(tail) ||
                            strcmp(out + strlen(out) - strlen(tail), tail) != 0)
                                fprintf(stdout, "allocation %lu: %s", n, out);
                }
                if (!failmalloc_fired())
                        break;
        }
        CHECK(written >= 1);
        CHECK(n > 5);
        log_setup(LOG_LEVEL_INFO, LOG_FORMAT_TEXT);
}

static void test_log_fault_text_line_allocates_nothing(void) {
        unsigned long before = failmalloc_count();

        log_setup(LOG_LEVEL_INFO, LOG_FORMAT_TEXT);
        failmalloc_arm(1);
        capture_one();
        failmalloc_disarm();
        CHECK(!failmalloc_fired());
        CHECK_INT(failmalloc_count(), before);
        CHECK(strstr(out, " error resource=sgx.k8s.io/sgx path=/dev/\"odd\" two lines\n"));
}

int main(void) {
        failmalloc_hook_jansson();
        RUN(test_log_fault_json_line_whole_or_none);
        RUN(test_log_fault_text_line_allocates_nothing);
        return unit_done();
}
