/* What waking a sleeping thread costs on this machine: the part of a
 * queue-depth-1 latency that belongs to neither the daemon nor the storage
 * (virtio-ivshmem-bench --wake-cost).
 *
 * At QD 1 the bench's worker, like a Linux guest's task waiting for its
 * virtio-blk interrupt, goes to sleep in poll() unless the answer is
 * already there.  On a virtual machine whose idle vCPUs halt (no guest
 * halt-polling), the answer then waits for the host to run the halted vCPU
 * again: microseconds that a page-cache read through fio never pays, and
 * that a Jailhouse cell (a dedicated CPU woken by an interrupt) pays only
 * in part.  The null disk answers before the bench has gone to sleep, so
 * its QD 1 figure does not contain them either.
 *
 * The measurement models the two sides and nothing else: a requester
 * thread publishes a request in memory and waits as the bench's worker
 * does (looks once, then poll() on an eventfd); a responder thread watches
 * that memory as a busy-polling daemon loop does, spends work_ns on the
 * request, then writes the eventfd as the daemon raises an interrupt.
 *   - with work_ns = 0, the requester rarely sleeps: the round trip of two
 *     threads that stay awake (awake_p50);
 *   - with work_ns longer than the requester needs to reach poll(), it
 *     sleeps each time (slept_share says how often it did): slept_p50;
 *   - wake = slept_p50 - work_ns - awake_p50: what sleeping added.
 * Each phase runs for half of runtime_ms.  Needs two CPUs to mean anything
 * (with one, the responder's spin and the requester share it); the
 * responder gives the CPU up when the requester is gone for a millisecond,
 * so a busy machine slows the figures but cannot hang the measurement.
 */
#pragma once
#include <stdint.h>

struct wake_cost {
	double awake_p50_us, awake_p99_us;
	double slept_p50_us, slept_p99_us;
	double slept_share;             /* of the requests with work: how many slept */
	double wake_us;                 /* slept_p50 - work - awake_p50 */
	uint64_t requests;              /* both phases */
};

/* 0, or a negative errno (eventfd, threads). */
int wake_cost_measure(unsigned work_ns, unsigned runtime_ms, struct wake_cost *out);
