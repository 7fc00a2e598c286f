/* keys: base64 and format parsing, keygen, sign/verify, every verify
 * failure, minisign secret keys, and interop with the stock minisign. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "keys/kf_keys.h"
#include "keys/keys_internal.h"
#include "kf_test.h"

static char dir[256];

static const char *path_in(const char *name)
{
	static char bufs[8][512];
	static int i;
	char *b = bufs[i++ % 8];
	snprintf(b, 512, "%s/%s", dir, name);
	return b;
}

static int exists(const char *p)
{
	struct stat st;
	return lstat(p, &st) == 0;
}

static void write_text(const char *p, const char *text)
{
	kf_err e = {0};
	CHECK_INT(kf_write_file_atomic(p, text, strlen(text), 0600, 1, &e), KF_OK);
}

static char *read_text(const char *p, size_t *n)
{
	char *t = NULL;
	kf_err e = {0};
	CHECK_INT(kf_read_file(p, 1 << 20, &t, n, &e), KF_OK);
	return t;
}

/* Run a program (argument vector, no shell) quietly; its exit status, or
 * 127 when it cannot be run. stdin is fed from in_path when given. */
static int run(const char *in_path, char *const argv[])
{
	int status = 0;
	pid_t pid = fork();

	if (pid < 0)
		return -1;
	if (pid == 0) {
		int in = open(in_path ? in_path : "/dev/null", O_RDONLY);
		int null = open("/dev/null", O_WRONLY);
		if (in >= 0)
			dup2(in, 0);
		if (null >= 0) {
			dup2(null, 1);
			dup2(null, 2);
		}
		execvp(argv[0], argv);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) < 0)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int have_minisign(void)
{
	char *argv[] = {"minisign", "-v", NULL};
	return run(NULL, argv) == 0;
}

/* ---- base64 and lines -------------------------------------------------- */

static void t_base64(void)
{
	static const struct {
		const char *in;
		long want; /* decoded length, -1 invalid */
		const char *bytes;
	} cases[] = {
		{"aGVsbG8=", 5, "hello"},
		{"aGVsbG8h", 6, "hello!"},
		{"aGVsbA==", 4, "hell"},
		{"", -1, NULL},
		{"aGVsbG8", -1, NULL},      /* length not a multiple of 4 */
		{"aGVs bG8=", -1, NULL},    /* whitespace */
		{"aGV*bG8=", -1, NULL},     /* bad character */
		{"aG=sbG8=", -1, NULL},     /* padding inside */
		{"aGVsb===", -1, NULL},     /* three pad characters */
		{"aGVsbG8=aGVs", -1, NULL}, /* padding then data */
	};
	unsigned char out[16];
	char enc[32];

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		long got = kf_b64_decode(cases[i].in, strlen(cases[i].in), out, sizeof out);
		if (got != cases[i].want)
			fprintf(stderr, "base64 case %zu: '%s'\n", i, cases[i].in);
		CHECK_INT(got, cases[i].want);
		if (cases[i].want > 0)
			CHECK(memcmp(out, cases[i].bytes, (size_t)got) == 0);
	}
	/* Capacity: 6 bytes do not fit in 5. */
	CHECK_INT(kf_b64_decode("aGVsbG8h", 8, out, 5), -1);
	kf_b64_encode((const unsigned char *)"hello", 5, enc);
	CHECK_STR(enc, "aGVsbG8=");
}

static void t_lines(void)
{
	const char *line[4];
	size_t len[4];
	const char *t = "a\r\nbc\n\nd";

	CHECK_INT(kf_keys_lines(t, strlen(t), line, len, 4), 4);
	CHECK_INT(len[0], 1);
	CHECK_INT(len[1], 2);
	CHECK_INT(len[2], 0);
	CHECK_INT(len[3], 1);
	CHECK_INT(kf_keys_lines("x\n", 2, line, len, 4), 1);
	CHECK_INT(kf_keys_lines("", 0, line, len, 4), 0);
}

static void t_keyid_str(void)
{
	const unsigned char id[8] = {0x0b, 0xdd, 0x50, 0xcd, 0xc9, 0xca, 0xd3, 0x5f};
	char s[17];
	kf_keys_keyid_str(id, s);
	CHECK_STR(s, "5FD3CAC9CD50DD0B");
}

