#!/usr/bin/env python3
# SPDX-License-Identifier: MIT OR Apache-2.0
"""kmx's result parsers on excerpts of real guest output (5.10.223, 6.1.192): the names
they give cases must not depend on measured values, or expected lists and tables break. Also
how expected failures are counted and marked per kernel."""
import contextlib
import io
import os
import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from kmxlib import selftests as st  # noqa: E402
from kmxlib.selftests import find_splats, kernel_log_suite, new_results_dir, parse_ktap, parse_selftest  # noqa: E402
from kmxlib.table import apply_expected_by_kernel, render_table  # noqa: E402


@contextlib.contextmanager
def cache_at(path):
    """KMX_CACHE pointed at `path` for the block, restored after."""
    old = os.environ.get("KMX_CACHE")
    os.environ["KMX_CACHE"] = str(path)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("KMX_CACHE", None)
        else:
            os.environ["KMX_CACHE"] = old


def cases(parse, text):
    return [(c["name"], c["status"], c["checks"]) for c in parse(text)]


# simult_flows.sh: measured and allowed ms after the name, glued when the name fills its column.
SIMULT_510 = """balanced bwidth                                     5765 max 5005  [ fail ]
client exit code 0, server 0
"""
SIMULT_61 = """balanced bwidth                                             7459 max 7906       [ OK ]
balanced bwidth - reverse direction                         7412 max 7906       [ OK ]
unbalanced bwidth with opposed, unbalanced delay - reverse direction11255 max 11921      [ OK ]
"""

# mptcp_connect.sh: a message breaks a case's line; its result follows on the next line.
CONNECT = """ns1 MPTCP -> ns2 (10.0.1.2:10006      ) MPTCP\t(duration   553ms) [ OK ]
ns1 MPTCP -> ns2 (10.0.2.1:10008      ) MPTCP\tcopyfd_io_poll: poll timed out (events: POLLIN 1, POLLOUT 0)
(duration 30630ms) [ FAIL ] client exit code 0, server 2

netns ns2-6b138dae-YNkwhE socket stat for 10008:
ns1 MPTCP -> ns3 (dead:beef:2::2:10011) MPTCP\t(duration   913ms) [ OK ]
ns1 MPTCP -> ns3 (10.0.3.2:10012      ) MPTCP\tcopyfd_io_poll: poll timed out (events: POLLIN 1, POLLOUT 4)
copyfd_io_poll: poll timed out (events: POLLIN 1, POLLOUT 0)
(duration 30943ms) [ FAIL ] client exit code 2, server 2
"""

# mptcp_join.sh: a numbered header, continuation lines belong to it.
JOIN = """Created /tmp/tmp.Odo9nLxXnW (size 1 KB) containing data sent by client
001 no JOIN                              syn[ ok ] - synack[ ok ] - ack[ ok ]
012 unused signal address                syn[ ok ] - synack[ ok ] - ack[ ok ]
                                         add[ ok ] - echo  [ ok ]
015 subflow and signal together          syn[ ok ] - synack[ ok ] - ack[ ok ]
                                         add[ ok ] - echo  [ ok ]
                                         rtx[ ok ] - rstrx [fail]   invert
"""

# KUnit in dmesg: TAP "ok 1 - name" (5.10) and KTAP v1 "ok 1 name" (6.1).
KTAP_510 = """[    1.10] # Subtest: mptcp-crypto
[    1.11]     ok 1 - mptcp_crypto_test_basic
[    1.12] ok 1 - mptcp-crypto
"""
KTAP_61 = """[    1.385000]     # Subtest: mptcp-token
[    1.387157]     ok 1 mptcp_token_test_req_basic
[    1.388171]     not ok 2 mptcp_token_test_msk_basic
[    1.389142]     ok 3 mptcp_token_test_accept # SKIP no reason
[    1.390231] ok 2 mptcp-token
"""


# Expected failures per kernel: a listed failing case is marked and accepted, a listed case
# that passes (stale list) and an unlisted failure are not; a kernel without a list counts all.
def result(label, statuses):
    return {"kernel": {"label": label, "release": label + ".0"},
            "suites": [{"suite": "s", "status": "fail",
                        "cases": [{"name": n, "status": st, "checks": 1, "detail": ""} for n, st in statuses]}]}


# A debug kernel's log: lockdep, KASAN and WARN headers among ordinary lines (5.10 formats).
KMSG_DEBUG = """[    0.000000] Linux version 5.10.223 (root@host) #1 SMP
[    0.512000] kasan: KernelAddressSanitizer initialized
[    1.020000]     ok 1 - mptcp_crypto_test_basic
[   12.340000] MPTCP: kernel.mptcp.enabled changed
[   80.100000] WARNING: possible circular locking dependency detected
[   80.100001] 5.10.223 #1 Not tainted
[   90.200000] BUG: KASAN: use-after-free in mptcp_subflow_data_available+0x2c/0x90
[   95.000000] WARNING: CPU: 1 PID: 42 at net/mptcp/protocol.c:1234 __mptcp_push_pending+0x1/0x2
[   96.000000] BUG: sleeping function called from invalid context at net/core/sock.c:3050
"""


