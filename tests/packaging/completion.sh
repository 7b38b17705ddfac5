#!/usr/bin/env bash
# The bash completions (scripts/bash-completion/) in a real bash with
# bash-completion loaded: each case types a command line, presses TAB at its
# end and compares what is offered.  Device names come from a fake
# virtio-ivshmemctl on PATH (which also records that -s reached it), cell
# names from a fake sysfs tree.
# Usage: completion.sh BASH_COMPLETION_SCRIPT COMPLETIONS_DIR [PROGRAM...]
set -u
main_script=$1 dir=$2
shift 2
if [[ ! -r $main_script ]]; then
	echo "bash-completion ($main_script) is not installed: skipped"
	exit 77
fi
# shellcheck disable=SC1090
source "$main_script"
for prog in "$@"; do
	# shellcheck disable=SC1090
	source "$dir/$prog" || exit 1
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/bin" "$tmp/files/sub" "$tmp/sys/devices/jailhouse/cells/1" \
	"$tmp/sys/devices/jailhouse/cells/2"
cat >"$tmp/bin/virtio-ivshmemctl" <<EOF
#!/bin/sh
echo "\$*" >"$tmp/ctl-args"
printf 'NAME         TYPE     STATE\ndisk0        block    running\nhvc0         console  running\n'
EOF
chmod +x "$tmp/bin/virtio-ivshmemctl"
PATH=$tmp/bin:$PATH
touch "$tmp/files/a.cell" "$tmp/files/b.img"
echo linux-demo >"$tmp/sys/devices/jailhouse/cells/1/name"
echo apic-demo >"$tmp/sys/devices/jailhouse/cells/2/name"

failures=0
# complete LINE: what TAB offers at the end of LINE, sorted, one line.
complete_line() {
	local line=$1 func
	COMP_LINE=$line
	COMP_POINT=${#line}
	read -ra COMP_WORDS <<<"$line"
	[[ $line == *' ' ]] && COMP_WORDS+=('')
	COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
	COMPREPLY=()
	func=$(complete -p "${COMP_WORDS[0]}" 2>/dev/null | sed -n 's/.*-F \([^ ]*\) .*/\1/p')
	[[ -n $func ]] || { echo "no completion for ${COMP_WORDS[0]}"; return; }
	"$func" "${COMP_WORDS[0]}" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
	printf '%s\n' "${COMPREPLY[@]}" | sort | tr '\n' ' ' | sed 's/ $//'
}
expect() {
	local line=$1 want=$2 got
	got=$(complete_line "$line")
	if [[ $got != "$want" ]]; then
		echo "FAIL: '$line<TAB>' offers '$got', expected '$want'"
		failures=$((failures + 1))
	fi
}

expect "virtio-ivshmemd --check-c" "--check-config"
expect "virtio-ivshmemd -c $tmp/files/b" "$tmp/files/b.img"
expect "virtio-ivshmemd -" "--check-config --check-handover --config --help --verbose --version -V -c -h -v"

expect "virtio-ivshmemctl " "change eject list resize stats top upgrade"
expect "virtio-ivshmemctl -" "--help --json --socket -h -j -s"
expect "virtio-ivshmemctl -s $tmp/ctl.sock stats " "disk0 hvc0"
if [[ $(cat "$tmp/ctl-args" 2>/dev/null) != "-s $tmp/ctl.sock list" ]]; then
	echo "FAIL: device names were not asked for with -s: $(cat "$tmp/ctl-args" 2>/dev/null)"
	failures=$((failures + 1))
fi
expect "virtio-ivshmemctl eject d" "disk0"
expect "virtio-ivshmemctl change disk0 $tmp/files/b" "$tmp/files/b.img"
expect "virtio-ivshmemctl upgrade $tmp/files/b" "$tmp/files/b.img"
expect "virtio-ivshmemctl list " ""
expect "virtio-ivshmemctl stats --" "--openmetrics"
expect "virtio-ivshmemctl stats --openmetrics " "disk0 hvc0"
expect "virtio-ivshmemctl stats disk0 " ""
expect "virtio-ivshmemctl top " "disk0"
expect "virtio-ivshmemctl top -" "--count --interval -i -n"
expect "virtio-ivshmemctl top -n " ""
expect "virtio-ivshmemctl top -n 2 -i 0.5 d" "disk0"
expect "virtio-ivshmemctl -s $tmp/ctl.sock top --count 3 " "disk0"
expect "virtio-ivshmemctl top disk0 " ""

if [[ " $* " == *" jailhouse-cellmgr "* ]]; then
	expect "jailhouse-cellmgr " "bind config create destroy disable down enable linux list load shutdown start up"
	expect "jailhouse-cellmgr config " "check show"
	expect "jailhouse-cellmgr config check $tmp/files/" "$tmp/files/a.cell $tmp/files/sub"
	expect "jailhouse-cellmgr --sysfs $tmp/sys start " "apic-demo linux-demo"
	expect "jailhouse-cellmgr --sysfs $tmp/sys shutdown --name l" "linux-demo"
	expect "jailhouse-cellmgr --arch arm" "arm arm64"
	expect "jailhouse-cellmgr up --t" "--timeout"
	expect "jailhouse-cellmgr linux $tmp/files/a.cell $tmp/files/b" "$tmp/files/b.img"
	expect "jailhouse-cellmgr bind -" "--list --new-id"
fi

echo "$failures failure(s)"
[[ $failures -eq 0 ]]
