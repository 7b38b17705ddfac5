#!/usr/bin/env python3
"""Write the seed corpus of every fuzz target into tests/fuzz/corpus/<target>/.

Seeds are small well-formed programs in each target's input format (the
format is described at the top of each fuzz_<target>.c): a working device
session, the edge cases the unit tests use, so that the fuzzer starts from
inputs that reach deep code and mutates from there.  They are named
seed-*; inputs of bugs found by fuzzing are kept next to them as crash-*
(never rewritten by this script).  Run it after changing an input format:

    tests/fuzz/gen_corpus.py            # all targets
    tests/fuzz/gen_corpus.py virtqueue  # one
"""
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def u8(v): return struct.pack('<B', v & 0xff)
def u16(v): return struct.pack('<H', v & 0xffff)
def u32(v): return struct.pack('<I', v & 0xffffffff)
def u64(v): return struct.pack('<Q', v & 0xffffffffffffffff)


def write(target, seeds):
    d = os.path.join(HERE, 'corpus', target)
    os.makedirs(d, exist_ok=True)
    for f in os.listdir(d):
        if f.startswith('seed-'):
            os.remove(os.path.join(d, f))
    for name, data in seeds.items():
        with open(os.path.join(d, 'seed-' + name), 'wb') as f:
            f.write(data)


# ---- virtqueue (fuzz_virtqueue.c) ----------------------------------------

VQ_LO, VQ_SPAN = 4096, 3 * 4096
(VQ_DESC, VQ_ITAB, VQ_AVAIL, VQ_AVAIL_IDX, VQ_POKE, VQ_POP, VQ_CHAIN, VQ_PUSH,
 VQ_PUBLISH, VQ_NOTIFY, VQ_HAS_WORK) = range(11)


def vq_off(addr):
    """The u16 a placement or buffer address is encoded as (offset from lo)."""
    return addr - VQ_LO


def vq_desc(i, addr, length, flags=0, nxt=0):
    return u8(VQ_DESC) + u16(i) + u8(8) + u16(vq_off(addr)) + u8(16) + u16(length) + \
        u16(flags) + u16(nxt)


def vq_header(mode, num_log2, desc, avail, used, adopt_idx=None):
    b = u8(mode) + u16(num_log2) + u16(0) + u16(vq_off(desc)) + u16(vq_off(avail)) + \
        u16(vq_off(used))
    if adopt_idx is not None:
        b += u16(adopt_idx)
    return b


