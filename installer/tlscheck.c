/*
 * etcd health over TLS with a client certificate: GET /health, expecting
 * 200 and {"health":"true"}. The installer links no HTTP client (DESIGN.md),
 * and one request with "Connection: close" needs none: OpenSSL does the
 * TLS and the peer verification (CA and the address as an IP SAN).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <stdlib.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "installer/kf_installer.h"

static int connect_to(const char *host, int port)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	struct timeval tv = {10, 0};
	int fd;

	memset(&ss, 0, sizeof ss);
	if (inet_pton(AF_INET, host, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
		((struct sockaddr_in *)&ss)->sin_family = AF_INET;
		((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)port);
		sl = sizeof(struct sockaddr_in);
	} else if (inet_pton(AF_INET6, host, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
		((struct sockaddr_in6 *)&ss)->sin6_family = AF_INET6;
		((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)port);
		sl = sizeof(struct sockaddr_in6);
	} else {
		errno = EINVAL;
		return -1;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	if (connect(fd, (struct sockaddr *)&ss, sl) != 0) {
		int err = errno;
		close(fd);
		errno = err;
		return -1;
	}
	return fd;
}

int kfi_etcd_health(const char *host, int port, const char *ca,
                    const char *cert, const char *key, kf_err *e)
{
	int rc = KF_OK, fd = -1;
	SSL_CTX *ctx = NULL;
	SSL *ssl = NULL;
	char req[256], resp[4096];
	size_t got = 0;

	ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx) {
		rc = kf_err_set(e, KF_EIO, "cannot create a TLS context");
		goto out;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) {
		rc = kf_err_set(e, KF_EIO, "cannot load CA %s", ca);
		goto out;
	}
	if (SSL_CTX_use_certificate_file(ctx, cert, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
		rc = kf_err_set(e, KF_EIO, "cannot load client certificate %s / key %s", cert, key);
		goto out;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	fd = connect_to(host, port);
	if (fd < 0) {
		rc = kf_err_set(e, KF_EIO, "etcd https://%s:%d: cannot connect: %s",
		                host, port, strerror(errno));
		goto out;
	}
	ssl = SSL_new(ctx);
	SSL_set_fd(ssl, fd);
	/* The server must present our CA's certificate for this address. */
	X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host);
	if (SSL_connect(ssl) != 1) {
		unsigned long err = ERR_get_error();
		rc = kf_err_set(e, KF_EVERIFY, "etcd https://%s:%d: TLS handshake failed: %s (%s)",
		                host, port, err ? ERR_reason_error_string(err) : "connection closed",
		                X509_verify_cert_error_string(SSL_get_verify_result(ssl)));
		goto out;
	}
	snprintf(req, sizeof req,
	         "GET /health HTTP/1.1\r\nHost: %s:%d\r\nConnection: close\r\n\r\n",
	         host, port);
	if (SSL_write(ssl, req, (int)strlen(req)) <= 0) {
		rc = kf_err_set(e, KF_EIO, "etcd https://%s:%d: cannot send the request", host, port);
		goto out;
	}
	for (;;) {
		int n = SSL_read(ssl, resp + got, (int)(sizeof resp - 1 - got));
		if (n <= 0)
			break;
		got += (size_t)n;
		if (got >= sizeof resp - 1)
			break;
	}
	resp[got] = '\0';
	if (strncmp(resp, "HTTP/1.1 200", 12) != 0 || !strstr(resp, "\"health\":\"true\"")) {
		char *nl = strchr(resp, '\r');
		if (nl)
			*nl = '\0';
		rc = kf_err_set(e, KF_EIO, "etcd https://%s:%d/health: not healthy (%s)",
		                host, port, got ? resp : "no answer");
		goto out;
	}
out:
	if (ssl) {
		SSL_shutdown(ssl);
		SSL_free(ssl);
	}
	if (fd >= 0)
		close(fd);
	SSL_CTX_free(ctx);
	return rc;
}

int kfi_fingerprint_norm(const char *in, char out[KF_SHA256_HEX])
{
	size_t n = 0;

	if (!strncmp(in, "sha256:", 7) || !strncmp(in, "SHA256:", 7))
		in += 7;
	for (; *in; in++) {
		if (*in == ':')
			continue;
		if (n >= 64 || !strchr("0123456789abcdefABCDEF", *in))
			return -1;
		out[n++] = (char)((*in >= 'A' && *in <= 'F') ? *in - 'A' + 'a' : *in);
	}
	out[n] = '\0';
	return n == 64 ? 0 : -1;
}

/* x against the pin (64 lowercase hex): *found is 1 when x is the pinned
 * certificate and a CA (then *pem is its PEM); the pinned certificate not
 * being a CA is an error naming where (what) it came from. The comparison
 * takes the same time wherever the digests differ. */
