#!/bin/bash
# SPDX-License-Identifier: MIT OR Apache-2.0
# The core series (kernel-patches/core) against Debian's 5.10.223: `series` and the directory
# list the same patches; every patch carries Upstream-Status and the GPL-2.0 SPDX line; the
# whole series applies in order with `patch -p1 -F0` (no fuzz) to the files it touches.
# The kernel built from 5.10.223 + the series is checked by 50-kernel-5.10.sh.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DIR=$ROOT/kernel-patches/core
SOURCE=${KMX_SOURCE_TARBALL:-/usr/src/linux-source-5.10.tar.xz}
pass=0 fail=0
ok() { echo "ok    $*"; pass=$((pass + 1)); }
bad() { echo "FAIL  $*"; fail=$((fail + 1)); }

mapfile -t listed < <(grep -v '^[[:space:]]*\(#\|$\)' "$DIR/series")
mapfile -t present < <(cd "$DIR" && ls -1 -- *.patch)
if [ "$(printf '%s\n' "${listed[@]}" | sort)" = "$(printf '%s\n' "${present[@]}" | sort)" ]; then
	ok "series lists the ${#present[@]} patches of kernel-patches/core"
else
	bad "series and kernel-patches/core/*.patch differ: $(diff <(printf '%s\n' "${listed[@]}" | sort) <(printf '%s\n' "${present[@]}" | sort) | grep '^[<>]' | tr '\n' ' ')"
fi
for p in "${listed[@]}"; do
	head=$(sed '/^---$/q' "$DIR/$p")
	grep -q '^Upstream-Status: ' <<<"$head" || bad "$p: no Upstream-Status line"
	grep -q '^SPDX-License-Identifier: GPL-2.0-only$' <<<"$head" || bad "$p: no 'SPDX-License-Identifier: GPL-2.0-only' line"
done

if [ ! -f "$SOURCE" ]; then
	bad "$SOURCE missing (testing/setup.sh test installs linux-source-5.10)"
else
	work=$(mktemp -d)
	trap 'rm -rf "$work"' EXIT
	# Only the files the series touches (new files need none).
	mapfile -t files < <(for p in "${listed[@]}"; do sed -n 's|^--- a/||p' "$DIR/$p"; done | sort -u)
	top=$(tar -tJf "$SOURCE" | head -n1 | cut -d/ -f1)
	if ! tar -xJf "$SOURCE" -C "$work" "${files[@]/#/$top/}" 2>"$work/tar.err"; then
		bad "extracting the touched files from $SOURCE: $(tail -3 "$work/tar.err")"
	else
		applied=0
		for p in "${listed[@]}"; do
			if out=$(patch -d "$work/$top" -p1 -N -F0 --no-backup-if-mismatch -s <"$DIR/$p" 2>&1); then
				applied=$((applied + 1))
			else
				bad "$p does not apply to $(basename "$SOURCE") after the patches before it: $out"
				break
			fi
		done
		[ "$applied" = "${#listed[@]}" ] && ok "all $applied patches apply in order to $(basename "$SOURCE") with no fuzz"
	fi
fi
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
