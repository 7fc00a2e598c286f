/*
 * The bundle's bytes on their way in: the file (or standard input), zstd
 * decoding (libzstd's streaming decoder, fed to libarchive's tar reader
 * through a read callback), and the end of the stream.
 *
 * The decoder is ours rather than libarchive's zstd filter so that the
 * stream can be followed past the tar end-of-archive blocks, where
 * libarchive stops reading: a bundle is whole only if every byte of the
 * file decodes as complete zstd frames and what the frames hold after the
 * archive's end is tar padding (zero bytes, bounded). Damage there (a
 * truncated or undecodable last frame, garbage after it, another frame
 * with content) is a verification failure like damage anywhere else
 * (docs/bundle-format.md, "Compression").
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "archive/archive_internal.h"

#define IN_SIZE (1u << 20)
#define OUT_SIZE (256u << 10)
/* Tar writers pad the archive to their record size (GNU tar: 10 KiB by
 * default, at most a few MiB with -b); more is not padding. */
#define TAIL_MAX (16u << 20)

struct kf_ar_input {
	int fd;
	ZSTD_DStream *ds;
	unsigned char *in, *out;
	size_t in_len, in_pos;
	int in_eof, started, not_zstd;
	size_t frame_left;          /* ZSTD_decompressStream's last hint */
	uint64_t produced;          /* decoded bytes handed out */
	uint64_t content_end;       /* offset after the last non-zero byte */
};

static int is_zstd_start(const unsigned char *b, size_t n)
{
	/* A zstd frame (RFC 8878: magic 0xFD2FB528) or a skippable frame
	 * (0x184D2A50..5F), little-endian. */
	if (n < 4)
		return 0;
	if (b[0] == 0x28 && b[1] == 0xb5 && b[2] == 0x2f && b[3] == 0xfd)
		return 1;
	return (b[0] & 0xf0) == 0x50 && b[1] == 0x2a && b[2] == 0x4d &&
	       b[3] == 0x18;
}

/* Decode the next piece into in->out: its length, 0 at the clean end of
 * the stream, -1 with *why set. */
static la_ssize_t produce(struct kf_ar_input *in, const char **why)
{
	for (;;) {
		ZSTD_inBuffer ib;
		ZSTD_outBuffer ob = {in->out, OUT_SIZE, 0};
		size_t r;

		if (in->in_pos == in->in_len && !in->in_eof) {
			ssize_t n = read(in->fd, in->in, IN_SIZE);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0) {
				*why = strerror(errno);
				return -1;
			}
			in->in_len = (size_t)n;
			in->in_pos = 0;
			in->in_eof = n == 0;
			if (!in->started && !is_zstd_start(in->in, in->in_len)) {
				in->not_zstd = 1;
				*why = "not zstd-compressed";
				return -1;
			}
			in->started = 1;
			continue;
		}
		if (in->in_pos == in->in_len) {
			/* End of the file: only between frames. */
			if (in->frame_left != 0) {
				*why = "Truncated zstd input";
				return -1;
			}
			return 0;
		}
		ib.src = in->in;
		ib.size = in->in_len;
		ib.pos = in->in_pos;
		r = ZSTD_decompressStream(in->ds, &ob, &ib);
		in->in_pos = ib.pos;
		if (ZSTD_isError(r)) {
			*why = ZSTD_getErrorName(r);
			return -1;
		}
		in->frame_left = r;
		if (ob.pos > 0) {
			size_t i = ob.pos;
			while (i > 0 && in->out[i - 1] == 0)
				i--;
			if (i > 0)
				in->content_end = in->produced + i;
			in->produced += ob.pos;
			return (la_ssize_t)ob.pos;
		}
	}
}

static la_ssize_t input_read(struct archive *a, void *arg, const void **buf)
{
	struct kf_ar_input *in = arg;
	const char *why = NULL;
	la_ssize_t n = produce(in, &why);

	if (n < 0)
		archive_set_error(a, EINVAL, "%s", why);
	*buf = in->out;
	return n;
}

