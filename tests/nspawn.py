"""A real systemd for the service tests: a cached Debian root booted with systemd-nspawn.

The root is debootstrapped once into the user's cache (outside git), and the assistant is
installed into a copy of it with the documented command, as for an image
(`ASSISTANT_NO_START=1 scripts/install`). Each scenario boots that copy on a throwaway
overlay (`--volatile=overlay`), so no run dirties the cache; inside, a probe unit runs a
shell script that writes what it saw into a bound results folder, then powers off.
Every step has a deadline, so a test can fail but never hang.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
RELEASE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
# systemd to boot, and most of what scripts/install fetches with apt (the rest, at the image's install).
PACKAGES = ("systemd", "systemd-sysv", "dbus", "python3", "python3-venv", "libportaudio2", "rsync")
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "assistant"
WHEELS = Path(os.environ.get("ASSISTANT_WHEEL_CACHE") or CACHE / "wheels")
PIP_CACHE = CACHE.parent / "pip"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")

# The probe: a oneshot unit that runs /probe/probe.sh, logs to /results and always powers off.
PROBE_UNIT = """\
[Unit]
Description=Test probe
After=multi-user.target

[Service]
Type=oneshot
ExecStart=/bin/bash /probe/probe.sh
StandardOutput=append:/results/probe.log
StandardError=append:/results/probe.log
TimeoutStartSec=infinity
ExecStopPost=/bin/systemctl poweroff --no-block
"""

# Shell helpers every probe script starts with.
PROBE_LIBRARY = r"""
set -u
R=/results
PROPS=ActiveState,SubState,Result,NRestarts,MainPID,ExecMainStatus,ExecMainCode,StatusText
say() { echo "$(date +%s.%N) $*"; }
value() { systemctl show assistant.service -p "$1" --value; }
# snapshot NAME: the unit's main properties, key=value per line, in NAME.show
snapshot() { systemctl show assistant.service -p "$PROPS" > "$R/$1.show"; }
# wait_for PROPERTY VALUE SECONDS: true once the unit has it, false at the deadline
wait_for() {
  local end=$(( $(date +%s) + $3 ))
  until [[ $(value "$1") == "$2" ]]; do
    (( $(date +%s) < end )) || return 1
    sleep 0.1
  done
}
# watch_states: every 0.1 s a line "epoch<TAB>key=value<TAB>..." in states.tsv, until finish
watch_states() {
  while :; do
    printf '%s\t%s\n' "$(date +%s.%N)" "$(systemctl show assistant.service -p "$PROPS" | paste -sd '\t')"
    sleep 0.1
  done > "$R/states.tsv" 2>/dev/null &
  WATCHER=$!
}
finish() {
  [[ -n ${WATCHER:-} ]] && kill "$WATCHER"
  journalctl -u assistant.service -o short-unix --no-pager > "$R/journal.log" 2>&1
  say done
}
"""


def missing() -> list[str]:
    """What these tests need and this machine lacks: root, and Debian's debootstrap and systemd-container."""
    needs = [] if os.geteuid() == 0 else ["root"]
    for tool, package in (("debootstrap", "debootstrap"), ("systemd-nspawn", "systemd-container")):
        if shutil.which(tool) is None:
            needs.append(package)
    return needs


def _key(*parts: bytes) -> str:
    return hashlib.sha256(b"\0".join(parts)).hexdigest()[:10]


def _build(final: Path, make) -> Path:
    """Build into a temporary sibling and rename it, so an interrupted build is never taken as done."""
    if final.is_dir():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    for stale in final.parent.glob(f"{final.name}.*.tmp"):  # left by an interrupted run over an hour ago
        if time.time() - stale.stat().st_mtime > 3600:
            shutil.rmtree(stale, ignore_errors=True)
    build = Path(tempfile.mkdtemp(prefix=f"{final.name}.", suffix=".tmp", dir=final.parent))
    try:
        make(build)
        build.rename(final)
    except OSError:
        if not final.is_dir():  # not a concurrent build that won the rename
            raise
    finally:
        shutil.rmtree(build, ignore_errors=True)
    return final


def _run(command: list[str], timeout_s: float, what: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s)
    if result.returncode != 0:
        raise RuntimeError(f"{what} failed ({result.returncode}): {(result.stdout + result.stderr)[-3000:]}")


def base_root(arch: str | None = None, extra: tuple[str, ...] = ()) -> Path:
    """Debian with systemd, debootstrapped once (a minute or two) and cached.

    `arch`: another Debian architecture (arm64), run through qemu-user registered with
    binfmt_misc (scripts/check-aarch64); about ten minutes under emulation. `extra`: more packages."""
    packages = PACKAGES + extra
    key = _key(RELEASE.encode(), ",".join(packages).encode(), *([arch.encode()] if arch else []))

    def make(build: Path) -> None:
        _run(["debootstrap", *([f"--arch={arch}"] if arch else []), "--variant=minbase",
              f"--include={','.join(packages)}", RELEASE, str(build), MIRROR], 3600 if arch else 900, "debootstrap")

    return _build(CACHE / f"nspawn-{RELEASE}-{f'{arch}-' if arch else ''}{key}", make)


