# SPDX-License-Identifier: MIT OR Apache-2.0
"""Booting an image under QEMU with virtme-ng and supervising it: KVM or TCG, boot silence,
heartbeat, and taking the whole process tree down on a signal."""
import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .common import EXIT_TIMEOUT, GUEST_SCRIPT, REPO, die, log
from .cache import cache_root, tool_version


def vng_binary():
    # A stand-in for vng (testing/test.d/04-kmx-guests.py drives kmx with a fake vng and QEMU).
    fake = os.environ.get("KMX_VNG")
    if fake:
        return fake
    for cand in (REPO / ".venv/bin/vng", shutil.which("vng")):
        if cand and Path(cand).is_file():
            # vng starts its helpers (virtme-run) from PATH.
            bindir = str(Path(cand).parent)
            if bindir not in os.environ.get("PATH", "").split(":"):
                os.environ["PATH"] = bindir + ":" + os.environ.get("PATH", "")
            return str(cand)
    die("virtme-ng (vng) not found: run testing/setup.sh (it installs it into .venv)")


# What QEMU prints when KVM gives up on a vCPU; QEMU then stays alive with the guest stopped.
KVM_FAILURE = re.compile(r"KVM internal error|emulation failure|KVM: entry failed|kvm run failed")


def kvm_memo():
    return cache_root() / "kvm-probe.json"


def kvm_stamp():
    return "{}|{}".format(os.uname().release, tool_version(["qemu-system-x86_64", "--version"]))


def remember_kvm(ok):
    memo = kvm_memo()
    try:
        known = json.loads(memo.read_text())
    except (OSError, ValueError):
        known = {}
    known[kvm_stamp()] = ok
    memo.parent.mkdir(parents=True, exist_ok=True)
    memo.write_text(json.dumps(known, indent=1))


def kvm_usable():
    """KVM works on some hosts and fails on others (e.g. an MSR error under nested virt, or an
    emulation failure only once the kernel runs): try once per host/qemu, remember the answer in
    the cache. A guest that hits a KVM failure later turns the answer to no (run_guest)."""
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return False
    try:
        known = json.loads(kvm_memo().read_text())
    except (OSError, ValueError):
        known = {}
    stamp = kvm_stamp()
    if stamp in known:
        return known[stamp]
    try:
        # Paused (-S) VM: creating the vCPU is where a broken KVM fails (e.g. "failed to set MSR").
        r = subprocess.run(
            ["qemu-system-x86_64", "-accel", "kvm", "-cpu", "host", "-machine", "q35", "-m", "64",
             "-display", "none", "-no-reboot", "-nodefaults", "-S", "-monitor", "none", "-serial", "none"],
            capture_output=True, text=True, timeout=5)
        ok = r.returncode == 0
        if not ok:
            log(f"KVM unusable here, using TCG: {r.stderr.strip().splitlines()[:1]}")
    except subprocess.TimeoutExpired:
        # Still running after 5 s: KVM initialised fine (subprocess.run killed the probe).
        ok = True
    remember_kvm(ok)
    return ok


def env_seconds(name, default):
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        die(f"{name} must be a number of seconds")


# Liveness bounds. They bound silence, not the run (the suites' own --timeout does that).
# Boot: with --verbose the kernel logs every step to the console. A TCG boot of the 5.10 image
# on a 2-core host at load 21 took 46 s to the command; its longest silent stretch was 20 s
# (udev settling). With two more guests and kernel builds beside it (load 20-30) one boot was
# silent for over 120 s after the kernel's start (mounting the 9p root), so 120 s killed a
# live guest. 300 s: over twice that, and still 3x below the 900 s limit of a suite. A KVM
# failure does not wait for this bound: QEMU's message or its exit ends the attempt at once.
BOOT_SILENCE = 300


# After boot a guest shell loop touches a heartbeat file every HEARTBEAT s (over 9p, so the
# host sees it at once). 60 s without a beat is 30 missed beats: far beyond any scheduling
# delay of a starved TCG vCPU; a dead guest (stopped vCPU, hung kernel) is caught within it.
HEARTBEAT = 2


STALL = 60


_libc = None


def libc():
    global _libc
    if _libc is None:
        import ctypes
        _libc = ctypes.CDLL(None, use_errno=True)
    return _libc


def become_subreaper():
    """Orphans of our children (QEMU when vng dies first) come back to kmx, so stop_children
    still finds them."""
    try:
        libc().prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass


def _die_with_parent():
    # preexec_fn: vng gets SIGKILL if kmx dies without cleaning up (SIGKILL to kmx alone).
    libc().prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG


def _proc_table():
    """{pid: (ppid, state)} of every process."""
    table = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                rest = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        table[int(d)] = (int(rest[1]), rest[0])
    return table


