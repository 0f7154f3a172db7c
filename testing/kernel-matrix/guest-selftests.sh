#!/bin/bash
# SPDX-License-Identifier: MIT OR Apache-2.0
# Runs inside the kmx guest (or on the host with `kmx selftests --host`): each MPTCP selftest
# script under a time limit, its output in OUT/<test>.log and "exit seconds" in OUT/<test>.rc,
# plus OUT/uname and OUT/dmesg.log (KUnit results). In the guest the kernel log is also cut per
# script (OUT/<test>.kmsg, OUT/boot.kmsg before the first, OUT/end.kmsg after the last) so that a
# lockdep/KASAN/WARN report is charged to the script that caused it; the host's log is left alone.
# kmx parses these files on the host.
# usage: guest-selftests.sh SELFTEST_DIR OUT PER_TEST_TIMEOUT EXPECT_ALL_FEATURES guest|host TEST...
set -u
dir=$1 out=$2 limit=$3 expect_all=$4 where=$5
shift 5

uname -r > "$out/uname"
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# A feature the tree's tests expect and the kernel lacks fails instead of skipping.
[ "$expect_all" = 1 ] && export SELFTESTS_MPTCP_LIB_EXPECT_ALL_FEATURES=1
cd "$dir" || exit 1
[ "$where" = guest ] && dmesg -c > "$out/boot.kmsg" 2>&1
for t in "$@"; do
	echo "### $t (limit ${limit}s)"
	start=$(date +%s)
	# Own session so a timed-out test's children (netns servers) die with it.
	timeout --kill-after=10 "$limit" setsid bash "./$t" > "$out/$t.log" 2>&1 < /dev/null
	rc=$?
	end=$(date +%s)
	echo "$rc $((end - start))" > "$out/$t.rc"
	echo "### $t exit $rc in $((end - start)) s"
	[ "$where" = guest ] && dmesg -c > "$out/$t.kmsg" 2>&1
	# Leftover namespaces from a killed test would disturb the next one. Only in the guest:
	# on the host other namespaces are not ours to delete.
	if [ "$where" = guest ]; then
		for ns in $(ip netns list 2>/dev/null | awk '{print $1}'); do ip netns del "$ns" 2>/dev/null; done
	fi
done
if [ "$where" = guest ]; then
	dmesg -c > "$out/end.kmsg" 2>&1
	for t in boot "$@" end; do cat "$out/$t.kmsg"; done > "$out/dmesg.log"
else
	dmesg > "$out/dmesg.log" 2>&1
fi
exit 0
