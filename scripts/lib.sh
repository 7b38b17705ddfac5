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
      clang libclang-rt-14-dev
      # scripts/bench: losetup for its block-device target
      mount
      # the metrics test reads stats --openmetrics with a real OpenMetrics parser
      python3-prometheus-client)

# The arm64 cross-build and its tests under qemu-user (scripts/test-arm64):
# the cross compiler, qemu-user-static (with its binfmt_misc entry), and the
# libraries for arm64.  libfdt1:arm64 rather than libfdt-dev:arm64, which
# would replace the native libfdt-dev (not co-installable in Debian 12).
ARM64_DEPS=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user-static file
	    libuv1-dev:arm64 liburing-dev:arm64 libinih-dev:arm64 libcmocka-dev:arm64
	    libpci-dev:arm64 libkmod-dev:arm64 libfdt1:arm64)

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

# ensure_deps for ARM64_DEPS, after adding the architecture; then qemu-user
# for arm64 programs started directly (binfmt_misc), as the tests start the
# daemon.
ensure_arm64() {
	local missing=() root=1
	[ "$(id -u)" -eq 0 ] || root=0
	if ! dpkg --print-foreign-architectures | grep -qx arm64; then
		[ "$root" -eq 1 ] || { echo "Run: sudo dpkg --add-architecture arm64, then try again" >&2; exit 1; }
		dpkg --add-architecture arm64
		apt-get update -qq
	fi
	for p in "${ARM64_DEPS[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
			missing+=("$p")
	done
	if [ ${#missing[@]} -gt 0 ]; then
		if [ "$root" -eq 0 ]; then
			echo "Missing Debian packages. Run this, then try again:" >&2
			echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
			exit 1
		fi
		echo ">>> installing: ${missing[*]}"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq
		apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	fi
	local bm=/proc/sys/fs/binfmt_misc
	[ -e "$bm/qemu-aarch64" ] && return 0
	[ "$root" -eq 1 ] || { echo "qemu-aarch64 is not registered with binfmt_misc (needs root)" >&2; exit 1; }
	[ -e "$bm/register" ] || mount -t binfmt_misc binfmt_misc "$bm"
	# The entry qemu-user-static ships for systemd-binfmt, which may not run here.
	cat /usr/lib/binfmt.d/qemu-aarch64.conf > "$bm/register"
}

# build_dir NAME [meson options...]: configure once, then build.
build() {
	local dir="$REPO/$1"; shift
	if [ ! -f "$dir/build.ninja" ]; then
		meson setup "$dir" "$REPO" "$@" >/dev/null
	fi
	ninja -C "$dir" >/dev/null
}