def virtqueue():
    D, A, U = 0x1000, 0x1800, 0x1c00    # num 8: desc 128 B, avail 22, used 70
    BUF = 0x2000
    s = {}
    # one readable + one writable buffer, popped, answered, published
    p = vq_header(0, 3, D, A, U)
    p += vq_desc(0, BUF, 16, 1, 1) + vq_desc(1, BUF + 0x100, 64, 2, 0)
    p += u8(VQ_AVAIL) + u16(0) + u8(VQ_HAS_WORK) + u8(VQ_POP) + u8(63)
    p += u8(VQ_PUSH) + u16(0) + u32(65) + u8(VQ_PUBLISH) + u8(VQ_NOTIFY)
    s['simple'] = p
    # event-idx and indirect: an indirect table of three buffers
    p = vq_header(8 | 16, 3, D, A, U)
    ITAB = 0x3000
    p += u8(VQ_ITAB) + u16(ITAB - VQ_LO) + u8(3)
    for i, (ln, fl) in enumerate([(16, 1), (512, 1 | 2), (1, 2)]):
        p += u8(8) + u16(BUF + 0x200 * i - VQ_LO) + u8(16) + u16(ln) + u16(fl) + u16(i + 1)
    p += vq_desc(2, ITAB, 48, 4, 0)
    p += u8(VQ_AVAIL) + u16(2) + u8(VQ_POP) + u8(63) + u8(VQ_PUSH) + u16(0) + u32(513)
    p += u8(VQ_PUBLISH) + u8(VQ_NOTIFY) + u8(VQ_CHAIN) + u16(2)
    s['indirect-event-idx'] = p
    # a full ring, popped twice around
    p = vq_header(8, 2, D, A, U)
    for i in range(4):
        p += vq_desc(i, BUF + 64 * i, 64, 2 if i % 2 else 0, 0)
    for _ in range(3):
        for i in range(4):
            p += u8(VQ_AVAIL) + u16(i)
        for i in range(4):
            p += u8(VQ_POP) + u8(7)
        for i in range(4):
            p += u8(VQ_PUSH) + u16(0) + u32(64)
        p += u8(VQ_PUBLISH)
    s['wrap'] = p
    # hostile: a loop, an avail index far ahead, a buffer over the end
    p = vq_header(0, 3, D, A, U)
    p += vq_desc(0, BUF, 16, 1, 1) + vq_desc(1, BUF, 16, 1, 0)
    p += u8(VQ_AVAIL) + u16(0) + u8(VQ_POP) + u8(63)
    p += u8(VQ_AVAIL_IDX) + u16(0x8000) + u8(VQ_POP) + u8(63)
    p += u8(VQ_DESC) + u16(3) + u8(0) + u64(0x3ff8) + u8(16) + u16(16) + u16(0) + u16(0)
    p += u8(VQ_AVAIL_IDX) + u16(1) + u8(VQ_POKE) + u16(A + 6 - VQ_LO) + u8(1) + u16(3)
    p += u8(VQ_POP) + u8(63)
    s['hostile'] = p
    # taken over from a process that had published 5 entries
    p = vq_header(32 | 8, 3, D, A, U, adopt_idx=5)
    p += vq_desc(5, BUF, 32, 2, 0) + u8(VQ_AVAIL_IDX) + u16(5) + u8(VQ_AVAIL) + u16(5)
    p += u8(VQ_POP) + u8(63) + u8(VQ_PUSH) + u16(0) + u32(32) + u8(VQ_PUBLISH)
    s['adopt'] = p
    write('virtqueue', s)


# ---- transport (fuzz_transport.c, fuzz_transport_ops.c) ------------------

(T_REG, T_PEER, T_KICK, T_DESC, T_ITAB, T_AVAIL, T_POKE, T_ANSWER, T_BRINGUP, T_PAUSE,
 T_FLUSH, T_CONFIG, T_SHUTDOWN, T_LINK_DOWN, T_CRASH, T_TICK, T_WAIT, T_SPIN) = range(18)
T_STATUS = 10       # index of VI_DEVICE_STATUS in the register table
T_QSEL, T_QENABLE = 3, 9
T_FEATURES = (1 << 1) | (1 << 2) | (1 << 9)      # a block-like backend


def t_device(nq, vectors, qmax_log2, flags, maxseg=0, cfg=18, at_once_len=1):
    a = (nq - 1) | ((vectors - 1) << 2)
    b = qmax_log2 | (maxseg << 3)
    return u8(a) + u8(b) + u8(flags) + u64(T_FEATURES) + u8(cfg) + u8(at_once_len)


def t_bringup(size_log2, lo=0x206 | (1 << 28) | (1 << 29), hi=0):
    return u8(T_BRINGUP) + u8(size_log2) + u32(lo) + u32(hi)


def t_desc(q, i, addr, length, flags, nxt):
    return u8(T_DESC) + u8(q) + u16(i) + u8(200) + u16(addr) + u8(16) + u16(length) + \
        u8(flags) + u8(nxt)


def t_request(q, head, buf):
    """A block-like request at descriptors head, head+1: 16 readable bytes,
    then 513 writable ones; made available."""
    return t_desc(q, head, buf, 16, 1, head + 1) + t_desc(q, head + 1, buf + 16, 513, 2, 0) + \
        u8(T_AVAIL) + u8(q) + u8(head)


def t_kick(vector):
    return u8(T_KICK) + u8(vector + 1)


def t_answer(q, i, length):
    return u8(T_ANSWER) + u8(q) + u8(i) + u8(16) + u16(length)


def t_reg(k, value, width):
    return u8(T_REG) + u8(k) + {2: u16, 4: u32}[width](value)