static void t_public_parse(void)
{
	/* A public key made by minisign 0.11 (id 5FD3CAC9CD50DD0B). */
	const char *b64 = "RWQL3VDNycrTX7wTS6Ovizg/Mz88STugUy+KeXQ0gE+Jra2uKhUh62O2";
	kf_pubkey pk, pk2;
	kf_err e = {0};
	char s[17], back[64];

	CHECK_INT(kf_keys_load_public(NULL, b64, &pk, &e), KF_OK);
	kf_keys_keyid_str(pk.keyid, s);
	CHECK_STR(s, "5FD3CAC9CD50DD0B");
	kf_keys_public_b64(&pk, back, sizeof back);
	CHECK_STR(back, b64);

	write_text(path_in("ok.pub"), "untrusted comment: minisign public key 5FD3CAC9CD50DD0B\r\n"
	                              "RWQL3VDNycrTX7wTS6Ovizg/Mz88STugUy+KeXQ0gE+Jra2uKhUh62O2\r\n");
	CHECK_INT(kf_keys_load_public(path_in("ok.pub"), NULL, &pk2, &e), KF_OK);
	CHECK(memcmp(&pk, &pk2, sizeof pk) == 0);

	write_text(path_in("nocomment.pub"), "RWQL3VDNycrTX7wTS6Ovizg/Mz88STugUy+KeXQ0gE+Jra2uKhUh62O2\n");
	CHECK_INT(kf_keys_load_public(path_in("nocomment.pub"), NULL, &pk2, &e), KF_EUSAGE);
	CHECK_CONTAINS(e.msg, "nocomment.pub");

	write_text(path_in("short.pub"), "untrusted comment: x\nRWQL3VDNycrTX7wTS6Ovizg/\n");
	CHECK_INT(kf_keys_load_public(path_in("short.pub"), NULL, &pk2, &e), KF_EUSAGE);
	CHECK_CONTAINS(e.msg, "short.pub: not a minisign public key");

	/* "RUQ" is "ED": a signature algorithm, never a public key's. */
	CHECK_INT(kf_keys_load_public(NULL, "RUQL3VDNycrTX7wTS6Ovizg/Mz88STugUy+KeXQ0gE+Jra2uKhUh62O2",
	                              &pk2, &e), KF_EUSAGE);
	CHECK_CONTAINS(e.msg, "algorithm");

	CHECK_INT(kf_keys_load_public(path_in("missing.pub"), NULL, &pk2, &e), KF_EIO);
	CHECK_CONTAINS(e.msg, "missing.pub");
	CHECK_INT(kf_keys_load_public(NULL, NULL, &pk2, &e), KF_EUSAGE);
}

/* ---- keygen, load, sign, verify ---------------------------------------- */

static void t_keygen_roundtrip(void)
{
	kf_err e = {0};
	kf_seckey *k = NULL;
	kf_pubkey pk, pub;
	char *sig = NULL, *pem = NULL, tc[128];
	struct stat st;
	size_t n;

	CHECK_INT(kf_keys_generate(path_in("a.key"), path_in("a.pub"), NULL, 0, &e), KF_OK);
	CHECK(stat(path_in("a.key"), &st) == 0 && (st.st_mode & 0777) == 0600);
	pem = read_text(path_in("a.key"), &n);
	CHECK_CONTAINS(pem, "-----BEGIN PRIVATE KEY-----");
	free(pem);
	CHECK_INT(kf_keys_load_secret(path_in("a.key"), &k, &e), KF_OK);
	CHECK_INT(kf_keys_load_public(path_in("a.pub"), NULL, &pub, &e), KF_OK);
	if (!k)
		return;
	kf_keys_public_of(k, &pk);
	CHECK(memcmp(&pk, &pub, sizeof pk) == 0);
	{
		/* The id is derived from the public key, as documented. */
		unsigned char id[8];
		kf_keys_derive_keyid(pk.pk, id);
		CHECK(memcmp(id, pk.keyid, 8) == 0);
	}

	CHECK_INT(kf_sig_sign_buf(k, "data", 4, "my comment", "name:k8s\tversion:1.33.3",
	                          &sig, &e), KF_OK);
	CHECK_CONTAINS(sig, "untrusted comment: my comment\n");
	CHECK_CONTAINS(sig, "\ntrusted comment: name:k8s\tversion:1.33.3\n");
	CHECK_INT(kf_sig_verify_buf(&pub, sig, strlen(sig), "data", 4, tc, sizeof tc, "t", &e), KF_OK);
	CHECK_STR(tc, "name:k8s\tversion:1.33.3");
	/* tc too small for the comment: refused rather than cut off. */
	CHECK_INT(kf_sig_verify_buf(&pub, sig, strlen(sig), "data", 4, tc, 5, "t", &e), KF_EVERIFY);
	free(sig);
	sig = NULL;

	/* Comments that would break the file's line structure. */
	CHECK_INT(kf_sig_sign_buf(k, "d", 1, NULL, "two\nlines", &sig, &e), KF_EUSAGE);
	CHECK(sig == NULL);
	CHECK_INT(kf_sig_sign_buf(k, "d", 1, "two\nlines", "x", &sig, &e), KF_EUSAGE);
	CHECK(sig == NULL);
	kf_keys_free_secret(k);

	/* Existing files are refused, and nothing is written. */
	CHECK_INT(kf_keys_generate(path_in("b.key"), path_in("a.pub"), NULL, 0, &e), KF_EUSAGE);
	CHECK_CONTAINS(e.msg, "a.pub already exists");
	CHECK(!exists(path_in("b.key")));
	CHECK_INT(kf_keys_generate(path_in("a.key"), path_in("a.pub"), NULL, 1, &e), KF_OK);
	CHECK_INT(kf_keys_load_public(path_in("a.pub"), NULL, &pk, &e), KF_OK);
	CHECK(memcmp(&pk, &pub, sizeof pk) != 0);
}

