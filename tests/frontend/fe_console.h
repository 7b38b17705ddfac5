/* virtio-console client (port 0, no MULTIPORT) on top of the userspace
 * front-end (fe.h), shaped like the Linux driver: a number of receive
 * buffers kept posted on queue 0, output as descriptor chains on queue 1,
 * cols/rows read from the config space (VIRTIO_CONSOLE_F_SIZE) and re-read
 * when config_generation moves.  All data is bounced through the R/W
 * section. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tests/frontend/fe.h"

struct fe_con_rxbuf {
	uint64_t off;           /* R/W-section offset */
	bool posted;
};

struct fe_console {
	struct fe_dev *fe;
	uint16_t cols, rows;    /* as last read from the config space */
	uint32_t config_gen;    /* config_generation when they were read */
	uint64_t config_changes;

	/* Receive: nrx buffers of rx_size bytes; completed bytes wait in in[]. */
	unsigned nrx;
	uint32_t rx_size;
	struct fe_con_rxbuf *rx;
	uint8_t *in;
	size_t in_len, in_cap;
	bool rx_paused;         /* stop re-posting buffers (fe_console_rx_pause) */
	uint64_t rx_bytes, rx_chains, rx_empty;

	/* Transmit: chains of up to tx_segs buffers of up to tx_seg bytes. */
	unsigned tx_segs;
	uint32_t tx_seg;
	unsigned tx_inflight;   /* chains the device has not completed */
	uint64_t tx_bytes, tx_chains, tx_bad_len;
};

/* Connect to the link at path, negotiate VERSION_1 | ACCESS_PLATFORM | F_SIZE
 * | EVENT_IDX | INDIRECT with 2 queues of qsize, post nrx receive buffers of
 * rx_size bytes. */
int fe_console_open(const char *path, uint16_t qsize, unsigned nrx, uint32_t rx_size,
		    int wait_ms, struct fe_console **ret, char *err, size_t err_len);
void fe_console_close(struct fe_console *c);

/* Queue up to len bytes on the transmit queue and kick.  Returns how many
 * were queued (0 when the ring or the pool is full: poll first). */
size_t fe_console_send(struct fe_console *c, const void *buf, size_t len);

/* Reap completions on both queues (received bytes are appended to in[],
 * receive buffers re-posted), waiting up to timeout_ms for an interrupt if
 * there was nothing.  Returns the number of completions, 0 on timeout,
 * -ENODEV when the backend went away. */
int fe_console_poll(struct fe_console *c, int timeout_ms);

/* Take up to len received bytes. */
size_t fe_console_recv(struct fe_console *c, void *buf, size_t len);

/* Send all of buf, polling as needed; -ETIMEDOUT when the device stops
 * taking data for timeout_ms, else 0. */
int fe_console_write_all(struct fe_console *c, const void *buf, size_t len, int timeout_ms);
/* Receive exactly len bytes; -ETIMEDOUT when nothing arrives for timeout_ms. */
int fe_console_read_exact(struct fe_console *c, void *buf, size_t len, int timeout_ms);
/* Wait until every transmitted chain has completed. */
int fe_console_drain(struct fe_console *c, int timeout_ms);

/* Stop / resume re-posting receive buffers (flow control towards the cell:
 * the device must then stop reading its endpoint). */
void fe_console_rx_pause(struct fe_console *c, bool pause);
/* Receive buffers the device holds now. */
unsigned fe_console_rx_posted(const struct fe_console *c);

/* Re-read cols/rows when config_generation moved; returns true then. */
bool fe_console_config_update(struct fe_console *c);