def transport():
    s = {}
    # one queue, a journal: requests held, answered, published; a reset
    p = t_device(1, 3, 3, 1) + t_bringup(3)
    p += t_request(0, 0, 0x3000) + t_request(0, 2, 0x3400) + t_kick(1)
    p += t_answer(0, 0, 513) + u8(T_TICK) + t_answer(0, 0, 1)
    p += t_request(0, 4, 0x3800) + t_kick(1)
    p += t_reg(T_STATUS, 0, 4) + t_answer(0, 0, 0) + u8(T_TICK)
    s['journal-reset'] = p
    # two queues answered at once, a polled one, no journal; queue disable
    p = t_device(2, 3, 2, 2 | 8) + t_bringup(2)
    for q in (0, 1):
        p += t_request(q, 0, 0x3000 + 0x400 * q) + t_kick(q + 1)
    p += t_reg(T_QSEL, 1, 4) + t_reg(T_QENABLE, 0, 2) + u8(T_TICK)
    p += u8(T_FLUSH) + u8(T_CONFIG)
    s['at-once-disable'] = p
    # a crash with requests in flight and one answered but not published
    p = t_device(1, 2, 3, 1) + t_bringup(3)
    p += t_request(0, 0, 0x3000) + t_request(0, 2, 0x3400) + t_request(0, 4, 0x3800)
    p += t_kick(0) + t_answer(0, 0, 513) + u8(T_TICK) + t_answer(0, 0, 513)
    p += u8(T_CRASH) + u8(0) + u8(0)
    p += t_answer(0, 0, 1) + t_answer(0, 0, 1) + u8(T_TICK)
    s['crash'] = p
    # the peer leaves with requests in flight; a console-like backend
    # that answers what it holds when asked to cancel
    p = t_device(2, 1, 4, 1 | 4 | 16) + t_bringup(4)
    p += t_request(1, 0, 0x3000) + t_kick(0)
    p += u8(T_PEER) + u8(0) + u8(T_TICK) + u8(T_PEER) + u8(200) + t_bringup(4)
    s['peer-leaves'] = p
    # taken over first, from a journal of input bytes: running, two heads
    # in flight
    p = t_device(1, 3, 3, 1 | 32)
    p += u8(2)                                  # two descriptors, written raw
    for i in range(2):
        p += u16(0x1000 + 16 * i) + u64(0x3000 + 0x100 * i) + u32(16) + u16(2) + u16(0)
    p += u8(1)                                  # peer READY
    p += u8(2) + u8(0x0f) + u64(0x3_3000_0206) + u8(0) + u8(0) + u8(0)
    # queue 0: size 8, vector 1, nothing published, heads 0 and 1 taken at
    # avail positions 0 and 1
    p += u8(3) + u8(1) + u16(0) + u8(2) + u8(0) + u16(0) + u8(1) + u16(1)
    p += u8(0) + u8(0)                          # no word overwritten
    p += t_request(0, 4, 0x3000) + t_kick(1) + t_answer(0, 0, 1)
    s['adopt-first'] = p
    # the same take-over with the peer gone meanwhile and a backend that
    # answers at once: the replayed request is answered into the ring
    # while the queue is live, then the device sees the peer left and
    # drops the ring within the same step
    p = t_device(1, 3, 3, 1 | 2 | 32)
    p += u8(2)
    for i in range(2):
        p += u16(0x1000 + 16 * i) + u64(0x3000 + 0x100 * i) + u32(16) + u16(2) + u16(0)
    p += u8(0)                                  # peer RESET: gone
    p += u8(2) + u8(0x0f) + u64(0x3_3000_0206) + u8(0) + u8(0) + u8(0)
    p += u8(3) + u8(1) + u16(0) + u8(2) + u8(0) + u16(0) + u8(1) + u16(1)
    p += u8(0) + u8(0)
    s['adopt-peer-gone'] = p
    # shutdown with a request in flight, then a hostile indirect table
    p = t_device(1, 2, 3, 0) + t_bringup(3)
    p += u8(T_ITAB) + u16(0x800) + u8(2)
    p += u8(200) + u16(0x3000) + u8(16) + u16(16) + u8(1) + u8(1)
    p += u8(200) + u16(0x3100) + u8(16) + u16(64) + u8(2) + u8(0)
    p += u8(T_DESC) + u8(0) + u16(0) + u8(200) + u16(0x3800) + u8(16) + u16(32) + u8(4) + u8(0)
    p += u8(T_AVAIL) + u8(0) + u8(0) + t_kick(1) + u8(T_SHUTDOWN) + t_answer(0, 0, 5)
    s['indirect-shutdown'] = p
    # a driver that makes each head available again as soon as it is
    # popped (the device spends its budget), answers at once, a polled
    # queue whose interrupt is decided a millisecond later
    p = t_device(1, 2, 2, 2 | 8 | 64) + t_bringup(2)
    p += t_request(0, 0, 0x3000) + t_kick(1) + u8(T_WAIT) + u8(T_TICK)
    p += t_request(0, 2, 0x3400) + t_kick(1) + u8(T_WAIT)
    s['refill-polled'] = p
    # the same with a journal: a head made available again while in
    # flight breaks the device
    p = t_device(1, 2, 2, 1 | 64) + t_bringup(2)
    p += t_request(0, 0, 0x3000) + t_kick(1) + t_answer(0, 0, 1)
    s['refill-journal'] = p
    # without a journal nothing stops it: the device holds more requests
    # than the ring has entries, and the final drain answers them all
    # at once (more used entries in one go than the ring holds)
    p = t_device(1, 2, 6, 64) + t_bringup(4)
    p += t_request(0, 0, 0x3000) + t_kick(1)
    s['refill-drain'] = p
    # a busy-polling loop takes requests nobody kicked for, with the
    # driver's kicks off meanwhile (event-idx), on again after; the second
    # spin gives up after one look, then a kick finds nothing new
    p = t_device(1, 2, 3, 2) + t_bringup(3)
    p += t_request(0, 0, 0x3000) + u8(T_SPIN) + u8(0x10)
    p += u8(T_SPIN) + u8(0) + t_request(0, 2, 0x3400) + u8(T_SPIN) + u8(0x30) + t_kick(1)
    s['spin'] = p
    write('transport', s)


