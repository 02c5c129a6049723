/*
 * fuzz_apiclient.c - libFuzzer target for the API-server response path of apiclient.c: the
 * input is the server's side of an HTTP/2 connection (after TLS), fed from memory into the
 * client's session (apiclient_internal.h) after a real PATCH was submitted, then the response
 * handling (api_h2_result, which also runs api_status_message on error answers); and
 * api_status_message once more on a tail of the input. Nothing may crash, trip a sanitizer or
 * leak, and the outcome must be what apiclient.h promises: 0 with a final :status, a
 * NUL-terminated body of at most API_MAX_BODY bytes and a one-line message; or one of the
 * documented errors with a line and no body.
 *
 * Input: byte 0 picks the chunk size the server's bytes arrive in (0: all at once, else
 * byte * 7); bytes 1-2 (little-endian) the length T of the tail given to api_status_message;
 * the rest is the server's bytes, and the tail is its last T bytes (they may overlap).
 * tests/unit/test_apiclient.c writes seeds in this form (APICLIENT_SEED_DIR).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "apiclient.h"
#include "apiclient_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char patch_body[] = "{\"metadata\":{\"labels\":{\"sgx.k8s.io/sgx\":\"true\"}}}";

/* Sends what the client has queued (nowhere: the server here is the input). */
static void drain(struct api_h2 *h) {
        const uint8_t *d;

        for (int i = 0; i < 64 && api_h2_send(h, &d) > 0; i++)
                ;
}

static void check_line(const char *s, size_t max) {
        size_t n = strnlen(s, max);

        if (n == max)
                abort(); /* not terminated */
        for (size_t i = 0; i < n; i++)
                if ((unsigned char) s[i] < 0x20 || s[i] == 0x7f)
                        abort(); /* a control byte in a line */
}

static void check_status_message(const uint8_t *tail, size_t len) {
        char buf[512], small[5];
        size_t n;

        n = api_status_message((const char *) tail, len, buf, sizeof(buf));
        if (n >= sizeof(buf) || n != strlen(buf))
                abort();
        check_line(buf, sizeof(buf));
        n = api_status_message((const char *) tail, len, small, sizeof(small));
        if (n >= sizeof(small) || n != strlen(small))
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct api_response resp;
        struct api_h2 *h;
        char err[256];
        size_t chunk, tail, off;
        int r;

        if (size < 3)
                return 0;
        chunk = data[0] ? (size_t) data[0] * 7 : SIZE_MAX;
        tail = (size_t) data[1] | (size_t) data[2] << 8;
        data += 3;
        size -= 3;
        if (tail > size)
                tail = size;

        if (api_h2_new("10.96.0.1:443", "PATCH", "/api/v1/nodes/node-1",
                       "application/merge-patch+json", "token", patch_body, sizeof(patch_body) - 1,
                       &h) < 0)
                return 0;
        drain(h);
        for (off = 0; off < size && !api_h2_done(h);) {
                size_t n = size - off < chunk ? size - off : chunk;

                api_h2_recv(h, data + off, n);
                off += n;
                drain(h);
        }
        if (!api_h2_done(h))
                api_h2_eof(h);
        if (!api_h2_done(h))
                abort(); /* after EOF the request is over */

        err[0] = '\0';
        r = api_h2_result(h, &resp, err, sizeof(err));
        if (r == 0) {
                if (resp.status < 200 || resp.status > 999 || !resp.body ||
                    resp.body_len > API_MAX_BODY || resp.body[resp.body_len] != '\0')
                        abort();
                check_line(resp.message, sizeof(resp.message));
                if (resp.status >= 200 && resp.status <= 299 && resp.message[0])
                        abort(); /* a message only for error answers */
        } else {
                if (r != -EMSGSIZE && r != -EPROTO && r != -ECONNRESET && r != -ENOMEM)
                        abort();
                if (!err[0] || resp.body || resp.status)
                        abort();
                check_line(err, sizeof(err));
        }
        api_response_clear(&resp);
        api_h2_free(h);

        check_status_message(data + size - tail, tail);
        return 0;
}
