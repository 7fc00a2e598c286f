/* Process-wide crypto setup; see kf_base.h. */
#include <openssl/crypto.h>

#include "base/kf_base.h"

void kf_crypto_init(void)
{
	/* A host openssl.cnf may activate providers a static binary lacks. */
	OPENSSL_init_crypto(OPENSSL_INIT_NO_LOAD_CONFIG, NULL);
}