static void t_encrypted_key(void)
{
	kf_err e = {0};
	kf_seckey *k = NULL;
	char *pem = NULL;
	size_t n;

	CHECK_INT(kf_keys_generate(path_in("enc.key"), path_in("enc.pub"), "correct horse", 0, &e),
	          KF_OK);
	pem = read_text(path_in("enc.key"), &n);
	CHECK_CONTAINS(pem, "-----BEGIN ENCRYPTED PRIVATE KEY-----");
	free(pem);

	write_text(path_in("pass"), "correct horse\n");
	write_text(path_in("wrong"), "wrong horse\n");
	setenv("KUBEFERRY_PASSPHRASE_FILE", path_in("pass"), 1);
	CHECK_INT(kf_keys_load_secret(path_in("enc.key"), &k, &e), KF_OK);
	kf_keys_free_secret(k);
	k = NULL;
	/* A passphrase file written on Windows: the \r is not part of it. */
	write_text(path_in("pass"), "correct horse\r\nsecond line ignored\n");
	CHECK_INT(kf_keys_load_secret(path_in("enc.key"), &k, &e), KF_OK);
	kf_keys_free_secret(k);
	k = NULL;
	setenv("KUBEFERRY_PASSPHRASE_FILE", path_in("wrong"), 1);
	CHECK_INT(kf_keys_load_secret(path_in("enc.key"), &k, &e), KF_EUSAGE);
	CHECK_CONTAINS(e.msg, "enc.key: cannot decrypt");
	CHECK(k == NULL);
	setenv("KUBEFERRY_PASSPHRASE_FILE", path_in("nonexistent"), 1);
	CHECK_INT(kf_keys_load_secret(path_in("enc.key"), &k, &e), KF_EIO);
	CHECK_CONTAINS(e.msg, "nonexistent");
	unsetenv("KUBEFERRY_PASSPHRASE_FILE");
}

static void t_bad_secret(void)
{
	kf_err e = {0};
	kf_seckey *k = NULL;

	write_text(path_in("junk.key"), "hello\n");
	CHECK_INT(kf_keys_load_secret(path_in("junk.key"), &k, &e), KF_EUSAGE);
	CHECK_CONTAINS(e.msg, "junk.key: not a secret key");
	/* A P-256 key is PKCS#8 too, but not Ed25519. */
	{
		char *argv[] = {"openssl", "genpkey", "-algorithm", "EC", "-pkeyopt",
		                "ec_paramgen_curve:P-256", "-out", (char *)path_in("ec.key"), NULL};
		if (run(NULL, argv) == 0) {
			CHECK_INT(kf_keys_load_secret(path_in("ec.key"), &k, &e), KF_EUSAGE);
			CHECK_CONTAINS(e.msg, "not an Ed25519 key");
		}
	}
	CHECK(k == NULL);
}

