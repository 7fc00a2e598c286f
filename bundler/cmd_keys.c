/* kubeferry keygen / kubeferry sign: key pairs and detached signatures. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "bundler/kf_bundler.h"

#define PROG "kubeferry"

static const char exit_codes[] =
	"\n"
	"Exit codes:\n"
	"  0  success\n"
	"  1  verification failed\n"
	"  2  usage error, bad key or wrong passphrase\n"
	"  3  I/O error\n";

static void keygen_usage(FILE *f)
{
	fprintf(f,
	        "Usage: kubeferry keygen -s SECRET -p PUBLIC [-W] [--force]\n"
	        "\n"
	        "Create an Ed25519 key pair: SECRET is a PKCS#8 PEM private key (mode\n"
	        "0600), PUBLIC a minisign public key file that 'minisign -V -p' accepts.\n"
	        "\n"
	        "Options:\n"
	        "  -s, --secret-key FILE   where to write the secret key\n"
	        "  -p, --public-key FILE   where to write the public key\n"
	        "  -W, --no-passphrase     leave the secret key unencrypted\n"
	        "  -f, --force             replace existing key files\n"
	        "  -h, --help              show this help\n"
	        "\n"
	        "Without -W the secret key is encrypted (AES-256-CBC, scrypt); the\n"
	        "passphrase is the first line of $KUBEFERRY_PASSPHRASE_FILE, or is asked\n"
	        "twice on the terminal.\n"
	        "%s", exit_codes);
}

static void sign_usage(FILE *f)
{
	fprintf(f,
	        "Usage: kubeferry sign -s SECRET [-t COMMENT] [-x SIGFILE] FILE\n"
	        "\n"
	        "Write a minisign signature (algorithm ED) of FILE to FILE.minisig.\n"
	        "SECRET is a kubeferry secret key or an unencrypted minisign secret key\n"
	        "(minisign -G -W). Check it with: minisign -V -p PUBLIC -m FILE\n"
	        "\n"
	        "Options:\n"
	        "  -s, --secret-key FILE       the secret key\n"
	        "  -t, --trusted-comment TEXT  signed comment (default:\n"
	        "                              timestamp:<SOURCE_DATE_EPOCH or now>\\tfile:<name>\\thashed)\n"
	        "  -x, --signature FILE        where to write the signature\n"
	        "  -h, --help                  show this help\n"
	        "\n"
	        "The passphrase of an encrypted key is the first line of\n"
	        "$KUBEFERRY_PASSPHRASE_FILE, or is asked on the terminal.\n"
	        "%s", exit_codes);
}

int kf_cmd_keygen(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"secret-key", required_argument, NULL, 's'},
		{"public-key", required_argument, NULL, 'p'},
		{"no-passphrase", no_argument, NULL, 'W'},
		{"force", no_argument, NULL, 'f'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int rc = KF_OK, c, nopass = 0, force = 0;
	const char *sec = NULL, *pub = NULL;
	char pass[1024], b64[64], id[17];
	kf_err e = {0};
	kf_pubkey pk;

	pass[0] = '\0';
	optind = 0;
	while ((c = getopt_long(argc, argv, "s:p:Wfh", longopts, NULL)) != -1) {
		switch (c) {
		case 's': sec = optarg; break;
		case 'p': pub = optarg; break;
		case 'W': nopass = 1; break;
		case 'f': force = 1; break;
		case 'h': keygen_usage(stdout); goto out;
		default: keygen_usage(stderr); rc = KF_EUSAGE; goto out;
		}
	}
	if (!sec || !pub || optind != argc) {
		fprintf(stderr, PROG ": error: keygen needs -s SECRET and -p PUBLIC and nothing else\n\n");
		keygen_usage(stderr);
		rc = KF_EUSAGE;
		goto out;
	}
	if (!nopass) {
		/* Ask before generating so a typo costs nothing. */
		rc = kf_keys_passphrase("Passphrase for the new secret key: ", 1, pass,
		                        sizeof pass, &e);
		if (rc == KF_OK && pass[0] == '\0')
			rc = kf_err_set(&e, KF_EUSAGE,
			                "empty passphrase (use -W for an unencrypted secret key)");
		if (rc != KF_OK) {
			kf_err_print(PROG, &e);
			goto out;
		}
	}
	rc = kf_keys_generate(sec, pub, nopass ? NULL : pass, force, &e);
	/* Read the public key back (not the secret one: that would ask for
	 * the passphrase a third time on a terminal). */
	if (rc == KF_OK)
		rc = kf_keys_load_public(pub, NULL, &pk, &e);
	if (rc != KF_OK) {
		kf_err_print(PROG, &e);
		goto out;
	}
	kf_keys_public_b64(&pk, b64, sizeof b64);
	kf_keys_keyid_str(pk.keyid, id);
	printf("secret key: %s (%s)\n", sec, nopass ? "not encrypted" : "encrypted");
	printf("public key: %s\n", pub);
	printf("key id: %s\n", id);
	printf("%s\n", b64);
