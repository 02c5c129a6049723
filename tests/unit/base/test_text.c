/* test_text.c - decimal numbers and printable copies (src/base/text.c), and the monotonic clock. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "clock.h"
#include "text.h"
#include "unit.h"

static void test_text_digits_reads_the_leading_number(void) {
        uint64_t v = 7;

        CHECK_INT(text_digits("123abc", 6, 1000, &v), 3);
        CHECK_INT(v, 123);
        CHECK_INT(text_digits("0", 1, 0, &v), 1);
        CHECK_INT(v, 0);
        /* |len| bounds the read: "12" of "1234" */
        CHECK_INT(text_digits("1234", 2, 1000, &v), 2);
        CHECK_INT(v, 12);
}

static void test_text_digits_refuses_no_digit_and_too_big(void) {
        uint64_t v = 7;

        CHECK_INT(text_digits("", 0, 10, &v), -EINVAL);
        CHECK_INT(text_digits("-1", 2, 10, &v), -EINVAL);
        CHECK_INT(text_digits("+1", 2, 10, &v), -EINVAL);
        CHECK_INT(text_digits(" 1", 2, 10, &v), -EINVAL);
        CHECK_INT(text_digits("11", 2, 10, &v), -ERANGE);
        CHECK_INT(text_digits("5", 1, 4, &v), -ERANGE);
        CHECK_INT(v, 7); /* untouched on failure */
}

static void test_text_parse_u64_range_ends(void) {
        uint64_t v = 0;

        CHECK_INT(text_parse_u64("18446744073709551615", UINT64_MAX, &v), 0);
        CHECK(v == UINT64_MAX);
        CHECK_INT(text_parse_u64("18446744073709551616", UINT64_MAX, &v), -ERANGE);
        CHECK_INT(text_parse_u64("99999999999999999999999", UINT64_MAX, &v), -ERANGE);
        CHECK_INT(text_parse_u64("100000", 100000, &v), 0);
        CHECK_INT(v, 100000);
        CHECK_INT(text_parse_u64("100001", 100000, &v), -ERANGE);
}

static void test_text_parse_u64_syntax_before_range(void) {
        uint64_t v = 0;

        /* a malformed text is -EINVAL even when its digits overflow */
        CHECK_INT(text_parse_u64("99999999999999999999999x", UINT64_MAX, &v), -EINVAL);
        CHECK_INT(text_parse_u64("", 10, &v), -EINVAL);
        CHECK_INT(text_parse_u64("1 ", 10, &v), -EINVAL);
        CHECK_INT(text_parse_u64("1.5", 10, &v), -EINVAL);
        CHECK_INT(text_parse_u64n("12\n", 3, 100, &v), -EINVAL);
        CHECK_INT(text_parse_u64n("12\n", 2, 100, &v), 0);
        CHECK_INT(v, 12);
}

static void test_text_printable_replaces_control_and_high_bytes(void) {
        char out[32];

        CHECK_INT(text_printable("a\nb\x1b[0m\x7f\xc3\xa9", 10, out, sizeof(out)), 10);
        CHECK_STR(out, "a?b?[0m???");
}

static void test_text_printable_cuts_with_dots(void) {
        char out[8];

        CHECK_INT(text_printable("0123456789", 10, out, sizeof(out)), 7);
        CHECK_STR(out, "0123...");
        /* exactly fits: no dots */
        CHECK_INT(text_printable("0123456", 7, out, sizeof(out)), 7);
        CHECK_STR(out, "0123456");
        /* too small for dots: plain cut */
        CHECK_INT(text_printable("0123456", 7, out, 3), 2);
        CHECK_STR(out, "01");
        CHECK_INT(text_printable("x", 1, out, 0), 0);
}

static void test_text_printable_in_place(void) {
        char s[] = "one\ntwo\rthree\x01";

        text_make_printable(s);
        CHECK_STR(s, "one?two?three?");
        CHECK_INT(text_printable(s, strlen(s), s, sizeof(s)), 14);
        CHECK_STR(s, "one?two?three?");
}

static void test_clock_is_monotonic_and_consistent(void) {
        uint64_t a = monotonic_usec(), ms = monotonic_ms(), b = monotonic_usec();

        CHECK(b >= a);
        CHECK(ms >= a / 1000 && ms <= b / 1000);
}

int main(void) {
        RUN(test_text_digits_reads_the_leading_number);
        RUN(test_text_digits_refuses_no_digit_and_too_big);
        RUN(test_text_parse_u64_range_ends);
        RUN(test_text_parse_u64_syntax_before_range);
        RUN(test_text_printable_replaces_control_and_high_bytes);
        RUN(test_text_printable_cuts_with_dots);
        RUN(test_text_printable_in_place);
        RUN(test_clock_is_monotonic_and_consistent);
        return unit_done();
}