# ---- blk_cmd (fuzz_blk_cmd.c) --------------------------------------------

def blk(out, inn, region, capacity=2048, blk_log2=0, ro=0, maxseg=16, range_max=0xffff):
    """out/inn: (offset, length) of the readable and writable buffers;
    region: {offset: bytes} written into the 2-page region."""
    b = u8(200) + u16(capacity) + u8(blk_log2) + u8(ro) + u8(maxseg) + u8(200) + u16(range_max)
    b += u8(len(out)) + u8(len(inn))
    for off, ln in out + inn:
        b += u16(off) + u16(ln)
    mem = bytearray(max([0] + [o + len(d) for o, d in region.items()]))
    for o, d in region.items():
        mem[o:o + len(d)] = d
    return b + bytes(mem)


def blk_hdr(typ, sector):
    return u32(typ) + u32(0) + u64(sector)


def blk_cmd():
    s = {}
    s['read'] = blk([(0, 16)], [(0x1000, 1024), (0x1400, 1)], {0: blk_hdr(0, 8)})
    s['write'] = blk([(0, 16), (0x100, 512)], [(0x1400, 1)], {0: blk_hdr(1, 2040)})
    # header and data in one readable buffer, data and status in one writable
    s['any-layout'] = blk([(0, 16 + 4096)], [(0x1800, 2)], {0: blk_hdr(1, 0)}, blk_log2=3)
    s['read-any-layout'] = blk([(0, 16)], [(0x1000, 513)], {0: blk_hdr(0, 0)})
    s['discard'] = blk([(0, 16), (0x40, 32)], [(0x1000, 1)],
                       {0: blk_hdr(11, 0), 0x40: u64(8) + u32(16) + u32(0) +
                        u64(1024) + u32(1024) + u32(0)})
    s['write-zeroes-unmap'] = blk([(0, 48)], [(0x1000, 1)],
                                  {0: blk_hdr(13, 0) + u64(4096) + u32(64) + u32(1) +
                                   u64(0) + u32(8) + u32(0)}, capacity=8192, blk_log2=3)
    s['get-id'] = blk([(0, 16)], [(0x1000, 20), (0x1014, 1)], {0: blk_hdr(8, 0)})
    s['flush-read-only'] = blk([(0, 16)], [(0x1000, 1)], {0: blk_hdr(4, 0)}, ro=1)
    write('blk_cmd', s)


