SUMMARY = "virtio block and console devices for Jailhouse cells over IVSHMEM"
DESCRIPTION = "virtio-ivshmemd serves many virtio-blk disks and virtio-console \
consoles to Jailhouse cells over IVSHMEM links, from the root cell, with one \
config file. virtio-ivshmemctl queries and controls it; jailhouse-cellmgr \
manages the cells and boots them once their devices are served. It replaces \
the sample back-ends virtio-ivshmem-block and virtio-ivshmem-console."
SECTION = "jailhouse"
LICENSE = "GPL-2.0-only"
# The project states its license in meson.build's project() (it has no
# license file yet).
LIC_FILES_CHKSUM = "file://meson.build;beginline=3;endline=3;md5=d64ad021ad57bbf812cbc01305b4e985"

# Where the sources come from: set these in a bbappend or local.conf (the
# project has no public home yet); README.md next to recipes-extended/ says
# how to build a local checkout instead.
VIRTIO_IVSHMEMD_GIT ?= "git://git.example.org/virtio-ivshmemd.git;protocol=https"
VIRTIO_IVSHMEMD_BRANCH ?= "main"
SRC_URI = "${VIRTIO_IVSHMEMD_GIT};branch=${VIRTIO_IVSHMEMD_BRANCH}"
SRCREV ?= "${AUTOREV}"
PV = "0.1.0+git${SRCPV}"
S = "${WORKDIR}/git"

inherit meson pkgconfig systemd bash-completion manpages

# libuv is in oe-core; liburing and libinih are in meta-oe.
DEPENDS = "libuv liburing libinih"

PACKAGECONFIG ??= "cellmgr ${@bb.utils.filter('DISTRO_FEATURES', 'systemd', d)}"
# jailhouse-cellmgr: PCI discovery, module loading, ARM device trees.
PACKAGECONFIG[cellmgr] = "-Dcellmgr=enabled,-Dcellmgr=disabled,pciutils kmod dtc"
# The cmocka suite is built (not installed, not a ptest): a compile check.
PACKAGECONFIG[tests] = "-Dtests=enabled,-Dtests=disabled,cmocka"
PACKAGECONFIG[systemd] = "-Dsystemd=true,-Dsystemd=false"
# Added by the manpages class when DISTRO_FEATURES has api-documentation.
PACKAGECONFIG[manpages] = "-Dman=enabled,-Dman=disabled,scdoc-native"

# The directories are given rather than asked from pkg-config, whose
# answers would carry the build's sysroot.
EXTRA_OEMESON = " \
    -Dsystemdunitdir=${systemd_system_unitdir} \
    -Dtmpfilesdir=${nonarch_libdir}/tmpfiles.d \
    -Dbashcompletiondir=${datadir}/bash-completion/completions \
"

# The cell manager and the software link host (for tests and demos without
# Jailhouse) are packaged apart from the daemon.
PACKAGE_BEFORE_PN = "${PN}-cellmgr ${PN}-sim-server"
FILES:${PN}-cellmgr = "${sbindir}/jailhouse-cellmgr"
FILES:${PN}-sim-server = "${libexecdir}/${BPN}/ivshmem-sim-server"
FILES:${PN} += "${nonarch_libdir}/tmpfiles.d/virtio-ivshmemd.conf"
CONFFILES:${PN} = "${sysconfdir}/virtio-ivshmemd.conf"

# The installed config serves only a placeholder console on a software
# link, so the service can be enabled before the system is configured.
SYSTEMD_SERVICE:${PN} = "virtio-ivshmemd.service"
SYSTEMD_AUTO_ENABLE:${PN} = "enable"

# The daemon takes over the links the single-device samples of
# meta-agl-jailhouse served (not their command line: see README.md), so it
# replaces them and cannot be installed next to them.
RREPLACES:${PN} = "virtio-ivshmem-block virtio-ivshmem-console"
RCONFLICTS:${PN} = "virtio-ivshmem-block virtio-ivshmem-console"