/* Build a minisign secret key file by hand: kdf as given, sk = seed||pk. */
static void make_ms_key(const char *p, const unsigned char seed[32],
                        const unsigned char pk[32], const char kdf[2])
{
	unsigned char raw[158];
	char b64[256], text[512];

	memset(raw, 0, sizeof raw);
	memcpy(raw, "Ed", 2);
	memcpy(raw + 2, kdf, 2);
	memcpy(raw + 4, "B2", 2);
	memcpy(raw + 54, "\x01\x02\x03\x04\x05\x06\x07\x08", 8);
	memcpy(raw + 62, seed, 32);
	memcpy(raw + 94, pk, 32);
	kf_b64_encode(raw, sizeof raw, b64);
	snprintf(text, sizeof text, "untrusted comment: minisign secret key\n%s\n", b64);
	write_text(p, text);
}

static void t_minisign_seckey(void)
{
	kf_err e = {0};
	kf_seckey *k = NULL;
	unsigned char seed[32], pk[32], other[32];
	kf_pubkey pub;
	char *sig = NULL, id[17];

	for (int i = 0; i < 32; i++)
		seed[i] = (unsigned char)(i * 7 + 1);
	CHECK_INT(kf_keys_pk_of_seed(seed, pk), 0);
	seed[0] ^= 1;
	CHECK_INT(kf_keys_pk_of_seed(seed, other), 0);
	seed[0] ^= 1;

	make_ms_key(path_in("ms.key"), seed, pk, "\0\0");
	CHECK_INT(kf_keys_load_secret(path_in("ms.key"), &k, &e), KF_OK);
	if (k) {
		kf_keys_public_of(k, &pub);
		kf_keys_keyid_str(pub.keyid, id);
		CHECK_STR(id, "0807060504030201");
		CHECK(memcmp(pub.pk, pk, 32) == 0);
		CHECK_INT(kf_sig_sign_buf(k, "x", 1, NULL, "tc", &sig, &e), KF_OK);
		CHECK_INT(kf_sig_verify_buf(&pub, sig, strlen(sig), "x", 1, NULL, 0, "t", &e), KF_OK);
		free(sig);
		kf_keys_free_secret(k);
		k = NULL;
	}

	/* The stored public half does not belong to the seed. */
	make_ms_key(path_in("mismatch.key"), seed, other, "\0\0");
	CHECK_INT(kf_keys_load_secret(path_in("mismatch.key"), &k, &e), KF_EUSAGE);
	CHECK_CONTAINS(e.msg, "mismatch.key: damaged minisign secret key");
	CHECK(k == NULL);

	make_ms_key(path_in("scrypt.key"), seed, pk, "Sc");
	CHECK_INT(kf_keys_load_secret(path_in("scrypt.key"), &k, &e), KF_EUSAGE);
	CHECK_CONTAINS(e.msg, "scrypt.key: encrypted minisign secret keys are not supported");
	CHECK_CONTAINS(e.msg, "minisign -C");
	CHECK(k == NULL);
}

/* ---- every way kf_sig_verify fails ------------------------------------- */

/* Replace line idx (0-based) of a signature text. */
static char *with_line(const char *sig, int idx, const char *repl)
{
	char *out = calloc(1, strlen(sig) + strlen(repl) + 8);
	const char *p = sig;
	for (int i = 0; *p; i++) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		if (i == idx)
			strcat(out, repl);
		else
			strncat(out, p, len);
		strcat(out, "\n");
		p += len + (nl ? 1 : 0);
	}
	return out;
}

/* Line 2 re-encoded after fn changed the decoded 74 bytes. */
static char *with_sigblock(const char *sig, void (*fn)(unsigned char *))
{
	const char *line[4];
	size_t len[4];
	unsigned char raw[74];
	char b64[128];

	kf_keys_lines(sig, strlen(sig), line, len, 4);
	CHECK_INT(kf_b64_decode(line[1], len[1], raw, sizeof raw), 74);
	fn(raw);
	kf_b64_encode(raw, sizeof raw, b64);
	return with_line(sig, 1, b64);
}

static void legacy_alg(unsigned char *r) { r[1] = 'd'; }
static void other_alg(unsigned char *r) { r[0] = 'X'; }
static void flip_keyid(unsigned char *r) { r[2] ^= 0x40; }
static void flip_sig(unsigned char *r) { r[40] ^= 0x01; }

