#!/usr/bin/env python3
# SPDX-License-Identifier: MIT OR Apache-2.0
"""Runs BitBake's own fetcher on every crate entry of the mptcp-agent recipe, offline, from
a directory of .crate files (a PREMIRROR), and reports which checksums were checked.

Needs a Yocto build environment (source oe-init-build-env; meta-mptcp in bblayers.conf), so CI
cannot run it; docs/yocto.md records its results on kirkstone and scarthgap. Use a mirror with
one crate replaced by another version of the same crate to see the forgery refused:

    testing/layers/crate-fetch-check.py --mirror DIR [--expect-fail NAME-VERSION]

Exit 0 when every crate has an expected sha256 and the result is as expected."""

import argparse
import glob
import os
import shutil
import sys
import tempfile


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mirror", required=True, help="directory of NAME-VERSION.crate files")
    parser.add_argument("--recipe", default="mptcp-agent")
    parser.add_argument("--expect-fail", default="", help="NAME-VERSION whose download must be refused")
    args = parser.parse_args()

    import bb.tinfoil
    import bb.fetch2

    with bb.tinfoil.Tinfoil() as tinfoil:
        tinfoil.prepare(config_only=True)
        path = None
        for layer in tinfoil.config_data.getVar("BBLAYERS").split():
            for root, _, files in os.walk(layer):
                for f in files:
                    if f.startswith(args.recipe + "_") and f.endswith(".bb") and "dynamic-layers" not in root:
                        path = os.path.join(root, f)
        if not path:
            print("no %s recipe in BBLAYERS" % args.recipe, file=sys.stderr)
            return 2
        d = tinfoil.parse_recipe_file(path, appends=False)
        with tempfile.TemporaryDirectory() as tmp:
            # A copy: the fetcher renames a mirror file whose checksum is wrong.
            mirror = os.path.join(tmp, "mirror")
            shutil.copytree(args.mirror, mirror)
            dl = os.path.join(tmp, "downloads")
            os.mkdir(dl)
            d.setVar("DL_DIR", dl)
            # The crate fetcher rewrites its URL to https://crates.io/api/v1/crates/NAME/VERSION/download.
            d.setVar("PREMIRRORS", "https://crates.io/api/v1/crates/.* file://%s/" % mirror)
            d.setVar("MIRRORS", "")
            d.setVar("BB_NO_NETWORK", "1")
            d.setVar("BB_FETCH_PREMIRRORONLY", "1")
            urls = [u for u in d.getVar("SRC_URI").split() if ".crate;" in u or u.startswith("crate://")]
            checked = refused = 0
            unchecked, failures = [], []
            for url in urls:
                fetch = bb.fetch2.Fetch([url], d)
                ud = fetch.ud[url]
                key = os.path.basename(ud.localpath)[:-len(".crate")]
                if ud.sha256_expected:
                    checked += 1
                else:
                    unchecked.append(key)
                try:
                    fetch.download()
                except bb.fetch2.BBFetchException as e:
                    # A mirror file with the wrong sum is renamed *_bad-checksum_<sum>; the
                    # fetcher then tries upstream, which BB_NO_NETWORK forbids.
                    bad = glob.glob(os.path.join(mirror, key + ".crate_bad-checksum_*"))
                    if key == args.expect_fail and bad:
                        refused += 1
                        print("refused as expected: %s (checksum mismatch, kept as %s)"
                              % (key, os.path.basename(bad[0])))
                    else:
                        failures.append("%s: %s" % (key, e))
            print("%s (%s): %d crate entries, %d with an expected sha256, %d unchecked"
                  % (os.path.basename(path), d.getVar("DISTRO_CODENAME") or d.getVar("LAYERSERIES_CORENAMES"),
                     len(urls), checked, len(unchecked)))
            for u in unchecked[:10]:
                print("  unchecked: %s" % u)
            for f in failures:
                print("  FAILED: %s" % f)
            ok = not unchecked and not failures and (refused == 1) == bool(args.expect_fail)
            print("PASS" if ok else "FAIL")
            return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
