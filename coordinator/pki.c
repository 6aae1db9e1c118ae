/* `faultline pki`: fleet CA and certificates with mbedTLS. See pki.h.
 *
 * Certificates carry exactly what the TLS engine checks (fl_tls.c):
 * basicConstraints, keyUsage, extendedKeyUsage (mbedTLS enforces
 * serverAuth/clientAuth during the handshake when present), and a DNS
 * SAN equal to the CN so name checks work whichever one a verifier
 * reads. Keys are EC P-256: small, fast handshakes, supported everywhere. */
#include "pki.h"

#include <fcntl.h>
#include <getopt.h>
#include <mbedtls/asn1write.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecp.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/oid.h>
#include <mbedtls/pk.h>
#include <mbedtls/x509_crt.h>
#include <sys/stat.h>
#include <time.h>

#include "fl_parse.h"
#include "fl_util.h"
#include "inventory.h"
#include "run.h"

#define PKI_PEM_MAX 8192

struct pki_rng {
        mbedtls_entropy_context entropy;
        mbedtls_ctr_drbg_context drbg;
};

static int rng_init(struct pki_rng *r)
{
        static const char pers[] = "faultline-pki";
        mbedtls_entropy_init(&r->entropy);
        mbedtls_ctr_drbg_init(&r->drbg);
        return mbedtls_ctr_drbg_seed(&r->drbg, mbedtls_entropy_func, &r->entropy,
                                     (const unsigned char *)pers, sizeof(pers) - 1);
}

static void rng_free(struct pki_rng *r)
{
        mbedtls_ctr_drbg_free(&r->drbg);
        mbedtls_entropy_free(&r->entropy);
}

static int mbed_fail(int rv, const char *what, char *err, size_t errlen)
{
        char buf[128];
        mbedtls_strerror(rv, buf, sizeof(buf));
        snprintf(err, errlen, "%s: %s", what, buf);
        return -EINVAL;
}

/* Write data to path with mode 0600 via a temporary file and rename, so a
 * reader never sees half a key. */
static int write_private(const char *path, const void *data, size_t len, bool force, char *err,
                         size_t errlen)
{
        char tmp[4096];
        if (!force && access(path, F_OK) == 0) {
                snprintf(err, errlen, "%s exists (use --force to replace it)", path);
                return -EEXIST;
        }
        if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid()) >= sizeof(tmp))
                return -ENAMETOOLONG;
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0) {
                int e = errno;
                snprintf(err, errlen, "%s: %s", tmp, strerror(e));
                return -e;
        }
        const char *p = data;
        size_t left = len;
        int rv = 0;
        while (left && rv == 0) {
                ssize_t n = write(fd, p, left);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        rv = -errno;
                else
                        p += n, left -= (size_t)n;
        }
        if (rv == 0 && (fchmod(fd, 0600) < 0 || fsync(fd) < 0))
                rv = -errno;
        close(fd);
        if (rv == 0 && rename(tmp, path) < 0)
                rv = -errno;
        if (rv < 0) {
                unlink(tmp);
                snprintf(err, errlen, "%s: %s", path, strerror(-rv));
        }
        return rv;
}

static int ensure_dir(const char *dir, char *err, size_t errlen)
{
        struct stat st;
        if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
                int e = errno;
                snprintf(err, errlen, "%s: %s", dir, strerror(e));
                return -e;
        }
        if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
                snprintf(err, errlen, "%s: not a directory", dir);
                return -ENOTDIR;
        }
        return 0;
}

static void fmt_utc(time_t t, char *buf, size_t size)
{
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(buf, size, "%Y%m%d%H%M%S", &tm);
}

static int set_validity(mbedtls_x509write_cert *crt, const struct coord_pki_opts *o,
                        unsigned default_days)
{
        char from[16], to[16];
        time_t now = time(NULL);
        if (o->expired) {
                fmt_utc(now - 2 * 86400, from, sizeof(from));
                fmt_utc(now - 86400, to, sizeof(to));
        } else {
                unsigned days = o->days ? o->days : default_days;
                /* A minute of slack for clocks slightly behind ours. */
                fmt_utc(now - 60, from, sizeof(from));
                fmt_utc(now + (time_t)days * 86400, to, sizeof(to));
        }
        return mbedtls_x509write_crt_set_validity(crt, from, to);
}