static void t_verify_failures(void)
{
	kf_err e = {0};
	kf_seckey *k = NULL;
	kf_pubkey pk, other;
	char *sig = NULL, *bad;
	size_t n;
	const char *line[4];
	size_t len[4];

	CHECK_INT(kf_keys_generate(path_in("v.key"), path_in("v.pub"), NULL, 0, &e), KF_OK);
	CHECK_INT(kf_keys_generate(path_in("o.key"), path_in("o.pub"), NULL, 0, &e), KF_OK);
	CHECK_INT(kf_keys_load_secret(path_in("v.key"), &k, &e), KF_OK);
	CHECK_INT(kf_keys_load_public(path_in("o.pub"), NULL, &other, &e), KF_OK);
	if (!k)
		return;
	kf_keys_public_of(k, &pk);
	CHECK_INT(kf_sig_sign_buf(k, "payload", 7, "u", "trusted", &sig, &e), KF_OK);
	n = strlen(sig);
	CHECK_INT(kf_sig_verify_buf(&pk, sig, n, "payload", 7, NULL, 0, "S", &e), KF_OK);

	/* Wrong key: the ids differ, named in the message. */
	CHECK_INT(kf_sig_verify_buf(&other, sig, n, "payload", 7, NULL, 0, "S", &e), KF_EVERIFY);
	CHECK_CONTAINS(e.msg, "S: signed by key");
	/* Right id, wrong key bytes (forged id): the signature fails. */
	memcpy(other.keyid, pk.keyid, 8);
	CHECK_INT(kf_sig_verify_buf(&other, sig, n, "payload", 7, NULL, 0, "S", &e), KF_EVERIFY);
	CHECK_CONTAINS(e.msg, "S: signature verification failed");

	/* Tampered data. */
	CHECK_INT(kf_sig_verify_buf(&pk, sig, n, "paYload", 7, NULL, 0, "S", &e), KF_EVERIFY);
	CHECK_CONTAINS(e.msg, "S: signature verification failed");

	/* Tampered trusted comment. */
	bad = with_line(sig, 2, "trusted comment: trusteD");
	CHECK_INT(kf_sig_verify_buf(&pk, bad, strlen(bad), "payload", 7, NULL, 0, "S", &e), KF_EVERIFY);
	CHECK_CONTAINS(e.msg, "S: trusted comment verification failed");
	free(bad);

	/* Tampered untrusted comment: not covered by any signature, fine. */
	bad = with_line(sig, 0, "untrusted comment: anything");
	CHECK_INT(kf_sig_verify_buf(&pk, bad, strlen(bad), "payload", 7, NULL, 0, "S", &e), KF_OK);
	free(bad);

	bad = with_sigblock(sig, legacy_alg);
	CHECK_INT(kf_sig_verify_buf(&pk, bad, strlen(bad), "payload", 7, NULL, 0, "S", &e), KF_EVERIFY);
	CHECK_CONTAINS(e.msg, "S: legacy signature algorithm 'Ed'");
	free(bad);
	bad = with_sigblock(sig, other_alg);
	CHECK_INT(kf_sig_verify_buf(&pk, bad, strlen(bad), "payload", 7, NULL, 0, "S", &e), KF_EVERIFY);
	CHECK_CONTAINS(e.msg, "unknown signature algorithm");
	free(bad);
	bad = with_sigblock(sig, flip_keyid);
	CHECK_INT(kf_sig_verify_buf(&pk, bad, strlen(bad), "payload", 7, NULL, 0, "S", &e), KF_EVERIFY);
	CHECK_CONTAINS(e.msg, "S: signed by key");
	free(bad);
	bad = with_sigblock(sig, flip_sig);
	CHECK_INT(kf_sig_verify_buf(&pk, bad, strlen(bad), "payload", 7, NULL, 0, "S", &e), KF_EVERIFY);
	CHECK_CONTAINS(e.msg, "S: signature verification failed");
	free(bad);

	/* Garbage base64 on line 2 and line 4. */
	bad = with_line(sig, 1, "RUQ!!!notbase64");
	CHECK_INT(kf_sig_verify_buf(&pk, bad, strlen(bad), "payload", 7, NULL, 0, "S", &e), KF_EVERIFY);
	CHECK_CONTAINS(e.msg, "S: line 2 is not the base64");
	free(bad);
	bad = with_line(sig, 3, "AAAA");
	CHECK_INT(kf_sig_verify_buf(&pk, bad, strlen(bad), "payload", 7, NULL, 0, "S", &e), KF_EVERIFY);
	CHECK_CONTAINS(e.msg, "S: line 4 is not the base64");
	free(bad);
	/* Global signature of another comment. */
	kf_keys_lines(sig, n, line, len, 4);
	{
		char *sig2 = NULL, g[100];
		CHECK_INT(kf_sig_sign_buf(k, "payload", 7, "u", "other", &sig2, &e), KF_OK);
		kf_keys_lines(sig2, strlen(sig2), line, len, 4);
		snprintf(g, sizeof g, "%.*s", (int)len[3], line[3]);
		bad = with_line(sig, 3, g);
		CHECK_INT(kf_sig_verify_buf(&pk, bad, strlen(bad), "payload", 7, NULL, 0, "S", &e),
		          KF_EVERIFY);
		CHECK_CONTAINS(e.msg, "S: trusted comment verification failed");
		free(bad);
		free(sig2);
	}

	/* Missing comment prefixes. */
	bad = with_line(sig, 0, "comment: x");
	CHECK_INT(kf_sig_verify_buf(&pk, bad, strlen(bad), "payload", 7, NULL, 0, "S", &e), KF_EVERIFY);
	CHECK_CONTAINS(e.msg, "S: line 1");
	free(bad);
	bad = with_line(sig, 2, "trusted: trusted");
	CHECK_INT(kf_sig_verify_buf(&pk, bad, strlen(bad), "payload", 7, NULL, 0, "S", &e), KF_EVERIFY);
	CHECK_CONTAINS(e.msg, "S: line 3");
	free(bad);

	/* Truncated: every proper prefix of the file fails. */
	for (size_t cut = 0; cut < n - 1; cut++) {
		int rc = kf_sig_verify_buf(&pk, sig, cut, "payload", 7, NULL, 0, "S", &e);
		if (rc != KF_EVERIFY)
			fprintf(stderr, "truncated at %zu accepted\n", cut);
		CHECK_INT(rc, KF_EVERIFY);
	}
	CHECK_INT(kf_sig_verify_buf(&pk, sig, 10, "payload", 7, NULL, 0, "S", &e), KF_EVERIFY);
	CHECK_CONTAINS(e.msg, "S: truncated");

	/* Extra text after the global signature. */
	bad = calloc(1, n + 16);
	memcpy(bad, sig, n);
	strcat(bad, "junk\n");
	CHECK_INT(kf_sig_verify_buf(&pk, bad, strlen(bad), "payload", 7, NULL, 0, "S", &e), KF_EVERIFY);
	CHECK_CONTAINS(e.msg, "unexpected text");
	free(bad);

	/* Files: the message names the signature file. */
	write_text(path_in("payload"), "payload");
	write_text(path_in("payload.minisig"), sig);
	CHECK_INT(kf_sig_verify_file(&pk, path_in("payload.minisig"), path_in("payload"), NULL, 0, &e),
	          KF_OK);
	write_text(path_in("payload"), "payloaD");
	CHECK_INT(kf_sig_verify_file(&pk, path_in("payload.minisig"), path_in("payload"), NULL, 0, &e),
	          KF_EVERIFY);
	CHECK_CONTAINS(e.msg, "payload.minisig: signature verification failed");
	CHECK_INT(kf_sig_verify_file(&pk, path_in("none.minisig"), path_in("payload"), NULL, 0, &e),
	          KF_EIO);
	CHECK_CONTAINS(e.msg, "none.minisig");

	free(sig);
	kf_keys_free_secret(k);
}

