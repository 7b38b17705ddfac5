#include "core/journal.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

/* CRC-32C (Castagnoli), reflected: the table is built once, by whichever
 * worker thread needs it first. */
static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
		crc_table[i] = c;
	}
}

uint32_t journal_crc(const void *data, size_t len)
{
	pthread_once(&crc_once, crc_init);
	const uint32_t *table = crc_table;
	const uint8_t *p = data;
	uint32_t c = ~0u;
	for (size_t i = 0; i < len; i++)
		c = table[(c ^ p[i]) & 0xff] ^ (c >> 8);
	return ~c;
}

uint64_t journal_hash(uint64_t h, const char *s)
{
	if (!h)
		h = 0xcbf29ce484222325ull;
	for (; *s; s++) {
		h ^= (uint8_t)*s;
		h *= 0x100000001b3ull;
	}
	/* a separator, so ("ab","c") and ("a","bc") differ */
	h ^= 0xff;
	return h * 0x100000001b3ull;
}

static size_t layout(struct journal *j, unsigned nq, unsigned qmax)
{
	size_t off = (sizeof(struct journal_hdr) + 63) & ~(size_t)63;
	size_t pub = off;
	off += (sizeof(uint16_t) * nq + 63) & ~(size_t)63;
	size_t infl = off;
	off += ((size_t)nq * qmax * sizeof(uint32_t) + 63) & ~(size_t)63;
	size_t blob = off;
	off += 2 * JOURNAL_BLOB_SIZE;
	if (j) {
		uint8_t *base = (uint8_t *)j->hdr;
		j->published = (uint16_t *)(base + pub);
		j->inflight = (uint32_t *)(base + infl);
		j->blob = base + blob;
		j->nq = nq;
		j->qmax = qmax;
	}
	return (off + 4095) & ~(size_t)4095;
}

static uint32_t hdr_crc(const struct journal_hdr *h)
{
	return journal_crc(h, offsetof(struct journal_hdr, crc));
}

static int map(struct journal *j, size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, j->fd, 0);
	if (p == MAP_FAILED)
		return -errno;
	j->hdr = p;
	j->size = size;
	return 0;
}

int journal_create(struct journal *j, const char *name, uint64_t identity, unsigned nq,
		   unsigned qmax)
{
	memset(j, 0, sizeof(*j));
	j->fd = -1;
	if (nq == 0 || nq > JOURNAL_MAX_QUEUES || qmax == 0 || qmax > 32768)
		return -EINVAL;
	size_t size = layout(NULL, nq, qmax);
	j->fd = memfd_create(name, MFD_CLOEXEC);
	if (j->fd < 0)
		return -errno;
	int r = ftruncate(j->fd, (off_t)size) < 0 ? -errno : map(j, size);
	if (r < 0) {
		journal_close(j);
		return r;
	}
	layout(j, nq, qmax);
	struct journal_hdr *h = j->hdr;
	h->magic = JOURNAL_MAGIC;
	h->version = JOURNAL_VERSION;
	h->size = size;
	h->identity = identity;
	h->nq = nq;
	h->qmax = qmax;
	h->crc = hdr_crc(h);
	journal_save_blob(j, NULL, 0);
	struct journal_transport t = { .nq = nq };
	journal_save_transport(j, &t);
	return 0;
}

