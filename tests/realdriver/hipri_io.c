/* vivd-hipri: polled I/O in the real-driver guest (tests/realdriver).
 *
 *   vivd-hipri write DEV OFFSET FILE      FILE's bytes to DEV at OFFSET
 *   vivd-hipri read  DEV OFFSET LEN FILE  LEN bytes of DEV at OFFSET to FILE
 *
 * 4 KiB requests, one at a time, O_DIRECT through an io_uring set up with
 * IORING_SETUP_IOPOLL: what fio --hipri does.  With virtio_blk loaded with
 * poll_queues=N the block layer sends them down a poll queue (a virtqueue
 * made without a callback, so the driver wants no interrupts for it) and
 * io_uring polls its used ring for the answers.  Prints "hipri: N
 * requests"; exit status 1 with the reason on any error or short transfer.
 */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BLOCK 4096

static int die(const char *what, int err)
{
	fprintf(stderr, "vivd-hipri: %s: %s\n", what, strerror(err));
	return 1;
}

/* One request, polled to its end: the bytes moved or a negative errno. */
static int one(struct io_uring *ring, int fd, int write, void *buf, off_t off)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
	if (write)
		io_uring_prep_write(sqe, fd, buf, BLOCK, (unsigned long long)off);
	else
		io_uring_prep_read(sqe, fd, buf, BLOCK, (unsigned long long)off);
	int r = io_uring_submit(ring);
	if (r != 1)
		return r < 0 ? r : -EIO;
	struct io_uring_cqe *cqe;
	do
		r = io_uring_wait_cqe(ring, &cqe);      /* IOPOLL: polls the device */
	while (r == -EINTR);
	if (r < 0)
		return r;
	r = cqe->res;
	io_uring_cqe_seen(ring, cqe);
	return r;
}

int main(int argc, char **argv)
{
	int write = argc == 5 && strcmp(argv[1], "write") == 0;
	if (!write && !(argc == 6 && strcmp(argv[1], "read") == 0)) {
		fprintf(stderr, "usage: vivd-hipri write DEV OFFSET FILE | read DEV OFFSET LEN FILE\n");
		return 2;
	}
	off_t off = strtoll(argv[3], NULL, 0);
	size_t len;
	void *data;
	if (write) {
		FILE *f = fopen(argv[4], "rb");
		if (!f)
			return die(argv[4], errno);
		fseek(f, 0, SEEK_END);
		len = (size_t)ftell(f);
		rewind(f);
		if (posix_memalign(&data, BLOCK, len + BLOCK) || fread(data, 1, len, f) != len)
			return die(argv[4], EIO);
		fclose(f);
	} else {
		len = strtoull(argv[4], NULL, 0);
		if (posix_memalign(&data, BLOCK, len + BLOCK))
			return die("memory", ENOMEM);
	}
	if (len % BLOCK || off % BLOCK)
		return die("offset and length must be multiples of 4096", EINVAL);
	int fd = open(argv[2], (write ? O_WRONLY : O_RDONLY) | O_DIRECT);
	if (fd < 0)
		return die(argv[2], errno);
	struct io_uring ring;
	int r = io_uring_queue_init(4, &ring, IORING_SETUP_IOPOLL);
	if (r < 0)
		return die("io_uring_queue_init(IOPOLL)", -r);
	unsigned n = 0;
	for (size_t done = 0; done < len; done += BLOCK, n++) {
		r = one(&ring, fd, write, (char *)data + done, off + (off_t)done);
		if (r != BLOCK)
			return die(write ? "polled write" : "polled read", r < 0 ? -r : EIO);
	}
	io_uring_queue_exit(&ring);
	close(fd);
	if (!write) {
		FILE *f = fopen(argv[5], "wb");
		if (!f || fwrite(data, 1, len, f) != len || fclose(f))
			return die(argv[5], errno ? errno : EIO);
	}
	free(data);
	printf("hipri: %u requests\n", n);
	return 0;
}