/* ---- interop with the stock minisign ------------------------------------ */

static void t_minisign_interop(void)
{
	kf_err e = {0};
	kf_pubkey pk;
	kf_seckey *k = NULL;
	char tc[256], *sig = NULL;
	const char *mpub = path_in("m.pub"), *mkey = path_in("m.key");
	const char *file = path_in("data.bin");

	if (!have_minisign()) {
		fprintf(stderr, "minisign not installed: interop checks skipped\n");
		return;
	}
	write_text(file, "some bundle bytes\n");
	{
		char *g[] = {"minisign", "-G", "-W", "-p", (char *)mpub, "-s", (char *)mkey, NULL};
		CHECK_INT(run(NULL, g), 0);
	}
	{
		char *s[] = {"minisign", "-S", "-s", (char *)mkey, "-m", (char *)file,
		             "-t", "made by minisign", NULL};
		CHECK_INT(run(NULL, s), 0);
	}
	CHECK_INT(kf_keys_load_public(mpub, NULL, &pk, &e), KF_OK);
	CHECK_INT(kf_sig_verify_file(&pk, path_in("data.bin.minisig"), file, tc, sizeof tc, &e), KF_OK);
	CHECK_STR(tc, "made by minisign");

	/* minisign's legacy format (-l) is refused. */
	{
		char *s[] = {"minisign", "-S", "-l", "-s", (char *)mkey, "-m", (char *)file,
		             "-x", (char *)path_in("legacy.minisig"), NULL};
		CHECK_INT(run(NULL, s), 0);
		CHECK_INT(kf_sig_verify_file(&pk, path_in("legacy.minisig"), file, NULL, 0, &e),
		          KF_EVERIFY);
		CHECK_CONTAINS(e.msg, "legacy");
	}

	/* The minisign key signs through kubeferry; minisign -V -H accepts. */
	CHECK_INT(kf_keys_load_secret(mkey, &k, &e), KF_OK);
	if (k) {
		unsigned char d[KF_BLAKE2B_LEN];
		CHECK_INT(kf_digest_file(file, KF_DIGEST_BLAKE2B512, d, NULL, &e), KF_OK);
		CHECK_INT(kf_sig_sign(k, d, "u", "signed by kubeferry", &sig, &e), KF_OK);
		write_text(path_in("kf.minisig"), sig);
		char *v[] = {"minisign", "-V", "-H", "-p", (char *)mpub, "-m", (char *)file,
		             "-x", (char *)path_in("kf.minisig"), NULL};
		CHECK_INT(run(NULL, v), 0);
		free(sig);
		sig = NULL;

		/* The longest comments kubeferry signs are the longest minisign
		 * reads (its line buffers hold prefix, text, '\n' and NUL);
		 * one byte more is refused rather than signed unreadably. */
		{
			static char lt[8192], lu[1024];
			memset(lt, 't', 8173);
			lt[8173] = '\0';
			memset(lu, 'u', 1003);
			lu[1003] = '\0';
			CHECK_INT(kf_sig_sign(k, d, lu, lt, &sig, &e), KF_OK);
			if (sig) {
				/* path_in() recycles its buffers: copy every path. */
				char lp[512], lpub[512], lfile[512];
				snprintf(lp, sizeof lp, "%s/long.minisig", dir);
				snprintf(lpub, sizeof lpub, "%s/m.pub", dir);
				snprintf(lfile, sizeof lfile, "%s/data.bin", dir);
				write_text(lp, sig);
				char *vl[] = {"minisign", "-V", "-H", "-p", lpub, "-m", lfile,
				              "-x", lp, NULL};
				CHECK_INT(run(NULL, vl), 0);
				free(sig);
				sig = NULL;
			}
			lt[8173] = 't';
			lt[8174] = '\0';
			CHECK_INT(kf_sig_sign(k, d, "u", lt, &sig, &e), KF_EUSAGE);
			CHECK_CONTAINS(e.msg, "trusted comment is too long");
			CHECK(sig == NULL);
			lu[1003] = 'u';
			lu[1004] = '\0';
			CHECK_INT(kf_sig_sign(k, d, lu, "x", &sig, &e), KF_EUSAGE);
			CHECK_CONTAINS(e.msg, "untrusted comment is too long");
			CHECK(sig == NULL);
		}
		kf_keys_free_secret(k);
	}
}

static void setup(void)
{
	snprintf(dir, sizeof dir, "%s/kf-test-keys.XXXXXX",
	         getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		exit(1);
	}
	unsetenv("KUBEFERRY_PASSPHRASE_FILE");
	kf_crypto_init();
}

static void teardown(void)
{
	kf_err e = {0};
	CHECK_INT(kf_remove_tree(dir, &e), KF_OK);
}

KF_TEST_MAIN(setup, t_base64, t_lines, t_keyid_str, t_public_parse,
             t_keygen_roundtrip, t_encrypted_key, t_bad_secret,
             t_minisign_seckey, t_verify_failures, t_minisign_interop,
             teardown)
