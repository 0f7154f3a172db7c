#!/usr/bin/env python3
# SPDX-License-Identifier: MIT OR Apache-2.0
"""Structure tests of meta-mptcp/ (Yocto) and recipes/ (Buildroot): gating of the
kernel class, its logic, patches, crates, layer.conf, recipes, kas, and the Buildroot tree.
Needs the project venv (bbmini reads the metadata with oelint-parser). Run by
testing/test.d/20-layers.sh (which adds oelint-adv), or alone:
    .venv/bin/python testing/layers/test_layers.py [-k NAME]"""

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
LAYER = ROOT / "meta-mptcp"
BR = ROOT / "recipes"
CLASS = LAYER / "classes" / "mptcp_backport.bbclass"
sys.path.insert(0, str(HERE))

import bbmini  # noqa: E402

# A kernel recipe as BitBake holds it before our bbappend: the variables and tasks the class
# could touch, plus some it must not.
SYNTHETIC_KERNEL = '''\
SUMMARY = "Linux kernel"
LICENSE = "GPL-2.0-only"
LINUX_VERSION ?= "5.10.234"
PV = "${LINUX_VERSION}+git${SRCPV}"
SRC_URI = "git://git.yoctoproject.org/linux-yocto.git;name=machine;branch=v5.10/standard/base"
SRC_URI:append:qemux86-64 = " file://qemu.cfg"
SRCREV_machine ?= "0ef80b08429534f460a78de68ee5c6a05f722eb0"
DEPENDS += "openssl-native util-linux-native"
KERNEL_FEATURES:append = " features/netfilter/netfilter.scc"
FILESEXTRAPATHS:prepend := "/bsp/files:"
OLDEST_KERNEL = "5.10"
do_configure[depends] += "virtual/kernel-tools:do_populate_sysroot"
python do_fetch() {
    bb.build.exec_func('base_do_fetch', d)
}
do_patch() {
    kgit-s2q --gen
}
do_configure() {
    kernel_do_configure
}
do_compile() {
    kernel_do_compile
}
'''
OVERRIDES = "linux:x86-64:pn-linux-yocto:qemuall:qemux86-64:poky:class-target:libc-glibc:forcevariable"


def repo_files(suffix=""):
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                         check=True, capture_output=True, text=True).stdout.split("\n")
    return sorted(ROOT / f for f in out if f and f.endswith(suffix) and (ROOT / f).is_file())


def layer_files(*suffixes):
    return sorted(p for p in LAYER.rglob("*") if p.is_file() and p.name.endswith(suffixes))


def md5(path):
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


def overrides(feature_on):
    ovs = OVERRIDES.split(":")
    if feature_on:  # conf/layer.conf appends ":mptcp" to DISTROOVERRIDES (after "poky")
        ovs.insert(ovs.index("poky") + 1, "mptcp")
    return ovs


def kernel_with_bbappend(tmp, with_append):
    recipe = Path(tmp) / "linux-yocto_5.10.bb"
    recipe.write_text(SYNTHETIC_KERNEL)
    files = [recipe] + ([LAYER / "recipes-kernel/linux/linux-yocto_%.bbappend"] if with_append else [])
    return bbmini.evaluate(files, classes_dir=LAYER / "classes")


# Shell functions the class defines unbound: no task runs them unless a gated flag names them
# (mptcp_patch_postfuncs), so they change no task signature without the feature.
GATED_FUNCS = {"mptcp_backport_apply"}


class Gating(unittest.TestCase):
    """With DISTRO_FEATURES lacking "mptcp", the layer changes no variable of a kernel recipe."""

    def test_every_class_and_bbappend_statement_is_bound_to_the_mptcp_override(self):
        files = [CLASS] + layer_files(".bbappend")
        for f in files:
            for s in bbmini.parse(f):
                where = "%s:%d" % (f.relative_to(ROOT), s.line)
                if s.kind == "def":
                    continue  # a python function that only mptcp-bound statements call
                if s.kind == "directive":
                    self.assertEqual((s.keyword, s.value.split()), ("inherit", ["mptcp_backport"]),
                                     msg="%s: only `inherit mptcp_backport` may stand unbound" % where)
                    continue
                if s.flag:
                    # A flag cannot carry an override: it must expand to nothing without the
                    # feature, through a function that checks it (KernelClass tests that).
                    self.assertRegex(s.value, r"^\$\{@(mptcp_patch_depends|mptcp_patch_postfuncs)\(d\)\}$",
                                     msg="%s: flag %s[%s] is not gated" % (where, s.name, s.flag))
                    continue
                _, _, ovs = bbmini.split_name(s.name)
                if s.kind == "func" and s.name in GATED_FUNCS:
                    continue  # run only through a gated flag (checked below)
                self.assertIn("mptcp", ovs, msg="%s: %s is not bound to the mptcp override" % (where, s.name))

    def test_layer_conf_adds_the_override_only_with_the_feature(self):
        text = (LAYER / "conf/layer.conf").read_text()
        m = re.search(r'^DISTROOVERRIDES:append = "\$\{@(.*)\}"$', text, re.M)
        self.assertTrue(m, msg="conf/layer.conf: no DISTROOVERRIDES:append expression")

        class Utils:
            @staticmethod
            def contains(var, item, true, false, d):
                return true if item in d[var].split() else false

        class BB:
            utils = Utils

        for features, want in (("systemd ipv6", ""), ("systemd mptcp ipv6", ":mptcp"), ("mptcpx", "")):
            self.assertEqual(eval(m.group(1), {"bb": BB, "d": {"DISTRO_FEATURES": features}}), want)
        # Nothing else of layer.conf reaches recipes: only layer bookkeeping and MPTCP_* names.
        for stmt in bbmini.parse(LAYER / "conf/layer.conf"):
            base = bbmini.split_name(stmt.name)[0]
            self.assertTrue(base.startswith(("BB", "LAYER", "MPTCP_", "DISTROOVERRIDES")),
                            msg="conf/layer.conf sets %s" % stmt.name)

    def test_feature_off_changes_no_kernel_variable(self):
        with tempfile.TemporaryDirectory() as tmp:
            plain = kernel_with_bbappend(tmp, False)
            appended = kernel_with_bbappend(tmp, True)
        self.assertIn("mptcp_backport", appended.inherited)
        off = appended.finalize(overrides(False))
        self.assertEqual({k: v for k, v in off.items() if k not in GATED_FUNCS}, plain.finalize(overrides(False)))
        # ... and nothing but the gated postfunc names them.
        for name in GATED_FUNCS:
            users = [k for k, v in off.items() if name in v and k != name]
            self.assertEqual(users, [], msg="%s is named by %s" % (name, users))
        # Flags differ only by values that expand to nothing without the feature.
        ns = class_namespace(FakeD({"OVERRIDES": ":".join(overrides(False)), "LINUX_VERSION": "5.10.234",
                                    "MPTCP_BACKPORT_LINUX_STABLE_SRCREV": "0" * 40}))
        extra = {k: v for k, v in appended.flags.items() if plain.flags.get(k) != v}
        self.assertEqual({k: expand_inline(v, ns).strip() for k, v in extra.items()},
                         {k: "" for k in extra})
        self.assertEqual(appended.tasks, plain.tasks)

    def test_feature_on_changes_the_kernel(self):
        # The same comparison with the override active must see the class at work, or the
        # test above proves nothing.
        with tempfile.TemporaryDirectory() as tmp:
            plain = kernel_with_bbappend(tmp, False).finalize(overrides(True))
            on = kernel_with_bbappend(tmp, True).finalize(overrides(True))
        self.assertIn("${@mptcp_src_uri(d)}", on["SRC_URI"])
        self.assertTrue(on["SRC_URI"].startswith(plain["SRC_URI"]), msg="our URIs go after the recipe's")
        self.assertIn("mptcp_backport_mode(d)", on["do_configure"])
        self.assertIn("merge_config.sh", on["do_configure"])
        self.assertIn("MPTCP_KCONFIG_CHECK_IGNORE", on["do_configure"])
        self.assertTrue(on["do_configure"].split("\n").count("    kernel_do_configure") == 1,
                        msg="the kernel's own do_configure stays, between our prepend and append")
        self.assertIn("mptcp_setup_error", on["do_fetch"])
        self.assertIn("mptcp_backport_apply", on, msg="the do_patch postfunc exists with the feature")
        self.assertEqual(on["do_compile"], plain["do_compile"])
        self.assertEqual(on["KERNEL_FEATURES"], plain["KERNEL_FEATURES"])


