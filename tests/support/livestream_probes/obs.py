"""A streamer's real OBS Studio (Debian's ``obs-studio``), going live to the service with
``--startstreaming`` from a profile and scene collection written here, never a click.

    config = write_config(tmp_path, server="rtmps://live.example.test:1936/ingest", key="cam1?key=...",
                          encoding=Encoding(height=360, fps=30, keyframe_s=2))
    with Obs(config, ca_file="issuer-root.pem", resolve={"live.example.test": "10.0.1.10"}) as obs:
        obs.wait_streaming(timeout=30)
        ...
    # leaving the block stops the stream (OBS's Stop Streaming), then quits OBS

How it runs headless: under an Xvfb of its own, with Mesa's software OpenGL (llvmpipe);
nothing of the host is changed. OBS's RTMPS (its librtmp, on mbedtls) trusts the
certificates in ``/etc/ssl/certs/`` and checks the server's name against the certificate
(an IP address in the URL never matches one: use a name). So OBS runs in a private mount
namespace (``unshare --mount``) where ``/etc/ssl/certs`` holds ``ca_file`` alone, the way a
streamer's machine trusts Let's Encrypt, ``/etc/hosts`` maps the ``resolve`` names, and
``/etc/resolv.conf`` names a loopback resolver, so that the lookups OBS makes by itself (its
services list at obsproject.com) stay on this machine.

Stopping: OBS 29.0 quits on SIGINT, stopping its stream as it goes, but now and then
(with a media source) it crashes half-way through quitting, before the stream is stopped.
So a small Lua script in the scene collection stops and starts the stream on request (a
file next to it), as the Stop/Start Streaming button does, and OBS is only told to quit
once the stream is over.

The stream key is in the profile's service.json, where OBS keeps it; OBS does not log it,
and nothing here prints it (reprs and log tails leave it out).
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from livestream_probes.encoder import Encoding

OBS = "/usr/bin/obs"
XVFB = "/usr/bin/Xvfb"
UNSHARE = "/usr/bin/unshare"

# OBS 29.0.2 (Debian 12) as (major << 24) | (minor << 16) | patch: global.ini's LastVersion,
# so that OBS takes the configuration for one it wrote itself (no what's-new dialog).
_LAST_VERSION = (29 << 24) | (0 << 16) | 2
# The log lines that say how going live went.
_STREAMING_STARTED = "==== Streaming Start"
_STREAMING_STOPPED = "==== Streaming Stop"

# Run inside the new mount namespace: put the trust store, hosts and resolver in place, then
# become OBS (exec: the process started is OBS itself, and a signal sent to it reaches OBS).
_IN_NAMESPACE = ('mount --bind "$1" /etc/ssl/certs && mount --bind "$2" /etc/hosts && '
                 'mount --bind "$3" /etc/resolv.conf && shift 3 && exec "$@"')

# OBS's Start/Stop Streaming buttons, pressed by creating a file next to the script.
_CONTROL_SCRIPT = """\
-- Written by livestream_probes.obs: Start/Stop Streaming for a headless OBS. Creating the
-- file start-streaming or stop-streaming next to this script presses the button.
local obs = obslua
local directory = script_path()

local function requested(name)
    local file = io.open(directory .. name, "r")
    if file == nil then
        return false
    end
    file:close()
    os.remove(directory .. name)
    obs.script_log(obs.LOG_INFO, name .. " requested")
    return true
end

local function poll()
    if requested("stop-streaming") then
        obs.obs_frontend_streaming_stop()
    end
    if requested("start-streaming") then
        obs.obs_frontend_streaming_start()
    end
end

function script_description()
    return "Start/Stop Streaming through files (livestream_probes.obs)"
end

function script_load(settings)
    obs.timer_add(poll, 100)
