#!/bin/sh
# Back-end guest: the real uio_ivshmem driver with the daemon running here.
# Its IVSHMEM devices are virtio-blk back-ends (class ffc002); it binds them
# to uio_ivshmem, serves one image per device from tmpfs, then answers the
# host: "check OFF:LEN ..." prints sha256 of image ranges and runs
# e2fsck -fn, "stop" ends the daemon with SIGTERM.
# With vivd.supervise=1 the daemon runs under vivd-supervise (the tests'
# stand-in for systemd: fd store, restart) and the host may also say
# "upgrade" (virtio-ivshmemctl upgrade) and "kill" (SIGKILL, the supervisor
# starts it again with the fds it kept).
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
SUPERVISE=$(opt supervise)
echo "[daemon]" > $CONF
if [ "$SUPERVISE" = 1 ]; then
	echo "control-socket = /tmp/ctl.sock" >> $CONF
else
	echo "control-socket = none" >> $CONF
fi
[ "$(opt mq)" = 1 ] && echo "threads = 2" >> $CONF
n=0
for d in /sys/class/uio/uio*; do
	[ -e "$d" ] || continue
	truncate -s 64M /tmp/disk$n.img
	{ echo "[block disk$n]"; echo "uio = /dev/${d##*/}"; echo "image = /tmp/disk$n.img"
	  echo "serial = $(opt serial$n)"
	  # vivd.mq=1: the first disk's two queues on two threads
	  [ "$(opt mq)" = 1 ] && [ $n = 0 ] && echo "queues = 2"; } >> $CONF
	n=$((n + 1))
done
info uio-devices "$n"
if [ "$SUPERVISE" = 1 ]; then
	mkfifo /tmp/sup.in
	vivd-supervise /tmp/daemon.log /bin/virtio-ivshmemd $CONF < /tmp/sup.in > /tmp/sup.out 2>&1 &
	DAEMON=$!
	exec 4>/tmp/sup.in
else
	virtio-ivshmemd -c $CONF > /tmp/daemon.log 2>&1 &
	DAEMON=$!
fi
STARTS=1
# Wait for the supervisor to report start N ready.
ready() {
	i=0
	while ! grep -q "^READY $1\$" /tmp/sup.out && [ $i -lt 300 ]; do
		sleep 0.1; i=$((i + 1))
	done
	grep -q "^READY $1\$" /tmp/sup.out
}
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
	upgrade)
		out=$(virtio-ivshmemctl -s /tmp/ctl.sock upgrade 2>&1)
		say UPGRADED "$?" "$out";;
	kill)
		echo kill >&4
		if ready $STARTS; then say RESTARTED $STARTS; else fail "restart $STARTS"; fi
		STARTS=$((STARTS + 1));;
	stop)
		if [ "$SUPERVISE" = 1 ]; then
			echo stop >&4
			wait $DAEMON
			say STOPPED "$(sed -n 's/^STOPPED //p' /tmp/sup.out)"
		else
			kill -TERM $DAEMON
			wait $DAEMON
			say STOPPED "$?"
		fi
		sed 's/^/VIVD DAEMON /' /tmp/daemon.log
		break;;
	esac
done
finish