class FakeD:
    def __init__(self, values, inherits=()):
        self.values, self.inherits, self.marked = dict(values), set(inherits), []

    def getVar(self, name):
        return self.values.get(name)


def class_namespace(d):
    """The class's `def` functions, bound to a fake `bb` module and datastore."""
    class Utils:
        @staticmethod
        def contains(var, item, true, false, dd):
            return true if item in (dd.getVar(var) or "").split() else false

    class Data:
        @staticmethod
        def inherits_class(name, dd):
            return name in dd.inherits

    class Parse:
        @staticmethod
        def mark_dependency(dd, path):
            dd.marked.append(path)

    class BB:
        utils, data, parse = Utils, Data, Parse

    ns = {"bb": BB, "os": os, "d": d}
    for stmt in bbmini.parse(CLASS):
        if stmt.kind == "def":
            exec(stmt.value, ns)
    return ns


def expand_inline(text, ns):
    """Replace each ${@expr} in text by its value, as BitBake does when it runs a function."""
    out, i = [], 0
    while True:
        j = text.find("${@", i)
        if j < 0:
            return "".join(out) + text[i:]
        depth, k = 1, j + 3
        while depth:
            depth += {"{": 1, "}": -1}.get(text[k], 0)
            k += 1
        out.append(text[i:j])
        out.append(str(eval(text[j + 3:k - 1], ns)))
        i = k


