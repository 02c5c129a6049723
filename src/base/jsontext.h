/*
 * jsontext.h - a jansson document as text, whole or not at all. json_dumps() ignores a failed
 * write of an object key (jansson 2.14) and, out of memory, can hand back a mangled document as
 * a success; every document we send or write (log lines, PATCH bodies, CDI specs, probe's JSON)
 * goes through this instead.
 */
#pragma once

#include <stddef.h>

#include <jansson.h>

/*
 * Dumps |j| with jansson's |flags| into a new buffer (caller frees), NUL-terminated, with
 * |extra| spare bytes after the text (e.g. room for a newline). *ret_len (may be NULL) is the
 * text's length. Returns 0, -ENOMEM (out of memory, or jansson could not dump |j|).
 */
int json_text(const json_t *j, size_t flags, size_t extra, char **ret_text, size_t *ret_len);
