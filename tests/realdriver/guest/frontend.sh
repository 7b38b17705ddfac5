#!/bin/sh
# Front-end guest: the real virtio_ivshmem driver against the daemon.
# Options (kernel command line):
#   vivd.disks=SERIAL,...   serials of the writable disks: the first gets
#                           raw I/O and unbind/rebind, the second ext4
#   vivd.ro=SERIAL          a read-only disk
#   vivd.console=1          a console (bytes both ways with the host)
#   vivd.sigterm=1          let the host stop the daemon at the end
#   vivd.mq=1               two CPUs: direct writes from each at once (one
#                           queue each), read back from the other
#   vivd.poll=1             polled I/O (io_uring IOPOLL, /bin/vivd-hipri) on
#                           the first disk, with virtio_blk's poll_queues
#                           (vivd.modarg_virtio_blk=poll_queues=1)
. /common.sh
setup_guest virtio_ring virtio virtio_blk virtio_console crc16 mbcache jbd2 \
	crc32c_generic ext4 virtio_ivshmem

# The /dev name of the disk with this serial (empty if none).
disk_by_serial() {
	for s in /sys/block/vd*/serial; do
		[ -e "$s" ] || continue
		if [ "$(cat "$s")" = "$1" ]; then
			d=${s%/serial}; echo "/dev/${d##*/}"; return 0
		fi
	done
	return 1
}

wait_disk() {
	i=0
	while [ $i -lt 100 ]; do
		d=$(disk_by_serial "$1") && [ -b "$d" ] && { echo "$d"; return 0; }
		sleep 0.1; i=$((i + 1))
	done
	return 1
}

DISKS=$(opt disks | tr , ' ')
RO=$(opt ro)
set -- $DISKS
RAW=$1
FS=$2

for s in $DISKS $RO; do
	if d=$(wait_disk "$s"); then pass "disk $s $d"; else fail "disk $s missing"; fi
done
dmesg | grep -E "virtio-ivshmem|virtio_ivshmem|virtio-ports" | sed 's/^/VIVD DMESG /'

# Raw I/O: direct and buffered writes, read back, discard.
if [ -n "$RAW" ] && D=$(disk_by_serial "$RAW"); then
	dd if=/data/d1 of="$D" bs=64k oflag=direct 2>/dev/null &&
	dd if="$D" of=/tmp/r1 bs=64k count=16 iflag=direct 2>/dev/null &&
	cmp -s /data/d1 /tmp/r1 && pass dd-direct || fail dd-direct
	dd if=/data/d2 of="$D" bs=64k seek=64 conv=fsync 2>/dev/null &&
	echo 3 > /proc/sys/vm/drop_caches &&
	dd if="$D" of=/tmp/r2 bs=64k skip=64 count=16 iflag=direct 2>/dev/null &&
	cmp -s /data/d2 /tmp/r2 && pass dd-buffered || fail dd-buffered
	dd if=/data/d3 of="$D" bs=64k seek=128 oflag=direct 2>/dev/null
	if blkdiscard -o $((8 << 20)) -l $((1 << 20)) "$D"; then pass blkdiscard; else fail blkdiscard; fi
	if [ -x /bin/blkdiscard-util ]; then
		dd if=/data/d3 of="$D" bs=64k seek=192 oflag=direct 2>/dev/null
		blkdiscard-util -z -o $((12 << 20)) -l $((1 << 20)) "$D" && pass write-zeroes ||
			fail write-zeroes
	fi
	info serial "$(cat /sys/block/${D#/dev/}/serial)"
fi

# Two CPUs, two queues: blk-mq sends each CPU's requests down its own
# queue, which the daemon serves on its own thread.
if [ "$(opt mq)" = 1 ] && [ -n "$RAW" ] && D=$(disk_by_serial "$RAW"); then
	info mq-queues "$(ls /sys/block/${D#/dev/}/mq | wc -l)"
	taskset -c 0 dd if=/data/d1 of="$D" bs=4k seek=5120 oflag=direct 2>/dev/null &
	A=$!
	taskset -c 1 dd if=/data/d2 of="$D" bs=4k seek=6144 oflag=direct 2>/dev/null &
	B=$!
	wait $A && wait $B &&
	taskset -c 1 dd if="$D" of=/tmp/m1 bs=4k skip=5120 count=256 iflag=direct 2>/dev/null &&
	taskset -c 0 dd if="$D" of=/tmp/m2 bs=4k skip=6144 count=256 iflag=direct 2>/dev/null &&
	cmp -s /data/d1 /tmp/m1 && cmp -s /data/d2 /tmp/m2 && pass mq-io || fail mq-io
fi

# Poll queues: virtio_blk made one of the disk's queues without a callback
# (no interrupts wanted); O_DIRECT I/O through an io_uring with IOPOLL goes
# down it and is polled for, written and read back.
if [ "$(opt poll)" = 1 ] && [ -n "$RAW" ] && D=$(disk_by_serial "$RAW"); then
	info io-poll "$(cat /sys/block/${D#/dev/}/queue/io_poll)"
	info cpus-possible "$(cat /sys/devices/system/cpu/possible)"
	vivd-hipri write "$D" $((28 << 20)) /data/d2 >/dev/null &&
	vivd-hipri read "$D" $((28 << 20)) 1048576 /tmp/h1 >/dev/null &&
	cmp -s /data/d2 /tmp/h1 && pass hipri-io || fail hipri-io
