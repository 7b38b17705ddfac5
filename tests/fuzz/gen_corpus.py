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


TARGETS = {
    'virtqueue': virtqueue,
}

if __name__ == '__main__':
    for t in sys.argv[1:] or TARGETS:
        TARGETS[t]()
