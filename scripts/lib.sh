# Shared helpers for the scripts in this folder (sourced, not run).

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# Debian packages the project needs to build, test, demo and benchmark.
DEPS=(gcc pkg-config meson ninja-build libuv1-dev liburing-dev libinih-dev libcmocka-dev
      libpci-dev libkmod-dev libfdt-dev device-tree-compiler fio python3
      # the real-driver guests (tests/realdriver): the kit's QEMU needs these
      # at run time; the guests get busybox and the e2fsprogs/util-linux tools
      seabios qemu-system-data libpixman-1-0 libglib2.0-0 libfdt1
      busybox-static e2fsprogs util-linux
      # the manual pages (scdoc) and their render test (man); the completion
      # test loads bash-completion
      scdoc man-db bash-completion
      # the fuzz targets (scripts/fuzz): clang and its libFuzzer and
      # sanitizer runtimes (Debian 12's clang is 14)
      clang libclang-rt-14-dev)

# Install what is missing: with apt-get as root, else print the command.
ensure_deps() {
	local missing=()
	for p in "${DEPS[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
			missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	if [ "$(id -u)" -eq 0 ]; then
		echo ">>> installing: ${missing[*]}"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq
		apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	else
		echo "Missing Debian packages. Run this, then try again:" >&2
		echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
		exit 1
	fi
}

# build_dir NAME [meson options...]: configure once, then build.
build() {
	local dir="$REPO/$1"; shift
	if [ ! -f "$dir/build.ninja" ]; then
		meson setup "$dir" "$REPO" "$@" >/dev/null
	fi
	ninja -C "$dir" >/dev/null
}
