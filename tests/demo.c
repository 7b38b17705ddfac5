/* virtio-ivshmem-demo: a tour of the daemon from the cell's side.
 *
 * For each "SOCKET IMAGE" pair it connects to the daemon's software link as
 * the virtio front-end, shows what was negotiated, writes a random pattern
 * through the virtio-blk device, flushes, reads it back through the device
 * and compares it with the image file itself.  Exit status 0 means every
 * byte matched on every disk.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backends/virtio_blk.h"
#include "core/virtio_ivshmem.h"
#include "tests/frontend/fe_blk.h"

#define CHUNK (64 * 1024)

static void fill(uint8_t *buf, size_t len, uint64_t seed)
{
	for (size_t i = 0; i < len; i++) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		buf[i] = (uint8_t)(seed >> 56);
	}
}

static int tour(const char *sock, const char *image, uint64_t seed)
{
	char err[256];
	struct fe_blk *blk;
	int r = fe_blk_open(sock, 0, 1, 128, 5000, &blk, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "%s: %s\n", sock, err);
		return 1;
	}
	uint64_t f = blk->fe->features;
	char serial[21] = "";
	fe_blk_io(blk, 0, VIRTIO_BLK_T_GET_ID, 0, serial, 20);
	printf("  %s: %llu MiB, serial '%s', block size %u, seg_max %u, size_max %u\n", sock,
	       (unsigned long long)(blk->capacity / 2048), serial, blk->blk_size, blk->seg_max,
	       blk->size_max);
	printf("    features:%s%s%s%s%s%s\n",
	       f & VIRTIO_BIT(VIRTIO_F_EVENT_IDX) ? " EVENT_IDX" : "",
	       f & VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC) ? " INDIRECT_DESC" : "",
	       f & VIRTIO_BIT(VIRTIO_BLK_F_FLUSH) ? " FLUSH" : "",
	       f & VIRTIO_BIT(VIRTIO_BLK_F_DISCARD) ? " DISCARD" : "",
	       f & VIRTIO_BIT(VIRTIO_BLK_F_WRITE_ZEROES) ? " WRITE_ZEROES" : "",
	       f & VIRTIO_BIT(VIRTIO_BLK_F_RO) ? " RO" : "");
	uint64_t bytes = blk->capacity * 512;
	if (bytes > 8 << 20)
		bytes = 8 << 20;
	uint8_t *pattern = malloc(bytes), *back = malloc(bytes), *file = malloc(bytes);
	fill(pattern, bytes, seed);
	int bad = 0;
	for (uint64_t off = 0; off < bytes && !bad; off += CHUNK)
		bad = fe_blk_io(blk, 0, VIRTIO_BLK_T_OUT, off / 512, pattern + off, CHUNK) != 0;
	bad = bad || fe_blk_io(blk, 0, VIRTIO_BLK_T_FLUSH, 0, NULL, 0) != 0;
	printf("    wrote %llu KiB of random data and flushed: %s\n",
	       (unsigned long long)bytes / 1024, bad ? "FAILED" : "ok");
	memset(back, 0, bytes);
	for (uint64_t off = 0; off < bytes && !bad; off += CHUNK)
		bad = fe_blk_io(blk, 0, VIRTIO_BLK_T_IN, off / 512, back + off, CHUNK) != 0;
	bad = bad || memcmp(pattern, back, bytes) != 0;
	printf("    read it back through virtio-blk: %s\n", bad ? "MISMATCH" : "identical");
	int fd = open(image, O_RDONLY);
	bool same = fd >= 0 && pread(fd, file, bytes, 0) == (ssize_t)bytes &&
		    memcmp(file, pattern, bytes) == 0;
	if (fd >= 0)
		close(fd);
	printf("    compared with %s on the host: %s\n", image, same ? "identical" : "MISMATCH");
	uint8_t sector_buf[512];
	int st = fe_blk_io(blk, 0, VIRTIO_BLK_T_IN, blk->capacity, sector_buf, 512);
	printf("    read past the end of the disk: %s\n",
	       st == VIRTIO_BLK_S_IOERR ? "refused with IOERR, as it should" : "NOT REFUSED");
	free(pattern);
	free(back);
	free(file);
	fe_blk_close(blk);
	return bad || !same || st != VIRTIO_BLK_S_IOERR;
}

int main(int argc, char **argv)
{
	if (argc < 3 || (argc - 1) % 2) {
		fprintf(stderr, "usage: virtio-ivshmem-demo SOCKET IMAGE [SOCKET IMAGE...]\n");
		return 2;
	}
	int fails = 0;
	for (int i = 1; i < argc; i += 2) {
		printf("disk %d:\n", (i + 1) / 2);
		fails += tour(argv[i], argv[i + 1], 0x5eed0000u + (unsigned)i);
	}
	printf(fails ? "demo: %d disk(s) FAILED\n" : "demo: all disks verified\n", fails);
	return fails ? 1 : 0;
}
