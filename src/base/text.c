/*
 * text.c - decimal numbers and printable copies of untrusted text (see text.h).
 */
#include "text.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

static bool is_digit(char c) {
        return c >= '0' && c <= '9';
}

int text_digits(const char *s, size_t len, uint64_t max, uint64_t *ret_value) {
        uint64_t v = 0;
        bool too_big = false;
        size_t i = 0;

        for (; i < len && is_digit(s[i]); i++) {
                unsigned dig = (unsigned) (s[i] - '0');

                if (too_big || max < dig || v > (max - dig) / 10)
                        too_big = true;
                else
                        v = v * 10 + dig;
        }
        if (i == 0)
                return -EINVAL;
        if (too_big)
                return -ERANGE;
        if (i > (size_t) INT32_MAX)
                return -ERANGE;
        *ret_value = v;
        return (int) i;
}

int text_parse_u64n(const char *s, size_t len, uint64_t max, uint64_t *ret_value) {
        uint64_t v;
        int r;

        if (len == 0)
                return -EINVAL;
        for (size_t i = 0; i < len; i++)
                if (!is_digit(s[i]))
                        return -EINVAL;
        r = text_digits(s, len, max, &v);
        if (r < 0)
                return r;
        *ret_value = v;
        return 0;
}

int text_parse_u64(const char *s, uint64_t max, uint64_t *ret_value) {
        return text_parse_u64n(s, strlen(s), max, ret_value);
}

size_t text_printable(const char *in, size_t n, char *out, size_t outsz) {
        size_t j = 0;
        bool cut = false;

        if (outsz == 0)
                return 0;
        if (n > outsz - 1) {
                cut = outsz > 4;
                n = cut ? outsz - 4 : outsz - 1;
        }
        for (; j < n; j++) {
                unsigned char c = (unsigned char) in[j];

                out[j] = (c < 0x20 || c >= 0x7f) ? '?' : (char) c;
        }
        if (cut) {
                memcpy(out + j, "...", 3);
                j += 3;
        }
        out[j] = '\0';
        return j;
}

void text_make_printable(char *s) {
        for (; *s; s++)
                if ((unsigned char) *s < 0x20 || (unsigned char) *s >= 0x7f)
                        *s = '?';
}
