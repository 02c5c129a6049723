/*
 * jsontext.c - jansson documents as text, checked (see jsontext.h).
 */
#include "jsontext.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

int json_text(const json_t *j, size_t flags, size_t extra, char **ret_text, size_t *ret_len) {
        size_t len;
        char *buf;

        /* json_dumpb into a buffer of ours: its size first, then the text, which must fill it */
        len = json_dumpb(j, NULL, 0, flags);
        if (len == 0 || len > SIZE_MAX - 1 - extra)
                return -ENOMEM;
        buf = malloc(len + 1 + extra);
        if (!buf)
                return -ENOMEM;
        if (json_dumpb(j, buf, len, flags) != len) {
                free(buf);
                return -ENOMEM;
        }
        buf[len] = '\0';
        *ret_text = buf;
        if (ret_len)
                *ret_len = len;
        return 0;
}
