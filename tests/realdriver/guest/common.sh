# Shared by the guest scripts (busybox sh).  Results go to the serial
# console as lines "VIVD <word> ..." that tests/realdriver/run.py parses.

say() { echo "VIVD $*"; }
pass() { say PASS "$@"; }
fail() { say FAIL "$@"; }
info() { say INFO "$@"; }

# Kernel command line option vivd.NAME=VALUE.
opt() {
	for w in $(cat /proc/cmdline); do
		case "$w" in "vivd.$1="*) echo "${w#*=}"; return 0;; esac
	done
	return 1
}

setup_guest() {
	mount -t proc proc /proc
	mount -t sysfs sys /sys
	mount -t devtmpfs dev /dev
	mkdir -p /tmp /mnt
	mount -t tmpfs tmp /tmp
	echo 3 > /proc/sys/kernel/printk   # only errors on the console
	# vivd.modarg_NAME=K=V,K=V: parameters for module NAME
	for m in "$@"; do
		insmod /lib/modules/$m.ko $(opt "modarg_$m" | tr , ' ') || fail insmod "$m"
	done
}

# Wait for the host's "go" line on the serial console (ttyS0 is stdin).
wait_host() {
	say WAIT "$1"
	read -r line
}

finish() {
	sync
	say DONE
	poweroff -f
}
