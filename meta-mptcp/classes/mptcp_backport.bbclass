# SPDX-License-Identifier: MIT OR Apache-2.0
#
# Gives a kernel recipe the Linux 5.15 MPTCP stack. Inherit it from the recipe or a bbappend:
#
#     inherit mptcp_backport
#
# Nothing changes unless DISTRO_FEATURES contains "mptcp": every statement below is bound to the
# "mptcp" override, which conf/layer.conf adds to DISTROOVERRIDES only with that feature, except
# three task flags (which cannot carry an override) that expand to nothing without it, and the
# shell function only those flags name (testing/layers proves both in CI). With the feature on:
#   - on a 5.10 kernel it patches the tree in do_patch, in one of three modes:
#       "series":     a series exported beforehand into MPTCP_BACKPORT_SERIES_DIR; its patches
#                     go into SRC_URI (relative names, found through FILESEXTRAPATHS) and
#                     do_patch applies them like any other kernel patch;
#       "export":     exported at build time from a linux-stable git clone by the
#                     mptcp-backport-series recipe (MPTCP_BACKPORT_LINUX_STABLE_SRCREV), and
#                     applied by `mptcp-backport apply` at the end of do_patch;
#       "transplant": a 5.15.y tarball (MPTCP_TRANSPLANT_URI + MPTCP_TRANSPLANT_SHA256, fetched
#                     by SRC_URI) or git commit, from which `mptcp-backport transplant` copies
#                     the MPTCP files at the end of do_patch (our core patches and fixups with it);
#     in "export" and "transplant" the producing recipe is a dependency of do_unpack and
#     do_patch, so a new series or tool re-runs both on a fresh tree;
#   - on any kernel it adds the config fragment(s) of kernel-patches/config: kernel-yocto
#     merges SRC_URI .cfg files itself, other kernel recipes get merge_config.sh + olddefconfig
#     after do_configure; then it checks that every option of the fragments reached .config;
#   - on a kernel that is not 5.10 it applies no backport and says so in the do_configure log.
# The knobs (MPTCP_*) are documented in docs/yocto-variables.md; their defaults live in the
# functions below, so that this class defines no variable of its own when the feature is off.

def mptcp_repo_dir(d):
    """The repository holding the layer (kernel-patches/ beside meta-mptcp/)."""
    return d.getVar('MPTCP_REPO_DIR') or os.path.normpath(os.path.join(d.getVar('MPTCP_LAYERDIR') or '', '..'))

def mptcp_patches_dir(d):
    """The repository's kernel-patches/ (fixups, config fragments)."""
    return d.getVar('MPTCP_KERNEL_PATCHES_DIR') or os.path.join(mptcp_repo_dir(d), 'kernel-patches')

def mptcp_kernel_version(d):
    return d.getVar('MPTCP_KERNEL_VERSION') or d.getVar('LINUX_VERSION') or d.getVar('PV') or ''

def mptcp_kernel_series(d):
    """(major, minor) of the kernel, or None when the version does not say."""
    import re
    m = re.match(r'(\d+)\.(\d+)', mptcp_kernel_version(d))
    return (int(m.group(1)), int(m.group(2))) if m else None

def mptcp_enabled(d):
    """The class's flags and task functions act only with the feature (the "mptcp" override)."""
    return 'mptcp' in (d.getVar('OVERRIDES') or '').split(':')

def mptcp_backport_mode(d):
    """series | export | transplant | unset (5.10 without a source) | newer | older."""
    series = mptcp_kernel_series(d)
    if series is None or series < (5, 10):
        return 'older'
    if series > (5, 10):
        return 'newer'
    if d.getVar('MPTCP_BACKPORT_SERIES_DIR'):
        return 'series'
    if d.getVar('MPTCP_BACKPORT_LINUX_STABLE_SRCREV'):
        return 'export'
    if d.getVar('MPTCP_TRANSPLANT_URI'):
        return 'transplant'
    return 'unset'

def mptcp_fragment_names(d):
    return (d.getVar('MPTCP_KCONFIG_FRAGMENTS') or 'mptcp.cfg').split()

def mptcp_fragments(d):
    """The fragments as unpacked by do_unpack (SRC_URI file://NAME)."""
    return [os.path.join(d.getVar('WORKDIR'), n) for n in mptcp_fragment_names(d)]

