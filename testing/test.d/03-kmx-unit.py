#!/usr/bin/env python3
# SPDX-License-Identifier: MIT OR Apache-2.0
"""kmx's unit tests, beside its package (testing/kernel-matrix/kmxlib/tests): result parsers on real
guest output, expected failures per kernel, and the cache key. No kernel build, no guest."""
import subprocess
import sys
from pathlib import Path

KM = Path(__file__).resolve().parents[1] / "kernel-matrix"
sys.exit(subprocess.run([sys.executable, "-m", "unittest", "discover", "-v",
                         "-s", "kmxlib/tests", "-t", "."], cwd=KM).returncode)
