#!/usr/bin/env python3
# SPDX-License-Identifier: MIT OR Apache-2.0
"""kmx's guest supervision, with a fake vng and a fake QEMU (no real boot, ~1 min):
- a KVM that dies mid-boot ("KVM internal error", QEMU stays alive) is caught from QEMU's own
  output, the run falls back to TCG at once and stays green, and the host remembers it;
- a guest that stops printing during boot, or whose heartbeat stops after boot, is stopped
  within the configured silence, not at the suite timeout;
- SIGTERM to kmx, and SIGKILL to kmx's process group, take vng and QEMU down with it;
- libtest results written by a failed KVM attempt are cleared before the TCG run.
The fakes act like the real ones where kmx depends on it: vng starts QEMU as a child process
and waits for it; QEMU prints to the same output; the "guest" runs the command and powers off."""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
KMX = ROOT / "testing/kernel-matrix/kmx"

FAKE_VNG = r'''#!/usr/bin/env python3
import os, subprocess, sys
a = sys.argv[1:]
kvm = "--disable-kvm" not in a
cmd = a[a.index("--exec") + 1]
image = a[a.index("--run") + 1]
# Like virtme-run: QEMU is a child; its output goes where ours goes.
p = subprocess.Popen(["qemu-system-x86_64", "-machine", "accel=kvm:tcg" if kvm else "accel=tcg",
                      "-kernel", image, "-fake-exec", cmd])
sys.exit(p.wait())
'''

FAKE_QEMU = r'''#!/usr/bin/env python3
import os, signal, subprocess, sys, time
a = sys.argv[1:]
if a == ["--version"]:
    print("QEMU emulator version 0.0 (kmx test fake)")
    sys.exit(0)
d = os.environ["FAKE_DIR"]
kvm = "accel=kvm:tcg" in a
with open(os.path.join(d, "qemu.pids"), "a") as f:
    f.write(f"{os.getpid()} {'kvm' if kvm else 'tcg'}\n")
if "-S" in a:  # kmx's paused-VM probe: KVM initialises fine here
    time.sleep(3600)
if kvm and os.environ.get("FAKE_KVM_ABORT"):  # a host whose KVM fails on the first vCPU reset
    sys.stderr.write("qemu-system-x86_64: error: failed to set MSR 0x10a to 0x69\n")
    sys.exit(134)
print("[    0.000000] Linux version 5.10.0-fake", flush=True)
if kvm and os.environ.get("FAKE_KVM_BROKEN"):
    time.sleep(0.5)
    sys.stderr.write("KVM internal error. Suberror: 1\nextra data[0]: 0x0000000000000000\n"
                     "emulation failure\nRAX=0000000000000000 RBX=0000000000000000\n")
    sys.stderr.flush()
    time.sleep(3600)  # QEMU stays alive with the vCPU stopped
if os.environ.get("FAKE_HANG_BOOT"):
    time.sleep(3600)  # a boot that stops printing
cmd = a[a.index("-fake-exec") + 1]
g = subprocess.Popen(["bash", "-c", cmd], start_new_session=True)
with open(os.path.join(d, "guest.pgids"), "a") as f:
    f.write(f"{g.pid}\n")
freeze = os.environ.get("FAKE_FREEZE_AFTER")
if freeze:
    time.sleep(float(freeze))
    os.killpg(g.pid, signal.SIGSTOP)  # the guest stops: no heartbeat, no output, QEMU alive
    time.sleep(3600)
rc = g.wait()
os.killpg(g.pid, signal.SIGKILL)  # "power off": the guest's background jobs end with it
print("[    9.000000] reboot: Power down", flush=True)
sys.exit(rc)
'''

failures = []


def check(what, ok, detail=""):
    print(("ok    " if ok else "FAIL  ") + what + ("" if ok else f"\n      {detail}"))
    if not ok:
        failures.append(what)


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


tmp = Path(tempfile.mkdtemp(prefix="kmx-guests."))
bindir = tmp / "bin"
bindir.mkdir()
(bindir / "vng").write_text(FAKE_VNG)
(bindir / "qemu-system-x86_64").write_text(FAKE_QEMU)
# The fake guest runs kmx's guest-side commands on the host: its `dmesg -n` must not change
# the host's console log level.
(bindir / "dmesg").write_text("#!/bin/sh\nexit 0\n")
for f in bindir.iterdir():
    f.chmod(0o755)
