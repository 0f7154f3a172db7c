# SPDX-License-Identifier: MIT OR Apache-2.0
#
# Gives a kernel recipe the Linux 5.15 MPTCP stack. Inherit it from the recipe or a bbappend:
#
#     inherit mptcp_backport
#
# Nothing changes unless DISTRO_FEATURES contains "mptcp": every statement below is bound to the
# "mptcp" override, which conf/layer.conf adds to DISTROOVERRIDES only with that feature
# (tools/layers proves it in CI). With the feature on:
#   - on a 5.10 kernel it applies the series exported by `mptcp-backport export` (which carries
#     our fixups in their places), either
#       mode "series": exported beforehand into MPTCP_BACKPORT_SERIES_DIR; the patches go into
#                      SRC_URI and do_patch applies them like any other kernel patch, or
#       mode "export": exported at build time from a linux-stable git clone by the
#                      mptcp-backport-series recipe (MPTCP_BACKPORT_LINUX_STABLE_SRCREV), and
#                      applied by `mptcp-backport apply` at the start of do_configure;
#   - on any kernel it adds the config fragment(s) of kernel-patches/config: kernel-yocto
#     merges SRC_URI .cfg files itself, other kernel recipes get merge_config.sh + olddefconfig
#     after do_configure; then it checks that every option of the fragments reached .config;
#   - on a kernel that is not 5.10 it applies no backport and says so in the do_configure log.
# The knobs (MPTCP_*) are documented in docs/yocto-variables.md; their defaults live in the
# functions below, so that this class defines no variable of its own when the feature is off.

def mptcp_patches_dir(d):
    """The repository's kernel-patches/ (manifest, fixups, config fragments)."""
    return d.getVar('MPTCP_KERNEL_PATCHES_DIR') or os.path.normpath(os.path.join(d.getVar('MPTCP_LAYERDIR'), '..', 'kernel-patches'))

def mptcp_kernel_version(d):
    return d.getVar('MPTCP_KERNEL_VERSION') or d.getVar('LINUX_VERSION') or d.getVar('PV') or ''

def mptcp_kernel_series(d):
    """(major, minor) of the kernel, or None when the version does not say."""
    import re
    m = re.match(r'(\d+)\.(\d+)', mptcp_kernel_version(d))
    return (int(m.group(1)), int(m.group(2))) if m else None

def mptcp_backport_mode(d):
    """series | export | unset (a 5.10 kernel without a backport source) | newer | older."""
    series = mptcp_kernel_series(d)
    if series is None or series < (5, 10):
        return 'older'
    if series > (5, 10):
        return 'newer'
    if d.getVar('MPTCP_BACKPORT_SERIES_DIR'):
        return 'series'
    if d.getVar('MPTCP_BACKPORT_LINUX_STABLE_SRCREV'):
        return 'export'
    return 'unset'

def mptcp_fragments(d):
    names = (d.getVar('MPTCP_KCONFIG_FRAGMENTS') or 'mptcp.cfg').split()
    return [os.path.join(mptcp_patches_dir(d), 'config', n) for n in names]

def mptcp_merge_needed(d):
    """1 when this class merges the fragments itself (kernel-yocto merges SRC_URI .cfg files)."""
    merge = d.getVar('MPTCP_KCONFIG_MERGE') or 'auto'
    if merge == 'auto':
        merge = 'kernel-yocto' if bb.data.inherits_class('kernel-yocto', d) else 'merge'
    # A series applied in do_configure adds its Kconfig symbols after kernel-yocto's merge.
    return '1' if merge == 'merge' or mptcp_backport_mode(d) == 'export' else '0'

def mptcp_read_series(path):
    """Patch names of a quilt series file, in order (comments and -pN fields dropped)."""
    names = []
    with open(path) as f:
        for line in f:
            line = line.split('#', 1)[0].strip()
            if line:
                names.append(line.split()[0])
    return names