end
"""


class ObsError(AssertionError):
    """OBS did not go live, or did not start at all (an assertion for the tests)."""


def available() -> str | None:
    """None when OBS can stream from here, else one line saying why not (for a skip)."""
    for program, package in ((OBS, "obs-studio"), (XVFB, "xvfb"), (UNSHARE, "util-linux")):
        if not os.access(program, os.X_OK):
            return f"{program} is missing (Debian package {package})"
    try:
        version = subprocess.run([OBS, "--version"], capture_output=True, text=True, timeout=30, check=False)
        namespace = subprocess.run([UNSHARE, *_user_namespace(), "--mount", "--propagation", "private", "true"],
                                   capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"cannot run OBS or unshare: {error}"
    if version.returncode != 0 or "OBS Studio" not in version.stdout:
        return f"obs --version failed: {(version.stderr or version.stdout).strip()[:200]}"
    if namespace.returncode != 0:
        return f"no private mount namespace for OBS's trust store: {namespace.stderr.strip()[:200]}"
    return None


def _user_namespace() -> list[str]:
    """A user namespace, too, when not root: mounting needs CAP_SYS_ADMIN in one's own."""
    return [] if os.geteuid() == 0 else ["--map-root-user"]


@dataclass(frozen=True)
class ObsConfig:
    """An OBS configuration that ``write_config`` wrote: ``home`` is OBS's XDG_CONFIG_HOME
    (and HOME), holding obs-studio/ (profiles, scene collections, logs) and obs-probe/ (the
    control script, and what ``Obs`` needs at run time)."""

    home: Path
    profile: str
    collection: str
    server: str
    key: str = field(repr=False)

    @property
    def obs_dir(self) -> Path:
        """OBS's own directory (``~/.config/obs-studio`` on a streamer's machine)."""
        return self.home / "obs-studio"

    @property
    def probe_dir(self) -> Path:
        """This module's own files: the control script, the trust store and hosts OBS sees."""
        return self.home / "obs-probe"


