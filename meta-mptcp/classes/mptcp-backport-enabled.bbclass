# SPDX-License-Identifier: MIT OR Apache-2.0
#
# The work behind mptcp-backport.bbclass. Inherit that class, not this one: it is the
# DISTRO_FEATURES gate and inherits this one only when "mptcp" is on.
#
# On a 5.10 kernel: applies the Linux 5.15 MPTCP series exported by `mptcp-backport export`,
# then our fixups (kernel-patches/fixups), either
#   - from a series directory exported beforehand (MPTCP_BACKPORT_SERIES_DIR): the patches go
#     into SRC_URI and do_patch applies them like any other kernel patch, or
#   - exported at build time from a linux-stable git clone by mptcp-backport-native
#     (MPTCP_BACKPORT_LINUX_STABLE_SRCREV): task do_mptcp_backport, after do_patch.
# On every kernel: adds the config fragment(s) (kernel-yocto merges SRC_URI .cfg files itself;
# other kernel recipes get a plain merge_config.sh + olddefconfig after do_configure) and checks
# after do_configure that every option of the fragment reached .config.
# On a kernel that is not 5.10 no backport is applied, and the do_patch log says so.
# Every variable is documented in docs/yocto-variables.md.

# The series manifest, our fixups and the config fragments: the repository's kernel-patches/,
# next to this layer (single source of truth, no copies in the layer).
MPTCP_KERNEL_PATCHES_DIR ?= "${MPTCP_LAYERDIR}/../kernel-patches"

# The kernel version the 5.10 decision and the default base tag are taken from.
MPTCP_KERNEL_VERSION ?= "${@d.getVar('LINUX_VERSION') or d.getVar('PV')}"

# Mode 1: a series exported beforehand with `mptcp-backport export` (a directory holding a
# `series` file and the numbered patches it lists).
MPTCP_BACKPORT_SERIES_DIR ?= ""

# Mode 2: export at build time from linux-stable. The fetch is a full clone (tags needed).
MPTCP_BACKPORT_LINUX_STABLE_URI ?= "git://git.kernel.org/pub/scm/linux/kernel/git/stable/linux.git;protocol=https;nobranch=1;bareclone=1"
MPTCP_BACKPORT_LINUX_STABLE_SRCREV ?= ""
MPTCP_BACKPORT_BASE ?= "v${@mptcp_version_triplet(d)}"
MPTCP_BACKPORT_EXPORT_ARGS ?= ""

# Our fixups, applied after the series (skipped when the series already lists them).
MPTCP_BACKPORT_FIXUPS ?= "${@mptcp_default_fixups(d)}"

# Config fragments, file names in ${MPTCP_KERNEL_PATCHES_DIR}/config.
MPTCP_KCONFIG_FRAGMENTS ?= "mptcp.cfg"
# auto: SRC_URI fragment for kernel-yocto recipes, plain merge for the others. Or kernel-yocto, merge.
MPTCP_KCONFIG_MERGE ?= "auto"
MPTCP_KCONFIG_CHECK ?= "1"
MPTCP_KCONFIG_CHECK_IGNORE ?= ""

def mptcp_version_tuple(d):
    import re
    m = re.match(r'(\d+)\.(\d+)', d.getVar('MPTCP_KERNEL_VERSION') or '')
    return (int(m.group(1)), int(m.group(2))) if m else None

def mptcp_version_triplet(d):
    import re
    m = re.match(r'\d+\.\d+(\.\d+)?', d.getVar('MPTCP_KERNEL_VERSION') or '')
    return m.group(0) if m else ''

def mptcp_default_fixups(d):
    import glob
    fixups = os.path.join(d.getVar('MPTCP_KERNEL_PATCHES_DIR'), 'fixups')
    return ' '.join(sorted(os.path.basename(p) for p in glob.glob(os.path.join(fixups, '*.patch'))))

def mptcp_read_series(path):
    """Patch names of a quilt-style series file, in order (comments and -pN fields dropped)."""
    names = []
    with open(path) as f:
        for line in f:
            line = line.split('#', 1)[0].strip()
            if line:
                names.append(line.split()[0])
    return names

def mptcp_scm_names(d):
    names = []
    for uri in (d.getVar('SRC_URI') or '').split():
        scheme, _, _, _, _, parm = bb.fetch2.decodeurl(uri)
        if scheme in ('git', 'gitsm', 'svn', 'hg', 'bzr', 'repo', 'p4', 'gitannex'):
            names.extend(parm.get('name', 'default').split(','))
    return names