def installed_root() -> Path:
    """The base root with the assistant installed by `ASSISTANT_NO_START=1 scripts/install`.

    Cached per pyproject.toml and scripts/setup: each boot upgrades it in place from the
    working tree, which takes a second while they are unchanged. The cached copy leaves
    the unit disabled, so it does not start at boot: each scenario starts it when it means to."""
    base = base_root()
    key = _key(base.name.encode(), (PROJECT / "pyproject.toml").read_bytes(), (PROJECT / "scripts/setup").read_bytes(),
               _INSTALL_IN_IMAGE.encode())
    final = CACHE / f"{base.name}-installed-{key}"

    def make(build: Path) -> None:
        _run(["cp", "-a", "--reflink=auto", f"{base}/.", str(build)], 600, "copying the root")
        _run(["systemd-nspawn", "-q", "--register=no", "--keep-unit", "-D", str(build), *_binds(),
              "--setenv=ASSISTANT_NO_START=1", "/bin/sh", "-c", _INSTALL_IN_IMAGE], 1800, "scripts/install in the container")
        for old in CACHE.glob(f"{base.name}-installed-*"):  # earlier versions: a gigabyte each
            if old != final and not old.name.endswith(".tmp"):
                shutil.rmtree(old, ignore_errors=True)

    return _build(final, make)


_INSTALL_IN_IMAGE = "/src/scripts/install && systemctl disable --quiet assistant.service"


def _binds() -> list[str]:
    """The working tree as /src; the build caches where scripts/setup looks, so nothing recompiles;
    and the host's certificate authorities, so pip reaches PyPI through whatever proxy the host trusts."""
    WHEELS.mkdir(parents=True, exist_ok=True)
    PIP_CACHE.mkdir(parents=True, exist_ok=True)
    binds = [f"--bind-ro={PROJECT}:/src", f"--bind={WHEELS}:/root/.cache/assistant/wheels",
             f"--bind={PIP_CACHE}:/root/.cache/pip"]
    if HOST_CA_BUNDLE.is_file():
        binds += [f"--bind-ro={HOST_CA_BUNDLE.parent}:/etc/ssl/certs", f"--setenv=PIP_CERT={HOST_CA_BUNDLE}"]
    return binds


def boot(root: Path, script: str, results: Path, timeout_s: float = 120, files: dict[str, str] | None = None) -> str:
    """Boot `root` on a throwaway overlay, run `script` (bash, after PROBE_LIBRARY) as a unit, power off.

    `files`: more files for the probe, readable inside at /probe/NAME. Returns the console
    output; what the probe recorded is in `results` (probe.log and whatever it wrote)."""
    results.mkdir(parents=True, exist_ok=True)
    probe = Path(tempfile.mkdtemp(prefix="probe-", dir=results.parent))
    probe.chmod(0o755)  # units inside may run as other users
    (probe / "probe.service").write_text(PROBE_UNIT)
    (probe / "probe.sh").write_text(PROBE_LIBRARY + script + "\nfinish\n")
    for name, text in (files or {}).items():
        (probe / name).write_text(text)
    command = ["systemd-nspawn", "-q", "--register=no", "--keep-unit", "--boot", "--volatile=overlay",
               "-D", str(root), *_binds(), f"--bind={results}:/results", f"--bind-ro={probe}:/probe",
               f"--bind-ro={probe / 'probe.service'}:/etc/systemd/system/probe.service",
               "systemd.wants=probe.service"]
    container = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        console, _ = container.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        container.send_signal(signal.SIGTERM)  # nspawn asks the container's systemd to power off
        try:
            console, _ = container.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(container.pid, signal.SIGKILL)
            console, _ = container.communicate(timeout=15)
        raise AssertionError(f"the container did not power off within {timeout_s} s; "
                             f"probe: {read(results / 'probe.log')[-3000:]}\nconsole: {console[-3000:]}") from None
    return console


def read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def read_show(path: Path) -> dict[str, str]:
    """`systemctl show` output as a dict."""
    return dict(line.split("=", 1) for line in read(path).splitlines() if "=" in line)


def read_states(path: Path) -> list[tuple[float, dict[str, str]]]:
    """The states recorded by `watch_states`: (epoch seconds, properties) per sample."""
    samples = []
    for line in read(path).splitlines():
        epoch, *fields = line.split("\t")
        samples.append((float(epoch), dict(f.split("=", 1) for f in fields if "=" in f)))
    return samples
