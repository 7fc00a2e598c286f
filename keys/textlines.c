/* Line splitting for the minisign text formats. */
#include <string.h>

#include "keys/keys_internal.h"

size_t kf_keys_lines(const char *text, size_t n, const char **line,
                     size_t *len, size_t max)
{
	size_t count = 0, start = 0;

	while (start < n) {
		const char *nl = memchr(text + start, '\n', n - start);
		size_t end = nl ? (size_t)(nl - text) : n;
		size_t l = end - start;
		if (l > 0 && text[start + l - 1] == '\r')
			l--;
		if (count < max) {
			line[count] = text + start;
			len[count] = l;
		}
		count++;
		start = end + 1;
	}
	return count;
}
