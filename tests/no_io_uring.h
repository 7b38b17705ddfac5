/* Take io_uring away from this process and its children: a seccomp filter
 * answers io_uring_setup with ENOSYS, as a kernel built without io_uring,
 * with kernel.io_uring_disabled = 2 or under qemu-user does.
 * 0 when io_uring_setup now fails with ENOSYS (filtered, or absent anyway);
 * -1 when no filter could be installed and io_uring works (callers skip). */
#pragma once

int no_io_uring(void);