cache = tmp / "cache"
key = "0123456789abcdef"
(cache / "kernels" / key).mkdir(parents=True)
(cache / "kernels" / key / "bzImage").write_text("not a kernel\n")
(cache / "kernels" / key / "meta.json").write_text(json.dumps({"label": "fake", "source": "/nonexistent"}))
base_env = {**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}", "KMX_CACHE": str(cache),
            "KMX_VNG": str(bindir / "vng"), "FAKE_DIR": str(tmp)}
for k in ("KMX_KVM", "KMX_BOOT_SILENCE", "KMX_STALL"):
    base_env.pop(k, None)


def qemus():
    try:
        lines = (tmp / "qemu.pids").read_text().split("\n")
    except OSError:
        return []
    return [(int(p), mode) for p, mode in (ln.split() for ln in lines if ln)]


def reset():
    (tmp / "qemu.pids").unlink(missing_ok=True)


def kmx(args, env=None, timeout=120):
    t0 = time.monotonic()
    r = subprocess.run([str(KMX), *args], env={**base_env, **(env or {})}, capture_output=True, text=True,
                       timeout=timeout)
    return r, time.monotonic() - t0


def kill_guests():
    """The fake guests' shells run in their own sessions (inside QEMU in the real case): a
    group kill of kmx does not reach them here. Stop them by their recorded group ids."""
    try:
        pgids = [int(x) for x in (tmp / "guest.pgids").read_text().split()]
    except OSError:
        pgids = []
    for g in pgids:
        try:
            os.killpg(g, signal.SIGKILL)
        except ProcessLookupError:
            pass
    (tmp / "guest.pgids").unlink(missing_ok=True)


def none_left(what):
    left = [p for p, _ in qemus() if alive(p)]
    check(f"{what}: no QEMU left", not left, f"still running: {left}")
    for p in left:
        os.kill(p, signal.SIGKILL)


