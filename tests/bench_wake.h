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
 * thread publishes a request in memory, a responder thread watches that
 * memory as a busy-polling daemon loop does, spends work_ns on the
 * request, then writes an eventfd as the daemon raises an interrupt.
 *   - awake: work_ns = 0 and the requester spins on the eventfd (a
 *     non-blocking read until it succeeds): the round trip of two threads
 *     that never sleep (awake_p50);
 *   - slept: the requester waits as the bench's worker does (looks once,
 *     then poll()), and the answer comes work_ns later, longer than it
 *     takes to fall asleep: slept_p50; slept_share is the requester's
 *     voluntary context switches per request, how often it really slept;
 *   - wake = slept_p50 - work_ns - awake_p50: what sleeping added.  Medians
 *     do not add exactly: on a quiet machine with two CPUs it comes out
 *     positive; a negative one says the figures are noise.
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
	double slept_share;             /* voluntary context switches per request, slept phase */
	double wake_us;                 /* slept_p50 - work - awake_p50 */
	uint64_t requests;              /* both phases */
};

/* 0, or a negative errno: -ETIMEDOUT when an answer took over a second
 * (or none came), else what eventfd() or pthread_create() failed with. */
int wake_cost_measure(unsigned work_ns, unsigned runtime_ms, struct wake_cost *out);

/* virtio-ivshmem-bench --wake-cost: measure, print the figures and a
 * RESULT line (wake_us=... awake_p50_us=... slept_p50_us=...
 * slept_share=... work_us=... requests=...).  0, or 1 after an error
 * message. */
int wake_cost_report(unsigned work_us, unsigned runtime_s);
