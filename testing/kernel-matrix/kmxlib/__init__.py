# SPDX-License-Identifier: MIT OR Apache-2.0
"""kmx as a package; `testing/kernel-matrix/kmx` is its entry script.

  common     paths, fixed inputs, log/die
  cache      cache location, source identity, the cache key of one image (Spec)
  build      configure and build a tree into the cache
  boot       boot an image under QEMU (virtme-ng) and supervise it
  selftests  MPTCP selftests, KUnit and Rust test binaries in the guest; their parsers
  scenarios  the weak-network scenarios in the guest
  table      several kernels' results as one table
  cli        the command line
"""
