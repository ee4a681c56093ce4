"""A streamer's encoder: ffmpeg publishing a test pattern over RTMP(S), as OBS would, from
where the probe runs (the lab's root namespace is "the internet").

Over RTMPS the server's certificate is always verified (``ca_file``: the only CA trusted,
the way a streamer's machine trusts Let's Encrypt) and so is its name, the URL's. The key
is part of ``url`` (``<name>?key=<key>``): it is on this process's command line, as it is
in a streamer's own ffmpeg; nothing here prints it.
"""

from __future__ import annotations

import shlex
import subprocess
from dataclasses import dataclass


@dataclass(frozen=True)
class Encoding:
    """What the encoder sends: a ``height``p test pattern at ``fps`` with a keyframe every
    ``keyframe_s`` seconds (an encoder's own choice: OBS's "Keyframe Interval"), and a tone."""

    height: int = 720
    fps: int = 30
    keyframe_s: float = 2.0
    video_kbps: int = 2500
    audio: bool = True
    # an ffmpeg filter chain applied to the pattern first (a capture-time strip)
    video_filter: str = ""


def command(url: str, *, seconds: float, ca_file: str | None = None, encoding: Encoding = Encoding()) -> list[str]:
    """The ffmpeg command that publishes ``encoding`` to ``url`` for ``seconds`` seconds."""
    width = round(encoding.height * 16 / 9 / 2) * 2
    video = f"testsrc2=size={width}x{encoding.height}:rate={encoding.fps}"
    if encoding.video_filter:
        video += "," + encoding.video_filter
    arguments = ["ffmpeg", "-hide_banner", "-nostats", "-loglevel", "error", "-re", "-f", "lavfi", "-i", video]
    if encoding.audio:
        arguments += ["-re", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"]
    arguments += ["-t", f"{seconds:g}", "-map", "0:v"] + (["-map", "1:a"] if encoding.audio else [])
    gop = str(round(encoding.fps * encoding.keyframe_s))
    arguments += ["-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-pix_fmt", "yuv420p",
                  "-g", gop, "-keyint_min", gop, "-b:v", f"{encoding.video_kbps}k", "-maxrate", f"{encoding.video_kbps}k",
                  "-bufsize", f"{encoding.video_kbps * 2}k"]
    if encoding.audio:
        arguments += ["-c:a", "aac", "-b:a", "128k", "-ar", "48000"]
    if url.startswith("rtmps://") and ca_file:
        arguments += ["-tls_verify", "1", "-ca_file", str(ca_file)]
    return arguments + ["-f", "flv", url]


class Encoder:
    """``command``'s ffmpeg in the background, for ``seconds`` at most (it stops by itself);
    ``stop()`` ends it sooner. Its stderr is kept for ``result()``."""

    def __init__(self, url: str, *, seconds: float, ca_file: str | None = None, encoding: Encoding = Encoding()):
        self.arguments = command(url, seconds=seconds, ca_file=ca_file, encoding=encoding)
        self.process: subprocess.Popen | None = None
        self._ended: subprocess.CompletedProcess | None = None

    def start(self) -> Encoder:
        self.process = subprocess.Popen(self.arguments, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE, text=True)
        return self

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 10) -> subprocess.CompletedProcess:
        """End it (SIGTERM: ffmpeg closes the stream as an encoder's stop button does)."""
        if self.running():
            self.process.terminate()
        return self.result(timeout)

    def result(self, timeout: float) -> subprocess.CompletedProcess:
        """Wait for it to end by itself (killed after ``timeout`` s); its exit and stderr."""
        if self._ended is not None:
            return self._ended
        try:
            _out, err = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _out, err = self.process.communicate()
        self._ended = subprocess.CompletedProcess(self.arguments, self.process.returncode, "", err)
        return self._ended

    def __enter__(self) -> Encoder:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def __repr__(self) -> str:
        # the URL carries the key: never in a test report
        return f"Encoder({shlex.join(self.arguments[:-1])} <url>)"


def publish(url: str, *, seconds: float, ca_file: str | None = None, encoding: Encoding = Encoding(),
            timeout: float | None = None) -> subprocess.CompletedProcess:
    """Publish for ``seconds`` (or until refused) and return how it ended."""
    encoder = Encoder(url, seconds=seconds, ca_file=ca_file, encoding=encoding).start()
    return encoder.result(timeout if timeout is not None else seconds + 20)
