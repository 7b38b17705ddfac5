#!/bin/sh
# meson install script: put the example config at its place unless a config
# is there already, so that reinstalling never overwrites an edited file.
# (A DESTDIR install starts empty and always gets it: packages mark it as a
# config file themselves.)  $1: the example, $2: the absolute target path.
set -eu
dest="${DESTDIR:-}$2"
if [ -e "$dest" ]; then
	echo "Keeping $dest (the example is in the documentation directory)"
else
	echo "Installing $1 to $dest"
	install -D -m 0644 "$1" "$dest"
fi