def mptcp_series_has_fixups(series_dir):
    """`mptcp-backport export` weaves our fixups into the series and lists them in export.json."""
    import json
    info = os.path.join(series_dir, 'export.json')
    if not os.path.isfile(info):
        return False
    with open(info) as f:
        return any(p.get('kind') == 'fixup' for p in json.load(f).get('patches', []))

def mptcp_fixups(d):
    import glob
    names = d.getVar('MPTCP_BACKPORT_FIXUPS')
    fixups = os.path.join(mptcp_patches_dir(d), 'fixups')
    if names is None:
        return sorted(glob.glob(os.path.join(fixups, '*.patch')))
    return [os.path.join(fixups, n) for n in names.split()]

def mptcp_src_uri(d):
    """Config fragments, and in mode "series" the exported patches (then fixups the series lacks)."""
    uris = ['file://%s' % f for f in mptcp_fragments(d)]
    if mptcp_backport_mode(d) == 'series':
        series_dir = d.getVar('MPTCP_BACKPORT_SERIES_DIR')
        series_file = os.path.join(series_dir, 'series')
        # Re-parse when a new series is exported into the same directory.
        bb.parse.mark_dependency(d, series_file)
        if os.path.isfile(series_file):
            uris += ['file://%s' % os.path.join(series_dir, n) for n in mptcp_read_series(series_file)]
            if not mptcp_series_has_fixups(series_dir):
                uris += ['file://%s' % f for f in mptcp_fixups(d)]
    return ' '.join(uris)

def mptcp_depends(d):
    if mptcp_backport_mode(d) == 'export':
        return 'mptcp-backport-series mptcp-backport-native'
    return ''

def mptcp_setup_error(d):
    """Why this kernel cannot get the backport as configured, or '' when it can."""
    mode = mptcp_backport_mode(d)
    pn = d.getVar('PN')
    if mode in ('newer', 'older'):
        return ''
    oldest = tuple(int(x) for x in (d.getVar('OLDEST_KERNEL') or '0').split('.')[:2] if x.isdigit())
    if oldest > (5, 10):
        return ('%s is a 5.10 kernel but OLDEST_KERNEL is %s: the C library would refuse to start on it '
                '("FATAL: kernel too old"). Set OLDEST_KERNEL = "5.10".' % (pn, d.getVar('OLDEST_KERNEL')))
    if mode == 'unset':
        return ('%s is a 5.10 kernel and DISTRO_FEATURES has "mptcp", but no backport source is set: set '
                'MPTCP_BACKPORT_SERIES_DIR to a series exported with `mptcp-backport export`, or '
                'MPTCP_BACKPORT_LINUX_STABLE_SRCREV to export one at build time (docs/yocto.md).' % pn)
    if mode == 'series' and not os.path.isfile(os.path.join(d.getVar('MPTCP_BACKPORT_SERIES_DIR'), 'series')):
        return ('MPTCP_BACKPORT_SERIES_DIR (%s) has no series file: export one with `mptcp-backport export` '
                '(docs/backport-guide.md).' % d.getVar('MPTCP_BACKPORT_SERIES_DIR'))
    return ''

DEPENDS:append:mptcp = " ${@mptcp_depends(d)}"
SRC_URI:append:mptcp = " ${@mptcp_src_uri(d)}"

# Fail before anything is fetched when the backport cannot work as configured.
python do_fetch:prepend:mptcp() {
    error = mptcp_setup_error(d)
    if error:
        bb.fatal('meta-mptcp: ' + error)
}