# ---- console (fuzz_console.c, fuzz_console_drv.c) ------------------------

(C_RX, C_TX, C_KICK, C_SEND, C_READ, C_CONNECT, C_CLOSE, C_SHUT_WR, C_RUN, C_RESET,
 C_DISABLE, C_PEER_LEAVE, C_BRINGUP, C_SETTLE) = range(14)


def c_dev(backlog_log2, qsize_log2, client):
    """backlog_log2 None: no backlog (first byte odd)."""
    a = 1 if backlog_log2 is None else backlog_log2 << 1
    return u8(a) + u8(qsize_log2 | (0x80 if client else 0))


def c_chain(q, lens, flip=0, data=b''):
    """lens: per descriptor; flip: bit k turns descriptor k around
    (writable in a transmit chain, readable in a receive one)."""
    b = u8(C_RX if q == 0 else C_TX) + u8((len(lens) - 1) | (flip << 4))
    for ln in lens:
        b += u16(ln)
    return b + data


def c_tx(text):
    return c_chain(1, [len(text)], data=text)


def c_send(data):
    return u8(C_SEND) + u8(8) + u8(len(data) - 1) + data


def c_kick(vector):
    return u8(C_KICK) + u8(vector + 1)


def console():
    s = {}
    p = c_dev(10, 3, True) + u8(C_BRINGUP) + u8(3)
    p += c_chain(0, [256]) + c_chain(0, [64, 64]) + c_kick(1)
    p += c_send(b'hello, cell\n') + u8(C_RUN) + c_send(b'ls -l\n')
    p += c_tx(b'hello, host\n') + c_kick(2) + u8(C_READ) + u16(0)
    s['echo'] = p
    # output while nobody listens: the backlog, replayed on connect
    p = c_dev(6, 2, False) + u8(C_BRINGUP) + u8(2)
    p += c_tx(b'early output, kept in the backlog ' * 3) + c_kick(2)
    p += u8(C_CONNECT) + u8(C_RUN) + c_tx(b'then live\n') + c_kick(2) + u8(C_READ) + u16(0)
    s['backlog'] = p
    # output backs up: 8 KiB in the backlog, replayed into a small socket
    # buffer, and more behind it
    p = c_dev(13, 3, False) + u8(C_BRINGUP) + u8(3)
    for r, chains in enumerate((4, 4, 2)):
        for i in range(chains):
            p += c_chain(1, [512, 512], data=bytes([0x41 + 4 * r + i]) * 1024)
        p += c_kick(2) + u8(C_RUN)
        if r == 1:
            p += u8(C_CONNECT)
    p += u8(C_RUN) + u8(C_READ) + u16(0) + u8(C_RUN) + u8(C_READ) + u16(0)
    s['backpressure'] = p
    # a reset and the peer leaving with receive buffers held, then again
    p = c_dev(10, 3, True) + u8(C_BRINGUP) + u8(3)
    p += c_chain(0, [128]) + c_chain(0, [128]) + c_kick(0)
    p += u8(C_RESET) + u8(C_BRINGUP) + u8(2) + c_chain(0, [16]) + c_kick(1)
    p += c_send(b'after the reset') + u8(C_PEER_LEAVE) + u8(C_RUN) + u8(C_BRINGUP) + u8(3)
    p += c_chain(0, [300]) + c_kick(-1) + c_send(b'again')
    s['reset-peer-leaves'] = p
    # odd shapes: readable before writable in a receive chain, a writable
    # buffer after the data in a transmit chain, empty buffers, disable
    p = c_dev(10, 2, True) + u8(C_BRINGUP) + u8(2)
    p += c_chain(0, [8, 100], flip=1, data=b'readable') + c_chain(0, [0, 20])
    p += c_chain(1, [5, 7], flip=2, data=b'abcde') + c_chain(1, [0, 3], data=b'xyz')
    p += c_kick(-1) + c_send(b'0123456789') + u8(C_READ) + u16(0)
    p += u8(C_DISABLE) + u8(1) + u8(C_SHUT_WR) + u8(C_CLOSE)
    s['shapes'] = p
    # a hand-over's first step with output pending: it backs up, settles
    # into the backlog, and reaches the client in order, which reads it
    # bit by bit (the backlog backs up too)
    p = c_dev(13, 3, True) + u8(C_BRINGUP) + u8(3)
    for i in range(4):
        p += c_chain(1, [512, 512], data=bytes([0x61 + i]) * 1024)
    p += c_kick(2) + u8(C_RUN) + u8(C_SETTLE)
    for i in range(4):
        p += c_chain(1, [512, 512], data=bytes([0x71 + i]) * 1024)
    p += c_kick(2) + u8(C_RUN) + u8(C_SETTLE)
    for i in range(8):
        p += u8(C_READ) + u16(700) + u8(C_RUN)
    s['settle'] = p
    write('console', s)


