/* test_jsontext.c - jansson documents as text, whole or not at all (src/base/jsontext.c). */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "jsontext.h"
#include "unit.h"

static void test_jsontext_dumps_with_spare_bytes(void) {
        json_t *j = json_pack("{s:s, s:i}", "b", "x\"y", "a", 1);
        char *text = NULL;
        size_t len = 0;

        CHECK_INT(json_text(j, JSON_COMPACT | JSON_SORT_KEYS, 2, &text, &len), 0);
        CHECK_STR(text, "{\"a\":1,\"b\":\"x\\\"y\"}");
        CHECK_INT(len, strlen(text));
        /* the spare bytes are ours to write */
        if (text) {
                text[len] = '\n';
                text[len + 1] = '\0';
                CHECK_STR(text + len, "\n");
        }
        free(text);
        json_decref(j);
}

static void test_jsontext_keeps_order_and_indent(void) {
        json_t *j = json_pack("{s:i, s:i}", "z", 1, "a", 2);
        char *text = NULL;

        CHECK_INT(json_text(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER, 0, &text, NULL), 0);
        CHECK_STR(text, "{\n  \"z\": 1,\n  \"a\": 2\n}");
        free(text);
        json_decref(j);
}

int main(void) {
        RUN(test_jsontext_dumps_with_spare_bytes);
        RUN(test_jsontext_keeps_order_and_indent);
        return unit_done();
}