static int set_serial(mbedtls_x509write_cert *crt, struct pki_rng *r)
{
        mbedtls_mpi serial;
        unsigned char b[16];
        mbedtls_mpi_init(&serial);
        int rv = mbedtls_ctr_drbg_random(&r->drbg, b, sizeof(b));
        b[0] &= 0x7f; /* positive */
        b[0] |= 0x01; /* and never zero */
        if (rv == 0)
                rv = mbedtls_mpi_read_binary(&serial, b, sizeof(b));
        if (rv == 0)
                rv = mbedtls_x509write_crt_set_serial(crt, &serial);
        mbedtls_mpi_free(&serial);
        return rv;
}

/* subjectAltName ::= SEQUENCE { dNSName [2] IA5String } */
static int set_san(mbedtls_x509write_cert *crt, const char *name)
{
        unsigned char buf[FL_NAME_LEN + 16];
        unsigned char *p = buf + sizeof(buf);
        size_t len = 0, nlen = strlen(name);
        int ret; /* MBEDTLS_ASN1_CHK_ADD assigns it */
        MBEDTLS_ASN1_CHK_ADD(
            len, mbedtls_asn1_write_raw_buffer(&p, buf, (const unsigned char *)name, nlen));
        MBEDTLS_ASN1_CHK_ADD(len, mbedtls_asn1_write_len(&p, buf, nlen));
        MBEDTLS_ASN1_CHK_ADD(len,
                             mbedtls_asn1_write_tag(&p, buf, MBEDTLS_ASN1_CONTEXT_SPECIFIC | 2));
        MBEDTLS_ASN1_CHK_ADD(len, mbedtls_asn1_write_len(&p, buf, len));
        MBEDTLS_ASN1_CHK_ADD(
            len, mbedtls_asn1_write_tag(&p, buf, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE));
        return mbedtls_x509write_crt_set_extension(crt, MBEDTLS_OID_SUBJECT_ALT_NAME,
                                                   MBEDTLS_OID_SIZE(MBEDTLS_OID_SUBJECT_ALT_NAME),
                                                   0, p, len);
}

/* extKeyUsage ::= SEQUENCE { KeyPurposeId } */
static int set_eku(mbedtls_x509write_cert *crt, enum fl_tls_role role)
{
        unsigned char buf[32];
        unsigned char *p = buf + sizeof(buf);
        size_t len = 0;
        int ret; /* MBEDTLS_ASN1_CHK_ADD assigns it */
        const char *oid = role == FL_TLS_SERVER ? MBEDTLS_OID_SERVER_AUTH : MBEDTLS_OID_CLIENT_AUTH;
        MBEDTLS_ASN1_CHK_ADD(
            len, mbedtls_asn1_write_oid(&p, buf, oid, MBEDTLS_OID_SIZE(MBEDTLS_OID_SERVER_AUTH)));
        MBEDTLS_ASN1_CHK_ADD(len, mbedtls_asn1_write_len(&p, buf, len));
        MBEDTLS_ASN1_CHK_ADD(
            len, mbedtls_asn1_write_tag(&p, buf, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE));
        return mbedtls_x509write_crt_set_extension(crt, MBEDTLS_OID_EXTENDED_KEY_USAGE,
                                                   MBEDTLS_OID_SIZE(MBEDTLS_OID_EXTENDED_KEY_USAGE),
                                                   0, p, len);
}

static int gen_key(mbedtls_pk_context *key, struct pki_rng *r)
{
        int rv = mbedtls_pk_setup(key, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY));
        if (rv == 0)
                rv = mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(*key),
                                         mbedtls_ctr_drbg_random, &r->drbg);
        return rv;
}

/* Sign crt with issuer_key and write NAME.crt / NAME.key (key first, so a
 * certificate never exists without its key). */
