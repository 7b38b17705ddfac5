#!/bin/sh
# Front-end guest for the hand-over tests: ext4 on the disk with serial
# vivd.fs=SERIAL, files written one after another (each synced, its sha256
# reported as "VIVD FILE N SHA") while the host upgrades and kills the
# daemon, until the host says "go" after "VIVD WAIT stop".  Then every file
# is read back from the disk and compared, the file system unmounted, and
# what the driver and ext4 logged reported.
. /common.sh
setup_guest virtio_ring virtio virtio_blk crc16 mbcache jbd2 crc32c_generic ext4 virtio_ivshmem

SERIAL=$(opt fs)
D=""
i=0
while [ $i -lt 100 ]; do
	for s in /sys/block/vd*/serial; do
		[ -e "$s" ] && [ "$(cat "$s")" = "$SERIAL" ] && { d=${s%/serial}; D=/dev/${d##*/}; }
	done
	[ -n "$D" ] && [ -b "$D" ] && break
	sleep 0.1; i=$((i + 1))
done
[ -n "$D" ] && pass "disk $SERIAL $D" || { fail "disk $SERIAL missing"; finish; }

mkfs.ext4 -q -F "$D" && mount -t ext4 "$D" /mnt && pass mount || { fail mount; finish; }

writer() {
	n=0
	while [ ! -e /tmp/stop ]; do
		n=$((n + 1))
		if dd if=/dev/urandom of=/mnt/f$n bs=64k count=4 conv=fsync 2>/dev/null; then
			sum=$(sha256sum /mnt/f$n | cut -d' ' -f1)
			echo "$n $sum" >> /tmp/sums
			say FILE "$n" "$sum"
		else
			fail "write f$n"
		fi
	done
	say WROTE "$n"
}
writer &
W=$!
wait_host stop
touch /tmp/stop
wait $W

# Everything read back from the disk, not the page cache.
echo 3 > /proc/sys/vm/drop_caches
bad=0
while read -r n sum; do
	[ "$(sha256sum /mnt/f$n | cut -d' ' -f1)" = "$sum" ] || { bad=$((bad + 1)); fail "reread f$n"; }
done < /tmp/sums
info reread-bad "$bad"
umount /mnt && pass umount || fail umount
info io-errors "$(dmesg | grep -ciE 'I/O error|blk_update_request|EXT4-fs error|Buffer I/O')"
info backend-failed "$(dmesg | grep -c 'backend failed')"
dmesg | grep -iE 'error|virtio|ivshmem|ext4' | sed 's/^/VIVD DMESG /'
finish