# ---- sim (fuzz_sim.c, fuzz_sim_link.c) -----------------------------------

S_MEMFD_64K = u8(1) + u8(16)        # fd kind: shared memory of 16 pages
S_EVENTFD = u8(3)
S_NO_FD = u8(0)


def s_init(vectors, peer_id=0, shm=S_MEMFD_64K):
    return u8(0) + u8(0) + u8(peer_id) + u8(0) + u8(vectors) + u8(2) + u8(0) + u8(0) + \
        u8(0) + shm


def s_event_fd(peer, vector):
    return u8(1) + u8(0) + u8(peer) + u8(0) + u8(vector) + u8(0) + S_EVENTFD


def s_peer_gone(peer):
    return u8(2) + u8(0) + u8(peer) + u8(0) + S_NO_FD


def s_use(*ops):
    return u8(len(ops)) + b''.join(ops)


S_USE_ALL = s_use(u8(1), u8(0) + u8(0), u8(0) + u8(1), u8(2) + u8(0), u8(3) + u8(1),
                  u8(4) + u8(1), u8(5))


def sim():
    s = {}
    # a proper handshake: the peer's vectors, then ours; a peer leaves
    p = u8(0) + u8(4) + s_init(2) + s_event_fd(1, 0) + s_event_fd(1, 1)
    p += s_event_fd(0, 0) + s_event_fd(0, 1) + u8(1)
    p += u8(2) + s_peer_gone(1) + s_event_fd(1, 0) + S_USE_ALL
    s['host-handshake'] = p
    # a handshake with a message that lies about its length, and a second
    # INIT with two fds
    p = u8(0) + u8(3) + s_init(1) + u8(3) + u8(16) + u8(12) + u32(1) + u32(4000) + u32(0)
    p += u8(2) + u8(2) + S_EVENTFD + S_EVENTFD + S_EVENTFD + s_event_fd(0, 0) + u8(1)
    p += u8(1) + s_init(1) + S_USE_ALL
    s['host-lies'] = p
    # hostile peers on a hosted link: join, read, send garbage, leave, come
    # back
    p = u8(1) + u8(0) + u8(0) + u8(1)
    for peer, op, arg in [(0, 0, b''), (0, 5, b''), (0, 1, b''), (0, 6, S_USE_ALL),
                          (0, 6, S_USE_ALL),
                          (1, 0, b''), (1, 1, b''), (0, 2, u8(3) + b'hey!'), (0, 5, b''),
                          (2, 0, b''), (2, 1, b''), (1, 3, b''), (0, 7, u8(0)),
                          (0, 6, S_USE_ALL)]:
        p += u8(peer) + u8(op) + arg
    s['link-peers'] = p
    # the daemon's port taken over from its description
    blob = u32(0) + u32(2) + u32(1) + u32(0xc002) + u64(0) + bytes([0, 1] + [0] * 14)
    p = u8(2) + u8(200) + blob + bytes(64 - len(blob)) + u8(1) + S_MEMFD_64K
    p += u8(1) + S_EVENTFD + u8(1) + u8(1) + u8(0) + S_EVENTFD + S_USE_ALL
    s['adopt-port'] = p
    # a hosted link taken over, with one peer
    blob = u64(65536) + u64(0) + u32(2) + u32(1) + u32(0x8002) + bytes([1] + [0] * 15)
    p = u8(3) + u8(200) + blob + bytes(64 - len(blob)) + u8(3) + u8(4)
    p += u8(2) + u8(0) + u8(0) + u8(0) + u8(1) + u8(0)
    p += u8(0) + u8(0) + u8(0) + u8(1) + u8(0) + u8(7) + u8(1)
    s['adopt-link'] = p
    write('sim', s)


