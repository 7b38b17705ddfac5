/* backends/blk_direct.h: the alignments O_DIRECT needs (blk_dio_align), the
 * check of a request's buffers against them (blk_dio_fits) and a queue's
 * bounce slots. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backends/blk_direct.h"

static bool pow2(uint32_t x)
{
	return x && !(x & (x - 1));
}

/* A file in /var/tmp (a disk file system here, not tmpfs) opened
 * O_DIRECT: both alignments powers of two within the limits, a source. */
static void test_align_file(void **state)
{
	char path[] = "/var/tmp/vivd-dio-XXXXXX";
	int tmp = mkstemp(path);
	assert_true(tmp >= 0);
	assert_int_equal(ftruncate(tmp, 1 << 20), 0);
	int fd = open(path, O_RDWR | O_DIRECT | O_CLOEXEC);
	int e = errno;
	close(tmp);
	unlink(path);
	if (fd < 0) {
		char why[128];
		snprintf(why, sizeof(why), "O_DIRECT on /var/tmp: %s", strerror(e));
		print_message("skipped: %s\n", why);
		skip();
	}
	struct blk_dio d = { 0 };
	assert_int_equal(blk_dio_align(fd, &d), 0);
	printf("/var/tmp: memory %u, offsets %u, from %s\n", d.mem_align, d.off_align, d.source);
	assert_true(pow2(d.mem_align) && d.mem_align <= 4096);
	assert_true(pow2(d.off_align) && d.off_align <= 65536);
	assert_non_null(d.source);
	/* An aligned direct read works with what it says. */
	void *buf = aligned_alloc(4096, 65536);
	ssize_t got = pread(fd, buf, d.off_align, d.off_align);
	if (got < 0)
		fail_msg("aligned direct read: %s", strerror(errno));
	assert_int_equal(got, (ssize_t)d.off_align);
	free(buf);
	close(fd);
}

static void test_align_bad_fd(void **state)
{
	struct blk_dio d;
	assert_int_equal(blk_dio_align(-1, &d), -EBADF);
}

static void test_fits(void **state)
{
	static uint8_t mem[3 * 4096] __attribute__((aligned(4096)));
	struct blk_dio d = { .mem_align = 512, .off_align = 512, .source = "test" };
	struct iovec ok[2] = { { mem, 4096 }, { mem + 4096, 1024 } };
	assert_true(blk_dio_fits(&d, ok, 2, 0));
	assert_true(blk_dio_fits(&d, ok, 2, 512 * 7));
	assert_true(blk_dio_fits(&d, ok, 0, 4096));            /* nothing to check */
	assert_false(blk_dio_fits(&d, ok, 2, 256));            /* offset */
	assert_false(blk_dio_fits(&d, ok, 2, 4097));
	struct iovec addr[2] = { { mem, 4096 }, { mem + 4096 + 8, 1024 } };
	assert_false(blk_dio_fits(&d, addr, 2, 0));            /* second address */
	assert_true(blk_dio_fits(&d, addr, 1, 0));             /* only the first looked at */
	struct iovec len[2] = { { mem, 1000 }, { mem + 1024, 24 } };
	assert_false(blk_dio_fits(&d, len, 2, 0));             /* lengths, though the sum is 1024 */
	/* memory aligned more loosely than offsets (NVMe: 4 bytes) */
	struct blk_dio n = { .mem_align = 4, .off_align = 512, .source = "test" };
	struct iovec odd[1] = { { mem + 4, 512 } };
	assert_true(blk_dio_fits(&n, odd, 1, 1024));
	odd[0].iov_base = mem + 2;
	assert_false(blk_dio_fits(&n, odd, 1, 1024));
	odd[0].iov_base = mem + 4;
	odd[0].iov_len = 516;
	assert_false(blk_dio_fits(&n, odd, 1, 1024));
}

static void test_bounce_pool(void **state)
{
	struct bounce_pool p;
	assert_int_equal(bounce_init(&p, 0, 4096), -EINVAL);
	assert_int_equal(bounce_init(&p, 65, 4096), -EINVAL);
	assert_int_equal(bounce_init(&p, 8, 100000), 0);
	assert_int_equal(p.slot, 128u << 10);                  /* rounded up to 64 KiB */
	assert_int_equal(p.nslots, 8);
	uint8_t *s[8];
	for (int i = 0; i < 8; i++) {
		s[i] = bounce_get(&p);
		assert_non_null(s[i]);
		assert_int_equal((uintptr_t)s[i] % 4096, 0);   /* page-aligned */
		for (int k = 0; k < i; k++)
			assert_true(s[k] + p.slot <= s[i] || s[i] + p.slot <= s[k]);
		memset(s[i], i, p.slot);                       /* all of it is usable */
	}
	assert_null(bounce_get(&p));                           /* all taken: none */
	assert_null(bounce_get(&p));
	bounce_put(&p, s[5]);
	bounce_put(&p, s[2]);
	assert_ptr_equal(bounce_get(&p), s[2]);                /* the lowest free one */
	assert_ptr_equal(bounce_get(&p), s[5]);
	assert_null(bounce_get(&p));
	for (int i = 0; i < 8; i++)
		bounce_put(&p, s[i]);
	assert_int_equal(p.free_mask, 0xff);
	bounce_destroy(&p);
	assert_null(p.mem);
	bounce_destroy(&p);                                    /* twice is harmless */
	/* 64 slots: the whole mask */
	assert_int_equal(bounce_init(&p, 64, 1), 0);
	assert_int_equal(p.slot, 64u << 10);
	unsigned n = 0;
	while (bounce_get(&p))
		n++;
	assert_int_equal(n, 64);
	bounce_destroy(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_align_file),
		cmocka_unit_test(test_align_bad_fd),
		cmocka_unit_test(test_fits),
		cmocka_unit_test(test_bounce_pool),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