class KernelClass(unittest.TestCase):
    """The class's decisions, run from its own source with a fake datastore."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.kp = Path(self.tmp.name) / "kernel-patches"
        (self.kp / "config").mkdir(parents=True)
        (self.kp / "fixups").mkdir()
        (self.kp / "config/mptcp.cfg").write_text(
            "CONFIG_MPTCP=y\nCONFIG_MPTCP_IPV6=y\nCONFIG_INET_MPTCP_DIAG=m\n# CONFIG_MPTCP_KUNIT_TEST is not set\n")
        (self.kp / "fixups/0001-timestamps.patch").write_text("Upstream-Status: Inappropriate [backport]\n")
        self.series = Path(self.tmp.name) / "series"
        self.series.mkdir()
        (self.series / "series").write_text("# exported\n0001-5.11-a.patch\n0002-5.11-b.patch -p1\n")

    def tearDown(self):
        self.tmp.cleanup()

    def ns(self, inherits=("kernel", "kernel-yocto"), **values):
        base = {"PN": "linux-yocto", "LINUX_VERSION": "5.10.234", "PV": "5.10.234+git",
                "MPTCP_KERNEL_PATCHES_DIR": str(self.kp), "OLDEST_KERNEL": "5.10",
                "WORKDIR": str(self.kp / "config"), "OVERRIDES": ":".join(overrides(True))}
        base.update(values)
        return class_namespace(FakeD(base, inherits))

    def uris(self, ns):
        return [u[len("file://"):] for u in ns["mptcp_src_uri"](ns["d"]).split()]

    def test_series_mode_applies_the_series_then_the_fixups_it_lacks(self):
        ns = self.ns(MPTCP_BACKPORT_SERIES_DIR=str(self.series))
        self.assertEqual(ns["mptcp_backport_mode"](ns["d"]), "series")
        # Relative names only: no path of this host enters SRC_URI (and so no task hash).
        self.assertEqual(self.uris(ns), ["mptcp.cfg", "0001-5.11-a.patch", "0002-5.11-b.patch",
                                         "0001-timestamps.patch"])
        self.assertEqual(ns["mptcp_filesextrapaths"](ns["d"]).split(":"),
                         [str(self.series), str(self.kp / "fixups"), str(self.kp / "config"), ""])
        self.assertIn(str(self.series / "series"), ns["d"].marked, msg="a new export must trigger a re-parse")
        self.assertEqual(ns["mptcp_setup_error"](ns["d"]), "")
        self.assertEqual(ns["mptcp_patch_depends"](ns["d"]), "", msg="SRC_URI carries the series itself")

    def test_an_exported_series_carries_the_fixups_itself(self):
        (self.series / "export.json").write_text(json.dumps({"patches": [
            {"file": "0001-5.11-a.patch", "kind": "upstream"},
            {"file": "0002-mptcp-backport-timestamps.patch", "kind": "fixup"}]}))
        ns = self.ns(MPTCP_BACKPORT_SERIES_DIR=str(self.series))
        self.assertNotIn("0001-timestamps.patch", self.uris(ns))

    def test_a_newer_kernel_gets_only_the_fragment(self):
        ns = self.ns(LINUX_VERSION="6.6.21", MPTCP_BACKPORT_SERIES_DIR=str(self.series))
        self.assertEqual(ns["mptcp_backport_mode"](ns["d"]), "newer")
        self.assertEqual(self.uris(ns), ["mptcp.cfg"])
        self.assertEqual(ns["mptcp_setup_error"](ns["d"]), "")

    def test_vendor_version_override(self):
        ns = self.ns(LINUX_VERSION=None, PV="5.4-imx", MPTCP_KERNEL_VERSION="5.10.72")
        self.assertEqual(ns["mptcp_kernel_series"](ns["d"]), (5, 10))
        old = self.ns(LINUX_VERSION=None, PV="4.19.1")
        self.assertEqual(old["mptcp_backport_mode"](old["d"]), "older")
        self.assertEqual(old["mptcp_setup_error"](old["d"]), "")

    def test_a_5_10_kernel_without_a_backport_source_fails_clearly(self):
        ns = self.ns()
        self.assertEqual(ns["mptcp_backport_mode"](ns["d"]), "unset")
        self.assertIn("MPTCP_BACKPORT_SERIES_DIR", ns["mptcp_setup_error"](ns["d"]))

    def test_a_missing_series_file_fails_clearly(self):
        ns = self.ns(MPTCP_BACKPORT_SERIES_DIR=str(Path(self.tmp.name) / "nowhere"))
        self.assertIn("has no series file", ns["mptcp_setup_error"](ns["d"]))

    def test_oldest_kernel_newer_than_5_10_fails_clearly(self):
        ns = self.ns(OLDEST_KERNEL="5.15", MPTCP_BACKPORT_SERIES_DIR=str(self.series))
        self.assertIn('OLDEST_KERNEL = "5.10"', ns["mptcp_setup_error"](ns["d"]))

    def test_export_mode_patches_in_do_patch_after_the_series_recipe(self):
        ns = self.ns(MPTCP_BACKPORT_LINUX_STABLE_SRCREV="0" * 40)
        self.assertEqual(ns["mptcp_backport_mode"](ns["d"]), "export")
        self.assertEqual(ns["mptcp_patch_depends"](ns["d"]).split(),
                         ["mptcp-backport-series:do_populate_sysroot", "mptcp-backport-native:do_populate_sysroot"])
        self.assertEqual(ns["mptcp_patch_postfuncs"](ns["d"]), "mptcp_backport_apply")
        self.assertEqual(self.uris(ns), ["mptcp.cfg"])
        self.assertEqual(ns["mptcp_merge_needed"](ns["d"]), "0", msg="patched before kernel-yocto's merge")
        # Without the feature the same settings add nothing to the kernel's tasks.
        off = self.ns(MPTCP_BACKPORT_LINUX_STABLE_SRCREV="0" * 40, OVERRIDES=":".join(overrides(False)))
        self.assertEqual((off["mptcp_patch_depends"](off["d"]), off["mptcp_patch_postfuncs"](off["d"])), ("", ""))

    def test_transplant_mode_fetches_the_tarball_with_its_checksum(self):
        url = "https://cdn.kernel.org/pub/linux/kernel/v5.x/linux-5.15.162.tar.xz"
        ns = self.ns(MPTCP_TRANSPLANT_URI=url, MPTCP_TRANSPLANT_SHA256="a" * 64)
        self.assertEqual(ns["mptcp_backport_mode"](ns["d"]), "transplant")
        self.assertEqual(ns["mptcp_src_uri"](ns["d"]).split()[1],
                         url + ";name=mptcp-transplant;unpack=0;mptcp-transplant.sha256sum=" + "a" * 64)
        self.assertEqual(ns["mptcp_patch_depends"](ns["d"]), "mptcp-backport-native:do_populate_sysroot")
        self.assertEqual(ns["mptcp_patch_postfuncs"](ns["d"]), "mptcp_backport_apply")
        self.assertEqual(ns["mptcp_setup_error"](ns["d"]), "")
        bad = self.ns(MPTCP_TRANSPLANT_URI=url)
        self.assertIn("MPTCP_TRANSPLANT_SHA256", bad["mptcp_setup_error"](bad["d"]))
        git = self.ns(MPTCP_TRANSPLANT_URI="git://example.org/linux.git;protocol=https;nobranch=1")
        self.assertIn("MPTCP_TRANSPLANT_SRCREV", git["mptcp_setup_error"](git["d"]))

    def test_merge_only_for_kernels_without_kernel_yocto(self):
        ns = self.ns(MPTCP_BACKPORT_SERIES_DIR=str(self.series))
        self.assertEqual(ns["mptcp_merge_needed"](ns["d"]), "0")
        ns = self.ns(inherits=("kernel",), MPTCP_BACKPORT_SERIES_DIR=str(self.series))
        self.assertEqual(ns["mptcp_merge_needed"](ns["d"]), "1")

    def run_kconfig_check(self, dotconfig):
        """The class's shell check, expanded as BitBake would, on a .config."""
        data = bbmini.evaluate([CLASS])
        body = data.finalize(["mptcp"])["do_configure"]
        b = Path(self.tmp.name) / "build"
        b.mkdir(exist_ok=True)
        (b / ".config").write_text(dotconfig)
        script = expand_inline(body, self.ns()).replace("${B}", str(b))
        sh = ('bbfatal() { echo "FATAL: $*" >&2; exit 1; }\nbbnote() { echo "NOTE: $*"; }\n'
              "KERNEL_CONFIG_COMMAND=false\ncheck() {\n%s}\ncheck\n" % script)
        return subprocess.run(["sh", "-c", sh], capture_output=True, text=True, timeout=30)

    def test_kconfig_check_passes_when_every_option_arrived(self):
        # "=y" satisfies the fragment's "=m".
        r = self.run_kconfig_check("CONFIG_INET=y\nCONFIG_MPTCP=y\nCONFIG_MPTCP_IPV6=y\nCONFIG_INET_MPTCP_DIAG=y\n")
        self.assertEqual(r.returncode, 0, msg=r.stderr)
        self.assertIn("are in .config", r.stdout)

    def test_kconfig_check_names_the_dropped_options(self):
        r = self.run_kconfig_check("CONFIG_MPTCP=y\n# CONFIG_MPTCP_IPV6 is not set\n"
                                   "CONFIG_MPTCP_KUNIT_TEST=y\n")
        self.assertEqual(r.returncode, 1)
        self.assertIn("CONFIG_MPTCP_IPV6: fragment mptcp.cfg wants y, .config has n (needs CONFIG_IPV6=y", r.stderr)
        self.assertIn("CONFIG_INET_MPTCP_DIAG: fragment mptcp.cfg wants m, .config has n", r.stderr)
        self.assertIn("CONFIG_MPTCP_KUNIT_TEST: fragment mptcp.cfg wants n, .config has y", r.stderr)
        self.assertNotIn("CONFIG_MPTCP:", r.stderr)