def mptcp_merge_needed(d):
    """1 when this class merges the fragments itself (kernel-yocto merges SRC_URI .cfg files)."""
    merge = d.getVar('MPTCP_KCONFIG_MERGE') or 'auto'
    if merge == 'auto':
        merge = 'kernel-yocto' if bb.data.inherits_class('kernel-yocto', d) else 'merge'
    return '1' if merge == 'merge' else '0'

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

def mptcp_fixup_names(d):
    import glob
    names = d.getVar('MPTCP_BACKPORT_FIXUPS')
    if names is None:
        return sorted(os.path.basename(p) for p in glob.glob(os.path.join(mptcp_patches_dir(d), 'fixups', '*.patch')))
    return names.split()

def mptcp_filesextrapaths(d):
    """Where SRC_URI's relative names are found: the series, our fixups, the fragments."""
    paths = []
    if d.getVar('MPTCP_BACKPORT_SERIES_DIR'):
        paths.append(d.getVar('MPTCP_BACKPORT_SERIES_DIR'))
    paths += [os.path.join(mptcp_patches_dir(d), 'fixups'), os.path.join(mptcp_patches_dir(d), 'config')]
    return ''.join(p + ':' for p in paths)

def mptcp_transplant_is_git(d):
    return (d.getVar('MPTCP_TRANSPLANT_URI') or '').startswith('git://')

def mptcp_src_uri(d):
    """Config fragments; in mode "series" the exported patches (then fixups the series lacks);
    in mode "transplant" the 5.15.y source with its checksum. Relative names only."""
    uris = ['file://%s' % n for n in mptcp_fragment_names(d)]
    mode = mptcp_backport_mode(d)
    if mode == 'series':
        series_dir = d.getVar('MPTCP_BACKPORT_SERIES_DIR')
        series_file = os.path.join(series_dir, 'series')
        # Re-parse when a new series is exported into the same directory.
        bb.parse.mark_dependency(d, series_file)
        if os.path.isfile(series_file):
            uris += ['file://%s' % n for n in mptcp_read_series(series_file)]
            if not mptcp_series_has_fixups(series_dir):
                uris += ['file://%s' % n for n in mptcp_fixup_names(d)]
    elif mode == 'transplant':
        uri = d.getVar('MPTCP_TRANSPLANT_URI')
        if mptcp_transplant_is_git(d):
            # rev= in the URL: a SRCREV_<name> variable could not be bound to the override.
            uris.append('%s;name=mptcp-transplant;destsuffix=mptcp-transplant;rev=%s'
                        % (uri, d.getVar('MPTCP_TRANSPLANT_SRCREV') or ''))
        else:
            # The checksum rides on the URL: no SRC_URI flag outside the override is needed.
            uris.append('%s;name=mptcp-transplant;unpack=0;mptcp-transplant.sha256sum=%s'
                        % (uri, d.getVar('MPTCP_TRANSPLANT_SHA256') or ''))
    return ' '.join(uris)

def mptcp_transplant_source(d):
    if mptcp_transplant_is_git(d):
        return os.path.join(d.getVar('WORKDIR'), 'mptcp-transplant')
    uri = d.getVar('MPTCP_TRANSPLANT_URI')
    fetch = bb.fetch2.Fetch([uri], d)
    return fetch.localpath(uri)

def mptcp_patch_recipes(d):
    """The recipes whose output do_patch applies (export, transplant), or []."""
    if not mptcp_enabled(d):
        return []
    mode = mptcp_backport_mode(d)
    if mode == 'export':
        return ['mptcp-backport-series', 'mptcp-backport-native']
    if mode == 'transplant':
        return ['mptcp-backport-native']
    return []

def mptcp_patch_depends(d):
    return ' '.join('%s:do_populate_sysroot' % r for r in mptcp_patch_recipes(d))

