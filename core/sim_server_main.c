/* ivshmem-sim-server: hosts one software IVSHMEM v2 link on a unix socket,
 * like QEMU's contrib/ivshmem2-server (same wire protocol and options). */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "core/log.h"
#include "core/sim_link.h"

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: ivshmem-sim-server [-v] [-S SOCKET] [-l SIZE] [-o SIZE] [-n PEERS] [-V VECTORS] [-P PROTOCOL]\n"
		"Host a software IVSHMEM v2 link (ivshmem2-server protocol) in the foreground.\n\n"
		"  -S SOCKET    unix socket path (default /tmp/ivshmem_socket)\n"
		"  -l SIZE      shared memory size, K/M/G suffixes, rounded up to a power of two\n"
		"               (default 4M; the R/W section is what the 4K state table and\n"
		"               the output sections leave)\n"
		"  -o SIZE      output section size per peer (default 0)\n"
		"  -n PEERS     maximum peers (default 2; virtio protocols need 2)\n"
		"  -V VECTORS   interrupt vectors per peer (default 2, max 64)\n"
		"  -P PROTOCOL  16-bit protocol, e.g. 0x8002 for virtio-blk (default 0x8002)\n"
		"  -v           verbose\n");
}

static int parse_size(const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 0);
	unsigned shift = *end == 'K' || *end == 'k' ? 10 : *end == 'M' || *end == 'm' ? 20
		       : *end == 'G' || *end == 'g' ? 30 : 0;
	if (shift)
		end++;
	if (errno || end == s || *end)
		return -EINVAL;
	*out = (uint64_t)v << shift;
	return 0;
}

static void on_signal(uv_signal_t *h, int signum)
{
	struct sim_link *link = h->data;
	sim_link_destroy(link);
	uv_close((uv_handle_t *)h, NULL);
	uv_stop(h->loop);
	(void)signum;
}

int main(int argc, char **argv)
{
	const char *path = "/tmp/ivshmem_socket";
	struct sim_link_params p = { .shm_size = 4u << 20, .max_peers = 2, .vectors = 2,
				     .protocol = 0x8002 };
	int c;
	while ((c = getopt(argc, argv, "hvS:l:o:n:V:P:F")) != -1) {
		unsigned long v;
		switch (c) {
		case 'S': path = optarg; break;
		case 'l': if (parse_size(optarg, &p.shm_size)) goto bad; break;
		case 'o': if (parse_size(optarg, &p.output_size)) goto bad; break;
		case 'n': p.max_peers = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 'V': p.vectors = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 'P':
			v = strtoul(optarg, NULL, 0);
			if (v > 0xffff)
				goto bad;
			p.protocol = (uint16_t)v;
			break;
		case 'v': log_set_level(LOG_DEBUG); break;
		case 'F': break;        /* always in the foreground; accepted for compatibility */
		case 'h': usage(stdout); return 0;
		default: goto bad;
		}
	}
	uv_loop_t *loop = uv_default_loop();
	struct sim_link *link;
	char err[512];
	int r = sim_link_create(loop, path, &p, &link, err, sizeof(err));
	if (r < 0) {
		log_err("%s", err);
		return 1;
	}
	uv_signal_t sint, sterm;
	uv_signal_init(loop, &sint);
	uv_signal_init(loop, &sterm);
	sint.data = sterm.data = link;
	uv_signal_start(&sint, on_signal, SIGINT);
	uv_signal_start(&sterm, on_signal, SIGTERM);
	log_info("ivshmem-sim-server: link on %s (R/W %llu bytes, %u peers, %u vectors, protocol 0x%04x)",
		 path, (unsigned long long)sim_link_rw_size(link), p.max_peers, p.vectors, p.protocol);
	uv_run(loop, UV_RUN_DEFAULT);
	return 0;
bad:
	usage(stderr);
	return 2;
}
