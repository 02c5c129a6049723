/*
 * test_discovery.c - unit tests for src/discovery.c: fake device trees built with mknod and
 * symlink under a mkdtemp directory (tests run as root).
 */
#include "discovery.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "log.h"
#include "unit.h"

/* The in-kernel driver's numbers (misc major 10). */
#define ENC_MAJ 10
#define ENC_MIN 125
#define PRV_MIN 126
/* Dynamic misc minors, as the legacy DCAP (sgx, sgx_prv) and IAS (isgx) drivers get them. */
#define LEG_MIN 243
#define LEG_PRV_MIN 244
#define ISGX_MIN 57

static char top[64];   /* the mkdtemp dir */
static char root[128]; /* top/dev, the dev root under test */

static void setup(void) {
        snprintf(top, sizeof(top), "/tmp/test_discovery.XXXXXX");
        if (!mkdtemp(top)) {
                perror("mkdtemp");
                exit(2);
        }
        snprintf(root, sizeof(root), "%s/dev", top);
        if (mkdir(root, 0755) < 0) {
                perror("mkdir");
                exit(2);
        }
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path);
}

static void teardown(void) {
        nftw(top, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void mkdir_in(const char *rel) {
        char p[256];

        snprintf(p, sizeof(p), "%s/%s", root, rel);
        if (mkdir(p, 0755) < 0) {
                perror(p);
                exit(2);
        }
}

static void node_in(const char *rel, mode_t type, unsigned maj, unsigned min) {
        char p[256];

        snprintf(p, sizeof(p), "%s/%s", root, rel);
        if (mknod(p, type | 0600, makedev(maj, min)) < 0) {
                perror(p);
                exit(2);
        }
}

static void chr_in(const char *rel, unsigned maj, unsigned min) {
        node_in(rel, S_IFCHR, maj, min);
}

static void link_in(const char *rel, const char *target) {
        char p[256];

        snprintf(p, sizeof(p), "%s/%s", root, rel);
        if (symlink(target, p) < 0) {
                perror(p);
                exit(2);
        }
}

static void file_in(const char *rel) {
        char p[256];
        int fd;

        snprintf(p, sizeof(p), "%s/%s", root, rel);
        fd = open(p, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
        if (fd < 0) {
                perror(p);
                exit(2);
        }
        close(fd);
}

static const struct discovery_entry *entry(const struct discovery *d, const char *name) {
        for (size_t i = 0; i < d->n_entries; i++)
                if (strcmp(d->entries[i].name, name) == 0)
                        return &d->entries[i];
        return NULL;
}

static void scan_ok(struct discovery *d) {
        memset(d, 0xaa, sizeof(*d));
        CHECK_INT(discovery_scan(root, d), 0);
}

/* top/sys/dev/char/MAJ:MIN/uevent holding |text|: the kernel's view of one device. */
static void uevent_in(unsigned maj, unsigned min, const char *text) {
        const char *dirs[] = {"sys", "sys/dev", "sys/dev/char"};
        char p[256];
        FILE *f;

        for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
                snprintf(p, sizeof(p), "%s/%s", top, dirs[i]);
                if (mkdir(p, 0755) < 0 && errno != EEXIST) {
                        perror(p);
                        exit(2);
                }
        }
        snprintf(p, sizeof(p), "%s/sys/dev/char/%u:%u", top, maj, min);
        if (mkdir(p, 0755) < 0 && errno != EEXIST) {
                perror(p);
                exit(2);
        }
        snprintf(p, sizeof(p), "%s/sys/dev/char/%u:%u/uevent", top, maj, min);
        f = fopen(p, "w");
        if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
                perror(p);
                exit(2);
        }
}

static void scan_sys_ok(struct discovery *d) {
        char sys[160];

        snprintf(sys, sizeof(sys), "%s/sys", top);
        memset(d, 0xaa, sizeof(*d));
        CHECK_INT(discovery_scan_at(root, sys, d), 0);
}

static const struct discovery_refused *refused(const struct discovery *d, const char *name) {
        for (size_t i = 0; i < d->n_refused; i++)
                if (strcmp(d->refused[i].name, name) == 0)
                        return &d->refused[i];
        return NULL;
}

/* Nothing chosen, nothing listed as found: only refusals. */
static void check_nothing_used(const struct discovery *d) {
        CHECK(!discovery_has_dcap(d));
        CHECK(!discovery_has_ias(d));
        CHECK(!discovery_has_provision(d));
        CHECK(!d->dcap_provision.present);
        CHECK_INT(d->n_entries, 0);
}

/* ---- layouts ---- */

static void test_discovery_in_kernel_driver(void) {
        struct discovery d;
        const struct discovery_entry *e;

        setup();
        chr_in("sgx_enclave", ENC_MAJ, ENC_MIN);
        chr_in("sgx_provision", ENC_MAJ, PRV_MIN);
        scan_ok(&d);
        CHECK(!d.dev_root_missing);
        CHECK(discovery_has_dcap(&d));
        CHECK(discovery_has_provision(&d));
        CHECK(!discovery_has_ias(&d));
        CHECK(!d.dcap_legacy);
        CHECK_STR(d.dcap_enclave.host_path, "/dev/sgx_enclave");
        CHECK_INT(d.dcap_enclave.major, ENC_MAJ);
        CHECK_INT(d.dcap_enclave.minor, ENC_MIN);
        CHECK_STR(d.dcap_provision.host_path, "/dev/sgx_provision");
        CHECK_INT(d.dcap_provision.minor, PRV_MIN);
        CHECK(!d.ias_enclave.present);
        CHECK_INT(d.n_entries, 2);
        CHECK_STR(d.entries[0].name, "sgx_enclave");
        CHECK_STR(d.entries[1].name, "sgx_provision");
        e = entry(&d, "sgx_enclave");
        CHECK(e && e->cls == SGX_CLASS_DCAP && e->role == SGX_ROLE_ENCLAVE && !e->is_link);
        e = entry(&d, "sgx_provision");
        CHECK(e && e->cls == SGX_CLASS_DCAP && e->role == SGX_ROLE_PROVISION && !e->is_link);
        teardown();
}

static void test_discovery_dcap_driver_dir(void) {
        struct discovery d;

        setup();
        mkdir_in("sgx");
        chr_in("sgx/enclave", ENC_MAJ, 55);
        chr_in("sgx/provision", ENC_MAJ, 56);
        scan_ok(&d);
        CHECK(discovery_has_dcap(&d));
        CHECK(discovery_has_provision(&d));
        CHECK(!d.dcap_legacy);
        CHECK_STR(d.dcap_enclave.host_path, "/dev/sgx/enclave");
        CHECK_INT(d.dcap_enclave.minor, 55);
        CHECK_STR(d.dcap_provision.host_path, "/dev/sgx/provision");
        /* the directory "sgx" is not an entry */
        CHECK_INT(d.n_entries, 2);
        CHECK(entry(&d, "sgx") == NULL);
        teardown();
}

static void test_discovery_sgx_dir_sgx_enclave(void) {
        struct discovery d;

        setup();
        mkdir_in("sgx");
        chr_in("sgx/sgx_enclave", ENC_MAJ, ENC_MIN);
        scan_ok(&d);
        CHECK(discovery_has_dcap(&d));
        CHECK(!discovery_has_provision(&d));
        CHECK(!d.dcap_legacy);
        CHECK_STR(d.dcap_enclave.host_path, "/dev/sgx/sgx_enclave");
        CHECK_INT(d.n_entries, 1);
        teardown();
}

static void test_discovery_legacy_sgx_char_device(void) {
        struct discovery d;

        setup();
        chr_in("sgx", ENC_MAJ, LEG_MIN);
        chr_in("sgx_prv", ENC_MAJ, LEG_PRV_MIN);
        scan_ok(&d);
        CHECK(discovery_has_dcap(&d));
        CHECK(d.dcap_legacy);
        CHECK(discovery_has_provision(&d));
        CHECK_STR(d.dcap_enclave.host_path, "/dev/sgx");
        CHECK_INT(d.dcap_enclave.major, ENC_MAJ);
        CHECK_STR(d.dcap_provision.host_path, "/dev/sgx_prv");
        CHECK_INT(d.dcap_provision.minor, LEG_PRV_MIN);
        CHECK_INT(d.n_entries, 2);
        CHECK_STR(d.entries[0].name, "sgx");
        CHECK_STR(d.entries[1].name, "sgx_prv");
        teardown();
}

static void test_discovery_legacy_takes_only_sgx_prv(void) {
        struct discovery d;

        setup();
        chr_in("sgx", ENC_MAJ, LEG_MIN);
        chr_in("sgx_provision", ENC_MAJ, PRV_MIN);
        scan_ok(&d);
        CHECK(d.dcap_legacy);
        CHECK(!d.dcap_provision.present);
        CHECK(!discovery_has_provision(&d));
        CHECK(entry(&d, "sgx_provision") != NULL); /* listed, not chosen */
        teardown();
}

static void test_discovery_non_legacy_ignores_sgx_prv(void) {
        struct discovery d;

        setup();
        chr_in("sgx_enclave", ENC_MAJ, ENC_MIN);
        chr_in("sgx_prv", ENC_MAJ, LEG_PRV_MIN);
        scan_ok(&d);
        CHECK(!d.dcap_legacy);
        CHECK(!d.dcap_provision.present);
        CHECK(!discovery_has_provision(&d));
        teardown();
}

static void test_discovery_ias_only(void) {
        struct discovery d;
        const struct discovery_entry *e;

        setup();
        chr_in("isgx", ENC_MAJ, ISGX_MIN);
        scan_ok(&d);
        CHECK(!discovery_has_dcap(&d));
        CHECK(discovery_has_ias(&d));
        CHECK(!discovery_has_provision(&d));
        CHECK_STR(d.ias_enclave.host_path, "/dev/isgx");
        CHECK_INT(d.ias_enclave.major, ENC_MAJ);
        e = entry(&d, "isgx");
        CHECK(e && e->cls == SGX_CLASS_IAS && e->role == SGX_ROLE_ENCLAVE);
        teardown();
}

static void test_discovery_dcap_and_ias(void) {
        struct discovery d;

        setup();
        chr_in("sgx_enclave", ENC_MAJ, ENC_MIN);
        chr_in("sgx_provision", ENC_MAJ, PRV_MIN);
        chr_in("isgx", ENC_MAJ, ISGX_MIN);
        scan_ok(&d);
        CHECK(discovery_has_dcap(&d));
        CHECK(discovery_has_ias(&d));
        CHECK(discovery_has_provision(&d));
        CHECK_STR(d.ias_enclave.host_path, "/dev/isgx");
        CHECK_INT(d.n_entries, 3);
        CHECK_STR(d.entries[2].name, "isgx");
        teardown();
}

static void test_discovery_empty_root(void) {
        struct discovery d;

        setup();
        scan_ok(&d);
        CHECK(!d.dev_root_missing);
        CHECK(!discovery_has_dcap(&d));
        CHECK(!discovery_has_ias(&d));
        CHECK(!discovery_has_provision(&d));
        CHECK(!d.dcap_provision.present);
        CHECK(!d.dcap_legacy);
        CHECK_INT(d.n_entries, 0);
        teardown();
}

static void test_discovery_missing_root(void) {
        struct discovery d;
        char p[256];

        setup();
        snprintf(p, sizeof(p), "%s/nope", root);
        memset(&d, 0xaa, sizeof(d));
        CHECK_INT(discovery_scan(p, &d), 0);
        CHECK(d.dev_root_missing);
        CHECK(!discovery_has_dcap(&d));
        CHECK(!discovery_has_ias(&d));
        CHECK_INT(d.n_entries, 0);
        teardown();
}

static void test_discovery_root_is_a_file(void) {
        struct discovery d;
        char p[256];

        setup();
        file_in("plain");
        snprintf(p, sizeof(p), "%s/plain", root);
        d.n_entries = 7;
        CHECK_INT(discovery_scan(p, &d), -ENOTDIR);
        CHECK_INT(d.n_entries, 7); /* untouched on error */
        teardown();
}

static void test_discovery_root_is_a_symlink(void) {
        struct discovery d;
        char p[256];

        setup();
        chr_in("sgx_enclave", ENC_MAJ, ENC_MIN);
        snprintf(p, sizeof(p), "%s/devlink", top);
        CHECK(symlink("dev", p) == 0);
        memset(&d, 0, sizeof(d));
        CHECK_INT(discovery_scan(p, &d), 0);
        CHECK(discovery_has_dcap(&d));
        CHECK_STR(d.dcap_enclave.host_path, "/dev/sgx_enclave");
        teardown();
}

/* ---- links ---- */

static void test_discovery_udev_links_are_one_device(void) {
        struct discovery d;
        const struct discovery_entry *e;

        setup();
        chr_in("sgx_enclave", ENC_MAJ, ENC_MIN);
        chr_in("sgx_provision", ENC_MAJ, PRV_MIN);
        mkdir_in("sgx");
        link_in("sgx/enclave", "../sgx_enclave");
        link_in("sgx/provision", "../sgx_provision");
        scan_ok(&d);
        CHECK(discovery_has_dcap(&d));
        CHECK(discovery_has_provision(&d));
        CHECK_STR(d.dcap_enclave.host_path, "/dev/sgx_enclave");
        CHECK_STR(d.dcap_provision.host_path, "/dev/sgx_provision");
        CHECK_INT(d.n_entries, 4);
        CHECK_STR(d.entries[0].name, "sgx_enclave");
        CHECK_STR(d.entries[1].name, "sgx/enclave");
        CHECK_STR(d.entries[2].name, "sgx_provision");
        CHECK_STR(d.entries[3].name, "sgx/provision");
        e = entry(&d, "sgx/enclave");
        CHECK(e && e->is_link);
        CHECK(e && strcmp(e->host_path, "/dev/sgx_enclave") == 0);
        CHECK(e && e->major == ENC_MAJ && e->minor == ENC_MIN);
        e = entry(&d, "sgx/provision");
        CHECK(e && e->is_link && strcmp(e->host_path, "/dev/sgx_provision") == 0);
        e = entry(&d, "sgx_enclave");
        CHECK(e && !e->is_link);
        teardown();
}

static void test_discovery_link_host_path_is_real_node(void) {
        struct discovery d;

        setup();
        mkdir_in("sgx");
        chr_in("sgx/enclave", ENC_MAJ, ENC_MIN);
        chr_in("sgx/provision", ENC_MAJ, PRV_MIN);
        link_in("sgx_enclave", "sgx/enclave");
        link_in("sgx_provision", "./sgx//provision");
        scan_ok(&d);
        /* the first name is a link: the kubelet gets the node it points to */
        CHECK_STR(d.dcap_enclave.host_path, "/dev/sgx/enclave");
        CHECK_STR(d.dcap_provision.host_path, "/dev/sgx/provision");
        CHECK(d.entries[0].is_link);
        teardown();
}

static void test_discovery_absolute_link(void) {
        struct discovery d;

        setup();
        mkdir_in("sgx");
        chr_in("sgx/sgx_enclave", ENC_MAJ, ENC_MIN);
        link_in("sgx_enclave", "/dev/sgx/sgx_enclave");
        link_in("sgx/enclave", "/dev/sgx_enclave"); /* two hops */
        scan_ok(&d);
        CHECK(discovery_has_dcap(&d));
        CHECK_STR(d.dcap_enclave.host_path, "/dev/sgx/sgx_enclave");
        CHECK_INT(d.n_entries, 3);
        CHECK_STR(d.entries[1].host_path, "/dev/sgx/sgx_enclave");
        CHECK(d.entries[1].is_link);
        CHECK_INT(d.n_refused, 0);
        teardown();
}

static void test_discovery_linked_directory(void) {
        struct discovery d;

        /* A linked directory is followed; a real node outside the SGX names is refused (issue 10).
         */
        setup();
        mkdir_in("sgx_dir");
        chr_in("sgx_dir/enclave", ENC_MAJ, ENC_MIN);
        link_in("sgx", "sgx_dir");
        scan_ok(&d);
        CHECK(!discovery_has_dcap(&d));
        CHECK(!d.dcap_legacy);
        CHECK_INT(d.n_entries, 0);
        CHECK_INT(d.n_refused, 1);
        CHECK_STR(d.refused[0].name, "sgx/enclave");
        CHECK_STR(d.refused[0].target, "/dev/sgx_dir/enclave");
        CHECK(d.refused[0].is_link);
        CHECK_INT(d.refused[0].reason, DISCOVERY_REFUSED_NOT_SGX_NAME);
        teardown();

        /* "sgx -> ." makes sgx/sgx_enclave a name of the real sgx_enclave */
        setup();
        chr_in("sgx_enclave", ENC_MAJ, ENC_MIN);
        link_in("sgx", ".");
        scan_ok(&d);
        CHECK(discovery_has_dcap(&d));
        CHECK_STR(d.dcap_enclave.host_path, "/dev/sgx_enclave");
        CHECK(entry(&d, "sgx/sgx_enclave") && entry(&d, "sgx/sgx_enclave")->is_link);
        teardown();
}

static void test_discovery_two_nodes_same_devnum(void) {
        struct discovery d;

        setup();
        mkdir_in("sgx");
        chr_in("sgx/enclave", ENC_MAJ, ENC_MIN);
        chr_in("sgx_enclave", ENC_MAJ, ENC_MIN);
        scan_ok(&d);
        CHECK_STR(d.dcap_enclave.host_path, "/dev/sgx_enclave");
        CHECK_INT(d.n_entries, 2);
        CHECK(!d.entries[0].is_link && !d.entries[1].is_link);
        teardown();

        /* sgx/enclave before the legacy name: not legacy */
        setup();
        mkdir_in("sgx");
        chr_in("sgx/enclave", ENC_MAJ, ENC_MIN);
        chr_in("isgx", ENC_MAJ, ENC_MIN);
        scan_ok(&d);
        CHECK_STR(d.dcap_enclave.host_path, "/dev/sgx/enclave");
        CHECK(!d.dcap_legacy);
        /* isgx with the DCAP device's numbers is that device, not an IAS one */
        CHECK(!discovery_has_ias(&d));
        teardown();
}

static void test_discovery_legacy_through_link(void) {
        struct discovery d;

        setup();
        chr_in("sgx", ENC_MAJ, LEG_MIN);
        chr_in("sgx_prv", ENC_MAJ, LEG_PRV_MIN);
        link_in("sgx_enclave", "sgx");
        scan_ok(&d);
        CHECK_STR(d.dcap_enclave.host_path, "/dev/sgx");
        CHECK(d.dcap_legacy);
        CHECK_STR(d.dcap_provision.host_path, "/dev/sgx_prv");
        teardown();
}

static void test_discovery_dangling_link_ignored(void) {
        struct discovery d;

        setup();
        link_in("sgx_enclave", "nowhere");
        mkdir_in("sgx");
        link_in("sgx/enclave", "/dev/nowhere");
        scan_ok(&d);
        CHECK(!discovery_has_dcap(&d));
        CHECK(!discovery_has_ias(&d));
        CHECK_INT(d.n_entries, 0);
        teardown();
}

static void test_discovery_link_escaping_root_ignored(void) {
        struct discovery d;

        setup();
        /* a real char device just outside the root */
        {
                char p[256];

                snprintf(p, sizeof(p), "%s/outside", top);
                CHECK(mknod(p, S_IFCHR | 0600, makedev(ENC_MAJ, ENC_MIN)) == 0);
        }
        /* a node of that name inside the root must not be taken instead ("/.." is not "/") */
        chr_in("outside", 247, 0);
        link_in("sgx_enclave", "../outside");
        mkdir_in("sgx");
        link_in("sgx/enclave", "../../outside");
        link_in("sgx/sgx_enclave", "/dev/../outside");
        link_in("sgx_provision", "/tmp/outside");
        link_in("isgx", "/devices/isgx");
        scan_ok(&d);
        CHECK(!discovery_has_dcap(&d));
        CHECK(!discovery_has_ias(&d));
        CHECK(!d.dcap_provision.present);
        CHECK_INT(d.n_entries, 0);
        teardown();
}

static void test_discovery_dotdot_after_device_ignored(void) {
        struct discovery d;

        setup();
        chr_in("dev0", ENC_MAJ, ENC_MIN);
        link_in("sgx_enclave", "dev0/../dev0");
        scan_ok(&d);
        CHECK_INT(d.n_entries, 0);
        teardown();
}

static void test_discovery_link_dotdot_inside_root(void) {
        struct discovery d;

        setup();
        chr_in("sgx_enclave", ENC_MAJ, ENC_MIN);
        mkdir_in("sgx");
        mkdir_in("a");
        link_in("sgx/enclave", "../a/../sgx_enclave");
        scan_ok(&d);
        CHECK_INT(d.n_entries, 2);
        CHECK_STR(d.entries[1].host_path, "/dev/sgx_enclave");
        teardown();
}

static void test_discovery_link_loop_ignored(void) {
        struct discovery d;

        setup();
        link_in("sgx_enclave", "sgx_enclave");
        link_in("sgx_provision", "sgx_prv");
        link_in("sgx_prv", "sgx_provision");
        /* a chain longer than the hop limit */
        link_in("isgx", "l1");
        link_in("l1", "l2");
        link_in("l2", "l3");
        link_in("l3", "l4");
        link_in("l4", "l5");
        link_in("l5", "l6");
        link_in("l6", "l7");
        link_in("l7", "l8");
        link_in("l8", "l9");
        chr_in("l9", 247, 0);
        scan_ok(&d);
        CHECK_INT(d.n_entries, 0);
        CHECK(!discovery_has_ias(&d));
        teardown();
}

static void test_discovery_link_chain_within_limit(void) {
        struct discovery d;

        setup();
        mkdir_in("sgx");
        link_in("sgx_enclave", "l1");
        link_in("l1", "l2");
        link_in("l2", "sgx/enclave");
        chr_in("sgx/enclave", ENC_MAJ, ENC_MIN);
        scan_ok(&d);
        CHECK(discovery_has_dcap(&d));
        CHECK_STR(d.dcap_enclave.host_path, "/dev/sgx/enclave");
        CHECK(d.entries[0].is_link);
        teardown();
}

/* ---- what is not a character device ---- */

static void test_discovery_regular_file_ignored(void) {
        struct discovery d;

        setup();
        file_in("sgx_enclave");
        file_in("sgx_provision");
        mkdir_in("isgx");
        node_in("sgx_prv", S_IFIFO, 0, 0);
        mkdir_in("sgx");
        node_in("sgx/enclave", S_IFBLK, 8, 0);
        chr_in("sgx/sgx_enclave", ENC_MAJ, ENC_MIN);
        scan_ok(&d);
        CHECK(discovery_has_dcap(&d));
        CHECK_STR(d.dcap_enclave.host_path, "/dev/sgx/sgx_enclave");
        CHECK(!d.dcap_provision.present);
        CHECK(!discovery_has_ias(&d));
        CHECK_INT(d.n_entries, 1);
        teardown();
}

static void test_discovery_link_to_regular_file_ignored(void) {
        struct discovery d;

        setup();
        file_in("plain");
        link_in("sgx_enclave", "plain");
        link_in("isgx", ".");
        scan_ok(&d);
        CHECK_INT(d.n_entries, 0);
        teardown();
}

static void test_discovery_provision_alone(void) {
        struct discovery d;

        setup();
        chr_in("sgx_provision", ENC_MAJ, PRV_MIN);
        scan_ok(&d);
        CHECK(!discovery_has_dcap(&d));
        CHECK(!discovery_has_provision(&d));
        CHECK(!discovery_has_ias(&d));
        CHECK_INT(d.n_entries, 1);
        teardown();
}

/* ---- comparing scans ---- */

static void test_discovery_deterministic(void) {
        struct discovery a, b;

        setup();
        chr_in("sgx_enclave", ENC_MAJ, ENC_MIN);
        chr_in("sgx_provision", ENC_MAJ, PRV_MIN);
        mkdir_in("sgx");
        link_in("sgx/enclave", "../sgx_enclave");
        chr_in("isgx", ENC_MAJ, ISGX_MIN);
        scan_ok(&a);
        scan_ok(&b);
        CHECK_INT(a.n_entries, b.n_entries);
        for (size_t i = 0; i < a.n_entries && i < b.n_entries; i++) {
                CHECK_STR(a.entries[i].name, b.entries[i].name);
                CHECK_STR(a.entries[i].host_path, b.entries[i].host_path);
                CHECK(a.entries[i].is_link == b.entries[i].is_link);
        }
        CHECK(discovery_same_devices(&a, &b));
        teardown();
}

static void test_discovery_same_devices(void) {
        struct discovery a, b;
        char p[256];

        setup();
        chr_in("sgx_enclave", ENC_MAJ, ENC_MIN);
        scan_ok(&a);

        /* another name of the same device: the chosen devices are unchanged */
        mkdir_in("sgx");
        link_in("sgx/enclave", "../sgx_enclave");
        scan_ok(&b);
        CHECK(a.n_entries != b.n_entries);
        CHECK(discovery_same_devices(&a, &b));

        /* a provisioning device appears */
        chr_in("sgx_provision", ENC_MAJ, PRV_MIN);
        scan_ok(&b);
        CHECK(!discovery_same_devices(&a, &b));
        CHECK(!discovery_same_devices(&b, &a));
        a = b;

        /* the same path with a new minor */
        snprintf(p, sizeof(p), "%s/sgx_provision", root);
        CHECK(unlink(p) == 0);
        chr_in("sgx_provision", ENC_MAJ, PRV_MIN + 1);
        scan_ok(&b);
        CHECK(!discovery_same_devices(&a, &b));
        a = b;

        /* IAS appears */
        chr_in("isgx", ENC_MAJ, ISGX_MIN);
        scan_ok(&b);
        CHECK(!discovery_same_devices(&a, &b));
        a = b;

        /* everything goes */
        teardown();
        scan_ok(&b);
        CHECK(b.dev_root_missing);
        CHECK(!discovery_same_devices(&a, &b));
        a = b;
        scan_ok(&b);
        CHECK(discovery_same_devices(&a, &b));
}

/* ---- SGX and only SGX (issue 10) ---- */

/* sgx_enclave -> mem, mem being c 1 1: /dev/mem would have been handed to every pod. */
static void test_discovery_issue10_link_to_mem_refused(void) {
        struct discovery d;
        const struct discovery_refused *x;

        setup();
        chr_in("mem", 1, 1);
        link_in("sgx_enclave", "mem");
        scan_ok(&d);
        check_nothing_used(&d);
        CHECK_INT(d.n_refused, 1);
        x = refused(&d, "sgx_enclave");
        CHECK(x != NULL);
        if (x) {
                CHECK_STR(x->path, "/dev/sgx_enclave");
                CHECK_STR(x->target, "/dev/mem");
                CHECK(x->is_link);
                CHECK_INT(x->major, 1);
                CHECK_INT(x->minor, 1);
                CHECK_INT(x->reason, DISCOVERY_REFUSED_NOT_MISC);
                CHECK(x->cls == SGX_CLASS_DCAP && x->role == SGX_ROLE_ENCLAVE);
        }
        teardown();
}

/* sgx/enclave -> ../mem, and the provisioning names the same way */
static void test_discovery_issue10_dir_link_to_mem_refused(void) {
        struct discovery d;
        const struct discovery_refused *x;

        setup();
        chr_in("mem", 1, 1);
        mkdir_in("sgx");
        link_in("sgx/enclave", "../mem");
        link_in("sgx/provision", "/dev/mem");
        scan_ok(&d);
        check_nothing_used(&d);
        CHECK_INT(d.n_refused, 2);
        x = refused(&d, "sgx/enclave");
        CHECK(x && strcmp(x->target, "/dev/mem") == 0 && x->reason == DISCOVERY_REFUSED_NOT_MISC);
        CHECK(x && strcmp(x->path, "/dev/sgx/enclave") == 0);
        x = refused(&d, "sgx/provision");
        CHECK(x && x->role == SGX_ROLE_PROVISION && x->major == 1 && x->minor == 1);
        teardown();
}

/* a plain sgx_enclave node with the numbers 1:1 */
static void test_discovery_issue10_plain_node_wrong_numbers_refused(void) {
        struct discovery d;
        const struct discovery_refused *x;

        setup();
        chr_in("sgx_enclave", 1, 1);
        chr_in("isgx", 4, 9);
        chr_in("sgx_provision", ENC_MAJ, PRV_MIN);
        scan_ok(&d);
        CHECK(!discovery_has_dcap(&d));
        CHECK(!discovery_has_ias(&d));
        CHECK(!discovery_has_provision(&d));
        CHECK_INT(d.n_entries, 1); /* the provisioning node is fine, and alone no SGX */
        CHECK_INT(d.n_refused, 2);
        x = refused(&d, "sgx_enclave");
        CHECK(x && !x->is_link && strcmp(x->target, "/dev/sgx_enclave") == 0);
        CHECK(x && x->reason == DISCOVERY_REFUSED_NOT_MISC);
        x = refused(&d, "isgx");
        CHECK(x && x->cls == SGX_CLASS_IAS && x->major == 4 && x->minor == 9);
        teardown();
}

/* the legacy sgx name on a non-misc device; a block device under an SGX name */
static void test_discovery_issue10_legacy_and_block_refused(void) {
        struct discovery d;
        const struct discovery_refused *x;

        setup();
        chr_in("sgx", 1, 3);
        node_in("sgx_prv", S_IFBLK, 8, 0);
        scan_ok(&d);
        check_nothing_used(&d);
        CHECK(!d.dcap_legacy);
        CHECK_INT(d.n_refused, 2);
        x = refused(&d, "sgx");
        CHECK(x && x->reason == DISCOVERY_REFUSED_NOT_MISC);
        x = refused(&d, "sgx_prv");
        CHECK(x && x->reason == DISCOVERY_REFUSED_NOT_CHAR && x->major == 8);
        teardown();
}

/* a misc device (watchdog, 10:130) reached through a chain that leaves the SGX names */
static void test_discovery_issue10_chain_outside_sgx_names_refused(void) {
        struct discovery d;
        const struct discovery_refused *x;

        setup();
        mkdir_in("sgx");
        link_in("sgx_enclave", "sgx/enclave");
        link_in("sgx/enclave", "../watchdog-link");
        link_in("watchdog-link", "/dev/watchdog");
        chr_in("watchdog", ENC_MAJ, 130);
        scan_ok(&d);
        check_nothing_used(&d);
        CHECK_INT(d.n_refused, 2);
        x = refused(&d, "sgx_enclave");
        CHECK(x && strcmp(x->target, "/dev/watchdog") == 0);
        CHECK(x && x->reason == DISCOVERY_REFUSED_NOT_SGX_NAME);
        CHECK(x && x->major == ENC_MAJ && x->minor == 130);
        x = refused(&d, "sgx/enclave");
        CHECK(x && x->reason == DISCOVERY_REFUSED_NOT_SGX_NAME);
        teardown();
}

/* an enclave name leading to the provisioning node: a name of the other role */
static void test_discovery_issue10_enclave_name_on_provision_node_refused(void) {
        struct discovery d;
        const struct discovery_refused *x;

        setup();
        chr_in("sgx_provision", ENC_MAJ, PRV_MIN);
        link_in("sgx_enclave", "sgx_provision");
        scan_ok(&d);
        CHECK(!discovery_has_dcap(&d));
        CHECK_INT(d.n_entries, 1);
        x = refused(&d, "sgx_enclave");
        CHECK(x && x->reason == DISCOVERY_REFUSED_NOT_SGX_NAME &&
              strcmp(x->target, "/dev/sgx_provision") == 0);
        teardown();
}

/* sysfs says what the kernel calls the device: it must be an SGX name too */
static void test_discovery_issue10_uevent_names_another_device(void) {
        struct discovery d;
        const struct discovery_refused *x;

        setup();
        chr_in("sgx_enclave", ENC_MAJ, ENC_MIN);
        chr_in("sgx_provision", ENC_MAJ, PRV_MIN);
        uevent_in(ENC_MAJ, ENC_MIN, "MAJOR=10\nMINOR=125\nDEVNAME=watchdog\n");
        uevent_in(ENC_MAJ, PRV_MIN, "MAJOR=10\nMINOR=126\nDEVNAME=sgx_provision\n");
        scan_sys_ok(&d);
        CHECK(!discovery_has_dcap(&d));
        CHECK_INT(d.n_entries, 1);
        CHECK_INT(d.n_refused, 1);
        x = refused(&d, "sgx_enclave");
        CHECK(x && x->reason == DISCOVERY_REFUSED_KERNEL_NAME);
        CHECK(x && strcmp(x->kernel_name, "watchdog") == 0);
        CHECK(x && strcmp(x->target, "/dev/sgx_enclave") == 0);

        /* without the sys root the same tree passes (the names and numbers are right) */
        scan_ok(&d);
        CHECK(discovery_has_dcap(&d));
        CHECK_INT(d.n_refused, 0);
        teardown();
}

static void test_discovery_issue10_uevent_agrees(void) {
        struct discovery d;

        /* in-kernel names */
        setup();
        chr_in("sgx_enclave", ENC_MAJ, ENC_MIN);
        chr_in("sgx_provision", ENC_MAJ, PRV_MIN);
        mkdir_in("sgx");
        link_in("sgx/enclave", "../sgx_enclave");
        uevent_in(ENC_MAJ, ENC_MIN, "MAJOR=10\nMINOR=125\nDEVNAME=sgx_enclave\nDEVMODE=0666\n");
        uevent_in(ENC_MAJ, PRV_MIN, "MAJOR=10\nMINOR=126\nDEVNAME=sgx_provision\nDEVMODE=0660");
        scan_sys_ok(&d);
        CHECK(discovery_has_dcap(&d));
        CHECK(discovery_has_provision(&d));
        CHECK_INT(d.n_entries, 3);
        CHECK_INT(d.n_refused, 0);
        teardown();

        /* the DCAP driver's names in its directory; a missing uevent is no error */
        setup();
        mkdir_in("sgx");
        chr_in("sgx/enclave", ENC_MAJ, 55);
        chr_in("sgx/provision", ENC_MAJ, 56);
        chr_in("isgx", ENC_MAJ, ISGX_MIN);
        uevent_in(ENC_MAJ, 55, "DEVNAME=sgx/enclave\n");
        uevent_in(ENC_MAJ, 56, "DEVNAME=sgx/provision\n");
        scan_sys_ok(&d);
        CHECK(discovery_has_dcap(&d));
        CHECK(discovery_has_provision(&d));
        CHECK(discovery_has_ias(&d));
        CHECK_INT(d.n_refused, 0);
        teardown();
}

/* a uevent without DEVNAME=, and one naming the provisioning device for an enclave name */
static void test_discovery_issue10_uevent_no_name_or_wrong_role(void) {
        struct discovery d;
        const struct discovery_refused *x;

        setup();
        chr_in("sgx_enclave", ENC_MAJ, ENC_MIN);
        chr_in("isgx", ENC_MAJ, ISGX_MIN);
        uevent_in(ENC_MAJ, ENC_MIN, "MAJOR=10\nMINOR=125\n");
        uevent_in(ENC_MAJ, ISGX_MIN, "DEVNAME=sgx_provision\n");
        scan_sys_ok(&d);
        check_nothing_used(&d);
        x = refused(&d, "sgx_enclave");
        CHECK(x && x->reason == DISCOVERY_REFUSED_KERNEL_NONAME && x->kernel_name[0] == '\0');
        x = refused(&d, "isgx");
        CHECK(x && x->reason == DISCOVERY_REFUSED_KERNEL_NAME &&
              strcmp(x->kernel_name, "sgx_provision") == 0);
        teardown();
}

/* a refused name does not hide a good one: the next name of the role is chosen */
static void test_discovery_issue10_refused_beside_good(void) {
        struct discovery d;

        setup();
        chr_in("mem", 1, 1);
        link_in("sgx_enclave", "mem");
        mkdir_in("sgx");
        chr_in("sgx/enclave", ENC_MAJ, ENC_MIN);
        chr_in("sgx/provision", ENC_MAJ, PRV_MIN);
        scan_ok(&d);
        CHECK(discovery_has_dcap(&d));
        CHECK(discovery_has_provision(&d));
        CHECK_STR(d.dcap_enclave.host_path, "/dev/sgx/enclave");
        CHECK_INT(d.n_entries, 2);
        CHECK_INT(d.n_refused, 1);
        CHECK_STR(d.refused[0].name, "sgx_enclave");
        teardown();
}

static void test_discovery_same_refusals(void) {
        struct discovery a, b;
        char p[256];

        setup();
        chr_in("sgx_enclave", ENC_MAJ, ENC_MIN);
        scan_ok(&a);
        scan_ok(&b);
        CHECK(discovery_same_refusals(&a, &b));

        chr_in("mem", 1, 1);
        link_in("isgx", "mem");
        scan_ok(&b);
        CHECK(discovery_same_devices(&a, &b));
        CHECK(!discovery_same_refusals(&a, &b));
        a = b;
        scan_ok(&b);
        CHECK(discovery_same_refusals(&a, &b));

        /* the same name now leads elsewhere */
        snprintf(p, sizeof(p), "%s/isgx", root);
        CHECK(unlink(p) == 0);
        chr_in("zero", 1, 5);
        link_in("isgx", "zero");
        scan_ok(&b);
        CHECK(!discovery_same_refusals(&a, &b));
        teardown();
}

static void test_discovery_parse_uevent(void) {
        char n[16];
        const char *t;

        t = "MAJOR=10\nMINOR=125\nDEVNAME=sgx_enclave\nDEVMODE=0666\n";
        CHECK_INT(discovery_parse_uevent(t, strlen(t), n, sizeof(n)), 0);
        CHECK_STR(n, "sgx_enclave");
        t = "DEVNAME=sgx/enclave"; /* no newline at the end */
        CHECK_INT(discovery_parse_uevent(t, strlen(t), n, sizeof(n)), 0);
        CHECK_STR(n, "sgx/enclave");
        t = "XDEVNAME=mem\nDEVNAME=isgx\n"; /* the key starts a line */
        CHECK_INT(discovery_parse_uevent(t, strlen(t), n, sizeof(n)), 0);
        CHECK_STR(n, "isgx");
        t = "DEVNAME=sgx_enclave\n";
        CHECK_INT(discovery_parse_uevent(t, 12, n, sizeof(n)), 0); /* |len| is the end */
        CHECK_STR(n, "sgx_");
        t = "MAJOR=10\nMINOR=125\n";
        CHECK_INT(discovery_parse_uevent(t, strlen(t), n, sizeof(n)), -ENOENT);
        CHECK_INT(discovery_parse_uevent("", 0, n, sizeof(n)), -ENOENT);
        t = "DEVNAME=\n";
        CHECK_INT(discovery_parse_uevent(t, strlen(t), n, sizeof(n)), -EINVAL);
        CHECK_INT(discovery_parse_uevent("DEVNAME=a\0b", 11, n, sizeof(n)), -EINVAL);
        t = "DEVNAME=a_name_of_sixteen\n";
        CHECK_INT(discovery_parse_uevent(t, strlen(t), n, sizeof(n)), -ENAMETOOLONG);
        t = "DEVNAME=sixteen_chars_xx\n"; /* 16 bytes and the NUL do not fit in 16 */
        CHECK_INT(discovery_parse_uevent(t, strlen(t), n, sizeof(n)), -ENAMETOOLONG);
        t = "DEVNAME=fifteen_chars_x\n";
        CHECK_INT(discovery_parse_uevent(t, strlen(t), n, sizeof(n)), 0);
        CHECK_STR(n, "fifteen_chars_x");
}

static void test_discovery_sgx_names(void) {
        CHECK(discovery_is_sgx_name("sgx_enclave", SGX_ROLE_ENCLAVE));
        CHECK(discovery_is_sgx_name("sgx/enclave", SGX_ROLE_ENCLAVE));
        CHECK(discovery_is_sgx_name("sgx/sgx_enclave", SGX_ROLE_ENCLAVE));
        CHECK(discovery_is_sgx_name("sgx", SGX_ROLE_ENCLAVE));
        CHECK(discovery_is_sgx_name("isgx", SGX_ROLE_ENCLAVE));
        CHECK(discovery_is_sgx_name("sgx_provision", SGX_ROLE_PROVISION));
        CHECK(discovery_is_sgx_name("sgx/provision", SGX_ROLE_PROVISION));
        CHECK(discovery_is_sgx_name("sgx_prv", SGX_ROLE_PROVISION));
        CHECK(!discovery_is_sgx_name("sgx_provision", SGX_ROLE_ENCLAVE));
        CHECK(!discovery_is_sgx_name("sgx_enclave", SGX_ROLE_PROVISION));
        CHECK(!discovery_is_sgx_name("mem", SGX_ROLE_ENCLAVE));
        CHECK(!discovery_is_sgx_name("sgx_enclave/", SGX_ROLE_ENCLAVE));
        CHECK(!discovery_is_sgx_name("", SGX_ROLE_ENCLAVE));
        CHECK_STR(discovery_refusal_name(DISCOVERY_REFUSED_NOT_CHAR), "not-char");
        CHECK_STR(discovery_refusal_name(DISCOVERY_REFUSED_NOT_MISC), "not-misc");
        CHECK_STR(discovery_refusal_name(DISCOVERY_REFUSED_NOT_SGX_NAME), "not-sgx-name");
        CHECK_STR(discovery_refusal_name(DISCOVERY_REFUSED_KERNEL_NAME), "kernel-name");
        CHECK_STR(discovery_refusal_name(DISCOVERY_REFUSED_KERNEL_NONAME), "kernel-no-name");
        CHECK(strstr(discovery_refusal_reason(DISCOVERY_REFUSED_NOT_MISC), "major 10") != NULL);
}

static void test_discovery_names(void) {
        CHECK_STR(sgx_class_name(SGX_CLASS_DCAP), "dcap");
        CHECK_STR(sgx_class_name(SGX_CLASS_IAS), "ias");
        CHECK_STR(sgx_role_name(SGX_ROLE_ENCLAVE), "enclave");
        CHECK_STR(sgx_role_name(SGX_ROLE_PROVISION), "provision");
}

int main(void) {
        log_setup(LOG_LEVEL_DEBUG, LOG_FORMAT_TEXT); /* run the debug lines too */
        RUN(test_discovery_in_kernel_driver);
        RUN(test_discovery_dcap_driver_dir);
        RUN(test_discovery_sgx_dir_sgx_enclave);
        RUN(test_discovery_legacy_sgx_char_device);
        RUN(test_discovery_legacy_takes_only_sgx_prv);
        RUN(test_discovery_non_legacy_ignores_sgx_prv);
        RUN(test_discovery_ias_only);
        RUN(test_discovery_dcap_and_ias);
        RUN(test_discovery_empty_root);
        RUN(test_discovery_missing_root);
        RUN(test_discovery_root_is_a_file);
        RUN(test_discovery_root_is_a_symlink);
        RUN(test_discovery_udev_links_are_one_device);
        RUN(test_discovery_link_host_path_is_real_node);
        RUN(test_discovery_absolute_link);
        RUN(test_discovery_linked_directory);
        RUN(test_discovery_two_nodes_same_devnum);
        RUN(test_discovery_legacy_through_link);
        RUN(test_discovery_dangling_link_ignored);
        RUN(test_discovery_link_escaping_root_ignored);
        RUN(test_discovery_dotdot_after_device_ignored);
        RUN(test_discovery_link_dotdot_inside_root);
        RUN(test_discovery_link_loop_ignored);
        RUN(test_discovery_link_chain_within_limit);
        RUN(test_discovery_regular_file_ignored);
        RUN(test_discovery_link_to_regular_file_ignored);
        RUN(test_discovery_provision_alone);
        RUN(test_discovery_deterministic);
        RUN(test_discovery_same_devices);
        RUN(test_discovery_names);
        RUN(test_discovery_issue10_link_to_mem_refused);
        RUN(test_discovery_issue10_dir_link_to_mem_refused);
        RUN(test_discovery_issue10_plain_node_wrong_numbers_refused);
        RUN(test_discovery_issue10_legacy_and_block_refused);
        RUN(test_discovery_issue10_chain_outside_sgx_names_refused);
        RUN(test_discovery_issue10_enclave_name_on_provision_node_refused);
        RUN(test_discovery_issue10_uevent_names_another_device);
        RUN(test_discovery_issue10_uevent_agrees);
        RUN(test_discovery_issue10_uevent_no_name_or_wrong_role);
        RUN(test_discovery_issue10_refused_beside_good);
        RUN(test_discovery_same_refusals);
        RUN(test_discovery_parse_uevent);
        RUN(test_discovery_sgx_names);
        return unit_done();
}
