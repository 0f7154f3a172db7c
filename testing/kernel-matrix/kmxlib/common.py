# SPDX-License-Identifier: MIT OR Apache-2.0
"""Paths, fixed inputs and messages shared by every part of kmx."""
import sys
from pathlib import Path


HERE = Path(__file__).resolve().parent.parent  # testing/kernel-matrix/


REPO = HERE.parents[1]


# Bump when the configure/build steps change in a way that changes the image.
RECIPE_VERSION = "1"


DEFAULT_SOURCE = "/usr/src/linux-source-5.10.tar.xz"


KNOWN_SOURCES = {
    "5.10": "/usr/src/linux-source-5.10.tar.xz",
    "6.1": "/usr/src/linux-source-6.1.tar.xz",
}


PROJECT_FRAGMENTS = [
    REPO / "kernel-patches/config/mptcp.cfg",
    REPO / "kernel-patches/config/mptcp-selftests.cfg",
]


FALLBACK_FRAGMENT = HERE / "fallback-mptcp.cfg"


HARNESS_FRAGMENT = HERE / "harness.cfg"


GUEST_RUNNER = HERE / "guest-selftests.sh"


SCENARIO_RUNNER = HERE / "scenarios.py"


SCENARIO_SUITE = "weak-net"


SELFTEST_REL = "tools/testing/selftests/net/mptcp"


# Exit code for "the guest did not answer in time" (same as coreutils timeout).
EXIT_TIMEOUT = 124


def log(msg):
    print(f"kmx: {msg}", file=sys.stderr, flush=True)


def die(msg, code=2):
    log(msg)
    sys.exit(code)

# The script in a run's results directory that holds the guest's command, which could be too
# long for the kernel command line (kept when a failed KVM attempt's results are cleared).
GUEST_SCRIPT = "run.sh"
