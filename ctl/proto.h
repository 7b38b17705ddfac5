/* The control protocol between virtio-ivshmemd and its clients
 * (virtio-ivshmemctl, jailhouse-cellmgr): one command per line, answered
 * with "ok\n<body>.\n" or "error: MESSAGE\n.\n" (the body's lines end in
 * "\n"; a body line is never just "."). */
#pragma once

#define CTL_MAX_LINE        4096            /* a command line, newline included */
#define CTL_REPLY_MAX       (4u << 20)      /* the most a client reads */
#define CTL_DEFAULT_SOCKET  "/run/virtio-ivshmemd/control.sock"