# ---- config (fuzz_config.c) ----------------------------------------------

def config():
    s = {}
    ex = os.path.join(HERE, '..', '..', 'config', 'examples')
    for f in sorted(os.listdir(ex)):
        with open(os.path.join(ex, f), 'rb') as fh:
            s['example-' + f] = fh.read()
    # every key, [cell] sections (files that exist everywhere), continued
    # command lines
    s['everything'] = b"""[daemon]
threads = 2
io-engine = threads
log-level = debug
control-socket = none
journal = no
upgrade-drain-ms = 0x100
sysfs-root = /sys
dev-root = /dev
root-cell = /etc/passwd

[block disk0]
uio = /dev/uio0
image = /dev/null
read-only = yes
serial = 01234567890123456789
queues = 64
queue-size = 32768
seg-max = 1024
block-size = 4096
cell = linux-1

[block disk1]
pci = 0000:01:0c.0
image = /dev/null
read-only = true

[block disk2]
sim-connect = /tmp/z.link
image = null:1G
block-size = 4096

[console hvc0]
sim = /tmp/x.link
endpoint = pty
path = /tmp/x.pty
backlog = 1M
cols = 132
rows = 43
queue-size = 8
shm-size = 64K
vectors = 3
cell = linux-1

[console hvc1]
sim-connect = /tmp/y.link
endpoint = stdio

[cell linux-1]
config = /etc/passwd
kernel = /etc/passwd
initrd = /etc/passwd
cmdline = console=hvc0
  root=/dev/vda rw
cmdline = quiet
order = 2

[cell linux-2]
config = /etc/passwd
kernel = /etc/passwd
order = 1
"""
    s['errors'] = b"""key = outside
[block]
[block two names]
[console c]
sim = a
sim = b
endpoint = serial
cols = 0
[block d]
image = /nonexistent
queue-size = 100
""" + b'x' * 300 + b"""
[cell c1]
[block e]
uio = /dev/uio1
cell = nowhere
"""
    write('config', s)


# ---- cellcfg (fuzz_cellcfg.c) --------------------------------------------
# Jailhouse .cell files from the layout of include/jailhouse/cell-config.h
# (revisions 13 and 14): a root config with a virtio-blk back-end link and
# a Linux cell with the front-end, as in the AGL x86 demo, and an arm64 set.

R, W, X, DMA, IO, COMM, LOADABLE, ROOTSHARED = 1, 2, 4, 8, 0x10, 0x20, 0x40, 0x80


def jh_cell(name, cpus, mem=(), irqchips=(), pio=(), pci=(), flags=0):
    d = bytearray(132)
    d[8:8 + len(name)] = name
    for off, v in [(44, flags), (48, 8), (52, len(mem)), (56, 0), (60, len(irqchips)),
                   (64, len(pio)), (68, len(pci)), (72, 0), (76, 0)]:
        d[off:off + 4] = u32(v)
    b = bytes(d) + u64(cpus)
    for phys, virt, size, fl in mem:
        b += u64(phys) + u64(virt) + u64(size) + u64(fl)
    for addr, ident, pin_base, pins in irqchips:
        b += u64(addr) + u32(ident) + u32(pin_base) + u32(pins) + u32(0) * 3
    for base, length in pio:
        b += u16(base) + u16(length)
    for typ, bdf, shmem_start, dev_id, peers, proto in pci:
        e = bytearray(56)
        e[0] = typ
        e[4:6] = u16(bdf)
        e[48:52] = u32(shmem_start)
        e[52] = dev_id
        e[53] = peers
        e[54:56] = u16(proto)
        b += bytes(e)
    return b