def descendants(root=None):
    """Live (not zombie) descendants of `root` (default: kmx)."""
    root = root or os.getpid()
    table = _proc_table()
    kids = {}
    for pid, (ppid, _) in table.items():
        kids.setdefault(ppid, []).append(pid)
    out, todo = [], [root]
    while todo:
        for c in kids.get(todo.pop(), []):
            todo.append(c)
            if table[c][1] != "Z":
                out.append(c)
    return out


def _reap():
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def stop_children(grace=5.0):
    """SIGTERM every process below kmx (vng, virtme-run, QEMU, a host runner), SIGKILL what is
    left after `grace` s, reap them. Only ever called with no child we still want."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = descendants()
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        end = time.monotonic() + grace
        while time.monotonic() < end and descendants():
            _reap()
            time.sleep(0.1)
    _reap()


def _on_signal(signum, frame):
    signal.signal(signum, signal.SIG_IGN)
    log(f"{signal.Signals(signum).name}: stopping the guest and its QEMU")
    stop_children()
    os._exit(128 + signum)


def install_signal_handlers():
    become_subreaper()
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, _on_signal)


class Outcome:
    def __init__(self, rc, why=None, detail=""):
        self.rc, self.why, self.detail = rc, why, detail


def supervise(cmd, timeout, sink, beat=None, boot_silence=None, stall=None, watch_kvm=False):
    """Run cmd in kmx's process group (a CI that kills the group kills the guest too), copy
    its output to `sink` (a binary file), and end it early when
      - watch_kvm and the output says KVM failed (why "kvm"),
      - before the first heartbeat, nothing was printed for boot_silence s (why "boot-stall"),
      - after it, the heartbeat file did not change for stall s (why "stall"),
      - timeout s have passed (why "timeout").
    Ended early: every child of kmx is stopped and rc is EXIT_TIMEOUT."""
    import threading
    libc()  # loaded here, not in the forked child (preexec_fn)
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                         preexec_fn=_die_with_parent)
    state = {"last_out": t0, "kvm": None, "tail": b""}

    def pump():
        for chunk in iter(lambda: p.stdout.read1(65536), b""):
            sink.write(chunk)
            sink.flush()
            state["last_out"] = time.monotonic()
            state["tail"] = (state["tail"] + chunk)[-8192:]
            if watch_kvm and state["kvm"] is None:
                text = state["tail"].decode(errors="replace")
                m = KVM_FAILURE.search(text)
                if m:
                    state["kvm"] = text[text.rfind("\n", 0, m.start()) + 1:].split("\n")[0].strip()

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    last_sig, last_beat = None, None
    outcome = None
    try:
        while outcome is None:
            rc = p.poll()
            if rc is not None:
                outcome = Outcome(rc)
                if beat is not None and not os.path.exists(beat):
                    # The command never started (it writes the first beat before anything else).
                    reader.join(timeout=5)
                    lines = [x.strip() for x in state["tail"].decode(errors="replace").splitlines() if x.strip()]
                    outcome.why = "ended-before-start"
                    outcome.detail = f"exit {rc} before the command started: {' | '.join(lines[-3:])}"
                break
            now = time.monotonic()
            if state["kvm"]:
                outcome = Outcome(EXIT_TIMEOUT, "kvm", state["kvm"])
                break
            if beat is not None:
                try:
                    st = os.stat(beat)
                    sig = (st.st_mtime_ns, st.st_size, st.st_ino)
                except OSError:
                    sig = None
                if sig is not None and sig != last_sig:
                    last_sig, last_beat = sig, now
                if last_beat is None and boot_silence and now - state["last_out"] > boot_silence:
                    outcome = Outcome(EXIT_TIMEOUT, "boot-stall",
                                      f"no console output for {boot_silence:.0f} s and no heartbeat yet")
                elif last_beat is not None and stall and now - last_beat > stall:
                    outcome = Outcome(EXIT_TIMEOUT, "stall", f"no heartbeat for {stall:.0f} s")
            if outcome is None and now - t0 > timeout:
                outcome = Outcome(EXIT_TIMEOUT, "timeout", f"timeout after {timeout:.0f} s")
            if outcome is None:
                time.sleep(0.25)
    finally:
        if outcome is None or outcome.why not in (None, "ended-before-start"):
            stop_children()
        p.wait()
        reader.join(timeout=10)
    return outcome


def run_bounded(cmd, timeout, sink):
    """A host command under a time limit (the host suites); on timeout it and its children are
    stopped and the result is EXIT_TIMEOUT."""
    o = supervise(cmd, timeout, sink)
    if o.why:
        log(o.detail)
    return o.rc


def guest_cmd(image, command, memory="2G", cpus=2, rwdirs=(), rodirs=(), use_kvm=False, cwd=None):
    cmd = [vng_binary(), "--run", str(image), "--force-9p", "--disable-microvm", "--verbose",
           "--user", "root", "--memory", memory, "--cpus", str(cpus)]
    if not use_kvm:
        cmd.append("--disable-kvm")
    for d in rwdirs:
        cmd += ["--rwdir", str(d)]
    # The guest sees a fresh /var/cache: the cache's own files must be passed in explicitly.
    for d in rodirs:
        cmd += ["--rodir", str(d)]
    if cwd:
        cmd += ["--cwd", str(cwd)]
    if kasan_built(image):
        # KASAN prints only its first report otherwise: one early in boot would hide every later one.
        cmd += ["--append", "kasan_multi_shot"]
    cmd += ["--exec", command]
    return cmd


def kasan_built(image):
    """Whether the image's kernel config (kept beside it) has KASAN."""
    try:
        return "CONFIG_KASAN=y" in (Path(image).parent / "config").read_text(errors="replace").splitlines()
    except OSError:
        return False


