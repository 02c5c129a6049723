/*
 * fake_nodes.h - what discovery would report for each driver generation, for unit tests of the
 * layers above it (edits, CDI, the device plugin, the node): struct discovery values built in
 * memory, no device tree. Header-only (static inline), so each test links what it uses.
 */
#pragma once

#include <stdio.h>
#include <string.h>

#include "discovery.h"

static inline void set_node(struct sgx_node *n, const char *path, unsigned major,
                            unsigned minor) {
        n->present = true;
        snprintf(n->host_path, sizeof(n->host_path), "%s", path);
        n->major = major;
        n->minor = minor;
}

/* In-kernel driver (5.11+): /dev/sgx_enclave, /dev/sgx_provision. */
static inline struct discovery node_in_kernel(void) {
        struct discovery d;

        memset(&d, 0, sizeof(d));
        set_node(&d.dcap_enclave, "/dev/sgx_enclave", 10, 125);
        set_node(&d.dcap_provision, "/dev/sgx_provision", 10, 126);
        return d;
}

/* Out-of-tree DCAP driver: /dev/sgx/enclave, /dev/sgx/provision. */
static inline struct discovery node_dcap_dir(void) {
        struct discovery d;

        memset(&d, 0, sizeof(d));
        set_node(&d.dcap_enclave, "/dev/sgx/enclave", 10, 55);
        set_node(&d.dcap_provision, "/dev/sgx/provision", 10, 56);
        return d;
}

/* Legacy DCAP driver: one /dev/sgx char device, /dev/sgx_prv beside it. */
static inline struct discovery node_legacy(void) {
        struct discovery d;

        memset(&d, 0, sizeof(d));
        set_node(&d.dcap_enclave, "/dev/sgx", 10, 60);
        set_node(&d.dcap_provision, "/dev/sgx_prv", 10, 61);
        d.dcap_legacy = true;
        return d;
}

/* Legacy IAS driver only: /dev/isgx. */
static inline struct discovery node_ias(void) {
        struct discovery d;

        memset(&d, 0, sizeof(d));
        set_node(&d.ias_enclave, "/dev/isgx", 10, 57);
        return d;
}

/* No SGX device. */
static inline struct discovery node_empty(void) {
        struct discovery d;

        memset(&d, 0, sizeof(d));
        return d;
}