# Before the kernel's do_configure: apply a series exported at build time; say what is done.
do_configure:prepend:mptcp() {
    case "${@mptcp_backport_mode(d)}" in
    newer)
        bbnote "meta-mptcp: kernel ${@mptcp_kernel_version(d)} is not 5.10: no backport applied (MPTCP is upstream); the config fragment is added and checked"
        ;;
    older)
        bbwarn "meta-mptcp: kernel version '${@mptcp_kernel_version(d)}' is not 5.10 or newer: no backport applied, and the MPTCP options of the config fragment probably do not exist"
        ;;
    series)
        bbnote "meta-mptcp: kernel ${@mptcp_kernel_version(d)}: backport series from ${@d.getVar('MPTCP_BACKPORT_SERIES_DIR') or ''} applied by do_patch"
        ;;
    export)
        # The patches change ${S}; applying twice would fail, so remember it next to them.
        if [ ! -e ${S}/.mptcp-backport-applied ]; then
            # git am needs a committer; the patches keep their upstream authors.
            export GIT_COMMITTER_NAME="${@d.getVar('PATCH_GIT_USER_NAME') or 'OpenEmbedded'}"
            export GIT_COMMITTER_EMAIL="${@d.getVar('PATCH_GIT_USER_EMAIL') or 'oe.patch@oe'}"
            mptcp-backport apply --tree ${S} --series ${RECIPE_SYSROOT}${datadir}/mptcp-backport-series
            touch ${S}/.mptcp-backport-applied
        fi
        bbnote "meta-mptcp: kernel ${@mptcp_kernel_version(d)}: backport series exported at build time applied"
        ;;
    esac
}

# After it: merge the fragments where kernel-yocto does not, then check that every option a
# fragment sets (or unsets) has that value in the final .config ("=y" also satisfies "=m").
do_configure:append:mptcp() {
    if [ "${@mptcp_merge_needed(d)}" = "1" ]; then
        ${S}/scripts/kconfig/merge_config.sh -m -O ${B} ${B}/.config ${@' '.join(mptcp_fragments(d))}
        ${KERNEL_CONFIG_COMMAND}
    fi
    if [ "${@d.getVar('MPTCP_KCONFIG_CHECK') or '1'}" = "1" ]; then
        wrong=""
        for fragment in ${@' '.join(mptcp_fragments(d))}; do
            while read -r line; do
                case "$line" in
                CONFIG_*=*)
                    sym="${line%%=*}"
                    want="${line#*=}"
                    ;;
                "# CONFIG_"*" is not set")
                    sym="${line#\# }"
                    sym="${sym%% *}"
                    want=n
                    ;;
                *)
                    continue
                    ;;
                esac
                case " ${@d.getVar('MPTCP_KCONFIG_CHECK_IGNORE') or ''} " in
                *" $sym "*)
                    continue
                    ;;
                esac
                got=$(sed -n "s/^$sym=//p" ${B}/.config)
                if [ -z "$got" ]; then
                    got=n
                fi
                # Built in satisfies a module request: the feature is there either way.
                if [ "$got" != "$want" ] && ! { [ "$want" = m ] && [ "$got" = y ]; }; then
                    case "$sym" in
                    CONFIG_MPTCP_IPV6) hint=" (needs CONFIG_IPV6=y: IPv6 as a module drops it)" ;;
                    CONFIG_INET_MPTCP_DIAG) hint=" (needs CONFIG_INET_DIAG)" ;;
                    CONFIG_MPTCP) hint=" (needs CONFIG_INET; on 5.10 also the backport)" ;;
                    *) hint="" ;;
                    esac
                    wrong="$wrong $sym: fragment $(basename $fragment) wants $want, .config has $got$hint;"
                fi
            done < "$fragment"
        done
        if [ -n "$wrong" ]; then
            bbfatal "meta-mptcp: MPTCP kernel options did not reach ${B}/.config:$wrong an option is dropped when a dependency is missing or another fragment overrides it. Fix the kernel configuration, or list options to skip in MPTCP_KCONFIG_CHECK_IGNORE."
        fi
        bbnote "meta-mptcp: the options of ${@d.getVar('MPTCP_KCONFIG_FRAGMENTS') or 'mptcp.cfg'} are in .config"
    fi
}
