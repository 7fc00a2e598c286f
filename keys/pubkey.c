/* minisign public keys: parse, format, key ids. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "keys/keys_internal.h"

#define PUBKEY_BYTES 42 /* "Ed" | keyid[8] | pk[32] */
#define PUBKEY_FILE_MAX 8192

void kf_keys_keyid_str(const unsigned char keyid[8], char out[17])
{
	uint64_t v = 0;
	/* minisign prints the id as a little-endian integer. */
	for (int i = 7; i >= 0; i--)
		v = v << 8 | keyid[i];
	snprintf(out, 17, "%016" PRIX64, v);
}

void kf_keys_derive_keyid(const unsigned char pk[32], unsigned char id[8])
{
	static const char tag[] = "kubeferry-keyid";
	unsigned char buf[sizeof tag - 1 + 32], md[32];
	unsigned int mdlen = 0;

	memcpy(buf, tag, sizeof tag - 1);
	memcpy(buf + sizeof tag - 1, pk, 32);
	EVP_Digest(buf, sizeof buf, md, &mdlen, EVP_sha256(), NULL);
	memcpy(id, md, 8);
}

void kf_keys_public_b64(const kf_pubkey *pk, char *out, size_t n)
{
	unsigned char raw[PUBKEY_BYTES];
	char b64[64];

	raw[0] = 'E';
	raw[1] = 'd';
	memcpy(raw + 2, pk->keyid, 8);
	memcpy(raw + 10, pk->pk, 32);
	kf_b64_encode(raw, sizeof raw, b64);
	snprintf(out, n, "%s", b64);
}

/* Decode the base64 line of a public key; what names it in messages. */
static int parse_b64(const char *s, size_t len, const char *what,
                     kf_pubkey *out, kf_err *e)
{
	unsigned char raw[PUBKEY_BYTES];
	long got;

	got = kf_b64_decode(s, len, raw, sizeof raw);
	if (got != PUBKEY_BYTES)
		return kf_err_set(e, KF_EUSAGE,
		                  "%s: not a minisign public key (expected base64 of %d bytes)",
		                  what, PUBKEY_BYTES);
	if (raw[0] != 'E' || raw[1] != 'd')
		return kf_err_set(e, KF_EUSAGE,
		                  "%s: unsupported public key algorithm '%c%c' (expected Ed)",
		                  what, raw[0], raw[1]);
	memcpy(out->keyid, raw + 2, 8);
	memcpy(out->pk, raw + 10, 32);
	return KF_OK;
}

int kf_keys_load_public(const char *path, const char *string, kf_pubkey *out,
                        kf_err *e)
{
	int rc = KF_OK;
	char *text = NULL;
	size_t n = 0, nlines, len[3];
	const char *line[3];

	if ((path == NULL) == (string == NULL)) {
		rc = kf_err_set(e, KF_EUSAGE, "give exactly one public key (-p FILE or -P STRING)");
		goto out;
	}
	if (string) {
		rc = parse_b64(string, strlen(string), "public key string", out, e);
		goto out;
	}
	rc = kf_read_file(path, PUBKEY_FILE_MAX, &text, &n, e);
	if (rc != KF_OK)
		goto out;
	nlines = kf_keys_lines(text, n, line, len, 3);
	if (nlines < 2 || len[0] < strlen(KF_UNTRUSTED_PREFIX) ||
	    memcmp(line[0], KF_UNTRUSTED_PREFIX, strlen(KF_UNTRUSTED_PREFIX)) != 0) {
		rc = kf_err_set(e, KF_EUSAGE,
		                "%s: not a minisign public key file (expected an 'untrusted comment:' line and a base64 line)",
		                path);
		goto out;
	}
	rc = parse_b64(line[1], len[1], path, out, e);
out:
	free(text);
	return rc;
}