int kf_ar_open_bundle(const char *path, struct kf_ar_input **out,
                      struct archive **aout, kf_err *e)
{
	int rc = KF_OK;
	struct archive *a = NULL;
	struct kf_ar_input *in = NULL;
	struct stat st;
	const char *origin = strcmp(path, "-") ? path : "(stdin)";

	*out = NULL;
	*aout = NULL;
	in = calloc(1, sizeof *in);
	if (!in)
		return kf_err_set(e, KF_EIO, "out of memory");
	in->fd = -1;
	if (!strcmp(path, "-")) {
		in->fd = STDIN_FILENO;
	} else {
		in->fd = open(path, O_RDONLY | O_CLOEXEC);
		if (in->fd < 0) {
			rc = kf_err_errno(e, "cannot open", path);
			goto out;
		}
	}
	/* A directory cannot be read at all: an I/O error (exit 3), not a
	 * bundle that failed verification. */
	if (fstat(in->fd, &st) == 0 && S_ISDIR(st.st_mode)) {
		rc = kf_err_set(e, KF_EIO, "%s: cannot read: %s", origin, strerror(EISDIR));
		goto out;
	}
	in->ds = ZSTD_createDStream();
	in->in = malloc(IN_SIZE);
	in->out = malloc(OUT_SIZE);
	a = archive_read_new();
	if (!in->ds || !in->in || !in->out || !a) {
		rc = kf_err_set(e, KF_EIO, "out of memory");
		goto out;
	}
	ZSTD_initDStream(in->ds);
	/* tar only, decoded by us: every other format would be attack
	 * surface, and the *_all variants drag large libraries into the
	 * static installer. */
	archive_read_support_format_tar(a);
	if (archive_read_open2(a, in, NULL, input_read, NULL, NULL) != ARCHIVE_OK) {
		/* zstd that fails to decode is a damaged bundle; anything
		 * else is not a bundle at all. */
		const char *why = archive_error_string(a);
		rc = kf_err_set(e, KF_EVERIFY, "%s: %s (%s)", origin,
		                in->started && !in->not_zstd && in->produced == 0
		                ? "truncated or corrupt bundle" : "not a kubeferry bundle",
		                why ? why : "unreadable");
		goto out;
	}
	*aout = a;
	*out = in;
	a = NULL;
	in = NULL;
out:
	kf_ar_close_bundle(a, in);
	return rc;
}

int kf_ar_check_end(struct archive *a, struct kf_ar_input *in,
                    const char *origin, kf_err *e)
{
	/* What the tar reader consumed, up to and with its end blocks. */
	la_int64_t end = archive_filter_bytes(a, 0);
	const char *why = NULL;
	la_ssize_t n;

	if (end < 0)
		return kf_err_set(e, KF_EIO, "%s: cannot tell where the archive ends",
		                  origin);
	do {
		if (in->content_end > (uint64_t)end)
			return kf_err_set(e, KF_EVERIFY,
			                  "%s: data after the end of the archive (at byte %llu of the decompressed stream)",
			                  origin, (unsigned long long)end);
		if (in->produced - (uint64_t)end > TAIL_MAX)
			return kf_err_set(e, KF_EVERIFY,
			                  "%s: more than %u bytes of padding after the end of the archive",
			                  origin, TAIL_MAX);
		n = produce(in, &why);
	} while (n > 0);
	if (n < 0)
		return kf_err_set(e, KF_EVERIFY,
		                  "%s: truncated or corrupt bundle after the end of the archive (%s)",
		                  origin, why);
	return KF_OK;
}

void kf_ar_close_bundle(struct archive *a, struct kf_ar_input *in)
{
	if (a)
		archive_read_free(a);
	if (!in)
		return;
	if (in->fd > STDIN_FILENO)
		close(in->fd);
	ZSTD_freeDStream(in->ds);
	free(in->in);
	free(in->out);
	free(in);
}