class Patches(unittest.TestCase):
    def test_every_patch_in_the_repository_has_upstream_status(self):
        patches = repo_files(".patch") + repo_files(".diff")
        for p in patches:
            head = p.read_text(errors="replace").split("\n---\n")[0]
            self.assertRegex(head, r"(?m)^Upstream-Status: (Pending|Submitted|Backport|Denied|Inactive-Upstream|"
                             r"Inappropriate)\b", msg="%s has no valid Upstream-Status before its diff" % p)


def load_gen():
    import importlib.util
    spec = importlib.util.spec_from_file_location("gen_crates_inc", ROOT / "meta-mptcp/scripts/gen-crates-inc.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    return gen


class Crates(unittest.TestCase):
    def test_crate_lists_match_cargo_lock(self):
        gen = load_gen()
        self.assertEqual(gen.compare(gen.LOCK, gen.INC), [],
                         msg="run meta-mptcp/scripts/gen-crates-inc.py")
        # The comparison sees a changed lockfile.
        with tempfile.TemporaryDirectory() as tmp:
            lock = Path(tmp) / "Cargo.lock"
            text = gen.LOCK.read_text()
            first = re.search(r'checksum = "([0-9a-f]{64})"', text).group(1)
            lock.write_text(text.replace(first, "0" * 64, 1) + '\n[[package]]\nname = "extra-crate"\n'
                            'version = "1.0.0"\nsource = "registry+https://github.com/rust-lang/crates.io-index"\n'
                            'checksum = "%s"\n' % ("1" * 64))
            problems = gen.compare(lock, gen.INC)
        self.assertTrue(any("missing from the .inc: extra-crate 1.0.0" in p for p in problems), problems)
        self.assertTrue(any(p.startswith("checksum of ") for p in problems), problems)

    def test_every_crate_checksum_is_where_both_fetchers_read_it(self):
        """BitBake's FetchData (kirkstone and scarthgap alike) reads the expected sha256 of an
        http(s) entry from SRC_URI["<name>.sha256sum"], name= as given on the URL. Model that
        lookup on every entry: a crate whose sum is not found is not checked. (crate:// is not
        used: kirkstone's crate fetcher checks no sum and breaks on URL parameters.)"""
        gen = load_gen()
        want = gen.lock_crates(gen.LOCK)
        text = gen.INC.read_text()
        entries = gen.ENTRY.findall(text)
        flags = dict(gen.FLAG.findall(text))
        self.assertEqual(len(entries), len(want))
        names = [n for n, _, _ in entries]
        self.assertGreater(len(names), len(set(names)), msg="Cargo.lock has crates in several versions")
        for name, version, params in entries:
            parm = dict(p.split("=", 1) for p in params.split(";") if "=" in p)
            self.assertEqual(flags.get(parm.get("name")), want[(name, version)], msg="%s %s" % (name, version))
            self.assertEqual(parm.get("downloadfilename"), "%s-%s.crate" % (name, version))
        self.assertEqual(len(flags), len(want), msg="one flag per crate, no stray ones")
        self.assertFalse(re.search(r"(?m)^\s+crate://", text), msg="no crate:// entry")
        src = (LAYER / "recipes-connectivity/mptcp-agent/mptcp-source.inc").read_text()
        self.assertIn("python do_unpack:append()", src, msg="someone must unpack the crates for cargo")

    def test_licences_are_listed_in_both_trees(self):
        gen = load_gen()
        _, licences, _ = gen.inc_crates(gen.INC)
        self.assertEqual(set(licences), set(gen.lock_crates(gen.LOCK)))
        inc = gen.INC.read_text()
        self.assertIn('MPTCP_CRATES_LICENSE = "%s"' % gen.yocto_licence(licences), inc)
        self.assertEqual(gen.spdx_to_yocto("Apache-2.0 WITH LLVM-exception OR MIT/Apache-2.0"),
                         "Apache-2.0-with-LLVM-exception | MIT | Apache-2.0")
        mk = gen.BR_MK.read_text()
        self.assertIn("HOST_MPTCP_AGENT_CRATES_LICENSE = " + gen.buildroot_licence(licences), mk)
        agent_mk = (BR / "package/mptcp-agent/mptcp-agent.mk").read_text()
        self.assertIn("MPTCP_AGENT_LICENSE = MIT or Apache-2.0, $(HOST_MPTCP_AGENT_CRATES_LICENSE)", agent_mk)
        self.assertNotIn("cargo-package", agent_mk, msg="cargo-package appends 'licenses probably not listed'")

    def test_buildroot_hashes_are_cargo_lock_checksums(self):
        gen = load_gen()
        want = gen.lock_crates(gen.LOCK)
        have = dict((f, h) for h, f in re.findall(r"(?m)^sha256  ([0-9a-f]{64})  (\S+\.crate)$",
                                                     gen.BR_HASH.read_text()))
        self.assertEqual(have, {"%s-%s.crate" % k: v for k, v in want.items()})
        mk = gen.BR_MK.read_text()
        urls = re.findall(r"https://static\.crates\.io/crates/(\S+)/(\S+)\.crate", mk)
        site = re.search(r"(?m)^HOST_MPTCP_AGENT_CRATES_SITE = https://static\.crates\.io/crates/(\S+)$", mk).group(1)
        source = re.search(r"(?m)^HOST_MPTCP_AGENT_CRATES_SOURCE = (\S+)\.crate$", mk).group(1)
        self.assertEqual(sorted([f for _, f in urls] + [source]), sorted("%s-%s" % k for k in want))
        self.assertTrue(source.startswith(site + "-"))


class LayerConf(unittest.TestCase):
    def setUp(self):
        self.conf = {s.name: s.value for s in bbmini.parse(LAYER / "conf/layer.conf") if s.kind == "assign"}

    def test_collection_and_compatibility(self):
        self.assertIn('BBFILE_COLLECTIONS', self.conf)
        self.assertEqual(self.conf["BBFILE_COLLECTIONS"].split(), ["mptcp"])
        self.assertEqual(self.conf["BBFILE_PATTERN_mptcp"], "^${LAYERDIR}/")
        self.assertTrue(self.conf["BBFILE_PRIORITY_mptcp"].isdigit())
        self.assertEqual(self.conf["LAYERSERIES_COMPAT_mptcp"].split(), ["kirkstone", "scarthgap"])
        self.assertIn("core", self.conf["LAYERDEPENDS_mptcp"].split())
        self.assertTrue(self.conf["LAYERVERSION_mptcp"].isdigit())

    def test_every_recipe_is_found_by_bbfiles(self):
        import fnmatch
        static = [p.replace("${LAYERDIR}/", "") for p in self.conf["BBFILES"].split()]
        dynamic = {}
        for entry in self.conf["BBFILES_DYNAMIC"].split():
            collection, pattern = entry.split(":", 1)
            dynamic.setdefault(collection, []).append(pattern.replace("${LAYERDIR}/", ""))
        for f in layer_files(".bb", ".bbappend"):
            rel = str(f.relative_to(LAYER))
            if rel.startswith("dynamic-layers/"):
                collection = rel.split("/")[1]
                self.assertTrue(any(fnmatch.fnmatch(rel, p) for p in dynamic.get(collection, [])),
                                msg="%s is in no BBFILES_DYNAMIC entry of %s" % (rel, collection))
            else:
                self.assertTrue(any(fnmatch.fnmatch(rel, p) for p in static), msg="%s is not in BBFILES" % rel)

    def test_layer_readme_names_dependencies_and_maintainers(self):
        text = (LAYER / "README.md").read_text()
        for needed in ("git://git.openembedded.org/openembedded-core", "branch", "Maintainer", "kirkstone",
                       "scarthgap", "meta-rust-bin", "meta-networking"):
            self.assertIn(needed, text)


PIN_PATHS = ["Cargo.toml", "Cargo.lock", "agent", "conf", "kernel-patches"]


class Recipes(unittest.TestCase):
    SOURCE = LAYER / "recipes-connectivity/mptcp-agent/mptcp-source.inc"

    def assigned(self, path, name):
        for s in bbmini.parse(path):
            if s.kind == "assign" and s.name == name:
                return s.value
        return None

    def test_licence_checksums_match_the_files(self):
        value = self.assigned(self.SOURCE, "LIC_FILES_CHKSUM")
        entries = re.findall(r"file://\.\./\.\./(\S+);md5=([0-9a-f]{32})", value)
        self.assertEqual(sorted(e[0] for e in entries), ["LICENSE-APACHE", "LICENSE-MIT"])
        for name, digest in entries:
            self.assertEqual(md5(ROOT / name), digest, msg=name)
        self.assertEqual(self.assigned(self.SOURCE, "LICENSE"), "(MIT | Apache-2.0) & ${MPTCP_CRATES_LICENSE}")

    def test_packagegroups_have_their_own_licence_and_no_sources(self):
        for f in layer_files(".bb"):
            if not f.name.startswith("packagegroup-"):
                continue
            text = f.read_text()
            self.assertEqual(self.assigned(f, "LICENSE"), "MIT", msg=str(f))
            self.assertNotIn("mptcp-source.inc", text, msg="%s must not inherit the agent's sources" % f)
            self.assertNotIn("LIC_FILES_CHKSUM", text)
            self.assertNotIn("SRC_URI", text)

    def test_tree_source_is_this_checkout_by_relative_names(self):
        parts = self.assigned(self.SOURCE, "MPTCP_TREE_PARTS").split()
        members = tomllib.loads((ROOT / "Cargo.toml").read_text())["workspace"]["members"]
        for m in members:
            self.assertTrue(any(m == p or m.startswith(p + "/") for p in parts),
                            msg="workspace member %s is not fetched" % m)
        for p in parts:
            self.assertTrue((ROOT / p).exists(), msg=p)
        self.assertEqual(self.assigned(self.SOURCE, "FILESEXTRAPATHS:prepend"), "${MPTCP_REPO_DIR}:")
        self.assertEqual(self.assigned(self.SOURCE, "MPTCP_SOURCE"), "tree")
        for inc, crate in (("recipes-connectivity/mptcp-agent/mptcp-agent.inc", "agent/mptcp-agent"),
                           ("recipes-kernel/mptcp-backport/mptcp-backport.inc", "kernel-patches/mptcp-backport")):
            self.assertEqual(self.assigned(LAYER / inc, "S"), "${WORKDIR}/mptcp/" + crate)
            self.assertIn(crate, members)
        workspace = tomllib.loads((ROOT / "Cargo.toml").read_text())["workspace"]["package"]["version"]
        self.assertEqual(self.assigned(self.SOURCE, "PV"), workspace)
        mk = (BR / "package/mptcp-agent/mptcp-agent.mk").read_text()
        self.assertIn("MPTCP_AGENT_SITE = $(BR2_EXTERNAL_MPTCP_PATH)/..", mk)
        self.assertIn("MPTCP_AGENT_SITE_METHOD = local", mk)
        self.assertIn("MPTCP_AGENT_VERSION = %s" % workspace, mk)

    def test_release_pin_equals_the_tree(self):
        """MPTCP_SOURCE = "release" builds MPTCP_RELEASE_SRCREV: it must hold what the tree holds."""
        pin = self.assigned(self.SOURCE, "MPTCP_RELEASE_SRCREV")
        self.assertRegex(pin, r"^[0-9a-f]{40}$")
        have = subprocess.run(["git", "cat-file", "-t", pin], cwd=ROOT, capture_output=True, text=True)
        self.assertEqual(have.stdout.strip(), "commit",
                         msg="pin %s is not a commit of this clone (%s); a shallow clone cannot check it: "
                             "git fetch --unshallow" % (pin, have.stderr.strip()))
        diff = subprocess.run(["git", "diff", "--stat", pin, "--"] + PIN_PATHS, cwd=ROOT,
                              capture_output=True, text=True, timeout=60)
        self.assertEqual(diff.returncode, 0, msg=diff.stderr)
        self.assertEqual(diff.stdout, "", msg="the release pin lags the tree: commit, then set "
                         "MPTCP_RELEASE_SRCREV to that commit (git log -1 --format=%%H -- %s)\n%s"
                         % (" ".join(PIN_PATHS), diff.stdout))

    def test_installed_files_exist_in_the_repository(self):
        yocto = (LAYER / "recipes-connectivity/mptcp-agent/mptcp-agent.inc").read_text()
        buildroot = (BR / "package/mptcp-agent/mptcp-agent.mk").read_text()
        paths = set(re.findall(r"\$\{S\}/\.\./\.\./(conf/\S+)", yocto))
        paths |= set(re.findall(r"\$\(@D\)/(conf/\S+)", buildroot))
        for needed in ("conf/systemd/mptcp-agent.service", "conf/dbus/io.github.meta_mptcp.Agent1.conf",
                       "conf/agent.toml", "conf/networkmanager/90-mptcp-agent.conf", "conf/init.d/mptcp-agent"):
            self.assertIn(needed, paths)
        for p in sorted(paths):
            self.assertTrue((ROOT / p).is_file(), msg="%s is installed by a recipe but missing" % p)
        self.assertTrue(os.access(ROOT / "conf/init.d/mptcp-agent", os.X_OK))
        # Buildroot wants start scripts non-executable in the tree (check-package), installed 0755.
        self.assertFalse(os.access(BR / "package/mptcp-agent/S95mptcp-agent", os.X_OK))
        self.assertIn("$(INSTALL) -D -m 0755 $(MPTCP_AGENT_PKGDIR)/S95mptcp-agent", buildroot)

    def test_man_pages_and_completions_are_installed_from_the_build_script(self):
        """agent/mptcp-agent/build.rs writes them into MPTCP_AGENT_GEN_DIR; both recipes set it and
        install every file it writes, in the standard directories."""
        yocto = (LAYER / "recipes-connectivity/mptcp-agent/mptcp-agent.inc").read_text()
        buildroot = (BR / "package/mptcp-agent/mptcp-agent.mk").read_text()
        build_rs = (ROOT / "agent/mptcp-agent/build.rs").read_text()
        self.assertIn('export MPTCP_AGENT_GEN_DIR = "${B}/mptcp-agent-gen"', yocto)
        self.assertIn("MPTCP_AGENT_GEN_DIR=$(@D)/mptcp-agent-gen", buildroot)
        self.assertIn('"MPTCP_AGENT_GEN_DIR"', build_rs)
        for rel in ("man/man1/*.1", "bash-completion/completions/mptcp-agent",
                    "zsh/site-functions/_mptcp-agent", "fish/vendor_completions.d/mptcp-agent.fish"):
            self.assertIn("${MPTCP_AGENT_GEN_DIR}/share/" + rel, yocto)
            self.assertIn("$(@D)/mptcp-agent-gen/share/" + rel, buildroot)
            self.assertIn(rel.rsplit("/", 1)[0], build_rs + " man/man1")
        for dest in ("${D}${mandir}/man1/", "${D}${datadir}/bash-completion/completions/mptcp-agent",
                     "${D}${datadir}/zsh/site-functions/_mptcp-agent",
                     "${D}${datadir}/fish/vendor_completions.d/mptcp-agent.fish"):
            self.assertIn(dest, yocto)
        for dest in ("$(TARGET_DIR)/usr/share/man/man1/", "$(TARGET_DIR)/usr/share/bash-completion/completions/mptcp-agent",
                     "$(TARGET_DIR)/usr/share/zsh/site-functions/_mptcp-agent",
                     "$(TARGET_DIR)/usr/share/fish/vendor_completions.d/mptcp-agent.fish"):
            self.assertIn(dest, buildroot)

    def test_sysvinit_images_get_the_agent(self):
        inc = LAYER / "recipes-connectivity/mptcp-agent/mptcp-agent.inc"
        text = inc.read_text()
        self.assertNotIn("REQUIRED_DISTRO_FEATURES", text)
        self.assertRegex(text, r"(?m)^inherit .*\bupdate-rc\.d\b")
        self.assertEqual(self.assigned(inc, "INITSCRIPT_NAME"), "mptcp-agent")
        for f in layer_files(".bb"):
            self.assertNotIn("REQUIRED_DISTRO_FEATURES", f.read_text(), msg=str(f))

    def test_rust_bin_variants_are_preferred(self):
        for f in layer_files(".bb"):
            if "dynamic-layers/rust-bin-layer" in str(f):
                self.assertEqual(self.assigned(f, "DEFAULT_PREFERENCE"), "1", msg=str(f))

    def test_skip_messages(self):
        ns = {}
        for stmt in bbmini.parse(LAYER / "recipes-connectivity/mptcp-agent/mptcp-rust.inc"):
            if stmt.kind == "def":
                exec(stmt.value, ns)
        kirk = FakeD({"RUSTVERSION": "1.59%", "BBFILE_COLLECTIONS": "core yocto mptcp"})
        self.assertIn("add meta-rust-bin", ns["mptcp_oe_rust_skip"](kirk))
        self.assertIn("add meta-rust-bin", ns["mptcp_rust_skip"](kirk))
        rb = FakeD({"RUSTVERSION": "1.59%", "BBFILE_COLLECTIONS": "core yocto rust-bin-layer mptcp"})
        self.assertNotIn("add meta-rust-bin", ns["mptcp_oe_rust_skip"](rb))
        self.assertEqual(ns["mptcp_rust_skip"](rb), "")
        self.assertEqual(ns["mptcp_oe_rust_skip"](FakeD({"RUSTVERSION": "1.75.0"})), "")

    def test_oeqa_case_compiles_and_checks_what_it_should(self):
        src = (LAYER / "lib/oeqa/runtime/cases/mptcp_agent.py").read_text()
        compile(src, "mptcp_agent.py", "exec")
        for needed in ("io.github.meta_mptcp.Agent1", "ip mptcp endpoint show", "mptcp-agent check-config"):
            self.assertIn(needed, src)

    def test_kas_files(self):
        kas = LAYER / "kas"
        for name in ("base.yml", "kirkstone-qemux86-64-5.10.yml", "scarthgap-qemux86-64.yml"):
            text = (kas / name).read_text()
            self.assertRegex(text, r"(?m)^  version: \d+$", msg=name)
            for inc in re.findall(r"(?m)^    - (\S+\.yml)$", text):
                self.assertTrue((kas / inc).is_file(), msg="%s includes missing %s" % (name, inc))
        k = (kas / "kirkstone-qemux86-64-5.10.yml").read_text()
        self.assertIn('PREFERRED_VERSION_linux-yocto = "5.10%"', k)
        self.assertIn("meta-rust-bin", k)
        self.assertIn("branch: kirkstone", k)
        s = (kas / "scarthgap-qemux86-64.yml").read_text()
        self.assertIn('OLDEST_KERNEL = "5.10"', s)
        self.assertIn("branch: scarthgap", s)
        base = (kas / "base.yml").read_text()
        self.assertIn("mptcp_agent", base)
        self.assertIn('DISTRO_FEATURES:append = " mptcp"', base)


class Buildroot(unittest.TestCase):
    def test_tree_files(self):
        for f in ("external.desc", "external.mk", "Config.in", "package/mptcp-agent/Config.in",
                  "package/mptcp-agent/mptcp-agent.mk", "package/mptcp-agent/mptcp-agent.hash",
                  "configs/qemu_x86_64_mptcp_defconfig", "scripts/check-kernel-config"):
            self.assertTrue((BR / f).is_file(), msg=f)
        self.assertRegex((BR / "external.desc").read_text(), r"(?m)^name: MPTCP$")
        self.assertIn('source "$BR2_EXTERNAL_MPTCP_PATH/package/mptcp-agent/Config.in"', (BR / "Config.in").read_text())
        ext = (BR / "external.mk").read_text()
        self.assertIn("LINUX_POST_CONFIGURE_HOOKS += MPTCP_LINUX_CHECK_CONFIG", ext)
        self.assertIn("$(BR2_EXTERNAL_MPTCP_PATH)/package/*/*.mk", ext)
        mk = (BR / "package/mptcp-agent/mptcp-agent.mk").read_text()
        self.assertIn("$(eval $(generic-package))", mk)
        self.assertIn("define MPTCP_AGENT_INSTALL_INIT_SYSTEMD", mk)
        self.assertIn("define MPTCP_AGENT_INSTALL_INIT_SYSV", mk)
        self.assertIn("MPTCP_AGENT_DEPENDENCIES = host-rustc host-mptcp-agent-crates", mk)
        self.assertIn("LINUX_POST_PATCH_HOOKS += MPTCP_LINUX_TRANSPLANT", ext)
        self.assertIn("ifeq ($(BR2_MPTCP_TRANSPLANT),y)", ext, msg="transplant is gated, off by default")
        self.assertNotRegex((BR / "Config.in").read_text(), r"config BR2_MPTCP_TRANSPLANT\n(?:\t.*\n)*\tdefault y")
        self.assertTrue(os.access(BR / "scripts/check-kernel-config", os.X_OK))

    def test_defconfig_builds_a_5_10_kernel_with_the_backport(self):
        cfg = dict(re.findall(r"(?m)^(BR2_\w+)=(.*)$", (BR / "configs/qemu_x86_64_mptcp_defconfig").read_text()))
        self.assertRegex(cfg["BR2_LINUX_KERNEL_CUSTOM_VERSION_VALUE"], r'^"5\.10\.\d+"$')
        self.assertEqual(cfg["BR2_PACKAGE_HOST_LINUX_HEADERS_CUSTOM_5_10"], "y",
                         msg="headers newer than the kernel make glibc refuse to start on it")
        self.assertIn("mptcp-series", cfg["BR2_LINUX_KERNEL_PATCH"])
        self.assertIn("kernel-patches/config/mptcp.cfg", cfg["BR2_LINUX_KERNEL_CONFIG_FRAGMENT_FILES"])
        self.assertEqual(cfg["BR2_PACKAGE_MPTCP_AGENT"], "y")
        self.assertEqual(cfg["BR2_INIT_SYSTEMD"], "y")
        version = cfg["BR2_LINUX_KERNEL_CUSTOM_VERSION_VALUE"].strip('"')
        hashes = (BR / "board/qemu-x86_64/patches/linux/linux.hash").read_text()
        self.assertIn("linux-%s.tar.xz" % version, hashes)

    def test_hash_file_matches_the_licence_files(self):
        text = (BR / "package/mptcp-agent/mptcp-agent.hash").read_text()
        for digest, name in re.findall(r"(?m)^sha256  ([0-9a-f]{64})  (\S+)$", text):
            self.assertEqual(hashlib.sha256((ROOT / name).read_bytes()).hexdigest(), digest, msg=name)
        self.assertIn("LICENSE-MIT", text)
        self.assertIn("LICENSE-APACHE", text)

    def run_check(self, dotconfig):
        with tempfile.TemporaryDirectory() as tmp:
            frag = Path(tmp) / "mptcp.cfg"
            frag.write_text("CONFIG_MPTCP=y\nCONFIG_MPTCP_IPV6=y\n# CONFIG_MPTCP_KUNIT_TEST is not set\n"
                            "CONFIG_INET_MPTCP_DIAG=m\n")
            conf = Path(tmp) / ".config"
            conf.write_text(dotconfig)
            return subprocess.run([str(BR / "scripts/check-kernel-config"), str(conf), str(frag)],
                                  capture_output=True, text=True, timeout=30)

    def test_check_kernel_config_script(self):
        ok = self.run_check("CONFIG_MPTCP=y\nCONFIG_MPTCP_IPV6=y\nCONFIG_INET_MPTCP_DIAG=y\n")
        self.assertEqual(ok.returncode, 0, msg=ok.stderr)
        bad = self.run_check("CONFIG_MPTCP=y\nCONFIG_MPTCP_IPV6=m\nCONFIG_MPTCP_KUNIT_TEST=y\nCONFIG_INET_MPTCP_DIAG=m\n")
        self.assertEqual(bad.returncode, 1)
        self.assertIn("CONFIG_MPTCP_IPV6: mptcp.cfg wants y", bad.stderr)
        self.assertIn("CONFIG_MPTCP_KUNIT_TEST: mptcp.cfg wants n", bad.stderr)
        self.assertIn("2 of 4", bad.stderr)


def agent_binary():
    """target/*/mptcp-agent as `cargo test --workspace` leaves it (testing/test.sh runs that first),
    else built here."""
    for profile in ("debug", "release"):
        exe = ROOT / "target" / profile / "mptcp-agent"
        if exe.is_file():
            return exe
    subprocess.run(["cargo", "build", "--locked", "-p", "mptcp-agent"], cwd=ROOT, check=True, timeout=1800)
    return ROOT / "target/debug/mptcp-agent"


# Runs inside a fresh network namespace (unshare -n): start, status, reload (SIGHUP), stop, with
# the real agent in kernel-only mode (no system bus there), as a SysV or BusyBox init would.
INIT_SCENARIO = r"""
set -u
ip link set lo up
script=$1
"$script" start || { echo "start failed"; cat "$LOGFILE"; exit 1; }
pid=$(cat "$PIDFILE")
# The agent is up when it logs its first line; give it 20 s.
n=0
while ! grep -q . "$LOGFILE" 2>/dev/null && [ $n -lt 200 ]; do sleep 0.1; n=$((n + 1)); done
sleep 1
kill -0 "$pid" || { echo "agent $pid died after start"; cat "$LOGFILE"; exit 1; }
grep -q "mptcp-agent" /proc/"$pid"/cmdline || { echo "pid $pid is not the agent: $(tr '\0' ' ' < /proc/$pid/cmdline)"; exit 1; }
"$script" start | grep -q "already running" || { echo "second start did not see the first"; exit 1; }
"$script" reload || { echo "reload failed"; cat "$LOGFILE"; exit 1; }
sleep 1
kill -0 "$pid" || { echo "agent died on SIGHUP"; cat "$LOGFILE"; exit 1; }
"$script" stop || { echo "stop failed"; cat "$LOGFILE"; exit 1; }
if kill -0 "$pid" 2>/dev/null; then echo "agent $pid still runs after stop"; kill -KILL "$pid"; exit 1; fi
[ ! -e "$PIDFILE" ] || { echo "pidfile left behind"; exit 1; }
[ -d "$STATE_DIRECTORY" ] || { echo "no state directory"; exit 1; }
if grep -q "sd_notify" "$LOGFILE"; then echo "the agent tried sd_notify without systemd:"; cat "$LOGFILE"; exit 1; fi
echo "log:"; cat "$LOGFILE"
"""


@unittest.skipUnless(os.geteuid() == 0, "ROOT-ONLY: init script tests need root (unshare -n); SKIPPED")
class InitScript(unittest.TestCase):
    """The non-systemd start path: conf/init.d/mptcp-agent (Yocto SysV) with dpkg's
    start-stop-daemon, and recipes/.../S95mptcp-agent (Buildroot) under BusyBox."""

    def run_script(self, script, busybox=False):
        exe = agent_binary()
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            config = tmp / "agent.toml"
            config.write_text((ROOT / "conf/agent.toml").read_text())
            defaults = tmp / "defaults"
            defaults.write_text("DAEMON=%s\nBIN=%s\nCONFIG=%s\nPIDFILE=%s\nLOGFILE=%s\nSTATE_DIRECTORY=%s\n" % (
                exe, exe, config, tmp / "agent.pid", tmp / "agent.log", tmp / "state"))
            env = dict(os.environ, MPTCP_AGENT_DEFAULTS=str(defaults), PIDFILE=str(tmp / "agent.pid"),
                       LOGFILE=str(tmp / "agent.log"), STATE_DIRECTORY=str(tmp / "state"))
            env.pop("NOTIFY_SOCKET", None)
            shell = ["sh"]
            if busybox:
                bb = shutil.which("busybox")
                if not bb:
                    self.skipTest("LOUD SKIP: busybox not installed (apt-get install busybox)")
                bindir = tmp / "bin"
                bindir.mkdir()
                for applet in ("sh", "start-stop-daemon", "sleep", "cat", "grep", "kill", "mkdir", "chmod",
                               "rm", "tr", "printf", "ip"):
                    (bindir / applet).symlink_to(bb)
                env["PATH"] = "%s:%s" % (bindir, env["PATH"])
                shell = [str(bindir / "sh")]
                # The script runs its own shell from /bin/sh: make that BusyBox too, via a copy
                # that names it (sh -c exec keeps the recorded pid the agent's either way).
                text = script.read_text().replace("-x /bin/sh", "-x %s" % (bindir / "sh"))
                script = tmp / script.name
                script.write_text(text)
                script.chmod(0o755)
            r = subprocess.run(["unshare", "-n", "--"] + shell + ["-c", INIT_SCENARIO, "scenario", str(script)],
                               env=env, capture_output=True, text=True, timeout=120)
            self.assertEqual(r.returncode, 0, msg="%s failed:\n%s\n%s" % (script.name, r.stdout, r.stderr))
            return r.stdout

    def test_sysv_script(self):
        out = self.run_script(ROOT / "conf/init.d/mptcp-agent")
        self.assertIn("kernel-only", out, msg="the agent ran without a bus as it does without systemd")

    def test_busybox_script(self):
        self.run_script(BR / "package/mptcp-agent/S95mptcp-agent", busybox=True)


class Report(unittest.TextTestResult):
    def addSuccess(self, test):
        super().addSuccess(test)
        self.stream.writeln("ok    %s" % test.id().split(".", 1)[1])

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self.stream.writeln("SKIP  %s: %s" % (test.id().split(".", 1)[1], reason))


if __name__ == "__main__":
    runner = unittest.TextTestRunner(resultclass=Report, verbosity=0, stream=sys.stdout)
    result = unittest.main(module=__name__, testRunner=runner, exit=False).result
    failed = len(result.failures) + len(result.errors)
    print("%d passed, %d failed" % (result.testsRun - failed - len(result.skipped), failed))
    sys.exit(1 if failed else 0)