class Parsers(unittest.TestCase):
    def check(self, what, got, want):
        self.assertEqual(got, want, what)

    def test_simult_flows(self):
        self.check("simult_flows 5.10", cases(parse_selftest, SIMULT_510), [("balanced bwidth", "fail", 1)])
        self.check("simult_flows 6.1", cases(parse_selftest, SIMULT_61), [
            ("balanced bwidth", "pass", 1),
            ("balanced bwidth - reverse direction", "pass", 1),
            ("unbalanced bwidth with opposed, unbalanced delay - reverse direction", "pass", 1),
        ])

    def test_mptcp_connect_broken_line(self):
        self.check("mptcp_connect broken line", cases(parse_selftest, CONNECT), [
            ("ns1 MPTCP -> ns2 (10.0.1.2:10006 ) MPTCP", "pass", 1),
            ("ns1 MPTCP -> ns2 (10.0.2.1:10008 ) MPTCP", "fail", 1),
            ("ns1 MPTCP -> ns3 (dead:beef:2::2:10011) MPTCP", "pass", 1),
            ("ns1 MPTCP -> ns3 (10.0.3.2:10012 ) MPTCP", "fail", 1),
        ])

    def test_mptcp_join(self):
        self.check("mptcp_join", cases(parse_selftest, JOIN), [
            ("001 no JOIN", "pass", 3),
            ("012 unused signal address", "pass", 5),
            ("015 subflow and signal together", "fail", 7),
        ])

    def test_kunit(self):
        self.check("KUnit 5.10", cases(parse_ktap, KTAP_510), [("mptcp-crypto.mptcp_crypto_test_basic", "pass", 1)])
        self.check("KUnit 6.1", [c[:2] for c in cases(parse_ktap, KTAP_61)], [
            ("mptcp-token.mptcp_token_test_req_basic", "pass"),
            ("mptcp-token.mptcp_token_test_msk_basic", "fail"),
            ("mptcp-token.mptcp_token_test_accept", "skip"),
        ])

    def test_expected_failures_per_kernel(self):
        listed = {("s", "a"): "lacks a", ("s", "b"): "lacks b"}
        runs = [result("5.10", [("a", "fail"), ("b", "pass"), ("c", "fail"), ("d", "pass")]),
                result("6.1", [("a", "fail"), ("b", "pass")])]
        with contextlib.redirect_stdout(io.StringIO()):
            bad = apply_expected_by_kernel(runs, {"5.10": listed})
        self.check("unexpected outcomes (stale b, unlisted c on 5.10; a on 6.1)", bad, 3)
        table = render_table(runs)
        self.check("expected failure marked", "| s | a | **FAIL** (expected) | **FAIL** |" in table, True)
        self.check("unlisted failure not marked", "| s | c | **FAIL** | – |" in table, True)

    def test_kernel_log_reports(self):
        self.check("reports found, timestamps removed", find_splats(KMSG_DEBUG), [
            "WARNING: possible circular locking dependency detected",
            "BUG: KASAN: use-after-free in mptcp_subflow_data_available+0x2c/0x90",
            "WARNING: CPU: 1 PID: 42 at net/mptcp/protocol.c:1234 __mptcp_push_pending+0x1/0x2",
            "BUG: sleeping function called from invalid context at net/core/sock.c:3050",
        ])
        clean = "\n".join(KMSG_DEBUG.splitlines()[:4])
        self.check("ordinary lines are not reports", find_splats(clean), [])
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp)
            (out / "boot.kmsg").write_text(clean)
            (out / "mptcp_join.sh.kmsg").write_text(KMSG_DEBUG)
            suite = kernel_log_suite(out, ["boot", "mptcp_join.sh", "end"])
        self.check("one case per piece written, the script charged", [(c["name"], c["status"]) for c in suite["cases"]], [
            ("boot: no WARN/lockdep/KASAN/BUG report", "pass"),
            ("mptcp_join.sh: no WARN/lockdep/KASAN/BUG report", "fail"),
        ])
        self.check("suite fails", suite["status"], "fail")

    def test_kernel_log_report_survives_a_clean_retry(self):
        # The script failed and left a report; its retry passes with a clean log. The retry
        # replaces the script's verdict, but the report must still fail the run.
        def suite(name, status, case):
            return {"suite": name, "rc": 0 if status == "pass" else 1, "seconds": 0, "status": status,
                    "cases": [{"name": case, "status": status, "checks": 1, "detail": ""}]}
        runs = iter([
            {"suites": [suite("selftest:diag.sh", "fail", "chk"), suite("kernel:log", "fail", "diag.sh: report")]},
            {"suites": [suite("selftest:diag.sh", "pass", "chk"), suite("kernel:log", "pass", "diag.sh: report")]},
        ])
        real = st.selftests_once
        st.selftests_once = lambda *a, **k: next(runs)
        try:
            with contextlib.redirect_stderr(io.StringIO()):
                result = st.selftests(None, "diag", 60, retries=1)
        finally:
            st.selftests_once = real
        by_name = {s["suite"]: s for s in result["suites"]}
        self.check("script passed on retry", by_name["selftest:diag.sh"]["status"], "pass")
        self.check("report kept", [(c["name"], c["status"]) for c in by_name["kernel:log"]["cases"]],
                   [("diag.sh: report", "fail"), ("diag.sh: report (retry 1)", "pass")])
        self.check("kernel log still fails", by_name["kernel:log"]["status"], "fail")

    def test_results_directories_are_distinct(self):
        # Two runs started by one process within the same second get two results directories.
        with tempfile.TemporaryDirectory() as tmp, cache_at(tmp):
            dirs = {new_results_dir("host", "libtest") for _ in range(3)}
        self.check("distinct results directories", len(dirs), 3)


if __name__ == "__main__":
    unittest.main()