def jh_sig(rev, arch, system):
    if rev >= 14:
        return (b'JHSYS' if system else b'JHCLL') + bytes([arch]) + u16(rev)
    return (b'JHSYST' if system else b'JHCELL') + u16(rev)


def jh_system(rev, arch, cell, hv=(0x3a000000, 0x600000), gic=None):
    h = bytearray(356)
    h[0:8] = jh_sig(rev, arch, True)
    h[12:20] = u64(hv[0])
    h[28:36] = u64(hv[1])
    if arch == 0:
        h[312:314] = u16(0x608)
        h[320:324] = u32(2000000)
    elif gic:
        h[313] = 3
        h[316:324] = u64(gic)
        h[348:356] = u64(gic + 0x100000)
    return bytes(h) + cell


def jh_set(*files):
    b = u8(len(files) - 1) + u8(0) + u8(0)
    for f in files[:-1]:
        b += u16(len(f))
    return b + b''.join(files)


def cellcfg():
    s = {}
    shm = [(0x26e00000, 0x26e00000, 0x1000, R), (0x26e01000, 0x26e01000, 0xdf000, R | W),
           (0, 0, 0, 0), (0, 0, 0, 0)]
    root = jh_cell(b'RootCell', 0xf,
                   [(0, 0, 0xa0000, R | W | X | DMA), (0x100000, 0x100000, 0x21f00000,
                                                        R | W | X | DMA)] + shm,
                   irqchips=[(0xfec00000, 0xff00, 0, 0xffffffff)], pio=[(0x3f8, 8)],
                   pci=[(3, 0x60, 2, 0, 2, 0xc002), (1, 0x08, 0, 0, 0, 0)])
    shm_cell = [(p, v, sz, fl | ROOTSHARED) for p, v, sz, fl in shm]
    linux = jh_cell(b'linux-x86-demo', 0xc,
                    [(0x22600000, 0, 0x100000, R | W | X | DMA | LOADABLE),
                     (0, 0x100000, 0x1000, R | W | COMM)] + shm_cell,
                    irqchips=[(0xfec00000, 0xff00, 0, 1 << 3)], pio=[(0x2e8, 8)],
                    pci=[(3, 0x60, 2, 1, 2, 0x8002)], flags=1)
    for rev in (13, 14):
        sysf = jh_system(rev, 0, root)
        cellf = jh_sig(rev, 0, False) + linux[8:]
        s['x86-rev%d' % rev] = jh_set(sysf, cellf)
    # arm64: GICv3, an irqchip per cell at the distributor
    gicd = 0x08000000
    root_a = jh_cell(b'arm64-root', 0xf, [(0x40000000, 0x40000000, 0x3fa00000,
                                            R | W | X | DMA)] + shm,
                     irqchips=[(gicd, 0, 32, 0xffffffff)],
                     pci=[(3, 0x08, 1, 0, 2, 0xc003)])
    cell_a = jh_cell(b'arm64-linux', 0x2, [(0x7fa00000, 0, 0x1000000, R | W | X | DMA |
                                            LOADABLE)] + shm_cell,
                     irqchips=[(gicd, 0, 32, 1 << 8)], pci=[(3, 0x08, 1, 1, 2, 0x8003)],
                     flags=1)
    s['arm64'] = jh_set(jh_system(14, 2, root_a, gic=gicd), jh_sig(14, 2, False) + cell_a[8:])
    # cells only, sharing memory and CPUs: the pairwise rules
    s['cells-clash'] = jh_set(jh_sig(14, 0, False) + linux[8:], jh_sig(14, 0, False) + linux[8:],
                              jh_sig(13, 0, False) + cell_a[8:])
    write('cellcfg', s)


TARGETS = {
    'virtqueue': virtqueue,
    'transport': transport,
    'blk_cmd': blk_cmd,
    'console': console,
    'sim': sim,
    'config': config,
    'cellcfg': cellcfg,
}

if __name__ == '__main__':
    for t in sys.argv[1:] or TARGETS:
        TARGETS[t]()
