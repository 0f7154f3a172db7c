# SPDX-License-Identifier: MIT OR Apache-2.0
SUMMARY = "The Linux 5.15 MPTCP backport series, exported from linux-stable"
DESCRIPTION = "Runs mptcp-backport export on a linux-stable clone at build time and \
stages the numbered patches (with our fixups in their places) for mptcp_backport.bbclass. \
Only needed when MPTCP_BACKPORT_LINUX_STABLE_SRCREV is set instead of a series directory; \
otherwise the recipe skips itself."
HOMEPAGE = "https://github.com/meta-mptcp/meta-mptcp"
SECTION = "kernel"
# The patches are Linux kernel changes.
LICENSE = "GPL-2.0-only"
LIC_FILES_CHKSUM = "file://COPYING;md5=6bc538ed5bd9a7fc9398086aedcd7e46"

DEPENDS = "mptcp-backport-native"

# A full clone: the tool needs the history and the tags between the base and the target release.
MPTCP_BACKPORT_LINUX_STABLE_URI ??= "git://git.kernel.org/pub/scm/linux/kernel/git/stable/linux.git;protocol=https;nobranch=1"

SRC_URI = "${MPTCP_BACKPORT_LINUX_STABLE_URI}"
SRCREV = "${MPTCP_BACKPORT_LINUX_STABLE_SRCREV}"
S = "${WORKDIR}/git"

inherit allarch nopackages

SKIP_RECIPE[mptcp-backport-series] = "${@'' if d.getVar('MPTCP_BACKPORT_LINUX_STABLE_SRCREV') else 'set MPTCP_BACKPORT_LINUX_STABLE_SRCREV to export the MPTCP backport at build time (docs/yocto.md)'}"

do_configure[noexec] = "1"

# The manifest and our fixups come with mptcp-backport-native (share/mptcp-backport), whose
# task hashes track their content.
do_compile() {
    rm -rf ${B}/series
    mptcp-backport --manifest ${RECIPE_SYSROOT_NATIVE}${datadir_native}/mptcp-backport/series.toml export --repo ${S} --out ${B}/series \
        ${@'--base ' + d.getVar('MPTCP_BACKPORT_BASE') if d.getVar('MPTCP_BACKPORT_BASE') else ''} \
        ${@d.getVar('MPTCP_BACKPORT_EXPORT_ARGS') or ''}
}

do_install() {
    install -d ${D}${datadir}/mptcp-backport-series
    cp -R --no-preserve=ownership ${B}/series/. ${D}${datadir}/mptcp-backport-series/
}