class KernelLogToStderr:
    """A sink for `kmx run`: the guest kernel's log lines ("[    1.234567] ...", printed with
    --verbose) go to stderr, everything else (the command's output) to stdout."""

    KLOG = re.compile(rb"^\[\s*\d+\.\d+\] ")

    def __init__(self):
        self.buf = b""

    def write(self, data):
        self.buf += data
        *lines, self.buf = self.buf.split(b"\n")
        for line in lines:
            (sys.stderr.buffer if self.KLOG.match(line) else sys.stdout.buffer).write(line + b"\n")

    def flush(self):
        # A partial line is held back only while it could still become a kernel log line.
        if self.buf and not self.buf.startswith(b"["):
            sys.stdout.buffer.write(self.buf)
            self.buf = b""
        sys.stdout.buffer.flush()
        sys.stderr.buffer.flush()


def clear_dir(d, keep=()):
    for f in Path(d).iterdir():
        if f.name in keep:
            continue
        if f.is_dir() and not f.is_symlink():
            shutil.rmtree(f, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                f.unlink()


def run_guest(image, command, timeout, sink, memory="2G", cpus=2, rwdirs=(), rodirs=(), kvm="auto",
              cwd=None, results=None):
    """Boot `image` and run `command` in it, bounded by `timeout` and by the liveness checks of
    supervise(). A KVM failure (QEMU's message, or a KVM boot that goes silent) is remembered
    for this host and the command runs again at once under TCG; `results` (a directory the
    guest writes) is emptied first, except console.log."""
    use_kvm = kvm == "on" or (kvm == "auto" and kvm_usable())
    boot_silence = env_seconds("KMX_BOOT_SILENCE", BOOT_SILENCE)
    stall = env_seconds("KMX_STALL", STALL)
    beat_root = cache_root() / "heartbeat"
    beat_root.mkdir(parents=True, exist_ok=True)
    while True:
        beat_dir = Path(tempfile.mkdtemp(prefix="guest.", dir=beat_root))
        beat = beat_dir / "beat"
        # The first beat before the command: "no beat" means "the command never started".
        # Booted: only warnings and worse still go to the (slow, emulated) serial console; the
        # full log stays in dmesg.
        hb = shlex.quote(str(beat))
        wrapped = (f"dmesg -n 5 2>/dev/null; date +%s > {hb}; "
                   f"(while sleep {HEARTBEAT}; do date +%s > {hb}; done) </dev/null >/dev/null 2>&1 & {command}")
        cmd = guest_cmd(image, wrapped, memory=memory, cpus=cpus, rwdirs=[*rwdirs, beat_dir], rodirs=rodirs,
                        use_kvm=use_kvm, cwd=cwd)
        try:
            o = supervise(cmd, timeout, sink, beat=beat, boot_silence=boot_silence, stall=stall, watch_kvm=use_kvm)
        finally:
            shutil.rmtree(beat_dir, ignore_errors=True)
        # Under KVM, a guest that dies or goes silent before its command starts (QEMU's KVM
        # messages, an abort such as "failed to set MSR") is a KVM failure.
        if use_kvm and o.why in ("kvm", "boot-stall", "ended-before-start"):
            log(f"KVM failed in the guest ({o.detail}); running again under TCG, and TCG from now on on "
                f"this host (remembered in {kvm_memo()})")
            remember_kvm(False)
            use_kvm = False
            sink.write(f"\n=== kmx: KVM failed ({o.detail}); running again under TCG ===\n".encode())
            sink.flush()
            if results is not None:
                # What the failed attempt wrote goes; the log and the command's script stay.
                clear_dir(results, keep={"console.log", GUEST_SCRIPT})
            continue
        if o.why == "ended-before-start":
            log(f"guest {o.detail} ({'KVM' if use_kvm else 'TCG'})")
        elif o.why:
            log(f"guest stopped: {o.detail} ({'KVM' if use_kvm else 'TCG'})")
        return o.rc
