#!/bin/bash
# SPDX-License-Identifier: MIT OR Apache-2.0
# testing/setup.sh finds an existing Debian bullseye source in any file apt reads (one-line
# sources.list / *.list, deb822 *.sources), ignores disabled ones, adds its own only when there is
# none, and removes its own when the machine has another (no "configured multiple times").
# Works on throw-away copies of /etc/apt (SETUP_APT_ETC); no root, no network. Cost: < 1 s.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
pass=0 fail=0
ok() { echo "ok    $*"; pass=$((pass + 1)); }
bad() { echo "FAIL  $*"; fail=$((fail + 1)); }

n=0
# case NAME EXPECT(found|none) FILE CONTENT: a fresh apt dir with that one file
case_() {
  local name=$1 want=$2 file=$3 content=$4 got
  n=$((n + 1)); local etc=$TMP/$n
  mkdir -p "$etc/sources.list.d" "$etc/preferences.d"
  printf '%s\n' "$content" > "$etc/$file"
  got=$(SETUP_APT_ETC=$etc bash -c '. "$1"; bullseye_sources' _ "$ROOT/testing/setup.sh" 2>&1)
  if { [ "$want" = found ] && [ "$got" = "$etc/$file" ]; } || { [ "$want" = none ] && [ -z "$got" ]; }; then
    ok "$name: $want"
  else
    bad "$name: want $want, bullseye_sources said: '${got}'"
  fi
}

case_ "sources.list one-line" found sources.list "deb http://deb.debian.org/debian bullseye main"
case_ "*.list with options and more components" found sources.list.d/bullseye.list \
  "deb [arch=amd64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://mirror.example/debian bullseye main contrib"
case_ "commented line" none sources.list.d/old.list "# deb http://deb.debian.org/debian bullseye main"
case_ "bullseye-security only" none sources.list "deb http://security.debian.org/debian-security bullseye-security main"
case_ "contrib only" none sources.list.d/c.list "deb http://deb.debian.org/debian bullseye contrib"
case_ "deb-src only" none sources.list.d/s.list "deb-src http://deb.debian.org/debian bullseye main"
case_ "deb822 among suites" found sources.list.d/debian.sources "Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm bullseye
Components: main contrib
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg"
case_ "deb822 second stanza" found sources.list.d/two.sources "Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main

types: deb deb-src
uris: http://deb.debian.org/debian
suites: bullseye
components: main"
case_ "deb822 Enabled: no" none sources.list.d/off.sources "Types: deb
URIs: http://deb.debian.org/debian
Suites: bullseye
Components: main
Enabled: no"
case_ "deb822 commented-out suite line" none sources.list.d/com.sources "Types: deb
URIs: http://deb.debian.org/debian
# Suites: bullseye
Suites: bookworm
Components: main"
case_ "a file apt does not read" none sources.list.d/bullseye.list.disabled "deb http://deb.debian.org/debian bullseye main"

# ensure_bullseye: adds its own source (with the machine's mirror) and the pin when none exists ...
etc=$TMP/add; mkdir -p "$etc/sources.list.d" "$etc/preferences.d"
printf 'Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm\nComponents: main\n' > "$etc/sources.list.d/debian.sources"
out=$(SETUP_APT_ETC=$etc bash -c '. "$1"; ensure_bullseye' _ "$ROOT/testing/setup.sh" 2>&1)
if grep -q '^URIs: http://mirror.example/debian$' "$etc/sources.list.d/meta-mptcp-bullseye.sources" 2>/dev/null &&
   grep -q '^Pin-Priority: 100$' "$etc/preferences.d/meta-mptcp-bullseye" 2>/dev/null; then
  ok "no bullseye source: setup adds its own with the machine's mirror, pinned at 100"
else
  bad "no bullseye source: setup's source or pin missing; it said: $out"
fi
# ... and once the machine has its own (any name), setup's copy goes: exactly one source left.
printf 'deb http://mirror.example/debian bullseye main\n' > "$etc/sources.list.d/bullseye.list"
out=$(SETUP_APT_ETC=$etc bash -c '. "$1"; drop_duplicate_bullseye; bullseye_sources' _ "$ROOT/testing/setup.sh" 2>/dev/null)
if [ "$out" = "$etc/sources.list.d/bullseye.list" ]; then
  ok "machine's own bullseye.list next to setup's source: setup's removed, one source left"
else
  bad "duplicate bullseye sources left: '$out'"
fi
out=$(SETUP_APT_ETC=$etc bash -c '. "$1"; ensure_bullseye; bullseye_sources' _ "$ROOT/testing/setup.sh" 2>/dev/null)
if [ "$out" = "$etc/sources.list.d/bullseye.list" ]; then
  ok "machine has bullseye: setup adds nothing"
else
  bad "setup added a source although the machine has one: '$out'"
fi

# The same with apt itself: both files -> apt warns (on stderr); after setup's clean-up -> silent.
if command -v apt-cache >/dev/null; then
  etc=$TMP/apt; mkdir -p "$etc/sources.list.d" "$etc/preferences.d" "$TMP/lists/partial"
  apt_quiet() { # apt-cache on this copy of the sources only: prints apt's stderr
    apt-cache -o Dir::Etc::sourcelist=/dev/null -o Dir::Etc::sourceparts="$etc/sources.list.d" \
      -o Dir::State::lists="$TMP/lists" policy 2>&1 >/dev/null
  }
  printf 'deb http://deb.debian.org/debian bullseye main\n' > "$etc/sources.list.d/bullseye.list"
  SETUP_APT_ETC=$etc bash -c '. "$1"; rm -f "$OUR_LIST"; printf "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bullseye\nComponents: main\n" > "$OUR_LIST"' _ "$ROOT/testing/setup.sh"
  before=$(apt_quiet)
  SETUP_APT_ETC=$etc bash -c '. "$1"; drop_duplicate_bullseye' _ "$ROOT/testing/setup.sh" 2>/dev/null
  after=$(apt_quiet)
  if [ -n "$before" ] && [ -z "$after" ]; then
    ok "apt: duplicate bullseye sources warned before setup's clean-up, silent after"
  else
    bad "apt before the clean-up: '${before:0:200}'; after: '${after:0:300}'"
  fi
fi

echo "$pass passed, $fail failed"
[ $fail = 0 ]
