/*
 * kubeadm bootstrap tokens ([a-z0-9]{6}.[a-z0-9]{16}): drawn for a single
 * node's `cluster init` and for a cluster plan, checked wherever one is
 * read back.
 */
#include <openssl/rand.h>
#include <string.h>

#include "installer/kf_installer.h"

static const char alnum[] = "abcdefghijklmnopqrstuvwxyz0123456789";

int kfi_token_random(char out[24])
{
	unsigned char r[64];
	int n = 0;

	/* A secret: never made of whatever the buffer held. Bytes of 252 and
	 * more are drawn again, so that every character is equally likely. */
	while (n < 22) {
		if (RAND_bytes(r, sizeof r) != 1)
			return -1;
		for (size_t i = 0; i < sizeof r && n < 22; i++)
			if (r[i] < 252) {
				out[n < 6 ? n : n + 1] = alnum[r[i] % 36];
				n++;
			}
	}
	out[6] = '.';
	out[23] = '\0';
	return 0;
}

int kfi_token_valid(const char *t)
{
	if (strlen(t) != 23 || t[6] != '.')
		return 0;
	for (int i = 0; i < 23; i++)
		if (i != 6 && !strchr(alnum, t[i]))
			return 0;
	return 1;
}