int journal_attach(struct journal *j, int fd, uint64_t identity, unsigned nq, unsigned qmax,
		   char *why, size_t why_len)
{
	memset(j, 0, sizeof(*j));
	j->fd = fd;
	if (nq == 0 || nq > JOURNAL_MAX_QUEUES || qmax == 0 || qmax > 32768) {
		snprintf(why, why_len, "the journal's geometry (%u queue(s) of %u) is out of range",
			 nq, qmax);
		journal_close(j);
		return -EBADMSG;
	}
	struct stat st;
	size_t want = layout(NULL, nq, qmax);
	if (fstat(fd, &st) < 0) {
		snprintf(why, why_len, "the journal cannot be examined: %s", strerror(errno));
		journal_close(j);
		return -EBADMSG;
	}
	if ((uint64_t)st.st_size != want) {
		snprintf(why, why_len, "the journal is %lld bytes, not %zu", (long long)st.st_size,
			 want);
		journal_close(j);
		return -EBADMSG;
	}
	int r = map(j, want);
	if (r < 0) {
		snprintf(why, why_len, "cannot map the journal: %s", strerror(-r));
		journal_close(j);
		return r;
	}
	layout(j, nq, qmax);
	const struct journal_hdr *h = j->hdr;
	if (h->magic != JOURNAL_MAGIC || h->version != JOURNAL_VERSION) {
		snprintf(why, why_len, "the journal has magic 0x%08x version %u, not 0x%08x "
			 "version %u", h->magic, h->version, JOURNAL_MAGIC, JOURNAL_VERSION);
		r = -EBADMSG;
	} else if (h->crc != hdr_crc(h) || h->size != want) {
		snprintf(why, why_len, "the journal's header fails its checksum");
		r = -EBADMSG;
	} else if (h->nq != nq || h->qmax != qmax || h->identity != identity) {
		snprintf(why, why_len, "the journal was made for another configuration (%u queue(s) "
			 "of %u, identity %016llx; now %u of %u, %016llx)", h->nq, h->qmax,
			 (unsigned long long)h->identity, nq, qmax,
			 (unsigned long long)identity);
		r = -ESTALE;
	}
	for (unsigned q = 0; r == 0 && q < nq; q++) {
		const uint32_t *f = journal_inflight(j, q);
		for (unsigned i = 0; i < qmax; i++) {
			if (f[i] && (f[i] & ~0xffffu) != JOURNAL_TAKEN) {
				snprintf(why, why_len, "the journal's queue %u has a bad in-flight flag",
					 q);
				r = -EBADMSG;
				break;
			}
		}
	}
	if (r < 0)
		journal_close(j);
	return r;
}

void journal_close(struct journal *j)
{
	if (j->hdr)
		munmap(j->hdr, j->size);
	if (j->fd >= 0)
		close(j->fd);
	j->hdr = NULL;
	j->fd = -1;
}

static uint32_t t_crc(const struct journal_transport *t)
{
	return journal_crc(t, offsetof(struct journal_transport, crc));
}

void journal_save_transport(struct journal *j, const struct journal_transport *t)
{
	struct journal_hdr *h = j->hdr;
	uint64_t seq = h->seq + 1;
	/* The copy that is not the newest one. */
	struct journal_transport *dst = &h->t[seq & 1];
	*dst = *t;
	dst->seq = seq;
	dst->crc = t_crc(dst);
	journal_order();
	h->seq = seq;
	journal_order();
}

int journal_load_transport(const struct journal *j, struct journal_transport *t)
{
	const struct journal_hdr *h = j->hdr;
	/* The newest, or the other one if a process died while writing it. */
	for (int k = 0; k < 2; k++) {
		const struct journal_transport *src = &h->t[(h->seq + (uint64_t)k) & 1];
		if (src->crc != t_crc(src) || src->seq > h->seq || src->nq != j->nq)
			continue;
		*t = *src;
		return 0;
	}
	return -EBADMSG;
}

void journal_save_blob(struct journal *j, const void *data, uint32_t len)
{
	struct journal_hdr *h = j->hdr;
	if (len > JOURNAL_BLOB_SIZE)
		len = JOURNAL_BLOB_SIZE;
	/* Into the copy that is not the newest: a process that dies while
	 * writing it leaves the other one whole. */
	uint64_t seq = h->blob_seq + 1;
	unsigned k = (unsigned)(seq & 1);
	uint8_t *dst = j->blob + (size_t)k * JOURNAL_BLOB_SIZE;
	if (len)
		memcpy(dst, data, len);
	h->blob_len[k] = len;
	h->blob_crc[k] = journal_crc(dst, len);
	journal_order();
	h->blob_seq = seq;
	journal_order();
}

int journal_load_blob(const struct journal *j, void *data, uint32_t cap, uint32_t *len)
{
	const struct journal_hdr *h = j->hdr;
	uint64_t seq = h->blob_seq;
	/* The newest, or the other one if a process died while writing it. */
	for (int i = 0; i < 2; i++) {
		unsigned k = (unsigned)((seq + (uint64_t)i) & 1);
		const uint8_t *src = j->blob + (size_t)k * JOURNAL_BLOB_SIZE;
		uint32_t n = h->blob_len[k];
		if (n > JOURNAL_BLOB_SIZE || n > cap || h->blob_crc[k] != journal_crc(src, n))
			continue;
		memcpy(data, src, n);
		*len = n;
		return 0;
	}
	return -EBADMSG;
}
