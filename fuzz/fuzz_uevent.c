/*
 * fuzz_uevent.c - libFuzzer target for discovery's reading of the kernel's view of a device
 * (issue 10): discovery_parse_uevent over a sysfs uevent text, and discovery_is_sgx_name over
 * what it found. Promises checked: a name found is NUL-terminated, non-empty, fits, holds no
 * newline, and is the value of a "DEVNAME=" line of the input. The input gets an exact-size heap
 * copy, so ASan sees a read past the end.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "discovery.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok, const char *what) {
        if (!ok) {
                fprintf(stderr, "fuzz_uevent: broken promise: %s\n", what);
                abort();
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *text = malloc(size ? size : 1), name[DISCOVERY_DEVNAME_MAX],
             key[DISCOVERY_DEVNAME_MAX + 9];
        int r;

        if (!text)
                abort();
        if (size)
                memcpy(text, data, size);
        r = discovery_parse_uevent(text, size, name, sizeof(name));
        if (r == 0) {
                size_t n = strlen(name);

                check(n > 0 && n < sizeof(name), "a found name is non-empty and fits");
                check(strchr(name, '\n') == NULL, "a found name holds no newline");
                snprintf(key, sizeof(key), "DEVNAME=%s", name);
                check(memmem(text, size, key, strlen(key)) != NULL,
                      "a found name is a DEVNAME= value of the input");
                (void) discovery_is_sgx_name(name, SGX_ROLE_ENCLAVE);
                (void) discovery_is_sgx_name(name, SGX_ROLE_PROVISION);
        } else {
                check(r == -ENOENT || r == -EINVAL || r == -ENAMETOOLONG, "a known error");
        }
        free(text);
        return 0;
}
