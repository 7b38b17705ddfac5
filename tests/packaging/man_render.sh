#!/bin/sh
# The built manual pages render with man -l: no warning from groff (man
# --warnings=all,mac) and the sections every page has.  Usage: man_render.sh PAGE...
if ! command -v man >/dev/null; then
	echo "man (man-db) is not installed: skipped"
	exit 77
fi
failures=0
warnings=$(mktemp)
trap 'rm -f "$warnings"' EXIT
for page in "$@"; do
	out=$(MANWIDTH=80 man --warnings=all,mac -E UTF-8 -l "$page" 2>"$warnings")
	if [ -s "$warnings" ]; then
		echo "FAIL: $page: man -l warns:"
		cat "$warnings"
		failures=$((failures + 1))
	fi
	for heading in NAME SYNOPSIS DESCRIPTION "SEE ALSO"; do
		if ! printf '%s\n' "$out" | grep -qx "$heading"; then
			echo "FAIL: $page: no $heading section in what man shows"
			failures=$((failures + 1))
		fi
	done
done
echo "$# page(s), $failures failure(s)"
[ "$failures" -eq 0 ]
