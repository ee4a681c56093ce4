"""Running commands and daemons for the lab, and finding them again to stop them.

Every process the lab starts carries ``LIVESTREAM_LAB_ID=<state dir>`` in its
environment, so that ``down`` finds all of them (even those of an ``up`` killed before it
wrote a pid file) without matching anything by a broad name.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

MARKER = "LIVESTREAM_LAB_ID"


def log(message: str) -> None:
    print(f"lab: {message}", flush=True)


def run(*command: str, check: bool = True, capture: bool = False, netns: str | None = None,
        stdin_text: str | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    argv = [str(part) for part in command]
    if netns:
        argv = ["ip", "netns", "exec", netns, *argv]
    return subprocess.run(argv, check=check, text=True, input=stdin_text, env=env,
                          stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
                          stderr=subprocess.PIPE if capture or check else subprocess.DEVNULL)


@contextlib.contextmanager
def marked(lab_id: str):
    """Every command started inside carries the lab's marker, foreground ones too: a killed
    ``up`` leaves its running children (ssh-keygen, mount, ansible-playbook) for ``down`` to find."""
    before = os.environ.get(MARKER)
    os.environ[MARKER] = lab_id
    try:
        yield
    finally:
        if before is None:
            del os.environ[MARKER]
        else:
            os.environ[MARKER] = before


def output(*command: str, netns: str | None = None) -> str:
    return run(*command, capture=True, netns=netns).stdout


def spawn(command: list[str], lab_id: str, log: Path, netns: str | None = None,
          env: dict | None = None, cwd: Path | None = None) -> int:
    """Start a daemon in its own session, detached from the caller; return its pid."""
    argv = [str(part) for part in command]
    if netns:
        argv = ["ip", "netns", "exec", netns, *argv]
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True, cwd=cwd,
            env={**os.environ, **(env or {}), MARKER: lab_id},
        )
    return process.pid


def alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def lab_processes(lab_id: str) -> list[int]:
    """Pids of every live process that the lab ``lab_id`` started."""
    needle = f"{MARKER}={lab_id}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0") and alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def kill(pid: int, signum: int) -> None:
    """Send ``signum`` to ``pid``; a process already gone is not an error."""
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def stop(pids: list[int], timeout: float = 20.0) -> None:
    """SIGTERM, wait, then SIGKILL what is left."""
    for pid in pids:
        kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in pids:
        if alive(pid):
            kill(pid, signal.SIGKILL)


def wait_for(predicate, timeout: float, what: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def link_exists(name: str, netns: str | None = None) -> bool:
    return run("ip", "link", "show", "dev", name, check=False, netns=netns).returncode == 0