def write_config(directory: str | Path, *, server: str, key: str, encoding: Encoding | None = None,
                 reconnect: bool = True, profile: str = "probe", collection: str = "probe") -> ObsConfig:
    """Write what OBS's settings window and first-run wizard would, under ``directory``: a
    profile that streams ``encoding`` (x264 veryfast, CBR, a keyframe every ``keyframe_s``
    s) to a custom server (``server`` and ``key`` as typed in Settings > Stream), and a scene
    collection whose one scene shows a moving test pattern (ffmpeg's testsrc2, through
    ``encoding.video_filter``) with a 440 Hz tone if ``encoding.audio`` (without it, OBS
    sends a silent audio track: it always has one).

    ``reconnect``: OBS's "Automatically Reconnect" (on by default, as for a streamer).
    OBS's keyframe interval is in whole seconds: ``keyframe_s`` must be one.
    """
    encoding = encoding or Encoding()
    if encoding.keyframe_s != int(encoding.keyframe_s) or encoding.keyframe_s < 1:
        raise ValueError("OBS sets the keyframe interval in whole seconds")
    config = ObsConfig(home=Path(directory).resolve(), profile=profile, collection=collection, server=server, key=key)
    profile_dir = config.obs_dir / "basic" / "profiles" / profile
    scenes_dir = config.obs_dir / "basic" / "scenes"
    for path in (profile_dir, scenes_dir):
        path.mkdir(parents=True, exist_ok=True)
    config.probe_dir.mkdir(mode=0o700, exist_ok=True)
    width = round(encoding.height * 16 / 9 / 2) * 2

    # FirstRun and LastVersion: no auto-configuration wizard, no what's-new dialog; no
    # confirmations around going live or quitting; obs-websocket's server stays off.
    _write_ini(config.obs_dir / "global.ini", {
        "General": {"FirstRun": "true", "LastVersion": str(_LAST_VERSION), "EnableAutoUpdates": "false",
                    "ConfirmOnExit": "false"},
        "Basic": {"Profile": profile, "ProfileDir": profile, "SceneCollection": collection,
                  "SceneCollectionFile": collection, "ConfigOnNewProfile": "false"},
        # no preview: drawing it (llvmpipe) costs CPU that a headless OBS has no use for
        "BasicWindow": {"WarnBeforeStartingStream": "false", "WarnBeforeStoppingStream": "false",
                        "SysTrayEnabled": "false", "PreviewEnabled": "false"},
        "OBSWebSocket": {"FirstLoad": "false", "ServerEnabled": "false"},
    })
    _write_ini(profile_dir / "basic.ini", {
        "General": {"Name": profile},
        "Video": {"BaseCX": str(width), "BaseCY": str(encoding.height), "OutputCX": str(width),
                  "OutputCY": str(encoding.height), "FPSType": "1", "FPSInt": str(encoding.fps),
                  "ScaleType": "bicubic", "ColorFormat": "NV12", "ColorSpace": "709", "ColorRange": "Partial"},
        "Audio": {"SampleRate": "48000", "ChannelSetup": "Stereo"},
        "Output": {"Mode": "Advanced", "Reconnect": str(reconnect).lower(), "RetryDelay": "2", "MaxRetries": "25"},
        "AdvOut": {"Encoder": "obs_x264", "TrackIndex": "1", "Track1Bitrate": "128", "ApplyServiceSettings": "false",
                   "RecType": "Standard"},
    })
    _write_json(profile_dir / "streamEncoder.json", {
        "rate_control": "CBR", "bitrate": encoding.video_kbps, "keyint_sec": int(encoding.keyframe_s),
        "preset": "veryfast", "profile": "main", "tune": "zerolatency"})
    service = profile_dir / "service.json"
    service.touch(mode=0o600)
    _write_json(service, {"type": "rtmp_custom",
                          "settings": {"server": server, "key": key, "use_auth": False, "bwtest": False}})

    script = config.probe_dir / "control.lua"
    script.write_text(_CONTROL_SCRIPT, encoding="utf-8")
    video = f"testsrc2=size={width}x{encoding.height}:rate={encoding.fps}"
    if encoding.video_filter:
        video += "," + encoding.video_filter
    graph = video + "[out0]" + (";sine=frequency=440:sample_rate=48000[out1]" if encoding.audio else "")
    # a Media Source reading ffmpeg's lavfi "device": the pattern is made as it is shown
    pattern = {"id": "ffmpeg_source", "versioned_id": "ffmpeg_source", "name": "Pattern",
               "settings": {"is_local_file": False, "input": graph, "input_format": "lavfi", "looping": False,
                            "restart_on_activate": False, "close_when_inactive": False, "hw_decode": False,
                            "clear_on_media_end": False}}
    item = {"name": "Pattern", "id": 1, "visible": True, "locked": False, "pos": {"x": 0.0, "y": 0.0},
            "scale": {"x": 1.0, "y": 1.0}, "rot": 0.0, "align": 5, "bounds_type": 0,
            "bounds": {"x": 0.0, "y": 0.0}, "bounds_align": 0}
    scene = {"id": "scene", "versioned_id": "scene", "name": "Scene",
             "settings": {"id_counter": 1, "custom_size": False, "items": [item]}}
    _write_json(scenes_dir / f"{collection}.json", {
        "name": collection, "current_scene": "Scene", "current_program_scene": "Scene",
        "scene_order": [{"name": "Scene"}], "sources": [pattern, scene], "groups": [], "transitions": [],
        "current_transition": "Fade", "transition_duration": 300, "quick_transitions": [],
        "saved_projectors": [],
        # where Tools > Scripts keeps the collection's scripts
        "modules": {"scripts-tool": [{"path": str(script), "settings": {}}]}})
    return config


def _write_ini(path: Path, sections: dict[str, dict[str, str]]) -> None:
    # OBS's own format, written by hand: configparser would lower-case the keys
    text = "\n".join(f"[{name}]\n" + "".join(f"{key}={value}\n" for key, value in values.items())
                     for name, values in sections.items())
    path.write_text(text, encoding="utf-8")


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")


def _connection_failure(log: str) -> str | None:
    """The line in which OBS's RTMP output gave up connecting (the certificate refused, the
    name not the certificate's, nothing listening...), if the log has one."""
    for line in log.splitlines():
        if "Cert verify failed" in line or ("[rtmp stream" in line and "failed" in line):
            return line.split(": ", 1)[-1].strip()
    return None


def _read_line(fd: int, timeout: float) -> str:
    """A line from a pipe, read up to its newline: Xvfb writes its display number, then the
    newline in a write of its own, and a pipe closed in between is its fatal "Cannot write
    display number"."""
    received, deadline = b"", time.monotonic() + timeout
    while not received.endswith(b"\n"):
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            break
        chunk = os.read(fd, 16)
        if not chunk:
            break
        received += chunk
    return received.decode(errors="replace").strip()