out:
	OPENSSL_cleanse(pass, sizeof pass);
	return rc;
}

/* SOURCE_DATE_EPOCH when set (reproducible builds), else now. */
static int timestamp(char *out, size_t n, kf_err *e)
{
	const char *s = getenv("SOURCE_DATE_EPOCH");

	if (s && *s) {
		for (const char *p = s; *p; p++)
			if (!isdigit((unsigned char)*p))
				return kf_err_set(e, KF_EUSAGE,
				                  "SOURCE_DATE_EPOCH is not a number of seconds: '%s'", s);
		snprintf(out, n, "%s", s);
	} else {
		snprintf(out, n, "%lld", (long long)time(NULL));
	}
	return KF_OK;
}

int kf_cmd_sign(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"secret-key", required_argument, NULL, 's'},
		{"trusted-comment", required_argument, NULL, 't'},
		{"signature", required_argument, NULL, 'x'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int rc = KF_OK, c;
	const char *sec = NULL, *tc = NULL, *sigpath = NULL, *file, *base;
	char *defsig = NULL, *deftc = NULL, *text = NULL, ts[32], id[17];
	char uc[128];
	unsigned char digest[KF_BLAKE2B_LEN];
	kf_seckey *k = NULL;
	kf_pubkey pk;
	kf_err e = {0};

	optind = 0;
	while ((c = getopt_long(argc, argv, "s:t:x:h", longopts, NULL)) != -1) {
		switch (c) {
		case 's': sec = optarg; break;
		case 't': tc = optarg; break;
		case 'x': sigpath = optarg; break;
		case 'h': sign_usage(stdout); goto out;
		default: sign_usage(stderr); rc = KF_EUSAGE; goto out;
		}
	}
	if (!sec || optind + 1 != argc) {
		fprintf(stderr, PROG ": error: sign needs -s SECRET and exactly one FILE\n\n");
		sign_usage(stderr);
		rc = KF_EUSAGE;
		goto out;
	}
	file = argv[optind];
	if (!sigpath) {
		size_t n = strlen(file) + sizeof ".minisig";
		defsig = malloc(n);
		if (!defsig) {
			rc = kf_err_set(&e, KF_EIO, "out of memory");
			goto fail;
		}
		snprintf(defsig, n, "%s.minisig", file);
		sigpath = defsig;
	}
	if (!tc) {
		size_t n;
		rc = timestamp(ts, sizeof ts, &e);
		if (rc != KF_OK)
			goto fail;
		base = strrchr(file, '/');
		base = base ? base + 1 : file;
		n = strlen(base) + sizeof ts + 64;
		deftc = malloc(n);
		if (!deftc) {
			rc = kf_err_set(&e, KF_EIO, "out of memory");
			goto fail;
		}
		/* minisign 0.11's default, so both tools' signatures read alike. */
		snprintf(deftc, n, "timestamp:%s\tfile:%s\thashed", ts, base);
		tc = deftc;
	}
	rc = kf_keys_load_secret(sec, &k, &e);
	if (rc != KF_OK)
		goto fail;
	rc = kf_digest_file(file, KF_DIGEST_BLAKE2B512, digest, NULL, &e);
	if (rc != KF_OK)
		goto fail;
	kf_keys_public_of(k, &pk);
	kf_keys_keyid_str(pk.keyid, id);
	snprintf(uc, sizeof uc, "signature from kubeferry secret key %s", id);
	rc = kf_sig_sign(k, digest, uc, tc, &text, &e);
	if (rc != KF_OK) {
		kf_err_prefix(&e, "cannot sign %s", file);
		goto fail;
	}
	rc = kf_write_file_atomic(sigpath, text, strlen(text), 0644, 1, &e);
	if (rc != KF_OK)
		goto fail;
	printf("signature of %s written to %s (key id %s)\n", file, sigpath, id);
	goto out;
fail:
	kf_err_print(PROG, &e);
out:
	kf_keys_free_secret(k);
	free(defsig);
	free(deftc);
	free(text);
	return rc;
}