static int write_pair(const char *dir, const char *base, mbedtls_x509write_cert *crt,
                      mbedtls_pk_context *key, struct pki_rng *r, bool force, char *err,
                      size_t errlen)
{
        unsigned char pem[PKI_PEM_MAX];
        char path[4096];
        int rv = mbedtls_pk_write_key_pem(key, pem, sizeof(pem));
        if (rv != 0)
                return mbed_fail(rv, "writing the key", err, errlen);
        snprintf(path, sizeof(path), "%s/%s.key", dir, base);
        rv = write_private(path, pem, strlen((char *)pem), force, err, errlen);
        explicit_bzero(pem, sizeof(pem));
        if (rv < 0)
                return rv;
        rv = mbedtls_x509write_crt_pem(crt, pem, sizeof(pem), mbedtls_ctr_drbg_random, &r->drbg);
        if (rv != 0)
                return mbed_fail(rv, "signing the certificate", err, errlen);
        snprintf(path, sizeof(path), "%s/%s.crt", dir, base);
        return write_private(path, pem, strlen((char *)pem), force, err, errlen);
}

static bool pki_name_ok(const char *s)
{
        return coord_name_valid(s) && !strchr(s, ',');
}

int coord_pki_init(const char *dir, const char *ca_name, const struct coord_pki_opts *o, char *err,
                   size_t errlen)
{
        struct pki_rng r;
        mbedtls_pk_context key;
        mbedtls_x509write_cert crt;
        char subject[FL_NAME_LEN + 32], path[4096];
        int rv;

        if (!pki_name_ok(ca_name)) {
                snprintf(err, errlen, "CA name \"%s\": use [A-Za-z0-9._-], 1 to 63 characters",
                         ca_name);
                return -EINVAL;
        }
        if ((rv = ensure_dir(dir, err, errlen)) < 0)
                return rv;
        snprintf(path, sizeof(path), "%s/ca.key", dir);
        if (!o->force && access(path, F_OK) == 0) {
                snprintf(err, errlen, "%s exists: this directory already holds a CA", path);
                return -EEXIST;
        }
        snprintf(subject, sizeof(subject), "CN=%s,O=faultline", ca_name);
        mbedtls_pk_init(&key);
        mbedtls_x509write_crt_init(&crt);
        if ((rv = rng_init(&r)) != 0 || (rv = gen_key(&key, &r)) != 0) {
                rv = mbed_fail(rv, "generating the CA key", err, errlen);
                goto out;
        }
        mbedtls_x509write_crt_set_version(&crt, MBEDTLS_X509_CRT_VERSION_3);
        mbedtls_x509write_crt_set_md_alg(&crt, MBEDTLS_MD_SHA256);
        mbedtls_x509write_crt_set_subject_key(&crt, &key);
        mbedtls_x509write_crt_set_issuer_key(&crt, &key);
        if ((rv = mbedtls_x509write_crt_set_subject_name(&crt, subject)) != 0 ||
            (rv = mbedtls_x509write_crt_set_issuer_name(&crt, subject)) != 0 ||
            (rv = set_serial(&crt, &r)) != 0 || (rv = set_validity(&crt, o, 3650)) != 0 ||
            (rv = mbedtls_x509write_crt_set_basic_constraints(&crt, 1, 0)) != 0 ||
            (rv = mbedtls_x509write_crt_set_key_usage(&crt, MBEDTLS_X509_KU_KEY_CERT_SIGN |
                                                                MBEDTLS_X509_KU_CRL_SIGN)) != 0 ||
            (rv = mbedtls_x509write_crt_set_subject_key_identifier(&crt)) != 0) {
                rv = mbed_fail(rv, "building the CA certificate", err, errlen);
                goto out;
        }
        rv = write_pair(dir, "ca", &crt, &key, &r, o->force, err, errlen);
out:
        mbedtls_x509write_crt_free(&crt);
        mbedtls_pk_free(&key);
        rng_free(&r);
        return rv;
}