fi

# Read-only disk: writes refused, contents as on the host.
if [ -n "$RO" ] && D=$(disk_by_serial "$RO"); then
	info ro-flag "$(cat /sys/block/${D#/dev/}/ro)"
	if dd if=/data/d1 of="$D" bs=4k count=1 oflag=direct 2>/dev/null; then
		fail ro-refused
	else
		pass ro-refused
	fi
	info ro-sha "$(dd if="$D" bs=64k count=16 iflag=direct 2>/dev/null | sha256sum | cut -d' ' -f1)"
fi

# ext4: mkfs, files, unmount; the host runs e2fsck -fn and reads the files.
if [ -n "$FS" ] && D=$(disk_by_serial "$FS"); then
	if mkfs.ext4 -q -F "$D" && mount -t ext4 "$D" /mnt; then
		mkdir -p /mnt/sub
		cp /data/d1 /mnt/f1 && cp /data/d2 /mnt/sub/f2 &&
		dd if=/dev/urandom of=/mnt/big bs=64k count=64 2>/dev/null &&
		info big-sha "$(sha256sum /mnt/big | cut -d' ' -f1)"
		sync
		umount /mnt && pass ext4 || fail ext4-umount
		mount -t ext4 -o ro "$D" /mnt && cmp -s /mnt/f1 /data/d1 && cmp -s /mnt/sub/f2 /data/d2 &&
			pass ext4-remount || fail ext4-remount
		umount /mnt
	else
		fail ext4-mkfs
	fi
fi

# Console: bytes both ways, in order.
if [ "$(opt console)" = 1 ]; then
	if [ -c /dev/hvc0 ]; then
		pass console-hvc0
		# hvc resets its termios on the last close: keep it open while
		# it is raw, so bytes pass unchanged and nothing is echoed.
		exec 3<>/dev/hvc0
		stty raw -echo <&3
		N=$(stat -c %s /data/cin)
		head -c "$N" <&3 > /tmp/cin &
		HEAD=$!
		wait_host console
		cat /data/cout >&3
		wait $HEAD
		exec 3>&-
		info console-in-sha "$(sha256sum /tmp/cin | cut -d' ' -f1)"
	else
		fail console-hvc0
	fi
fi

# Many small console writes (hvc polls for each transmit buffer): Linux
# disables an IRQ after 100,000 interrupts that find nothing to do.
FLOOD=$(opt flood)
if [ -n "$FLOOD" ] && [ -c /dev/hvc0 ]; then
	exec 3<>/dev/hvc0
	stty raw -echo <&3
	i=0
	while [ $i -lt "$FLOOD" ]; do echo x >&3; i=$((i + 1)); done
	exec 3>&-
	info flood-nobody-cared "$(dmesg | grep -c 'nobody cared')"
	grep -E 'virtio[0-9]+-(output|virtqueues)|vi_interrupt' /proc/interrupts |
		sed 's/^/VIVD INFO flood-irq /'
fi

# Unbind and rebind the front-end driver of the raw disk, I/O before and after.
if [ -n "$RAW" ] && D=$(disk_by_serial "$RAW"); then
	BDF=$(basename "$(readlink -f /sys/block/${D#/dev/}/device/..)")
	echo "$BDF" > /sys/bus/pci/drivers/virtio-ivshmem/unbind && pass unbind || fail unbind
	if disk_by_serial "$RAW" >/dev/null; then fail unbind-gone; fi
	echo "$BDF" > /sys/bus/pci/drivers/virtio-ivshmem/bind && pass rebind || fail rebind
	if D=$(wait_disk "$RAW"); then
		dd if="$D" of=/tmp/r1 bs=64k count=16 iflag=direct 2>/dev/null &&
		cmp -s /data/d1 /tmp/r1 && pass rebind-data || fail rebind-data
		dd if=/data/d4 of="$D" bs=64k seek=256 oflag=direct 2>/dev/null &&
		dd if="$D" of=/tmp/r4 bs=64k skip=256 count=16 iflag=direct 2>/dev/null &&
		cmp -s /data/d4 /tmp/r4 && pass rebind-io || fail rebind-io
	else
		fail rebind-disk
	fi
fi

# The daemon stops while we are idle: what the driver reports, and whether
# I/O then fails rather than hangs.
if [ "$(opt sigterm)" = 1 ] && [ -n "$RAW" ]; then
	D=$(disk_by_serial "$RAW")
	wait_host sigterm
	sleep 1
	info backend-failed "$(dmesg | grep -c 'backend failed')"
	timeout 20 dd if="$D" of=/dev/null bs=4k count=1 iflag=direct 2>/dev/null
	info io-after-stop "$?"
fi
finish
