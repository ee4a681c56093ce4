"""Stand-ins the probe tests point the probes at: HTTPS servers on 127.0.0.1 only, with
a throwaway CA, and a live HLS stream written by ffmpeg."""

from __future__ import annotations

import contextlib
import http.server
import math
import shutil
import ssl
import subprocess
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

from livestream_probes.certs import TlsFiles

SITE = "live.probe.test"


class _Quiet(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as nginx and players use it

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        pass

    def end_headers(self):
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()


@contextlib.contextmanager
def https_server(tls: TlsFiles, handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[int]:
    """Serve ``handler`` over HTTPS on 127.0.0.1 (a free port, yielded) until the block ends."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls.certificate, tls.key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    # polled for shutdown every 20 ms, not serve_forever's 0.5 s: each test waits for it
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def static_handler(directory: Path) -> type[http.server.BaseHTTPRequestHandler]:
    class Static(_Quiet):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(directory), **kwargs)

    return Static


class SyntheticLive:
    """A live media playlist computed from the clock: segment n (``segment_s`` long)
    is published once it is complete, at start + (n + 1) * segment_s; the playlist lists
    the last ``window`` of them. ``delay(sequence, open_connections)`` seconds are spent
    before a segment is served: the tests' way of making a slow server.
    ``drop_idle_connections`` closes every connection after one answer, unannounced;
    ``opened`` counts the connections made to it, ``answered`` the playlists and segments it
    served. ``required_header`` (name, value): a request without it is refused (403), as a
    CDN's origin refuses what does not come through the CDN.

    The target duration is the segment length, fractions of a second included (RFC 8216
    wants a whole number; the probes read it as a number and take every interval from
    it, so a stream of 0.25 s segments runs a test four times faster than one of 1 s)."""

    def __init__(self, segment_s: float = 0.25, window: int = 4, size: int = 20_000,
                 delay: Callable[[int, int], float] | None = None, drop_idle_connections: bool = False,
                 required_header: tuple[str, str] | None = None):
        self.segment_s = segment_s
        self.window = window
        self.body = bytes(size)
        self.delay = delay or (lambda sequence, connections: 0.0)
        self.start = time.monotonic() - window * segment_s  # a full window from the first request
        self.drop_idle_connections = drop_idle_connections
        self.connections = 0
        self.opened = 0
        self.answered = {"playlist": 0, "segment": 0}
        self.required_header = required_header
        self.lock = threading.Lock()

    def playlist(self) -> str:
        published = math.floor((time.monotonic() - self.start) / self.segment_s)
        first = max(0, published - self.window)
        lines = ["#EXTM3U", "#EXT-X-VERSION:3", f"#EXT-X-TARGETDURATION:{self.segment_s:g}",
                 f"#EXT-X-MEDIA-SEQUENCE:{first}"]
        for sequence in range(first, published):
            lines += [f"#EXTINF:{self.segment_s:.3f},", f"segment-{sequence}.ts"]
        return "\n".join(lines) + "\n"

    def handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        live = self

        class Live(_Quiet):
            def setup(self):
                super().setup()
                with live.lock:
                    live.connections += 1
                    live.opened += 1

            def finish(self):
                with live.lock:
                    live.connections -= 1
                super().finish()

            def do_GET(self):  # pylint: disable=invalid-name
                if live.required_header and self.headers.get(live.required_header[0]) != live.required_header[1]:
                    self.send_error(403)
                    return
                if self.path.endswith(".m3u8"):
                    body, kind = live.playlist().encode(), "application/vnd.apple.mpegurl"
                elif self.path.startswith("/segment-"):
                    time.sleep(live.delay(int(self.path[len("/segment-"):-len(".ts")]), live.connections))
                    body, kind = live.body, "video/mp2t"
                else:
                    self.send_error(404)
                    return
                with live.lock:
                    live.answered["playlist" if kind.endswith("mpegurl") else "segment"] += 1
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                # closed without saying so, as a server does when a keep-alive times out
                self.close_connection = live.drop_idle_connections

        return Live


@contextlib.contextmanager
def ffmpeg_live_hls(directory: Path, *, stamp_filter: str, size: str = "640x360", rate: int = 30,
                    fragment_s: float = 1.0) -> Iterator[Path]:
    """ffmpeg writing a live HLS stream of the stamped test pattern into ``directory``
    (real-time paced, H.264, ``fragment_s`` seconds a fragment); yields the playlist path
    and stops ffmpeg when the block ends."""
    directory.mkdir(parents=True, exist_ok=True)
    playlist = directory / "live.m3u8"
    command = [
        shutil.which("ffmpeg") or "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin",
        "-re", "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}",
        "-vf", stamp_filter, "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency",
        "-g", str(round(rate * fragment_s)), "-keyint_min", str(round(rate * fragment_s)), "-sc_threshold", "0",
        "-pix_fmt", "yuv420p", "-f", "hls", "-hls_time", f"{fragment_s:g}", "-hls_list_size", "4",
        "-hls_flags", "delete_segments+independent_segments", str(playlist),
    ]
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL)  # pylint: disable=consider-using-with
    try:
        deadline = time.monotonic() + 15
        while not (playlist.exists() and playlist.read_text().count("#EXTINF") >= 2):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"ffmpeg wrote no playlist (exit status {process.poll()})")
            time.sleep(0.2)
        yield playlist
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