try:
    # 1. KVM breaks mid-boot (KMX_KVM=on forces a KVM attempt): caught, TCG at once, green.
    reset()
    r, secs = kmx(["run", "--kernel", key, "--timeout", "300", "--", "echo guest-ran; exit 7"],
                  {"KMX_KVM": "on", "FAKE_KVM_BROKEN": "1"})
    modes = [m for _, m in qemus()]
    check("KVM failure: command ran under TCG with its own exit code", r.returncode == 7 and "guest-ran" in r.stdout,
          f"exit {r.returncode}\nstdout: {r.stdout[-800:]}\nstderr: {r.stderr[-800:]}")
    check("KVM failure: one KVM attempt, then TCG", modes == ["kvm", "tcg"], f"QEMU runs: {modes}")
    check("KVM failure: QEMU's message quoted", "KVM internal error" in r.stderr, r.stderr[-800:])
    check(f"KVM failure: fallback within seconds ({secs:.1f} s)", secs < 30, f"{secs:.1f} s")
    memo = json.loads((cache / "kvm-probe.json").read_text())
    check("KVM failure remembered for this host", list(memo.values()) == [False], str(memo))
    none_left("KVM failure")

    # 1b. KVM that QEMU gives up on at once (exit before the guest command starts): same.
    reset()
    (cache / "kvm-probe.json").unlink()
    r, secs = kmx(["run", "--kernel", key, "--", "echo guest-ran"], {"KMX_KVM": "on", "FAKE_KVM_ABORT": "1"})
    modes = [m for _, m in qemus()]
    check("QEMU abort under KVM: TCG run, green", r.returncode == 0 and "guest-ran" in r.stdout
          and modes == ["kvm", "tcg"] and "failed to set MSR" in r.stderr,
          f"exit {r.returncode}, QEMU runs {modes}\nstdout: {r.stdout[-500:]}\nstderr: {r.stderr[-800:]}")

    # 2. auto now goes straight to TCG (no probe, no KVM attempt).
    reset()
    r, _ = kmx(["run", "--kernel", key, "--", "true"], {"KMX_KVM": "auto", "FAKE_KVM_BROKEN": "1"})
    modes = [m for _, m in qemus()]
    check("remembered: auto runs TCG only", r.returncode == 0 and modes == ["tcg"],
          f"exit {r.returncode}, QEMU runs {modes}\n{r.stderr[-800:]}")

    # 3. A boot that goes silent: stopped after KMX_BOOT_SILENCE, not at --timeout.
    reset()
    r, secs = kmx(["run", "--kernel", key, "--kvm", "off", "--timeout", "300", "--", "true"],
                  {"FAKE_HANG_BOOT": "1", "KMX_BOOT_SILENCE": "3"})
    check(f"silent boot stopped in {secs:.1f} s with exit 124", r.returncode == 124 and secs < 20,
          f"exit {r.returncode} after {secs:.1f} s\n{r.stderr[-800:]}")
    check("silent boot: reason given", "no console output for 3 s" in r.stderr, r.stderr[-800:])
    none_left("silent boot")

    # 4. A guest that freezes after boot: its heartbeat stops; stopped after KMX_STALL.
    reset()
    r, secs = kmx(["run", "--kernel", key, "--kvm", "off", "--timeout", "300", "--", "sleep 200"],
                  {"FAKE_FREEZE_AFTER": "3", "KMX_STALL": "4"})
    check(f"frozen guest stopped in {secs:.1f} s with exit 124", r.returncode == 124 and 7 <= secs < 25,
          f"exit {r.returncode} after {secs:.1f} s\n{r.stderr[-800:]}")
    check("frozen guest: reason given", "no heartbeat for 4 s" in r.stderr, r.stderr[-800:])
    none_left("frozen guest")

    # 5. A busy guest that keeps beating is not stopped by the stall check.
    reset()
    r, secs = kmx(["run", "--kernel", key, "--kvm", "off", "--", "sleep 8; echo done"], {"KMX_STALL": "4"})
    check("quiet but alive guest (8 s, stall limit 4 s) runs to its end", r.returncode == 0 and "done" in r.stdout,
          f"exit {r.returncode}\n{r.stderr[-800:]}")

    # 6. SIGTERM to kmx: vng and QEMU go with it.
    for sig, group in ((signal.SIGTERM, False), (signal.SIGINT, False), (signal.SIGKILL, True)):
        reset()
        p = subprocess.Popen([str(KMX), "run", "--kernel", key, "--kvm", "off", "--", "sleep 300"],
                             env=base_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                             start_new_session=True)
        end = time.monotonic() + 20
        # Signal once the fake guest runs (its shell recorded), so kill_guests finds it.
        while not (tmp / "guest.pgids").is_file() and time.monotonic() < end:
            time.sleep(0.1)
        time.sleep(0.5)
        if group:
            os.killpg(p.pid, sig)  # what a CI runner does to a job
        else:
            os.kill(p.pid, sig)
        try:
            rc = p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
            rc = None
        end = time.monotonic() + 5
        while any(alive(q) for q, _ in qemus()) and time.monotonic() < end:
            time.sleep(0.1)
        what = f"{sig.name} to kmx's process group" if group else f"{sig.name} to kmx"
        check(f"{what}: kmx exited ({rc})", rc is not None and rc != 0, p.stderr.read()[-500:])
        none_left(what)
        kill_guests()

    # 7. libtest: a KVM failure after the test wrote partial results; the TCG run's results count
    # (and the command's script, in the same directory, survives the clearing).
    reset()
    fake_test = tmp / "fake-test"
    fake_test.write_text("#!/bin/sh\necho 'test fake::case ... ok'\n")
    fake_test.chmod(0o755)
    out_json = tmp / "libtest.json"
    r, _ = kmx(["libtest", "--kernel", key, "--kvm", "on", "--suite", "fake", "--json", str(out_json), "--",
                str(fake_test)], {"FAKE_KVM_BROKEN": "1"})
    res = json.loads(out_json.read_text()) if out_json.is_file() else {}
    cases = [(c["name"], c["status"]) for s in res.get("suites", []) if s["suite"] == "fake" for c in s["cases"]]
    check("libtest after a KVM failure: the TCG run's case passes", r.returncode == 0 and cases == [("fake::case", "pass")],
          f"exit {r.returncode}, cases {cases}\n{r.stdout[-500:]}\n{r.stderr[-800:]}")
    none_left("libtest")
finally:
    kill_guests()
    for p, _ in qemus():
        if alive(p):
            os.kill(p, signal.SIGKILL)
    subprocess.run(["rm", "-rf", str(tmp)], check=False)

if failures:
    print(f"{len(failures)} failed")
    sys.exit(1)
print("kmx guests: KVM failure falls back to TCG and is remembered; silent boot and frozen guest stopped "
      "within their bounds; signals and a group kill take QEMU down")