int coord_pki_issue(const char *dir, const char *name, enum fl_tls_role role,
                    const struct coord_pki_opts *o, char *err, size_t errlen)
{
        struct pki_rng r;
        mbedtls_pk_context key, ca_key;
        mbedtls_x509_crt ca;
        mbedtls_x509write_cert crt;
        char subject[FL_NAME_LEN + 32], issuer[512], path[4096];
        struct stat st;
        int rv;

        if (!pki_name_ok(name) || strcmp(name, "ca") == 0) {
                snprintf(err, errlen,
                         "name \"%s\": use the agent's inventory name ([A-Za-z0-9._-], 1 to 63 "
                         "characters, not \"ca\")",
                         name);
                return -EINVAL;
        }
        mbedtls_pk_init(&key);
        mbedtls_pk_init(&ca_key);
        mbedtls_x509_crt_init(&ca);
        mbedtls_x509write_crt_init(&crt);
        if ((rv = rng_init(&r)) != 0) {
                rv = mbed_fail(rv, "seeding the RNG", err, errlen);
                goto out;
        }
        snprintf(path, sizeof(path), "%s/ca.key", dir);
        if (stat(path, &st) == 0 && (st.st_mode & 077)) {
                snprintf(err, errlen, "%s is readable by group or others; chmod 600 it", path);
                rv = -EPERM;
                goto out;
        }
        if ((rv = mbedtls_pk_parse_keyfile(&ca_key, path, NULL)) != 0) {
                rv = mbed_fail(rv, path, err, errlen);
                if (access(path, F_OK) < 0)
                        snprintf(err, errlen, "%s: no CA here (run 'faultline pki init %s')", path,
                                 dir);
                goto out;
        }
        snprintf(path, sizeof(path), "%s/ca.crt", dir);
        if ((rv = mbedtls_x509_crt_parse_file(&ca, path)) != 0) {
                rv = mbed_fail(rv, path, err, errlen);
                goto out;
        }
        if (mbedtls_pk_check_pair(&ca.pk, &ca_key) != 0) {
                snprintf(err, errlen, "%s/ca.key does not belong to %s", dir, path);
                rv = -EINVAL;
                goto out;
        }
        /* The issuer is the CA's subject; mbedTLS prints it "CN=x, O=y" and
         * parses it back without the blanks. */
        char dn[512];
        size_t j = 0;
        if (mbedtls_x509_dn_gets(dn, sizeof(dn), &ca.subject) < 0) {
                snprintf(err, errlen, "%s: unreadable subject", path);
                rv = -EINVAL;
                goto out;
        }
        for (size_t i = 0; dn[i] && j < sizeof(issuer) - 1; i++)
                if (!(dn[i] == ' ' && i > 0 && dn[i - 1] == ','))
                        issuer[j++] = dn[i];
        issuer[j] = 0;
        snprintf(subject, sizeof(subject), "CN=%s,O=faultline,OU=%s", name,
                 role == FL_TLS_SERVER ? "agent" : "coordinator");

        if ((rv = gen_key(&key, &r)) != 0) {
                rv = mbed_fail(rv, "generating the key", err, errlen);
                goto out;
        }
        mbedtls_x509write_crt_set_version(&crt, MBEDTLS_X509_CRT_VERSION_3);
        mbedtls_x509write_crt_set_md_alg(&crt, MBEDTLS_MD_SHA256);
        mbedtls_x509write_crt_set_subject_key(&crt, &key);
        mbedtls_x509write_crt_set_issuer_key(&crt, &ca_key);
        if ((rv = mbedtls_x509write_crt_set_subject_name(&crt, subject)) != 0 ||
            (rv = mbedtls_x509write_crt_set_issuer_name(&crt, issuer)) != 0 ||
            (rv = set_serial(&crt, &r)) != 0 || (rv = set_validity(&crt, o, 825)) != 0 ||
            (rv = mbedtls_x509write_crt_set_basic_constraints(&crt, 0, -1)) != 0 ||
            (rv = mbedtls_x509write_crt_set_key_usage(&crt, MBEDTLS_X509_KU_DIGITAL_SIGNATURE)) !=
                0 ||
            (rv = mbedtls_x509write_crt_set_subject_key_identifier(&crt)) != 0 ||
            (rv = mbedtls_x509write_crt_set_authority_key_identifier(&crt)) != 0 ||
            (rv = set_san(&crt, name)) != 0 || (rv = set_eku(&crt, role)) != 0) {
                rv = mbed_fail(rv, "building the certificate", err, errlen);
                goto out;
        }
        rv = write_pair(dir, name, &crt, &key, &r, o->force, err, errlen);
out:
        mbedtls_x509write_crt_free(&crt);
        mbedtls_x509_crt_free(&ca);
        mbedtls_pk_free(&ca_key);
        mbedtls_pk_free(&key);
        rng_free(&r);
        return rv;
}

