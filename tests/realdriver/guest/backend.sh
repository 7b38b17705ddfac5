#!/bin/sh
# Back-end guest: the real uio_ivshmem driver with the daemon running here.
# Its IVSHMEM devices are virtio-blk back-ends (class ffc002); it binds them
# to uio_ivshmem, serves one image per device from tmpfs, then answers the
# host: "check OFF:LEN ..." prints sha256 of image ranges and runs
# e2fsck -fn, "stop" ends the daemon with SIGTERM.
. /common.sh
setup_guest uio uio_ivshmem

if jailhouse-cellmgr bind > /tmp/bind.out 2>&1; then
	pass bind-cellmgr
else
	info bind-cellmgr-failed "$(tr '\n' ' ' < /tmp/bind.out)"
	# QEMU's device has subsystem 1af4:1100.
	echo "110a 4106 1af4 1100 ffc002 ffffff" > /sys/bus/pci/drivers/uio_ivshmem/new_id &&
		pass bind-new-id || fail bind-new-id
fi
sed 's/^/VIVD BIND /' /tmp/bind.out

CONF=/tmp/vivd.conf
echo "[daemon]" > $CONF
echo "control-socket = none" >> $CONF
n=0
for d in /sys/class/uio/uio*; do
	[ -e "$d" ] || continue
	truncate -s 64M /tmp/disk$n.img
	{ echo "[block disk$n]"; echo "uio = /dev/${d##*/}"; echo "image = /tmp/disk$n.img"
	  echo "serial = $(opt serial$n)"; } >> $CONF
	n=$((n + 1))
done
info uio-devices "$n"
virtio-ivshmemd -c $CONF > /tmp/daemon.log 2>&1 &
DAEMON=$!
i=0
while ! grep -q "serving $n device" /tmp/daemon.log && [ $i -lt 200 ]; do
	sleep 0.1; i=$((i + 1))
done
sed 's/^/VIVD DAEMON /' /tmp/daemon.log
grep -q "serving $n device" /tmp/daemon.log && say READY || fail daemon-start

while read -r cmd args; do
	case "$cmd" in
	check)
		set -- $args
		disk=$1; shift
		for r in "$@"; do
			off=${r%:*}; len=${r#*:}
			say SHA "$disk" "$r" "$(dd if=/tmp/$disk.img bs=4k skip=$((off / 4096)) \
				count=$((len / 4096)) 2>/dev/null | sha256sum | cut -d' ' -f1)"
		done
		say CHECKED;;
	fsck)
		e2fsck -fn /tmp/$args.img > /tmp/fsck.out 2>&1
		say FSCK "$args" "$?"
		sed 's/^/VIVD FSCKOUT /' /tmp/fsck.out;;
	stop)
		kill -TERM $DAEMON
		wait $DAEMON
		say STOPPED "$?"
		sed 's/^/VIVD DAEMON /' /tmp/daemon.log
		break;;
	esac
done
finish