def mptcp_parse_kconfig(path):
    """{CONFIG_X: value} of a .config or fragment; "# CONFIG_X is not set" reads as "n"."""
    import re
    values = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            m = re.match(r'(CONFIG_[A-Za-z0-9_]+)=(.*)$', line)
            if m:
                values[m.group(1)] = m.group(2).strip('"') if m.group(2).startswith('"') else m.group(2)
                continue
            m = re.match(r'# (CONFIG_[A-Za-z0-9_]+) is not set$', line)
            if m:
                values[m.group(1)] = 'n'
    return values

python __anonymous () {
    pn = d.getVar('PN')
    patches_dir = d.getVar('MPTCP_KERNEL_PATCHES_DIR')
    if not os.path.isdir(os.path.join(patches_dir, 'config')):
        raise bb.parse.SkipRecipe("meta-mptcp: MPTCP_KERNEL_PATCHES_DIR (%s) has no config/ directory; "
                                  "point it at the kernel-patches/ directory of the meta-mptcp repository" % patches_dir)
    bb.parse.mark_dependency(d, os.path.join(patches_dir, 'fixups'))

    # file://config/... and file://fixups/... resolve in kernel-patches/.
    d.prependVar('FILESEXTRAPATHS', patches_dir + ':')
    for frag in (d.getVar('MPTCP_KCONFIG_FRAGMENTS') or '').split():
        d.appendVar('SRC_URI', ' file://config/%s' % frag)

    merge = d.getVar('MPTCP_KCONFIG_MERGE')
    if merge == 'auto':
        merge = 'kernel-yocto' if bb.data.inherits_class('kernel-yocto', d) else 'merge'
    if merge not in ('kernel-yocto', 'merge'):
        bb.fatal("meta-mptcp: MPTCP_KCONFIG_MERGE must be auto, kernel-yocto or merge, not '%s'" % merge)
    if merge == 'merge':
        d.appendVarFlag('do_configure', 'postfuncs', ' mptcp_merge_kernel_config')
    if d.getVar('MPTCP_KCONFIG_CHECK') == '1':
        d.appendVarFlag('do_configure', 'postfuncs', ' mptcp_check_kernel_config')

    d.appendVarFlag('do_patch', 'postfuncs', ' mptcp_backport_report')
    if mptcp_version_tuple(d) != (5, 10):
        return

    oldest = (d.getVar('OLDEST_KERNEL') or '0').split('.')
    if tuple(int(x) for x in oldest[:2] if x.isdigit()) > (5, 10):
        raise bb.parse.SkipRecipe("meta-mptcp: this is a 5.10 kernel but OLDEST_KERNEL is %s, so the C library "
                                  "would refuse to start on it; set OLDEST_KERNEL = \"5.10\"" % d.getVar('OLDEST_KERNEL'))

    fixups = (d.getVar('MPTCP_BACKPORT_FIXUPS') or '').split()
    series_dir = d.getVar('MPTCP_BACKPORT_SERIES_DIR')
    srcrev = d.getVar('MPTCP_BACKPORT_LINUX_STABLE_SRCREV')
    if series_dir:
        series_file = os.path.join(series_dir, 'series')
        if not os.path.isfile(series_file):
            raise bb.parse.SkipRecipe("meta-mptcp: MPTCP_BACKPORT_SERIES_DIR (%s) has no series file; export one "
                                      "with `mptcp-backport export` (docs/backport-guide.md)" % series_dir)
        bb.parse.mark_dependency(d, series_file)
        series = mptcp_read_series(series_file)
        for name in series:
            d.appendVar('SRC_URI', ' file://%s' % os.path.join(series_dir, name))
        for name in fixups:
            if name not in series:
                d.appendVar('SRC_URI', ' file://fixups/%s' % name)
    elif srcrev:
        names = mptcp_scm_names(d)
        if names and not d.getVar('SRCREV_FORMAT'):
            d.setVar('SRCREV_FORMAT', '_'.join(names))
        d.appendVar('SRC_URI', ' %s;name=mptcpstable;destsuffix=mptcp-linux-stable' % d.getVar('MPTCP_BACKPORT_LINUX_STABLE_URI'))
        d.setVar('SRCREV_mptcpstable', srcrev)
        for name in fixups:
            d.appendVarFlag('do_mptcp_backport', 'file-checksums',
                            ' %s:True' % os.path.join(patches_dir, 'fixups', name))
        d.appendVarFlag('do_mptcp_backport', 'file-checksums', ' %s:True' % os.path.join(patches_dir, 'series.toml'))
        d.setVarFlag('do_mptcp_backport', 'depends', 'mptcp-backport-native:do_populate_sysroot')
        d.setVarFlag('do_mptcp_backport', 'dirs', d.getVar('WORKDIR'))
        d.setVarFlag('do_mptcp_backport', 'doc', 'Exports the MPTCP backport series from linux-stable and applies it with our fixups')
        before = 'do_configure do_kernel_configme' if bb.data.inherits_class('kernel-yocto', d) else 'do_configure'
        bb.build.addtask('do_mptcp_backport', before, 'do_patch', d)
        d.appendVar('SRCTREECOVEREDTASKS', ' do_mptcp_backport')
    else:
        raise bb.parse.SkipRecipe("meta-mptcp: %s is a 5.10 kernel and DISTRO_FEATURES has mptcp, but no backport "
                                  "source is set: set MPTCP_BACKPORT_SERIES_DIR to an exported series, or "
                                  "MPTCP_BACKPORT_LINUX_STABLE_SRCREV to export one at build time" % pn)
}