static void pki_usage(FILE *out)
{
        fprintf(out,
                "Usage: faultline pki init DIR [--name CA-NAME] [--days N] [--force]\n"
                "       faultline pki issue DIR NAME --agent|--coordinator [--days N]\n"
                "                                    [--expired] [--force]\n"
                "\n"
                "init   creates the fleet CA: DIR/ca.crt (copy to every host) and DIR/ca.key\n"
                "       (keep it offline)\n"
                "issue  creates DIR/NAME.crt and DIR/NAME.key signed by DIR's CA. For an\n"
                "       agent NAME is its inventory name (the coordinator checks it); for the\n"
                "       coordinator, the name agents list in tls.allowed-subjects (default\n"
                "       file names the coordinator looks for: coordinator.crt/.key)\n"
                "--expired issues a certificate that expired yesterday (to test refusal)\n"
                "Every file is written mode 0600.\n");
}

int coord_pki_main(int argc, char **argv)
{
        enum { O_NAME = 256, O_DAYS, O_FORCE, O_AGENT, O_COORD, O_EXPIRED };
        static const struct option opts[] = {
            {"name", required_argument, NULL, O_NAME},
            {"days", required_argument, NULL, O_DAYS},
            {"force", no_argument, NULL, O_FORCE},
            {"agent", no_argument, NULL, O_AGENT},
            {"coordinator", no_argument, NULL, O_COORD},
            {"expired", no_argument, NULL, O_EXPIRED},
            {"help", no_argument, NULL, 'h'},
            {0},
        };
        struct coord_pki_opts o = {0};
        const char *ca_name = "faultline-ca";
        int role = -1, c;
        uint64_t u;
        char err[FL_MSG_LEN] = "";

        optind = 0;
        while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
                switch (c) {
                case O_NAME:
                        ca_name = optarg;
                        break;
                case O_DAYS:
                        if (fl_parse_u64(optarg, &u) < 0 || u < 1 || u > 36500) {
                                fprintf(stderr, "faultline pki: --days \"%s\": 1 to 36500\n",
                                        optarg);
                                return COORD_EXIT_USAGE;
                        }
                        o.days = (unsigned)u;
                        break;
                case O_FORCE:
                        o.force = true;
                        break;
                case O_AGENT:
                        role = FL_TLS_SERVER;
                        break;
                case O_COORD:
                        role = FL_TLS_CLIENT;
                        break;
                case O_EXPIRED:
                        o.expired = true;
                        break;
                case 'h':
                        pki_usage(stdout);
                        return 0;
                default:
                        pki_usage(stderr);
                        return COORD_EXIT_USAGE;
                }
        }
        int n = argc - optind;
        const char *sub = n > 0 ? argv[optind] : "";
        int rv;
        if (strcmp(sub, "init") == 0 && n == 2) {
                rv = coord_pki_init(argv[optind + 1], ca_name, &o, err, sizeof(err));
                if (rv == 0)
                        printf("CA created: %s/ca.crt (distribute) and %s/ca.key (keep secret)\n",
                               argv[optind + 1], argv[optind + 1]);
        } else if (strcmp(sub, "issue") == 0 && n == 3 && role >= 0) {
                rv = coord_pki_issue(argv[optind + 1], argv[optind + 2], (enum fl_tls_role)role, &o,
                                     err, sizeof(err));
                if (rv == 0)
                        printf("issued %s certificate %s/%s.crt and key %s/%s.key\n",
                               role == FL_TLS_SERVER ? "agent" : "coordinator", argv[optind + 1],
                               argv[optind + 2], argv[optind + 1], argv[optind + 2]);
        } else {
                pki_usage(stderr);
                return COORD_EXIT_USAGE;
        }
        if (rv < 0) {
                fprintf(stderr, "faultline pki %s: %s\n", sub, err[0] ? err : strerror(-rv));
                return rv == -EINVAL || rv == -EEXIST ? COORD_EXIT_USAGE : COORD_EXIT_FAILURE;
        }
        return 0;
}
