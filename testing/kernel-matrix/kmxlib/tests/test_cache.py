# SPDX-License-Identifier: MIT OR Apache-2.0
"""The cache key of an image: byte-identical to what kmx computed before it became a package
(a changed key would rebuild every cached kernel), and sensitive to each of its inputs."""
import os
import sys
import tempfile
import unittest
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from kmxlib import cache  # noqa: E402

TOOLS = {"gcc": "gcc (Debian 12.2.0-14) 12.2.0", "ld": "GNU ld (GNU Binutils for Debian) 2.40"}
T0 = 1_700_000_000_000_000_000


class Key(unittest.TestCase):
    def setUp(self):
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        d = self.dir = Path(tmp.name)
        env = mock.patch.dict(os.environ, {"KMX_CACHE": str(d / "cache")})
        env.start()
        self.addCleanup(env.stop)
        # A plain tree (no git): identified by its file listing, sizes and mtimes.
        self.tree = d / "linux-5.10.999"
        (self.tree / "net/mptcp").mkdir(parents=True)
        files = {"Makefile": "VERSION = 5\nPATCHLEVEL = 10\nSUBLEVEL = 999\n",
                 "net/mptcp/protocol.c": "/* synthetic */\nint x;\n",
                 "Kconfig": "config MPTCP\n\tbool\n"}
        for i, (n, t) in enumerate(sorted(files.items())):
            (self.tree / n).write_text(t)
            os.utime(self.tree / n, ns=(T0 + i, T0 + i))
        self.frag = d / "a.cfg"
        self.frag.write_text("CONFIG_MPTCP=y\n# CONFIG_X is not set\n")
        fallback, harness = d / "fallback.cfg", d / "harness.cfg"
        fallback.write_text("CONFIG_MPTCP_IPV6=y\n")
        harness.write_text("CONFIG_VIRTIO=y\n")
        for patch in (mock.patch.object(cache, "PROJECT_FRAGMENTS", []),
                      mock.patch.object(cache, "FALLBACK_FRAGMENT", fallback),
                      mock.patch.object(cache, "HARNESS_FRAGMENT", harness),
                      mock.patch.object(cache, "tool_version", lambda cmd: TOOLS[cmd[0]])):
            patch.start()
            self.addCleanup(patch.stop)

    def test_tree_key_is_unchanged(self):
        s = cache.Spec(str(self.tree), [str(self.frag)])
        # Computed by the single-file kmx (before kmxlib) on these same inputs.
        self.assertEqual(s.key, "4500aa37f45a8b48")
        self.assertEqual(s.label, "5.10.999")
        self.assertEqual(s.inputs()["source"],
                         "tree:b3b4124e5a95dfe09383445d38470f05aa17f854ea7b14cdfd98ca54804b8963")

    def test_tarball_key_is_unchanged(self):
        tarball = self.dir / "linux-source-5.10.tar.xz"
        tarball.write_bytes(bytes(range(256)) * 64)
        s = cache.Spec(str(tarball), [str(self.frag)])
        self.assertEqual(s.key, "1f9521842c1ed871")
        self.assertEqual(s.label, "5.10")

    def test_every_input_changes_the_key(self):
        before = cache.Spec(str(self.tree), [str(self.frag)]).key
        self.frag.write_text("CONFIG_MPTCP=y\n")
        after_fragment = cache.Spec(str(self.tree), [str(self.frag)]).key
        os.utime(self.tree / "Makefile", ns=(T0 + 99, T0 + 99))
        after_tree = cache.Spec(str(self.tree), [str(self.frag)]).key
        with mock.patch.object(cache, "tool_version", lambda cmd: TOOLS[cmd[0]] + "-other"):
            after_tools = cache.Spec(str(self.tree), [str(self.frag)]).key
        self.assertEqual(len({before, after_fragment, after_tree, after_tools}), 4)

    def test_parse_config_keeps_order_and_not_set(self):
        got = cache.parse_config("CONFIG_B=y\n# CONFIG_A is not set\nnoise\nCONFIG_C=\"x\"\n")
        self.assertEqual(list(got.items()), [("CONFIG_B", "y"), ("CONFIG_A", "n"), ("CONFIG_C", '"x"')])


if __name__ == "__main__":
    unittest.main()


class ResultsDir(unittest.TestCase):
    def test_a_label_with_spaces_or_slashes_gives_one_plain_directory(self):
        from kmxlib.selftests import new_results_dir
        with tempfile.TemporaryDirectory() as tmp, mock.patch.dict(os.environ, {"KMX_CACHE": tmp}):
            d = new_results_dir("5.10.223+5.15.215 debug/kasan", "selftests")
            self.assertEqual(d.parent, Path(tmp) / "results")
            self.assertNotIn(" ", d.name)
            self.assertIn("-5.10.223+5.15.215-debug-kasan-selftests-", d.name)
            self.assertIn("-kernel-libtest-", new_results_dir(" / ", "libtest").name)


class GuestCommand(unittest.TestCase):
    def test_kasan_kernels_boot_with_every_report_kept(self):
        from kmxlib.boot import guest_cmd
        with tempfile.TemporaryDirectory() as tmp:
            image = Path(tmp) / "bzImage"
            image.write_bytes(b"")
            (Path(tmp) / "config").write_text("CONFIG_MPTCP=y\n")
            self.assertNotIn("kasan_multi_shot", guest_cmd(image, "true"))
            (Path(tmp) / "config").write_text("CONFIG_MPTCP=y\nCONFIG_KASAN=y\n")
            cmd = guest_cmd(image, "true")
            self.assertEqual(cmd[cmd.index("--append") + 1], "kasan_multi_shot")
            self.assertLess(cmd.index("--append"), cmd.index("--exec"))
