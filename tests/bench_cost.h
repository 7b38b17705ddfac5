/* What a benchmark run costs a process: CPU time, context switches and
 * read/write-family system calls, for the per-request figures of
 * virtio-ivshmem-bench (tests/bench.c).
 *
 * Sources, and what each counts (Linux):
 *   - CPU: utime + stime of /proc/PID/stat, the whole thread group: every
 *     live thread, io_uring's iou-wrk workers among them (they are threads
 *     of the process that owns the ring), and every thread already reaped
 *     (their times are folded into the process's signal struct on exit).
 *     Resolution: one clock tick (sysconf(_SC_CLK_TCK), usually 10 ms).
 *   - Context switches: voluntary_ctxt_switches and
 *     nonvoluntary_ctxt_switches of /proc/PID/task/TID/status, per thread
 *     (/proc/PID/status gives the main thread's only).  A thread is read
 *     at the start, at every cost_watch_sample() and at the end; one that
 *     exits in between loses what it did since its last sample, one that
 *     appears counts from zero.  For the process itself, getrusage
 *     (RUSAGE_SELF) sums all threads, reaped ones included.
 *   - System calls: syscr and syscw of /proc/PID/io, the whole thread
 *     group, reaped threads included: calls of the read and write families
 *     (read, pread64, readv, preadv, write, pwrite64, writev, pwritev, ...):
 *     here the eventfd doorbells and interrupts.  io_uring_enter, poll,
 *     epoll_wait, sendmsg/recvmsg and the I/O io_uring performs are not
 *     counted.
 * The io_uring workers' share: their context switches from their own
 * threads; their CPU as the whole group's minus the other threads' (the
 * daemon's loops live through a run, the workers come and go).
 */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct cost {
	double usr_s, sys_s;            /* CPU seconds */
	uint64_t vcsw, ivcsw;           /* voluntary, involuntary context switches */
	uint64_t syscr, syscw;
	bool have_io;                   /* /proc/PID/io was readable */
	/* another process only: its io_uring workers (threads named iou-wrk-*) */
	double wrk_s;
	uint64_t wrk_vcsw, wrk_ivcsw;
	unsigned wrk_threads;           /* seen during the run */
};

struct cost_watch;

/* Start watching pid (0: this process).  NULL when it cannot be read
 * (gone, or not ours to read); errno says why. */
struct cost_watch *cost_watch_start(pid_t pid);
/* Read the threads again (other processes: call every few hundred ms so
 * that exiting threads lose little). */
void cost_watch_sample(struct cost_watch *w);
/* The cost since the start into *c; frees w.  -errno when the process
 * could not be read at the end (it exited). */
int cost_watch_end(struct cost_watch *w, struct cost *c);
