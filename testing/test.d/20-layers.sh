#!/bin/bash
# SPDX-License-Identifier: MIT OR Apache-2.0
# Checks of the Yocto layer (meta-mptcp/) and the Buildroot tree (recipes/) that need no
# Yocto or Buildroot checkout (CI has none):
#   - oelint-adv --release kirkstone and --release scarthgap over every recipe, bbappend and
#     class: 0 errors and 0 warnings. Only the offline homepage ping is suppressed.
#     testing/layers/oelint-constants.json tells oelint that "mptcp" is a distro override (the
#     one conf/layer.conf adds with DISTRO_FEATURES "mptcp"), as a distro .conf would;
#   - testing/layers/test_layers.py: gating of the kernel class (feature off: no kernel variable
#     changes), the class's decisions in every mode and its .config check, Upstream-Status on
#     every patch, the Yocto and Buildroot crate lists regenerated from Cargo.lock and compared,
#     licences, the release pin against the tree, layer.conf, recipes, kas, the Buildroot tree,
#     and (root only, skipped loudly otherwise) the SysV and BusyBox init scripts starting,
#     reloading and stopping the real agent in a fresh network namespace.
# About 20 s on 2 cores (plus a cargo build of the agent if testing/test.sh has not built it).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"

OELINT=$ROOT/.venv/bin/oelint-adv
passed=0
failed=0

mapfile -t files < <(find meta-mptcp \( -name '*.bb' -o -name '*.bbappend' -o -name '*.bbclass' \) | sort)

for release in kirkstone scarthgap; do
  if [ ! -x "$OELINT" ]; then
    echo "FAIL oelint-adv --release $release: $OELINT missing (run testing/setup.sh)"
    failed=$((failed + 1))
    continue
  fi
  out=$("$OELINT" --quiet --release "$release" --suppress oelint.vars.homepageping \
        --constantmods=+testing/layers/oelint-constants.json -- "${files[@]}" 2>&1)
  rc=$?  # non-zero also for info-level findings, which are allowed
  findings=$(grep -E ':(error|warning):' <<<"$out" || true)
  if [ -z "$findings" ] && ! grep -qE 'Traceback|OOPS|Bad command line' <<<"$out"; then
    echo "ok    oelint-adv --release $release (${#files[@]} files, 0 errors, 0 warnings)"
    passed=$((passed + 1))
  else
    echo "FAIL  oelint-adv --release $release (exit $rc):"
    echo "${findings:-$out}" | sed 's/^/      /'
    failed=$((failed + 1))
  fi
done

# The venv python: bbmini reads the metadata with oelint-parser (installed with oelint-adv).
out=$("$ROOT/.venv/bin/python" testing/layers/test_layers.py 2>&1)
rc=$?
echo "$out" | sed '$d'
last=$(tail -n1 <<<"$out")
if [[ $last =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
  passed=$((passed + BASH_REMATCH[1]))
  failed=$((failed + BASH_REMATCH[2]))
  [ $rc -eq 0 ] || [ "${BASH_REMATCH[2]}" -ne 0 ] || failed=$((failed + 1))
else
  echo "FAIL  testing/layers/test_layers.py did not finish (exit $rc)"
  failed=$((failed + 1))
fi

echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