static int pin_check(X509 *x, const char *want, const char *what, int *found,
                     char **pem, size_t *len, kf_err *e)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	char hex[KF_SHA256_HEX], *p = NULL;
	BIO *b = NULL;
	long n;
	int rc = KF_OK;

	*found = 0;
	if (!X509_digest(x, EVP_sha256(), md, &mdlen) || mdlen != 32)
		goto out;
	kf_hex(md, 32, hex);
	if (CRYPTO_memcmp(hex, want, 64) != 0)
		goto out;
	/* The pinned certificate must be a CA, or containerd could not
	 * verify the server with it. */
	if (X509_check_ca(x) == 0) {
		rc = kf_err_set(e, KF_EVERIFY, "%s: the certificate with fingerprint sha256:%s is not a CA",
		                what, want);
		goto out;
	}
	b = BIO_new(BIO_s_mem());
	if (!b || PEM_write_bio_X509(b, x) != 1 || (n = BIO_get_mem_data(b, &p)) <= 0) {
		rc = kf_err_set(e, KF_EIO, "%s: cannot encode the pinned certificate", what);
		goto out;
	}
	if (!(*pem = malloc((size_t)n + 1))) {
		rc = kfi_oom(e);
		goto out;
	}
	memcpy(*pem, p, (size_t)n);
	(*pem)[n] = '\0';
	*len = (size_t)n;
	*found = 1;
out:
	BIO_free(b);
	return rc;
}

int kfi_mirror_ca(const char *host, int port, const char *fingerprint,
                  char **pem, size_t *len, kf_err *e)
{
	int rc = KF_OK, fd = -1, found = 0;
	SSL_CTX *ctx = NULL;
	SSL *ssl = NULL;
	char want[KF_SHA256_HEX], what[300];
	STACK_OF(X509) *chain;

	*pem = NULL;
	*len = 0;
	if (kfi_fingerprint_norm(fingerprint, want) != 0) {
		rc = kf_err_set(e, KF_EUSAGE, "malformed fingerprint '%s' (want sha256:<64 hex digits>)", fingerprint);
		goto out;
	}
	snprintf(what, sizeof what, "mirror %s:%d", host, port);
	ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx) {
		rc = kf_err_set(e, KF_EIO, "cannot create a TLS context");
		goto out;
	}
	/* Nothing is trusted yet: the chain is checked against the pin below,
	 * and then verified properly by containerd with the pinned CA. */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	fd = connect_to(host, port);
	if (fd < 0) {
		rc = kf_err_set(e, KF_EIO, "mirror %s:%d: cannot connect: %s", host, port, strerror(errno));
		goto out;
	}
	ssl = SSL_new(ctx);
	SSL_set_fd(ssl, fd);
	if (SSL_connect(ssl) != 1) {
		rc = kf_err_set(e, KF_EIO, "mirror %s:%d: TLS handshake failed", host, port);
		goto out;
	}
	chain = SSL_get_peer_cert_chain(ssl);
	for (int i = 0; chain && i < sk_X509_num(chain) && !found; i++) {
		if ((rc = pin_check(sk_X509_value(chain, i), want, what, &found, pem, len,
		                    e)) != KF_OK)
			goto out;
	}
	if (!found)
		rc = kf_err_set(e, KF_EVERIFY, "mirror %s:%d: no certificate in its chain has the pinned fingerprint sha256:%s", host, port, want);
out:
	if (ssl) {
		SSL_shutdown(ssl);
		SSL_free(ssl);
	}
	if (fd >= 0)
		close(fd);
	SSL_CTX_free(ctx);
	return rc;
}

int kfi_mirror_ca_file(const char *path, const char *fingerprint, char **pem,
                       size_t *len, kf_err *e)
{
	int rc = KF_OK, found = 0;
	char want[KF_SHA256_HEX], what[PATH_MAX + 16], *data = NULL;
	size_t dlen = 0;
	BIO *b = NULL;
	X509 *x = NULL;

	*pem = NULL;
	*len = 0;
	if (kfi_fingerprint_norm(fingerprint, want) != 0) {
		rc = kf_err_set(e, KF_EUSAGE, "malformed fingerprint '%s' (want sha256:<64 hex digits>)", fingerprint);
		goto out;
	}
	snprintf(what, sizeof what, "--mirror-ca %s", path);
	/* Read once: the bytes checked are the bytes installed. */
	if ((rc = kf_read_file(path, 1 << 20, &data, &dlen, e)) != KF_OK)
		goto out;
	b = BIO_new_mem_buf(data, (int)dlen);
	if (!b || !(x = PEM_read_bio_X509(b, NULL, NULL, NULL))) {
		rc = kf_err_set(e, KF_EVERIFY, "%s: no PEM certificate in it", what);
		goto out;
	}
	if ((rc = pin_check(x, want, what, &found, pem, len, e)) == KF_OK && !found) {
		unsigned char md[EVP_MAX_MD_SIZE];
		unsigned mdlen = 0;
		char got[KF_SHA256_HEX] = "?";
		if (X509_digest(x, EVP_sha256(), md, &mdlen) && mdlen == 32)
			kf_hex(md, 32, got);
		rc = kf_err_set(e, KF_EVERIFY, "%s: fingerprint sha256:%s, pinned sha256:%s", what,
		                got, want);
	}
out:
	X509_free(x);
	BIO_free(b);
	free(data);
	return rc;
}