def mptcp_patch_postfuncs(d):
    return 'mptcp_backport_apply' if mptcp_patch_recipes(d) else ''

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
                'MPTCP_BACKPORT_SERIES_DIR to a series exported with `mptcp-backport export`, '
                'MPTCP_BACKPORT_LINUX_STABLE_SRCREV to export one at build time, or '
                'MPTCP_TRANSPLANT_URI (+ MPTCP_TRANSPLANT_SHA256) to transplant from a 5.15.y source '
                '(docs/yocto.md).' % pn)
    if mode == 'series' and not os.path.isfile(os.path.join(d.getVar('MPTCP_BACKPORT_SERIES_DIR'), 'series')):
        return ('MPTCP_BACKPORT_SERIES_DIR (%s) has no series file: export one with `mptcp-backport export` '
                '(docs/backport-guide.md).' % d.getVar('MPTCP_BACKPORT_SERIES_DIR'))
    if mode == 'transplant' and not mptcp_transplant_is_git(d) and len(d.getVar('MPTCP_TRANSPLANT_SHA256') or '') != 64:
        return 'MPTCP_TRANSPLANT_URI is set but MPTCP_TRANSPLANT_SHA256 is not a sha256: give the tarball\'s checksum.'
    if mode == 'transplant' and mptcp_transplant_is_git(d) and not d.getVar('MPTCP_TRANSPLANT_SRCREV'):
        return 'MPTCP_TRANSPLANT_URI is a git URL: set MPTCP_TRANSPLANT_SRCREV to the commit of the 5.15.y tag.'
    return ''

# A class, not a bbappend, so that vendor kernels take it with one line; the paths depend only
# on configuration (local.conf, the layer), never on the recipe, so := is right here.
# nooelint: oelint.vars.fileextrapaths,oelint.vars.outofcontext
FILESEXTRAPATHS:prepend:mptcp := "${@mptcp_filesextrapaths(d)}"
SRC_URI:append:mptcp = " ${@mptcp_src_uri(d)}"

# Export and transplant: the producing recipes feed do_patch, and do_unpack too, so that a new
# series (or tool) unpacks a fresh tree before it is applied. Both flags expand to nothing
# without the feature (mptcp_enabled), like everything else here.
do_unpack[depends] += "${@mptcp_patch_depends(d)}"
do_patch[depends] += "${@mptcp_patch_depends(d)}"
do_patch[postfuncs] += "${@mptcp_patch_postfuncs(d)}"

# Run at the end of do_patch (kernel-yocto's or OE's), in the kernel's source tree. Defined
# always, run only through the gated postfunc above (oelint reads the name as overrides).
# nooelint: oelint.vars.noncoreoverride
mptcp_backport_apply() {
    cd ${S}
    # git am needs a committer; the patches keep their upstream authors.
    export GIT_COMMITTER_NAME="${@d.getVar('PATCH_GIT_USER_NAME') or 'OpenEmbedded'}"
    export GIT_COMMITTER_EMAIL="${@d.getVar('PATCH_GIT_USER_EMAIL') or 'oe.patch@oe'}"
    manifest=${RECIPE_SYSROOT_NATIVE}${datadir_native}/mptcp-backport/series.toml
    case "${@mptcp_backport_mode(d)}" in
    export)
        mptcp-backport --manifest $manifest apply --tree ${S} \
            --series ${RECIPE_SYSROOT}${datadir}/mptcp-backport-series
        bbnote "meta-mptcp: kernel ${@mptcp_kernel_version(d)}: backport series exported at build time applied in do_patch"
        ;;
    transplant)
        mptcp-backport --manifest $manifest transplant --tree ${S} \
            --source ${@mptcp_transplant_source(d) if mptcp_backport_mode(d) == 'transplant' else ''} \
            ${@'' if mptcp_transplant_is_git(d) else '--sha256 ' + (d.getVar('MPTCP_TRANSPLANT_SHA256') or '')}
        bbnote "meta-mptcp: kernel ${@mptcp_kernel_version(d)}: MPTCP transplanted from ${@d.getVar('MPTCP_TRANSPLANT_URI') or ''} in do_patch"
        ;;
    esac
}

# Fail before anything is fetched when the backport cannot work as configured.
python do_fetch:prepend:mptcp() {
    error = mptcp_setup_error(d)
    if error:
        bb.fatal('meta-mptcp: ' + error)
}

# Say in the do_configure log what was done to this kernel.
do_configure:prepend:mptcp() {
    case "${@mptcp_backport_mode(d)}" in
    newer)
        bbnote "meta-mptcp: kernel ${@mptcp_kernel_version(d)} is not 5.10: no backport applied (MPTCP is upstream); the config fragment is added and checked"
        ;;
    older)
        bbwarn "meta-mptcp: kernel version '${@mptcp_kernel_version(d)}' is not 5.10 or newer: no backport applied, and the MPTCP options of the config fragment probably do not exist"
        ;;
    *)
        bbnote "meta-mptcp: kernel ${@mptcp_kernel_version(d)}: backport (mode ${@mptcp_backport_mode(d)}) applied by do_patch"
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