class Obs:
    """OBS going live with ``config`` (``write_config``'s), trusting ``ca_file`` alone and
    resolving the names in ``resolve`` to their addresses. It runs under an Xvfb of its own
    unless ``display`` names an X display. ``stop()`` (or leaving the ``with`` block) stops
    the stream as Stop Streaming does, then quits OBS."""

    def __init__(self, config: ObsConfig, *, ca_file: str | Path, resolve: dict[str, str] | None = None,
                 display: str | None = None):
        self.config = config
        self.ca_file = Path(ca_file)
        self.resolve = dict(resolve or {})
        self.display = display
        self.process: subprocess.Popen | None = None
        self.xvfb: subprocess.Popen | None = None
        self.started_at: float | None = None
        self._earlier_logs: set[Path] = set()
        self._since = 0  # where in the log the latest start of the stream was asked for

    def start(self) -> Obs:
        """Start OBS, which goes live by itself; ``wait_streaming`` says whether it did."""
        runtime = self.config.probe_dir
        runtime.mkdir(mode=0o700, parents=True, exist_ok=True)
        trust = runtime / "certs"
        shutil.rmtree(trust, ignore_errors=True)
        trust.mkdir()
        shutil.copyfile(self.ca_file, trust / "ca.pem")  # the only CA OBS's mbedtls will load
        hosts = runtime / "hosts"
        hosts.write_text("127.0.0.1 localhost\n::1 localhost\n"
                         + "".join(f"{address} {name}\n" for name, address in self.resolve.items()),
                         encoding="ascii")
        resolver = runtime / "resolv.conf"
        resolver.write_text("nameserver 127.0.0.1\n", encoding="ascii")
        for request in ("start-streaming", "stop-streaming"):
            (runtime / request).unlink(missing_ok=True)
        display = self.display or self._start_xvfb()
        environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.config.home),
                       "XDG_CONFIG_HOME": str(self.config.home), "XDG_RUNTIME_DIR": str(runtime),
                       "DISPLAY": display, "LIBGL_ALWAYS_SOFTWARE": "1", "LANG": "C.UTF-8"}
        arguments = [UNSHARE, *_user_namespace(), "--mount", "--propagation", "private",
                     "/bin/sh", "-c", _IN_NAMESPACE, "obs-probe", str(trust), str(hosts), str(resolver),
                     OBS, "--profile", self.config.profile, "--collection", self.config.collection,
                     "--startstreaming", "--minimize-to-tray", "--multi", "--disable-updater",
                     "--disable-missing-files-check"]
        self._earlier_logs = set(self._logs())
        self._since = 0
        self.started_at = time.monotonic()
        with open(runtime / "console.log", "wb") as console:
            # it outlives this block (it has its own copy of the file): stop() ends it
            self.process = subprocess.Popen(  # pylint: disable=consider-using-with
                arguments, stdin=subprocess.DEVNULL, stdout=console, stderr=subprocess.STDOUT, env=environment,
                start_new_session=True)
        return self

    def _start_xvfb(self) -> str:
        """An Xvfb on a free display number (it writes the number to -displayfd once ready)."""
        read_end, write_end = os.pipe()
        try:
            with open(self.config.probe_dir / "xvfb.log", "wb") as output:
                self.xvfb = subprocess.Popen(  # pylint: disable=consider-using-with
                    [XVFB, "-displayfd", str(write_end), "-screen", "0", "1280x720x24", "-nolisten", "tcp",
                     "-noreset"], pass_fds=(write_end,), stdin=subprocess.DEVNULL, stdout=output, stderr=output,
                    start_new_session=True)
            os.close(write_end)
            write_end = -1
            number = _read_line(read_end, timeout=30)
        finally:
            os.close(read_end)
            if write_end >= 0:
                os.close(write_end)
        if not number.isdigit():
            self._stop_xvfb()
            raise ObsError("Xvfb did not start")
        return f":{number}"

    def running(self) -> bool:
        """OBS's process is alive (live or not: see ``streaming``)."""
        return self.process is not None and self.process.poll() is None

    def _logs(self) -> list[Path]:
        return sorted((self.config.obs_dir / "logs").glob("*.txt"))

    def log_path(self) -> Path | None:
        """OBS's log of this run, in obs-studio/logs/ (None until OBS opens it)."""
        logs = [path for path in self._logs() if path not in self._earlier_logs]
        return logs[-1] if logs else None

    def log(self) -> str:
        """OBS's log so far, or its console output while it has none (a failure to start)."""
        path = self.log_path()
        if path is None:
            path = self.config.probe_dir / "console.log"
        text = path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
        return text.replace(self.config.key, "<key>") if self.config.key else text

    def log_tail(self, lines: int = 30) -> str:
        """The last ``lines`` lines of ``log()``, for an assertion's message."""
        return "\n".join(self.log().splitlines()[-lines:])

    def streaming(self) -> bool:
        """Live now: OBS logged the start of its stream, and not its end since."""
        text = self.log()
        return self.running() and text.rfind(_STREAMING_STARTED) > text.rfind(_STREAMING_STOPPED)

    def wait_streaming(self, timeout: float = 30) -> float:
        """Wait until OBS is live; the seconds since it was started (or asked to go live
        again). ObsError, with the log's tail, when it fails to connect (a certificate it
        refuses, say), exits, or is not live within ``timeout`` s."""
        if self.process is None or self.started_at is None:
            raise ObsError("OBS was not started")
        asked_at, deadline = self.started_at, time.monotonic() + timeout
        while True:
            text = self.log()[self._since:]
            started = text.rfind(_STREAMING_STARTED)
            if started >= 0 and text.rfind(_STREAMING_STOPPED) < started and self.running():
                return time.monotonic() - asked_at
            failure = _connection_failure(text)
            if failure:
                raise ObsError(f"OBS did not go live: {failure}\n{self.log_tail()}")
            if not self.running():
                raise ObsError(f"OBS exited ({self.process.returncode}):\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise ObsError(f"OBS not live after {timeout:g} s:\n{self.log_tail()}")
            time.sleep(0.1)

    def stop_streaming(self, timeout: float = 15) -> bool:
        """Stop Streaming (OBS ends the stream and closes the connection); whether OBS logged
        the end of its stream within ``timeout`` s. OBS keeps running."""
        if not self.streaming():
            return True
        (self.config.probe_dir / "stop-streaming").touch()
        deadline = time.monotonic() + timeout
        while self.streaming() and time.monotonic() < deadline:
            time.sleep(0.1)
        return not self.streaming()

    def start_streaming(self) -> None:
        """Start Streaming again after ``stop_streaming``; then ``wait_streaming``."""
        self._since = len(self.log())
        self.started_at = time.monotonic()
        (self.config.probe_dir / "start-streaming").touch()

    def stop(self, timeout: float = 5) -> int | None:
        """Stop the stream, then quit OBS (SIGINT: OBS's own quit, which takes well under a
        second) and its Xvfb. OBS's exit status (None if it was not started). The stream is
        over before OBS is told to quit, whatever follows: OBS 29.0 now and then crashes
        while quitting (-11), and after failing to connect (its "Failed to connect" dialog
        open) it often hangs in it, ended after ``timeout`` s by SIGTERM (-15)."""
        returncode = None
        if self.process is not None:
            if self.running():
                self.stop_streaming()
                for ending in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
                    self.process.send_signal(ending)
                    try:
                        self.process.wait(timeout)
                        break
                    except subprocess.TimeoutExpired:
                        continue
            returncode = self.process.wait()
        self._stop_xvfb()
        return returncode

    def _stop_xvfb(self) -> None:
        if self.xvfb is not None and self.xvfb.poll() is None:
            self.xvfb.terminate()
            try:
                self.xvfb.wait(10)
            except subprocess.TimeoutExpired:
                self.xvfb.kill()
                self.xvfb.wait()

    def __enter__(self) -> Obs:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def __repr__(self) -> str:
        # the key stays in service.json
        state = "running" if self.running() else "stopped"
        return f"Obs({self.config.server!r}, profile={self.config.profile!r}, {state})"