python mptcp_backport_report () {
    ver = d.getVar('MPTCP_KERNEL_VERSION')
    series = mptcp_version_tuple(d)
    if series == (5, 10):
        if d.getVar('MPTCP_BACKPORT_SERIES_DIR'):
            bb.note("meta-mptcp: kernel %s: Linux 5.15 MPTCP backport series from %s applied" % (
                ver, d.getVar('MPTCP_BACKPORT_SERIES_DIR')))
        else:
            bb.note("meta-mptcp: kernel %s: do_mptcp_backport exports and applies the Linux 5.15 MPTCP "
                    "backport next" % ver)
    elif series and series > (5, 10):
        bb.note("meta-mptcp: kernel %s is not 5.10: no backport applied (MPTCP is upstream); "
                "only the config fragment is added and checked" % ver)
    else:
        bb.warn("meta-mptcp: kernel version '%s' is not 5.10 or newer: no backport applied, and the MPTCP "
                "options of the config fragment will probably not exist" % ver)
}

# Kernel recipes that do not use kernel-yocto: merge the fragments into .config.
mptcp_merge_kernel_config () {
	fragments=""
	for f in ${MPTCP_KCONFIG_FRAGMENTS}; do
		fragments="$fragments ${WORKDIR}/config/$f"
	done
	${S}/scripts/kconfig/merge_config.sh -m -O ${B} ${B}/.config $fragments
	${KERNEL_CONFIG_COMMAND}
}

python mptcp_check_kernel_config () {
    hints = {
        'CONFIG_MPTCP_IPV6': 'needs CONFIG_IPV6=y (IPv6 built as a module drops it)',
        'CONFIG_INET_MPTCP_DIAG': 'needs CONFIG_INET_DIAG',
        'CONFIG_MPTCP': 'needs CONFIG_INET; on 5.10 also the backport series (is it applied?)',
    }
    wanted = {}
    for frag in (d.getVar('MPTCP_KCONFIG_FRAGMENTS') or '').split():
        wanted.update(mptcp_parse_kconfig(os.path.join(d.getVar('WORKDIR'), 'config', frag)))
    ignore = set((d.getVar('MPTCP_KCONFIG_CHECK_IGNORE') or '').split())
    dotconfig = os.path.join(d.getVar('B'), '.config')
    have = mptcp_parse_kconfig(dotconfig)
    wrong = []
    for sym, value in sorted(wanted.items()):
        if sym in ignore:
            continue
        got = have.get(sym, 'n')
        if got != value:
            wrong.append("  %s: fragment wants %s, .config has %s%s" % (
                sym, value, 'it unset' if got == 'n' else got,
                ' (%s)' % hints[sym] if sym in hints else ''))
    if wrong:
        bb.fatal("meta-mptcp: MPTCP kernel options did not reach %s:\n%s\n"
                 "An option is dropped when a dependency is missing or another fragment overrides it. "
                 "Fix the kernel configuration, or list options to skip in MPTCP_KCONFIG_CHECK_IGNORE."
                 % (dotconfig, '\n'.join(wrong)))
    bb.note("meta-mptcp: all %d options of %s are in .config" % (len(wanted), d.getVar('MPTCP_KCONFIG_FRAGMENTS')))
}

# Mode 2: export the series from the linux-stable clone, apply it, then the fixups it lacks.
do_mptcp_backport () {
	series=${WORKDIR}/mptcp-backport-series
	rm -rf "$series"
	mptcp-backport export \
		--manifest ${MPTCP_KERNEL_PATCHES_DIR}/series.toml \
		--linux ${WORKDIR}/mptcp-linux-stable \
		--base ${MPTCP_BACKPORT_BASE} \
		--out "$series" ${MPTCP_BACKPORT_EXPORT_ARGS}
	mptcp-backport apply --series "$series" --tree ${S}
	for f in ${MPTCP_BACKPORT_FIXUPS}; do
		if grep -qx "$f" "$series/series"; then
			continue
		fi
		bbnote "meta-mptcp: applying fixup $f"
		patch -p1 --forward --batch -d ${S} < ${MPTCP_KERNEL_PATCHES_DIR}/fixups/$f
	done
}
