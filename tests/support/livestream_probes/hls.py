"""An HLS client for tests and benchmarks: playlists, "is the stream moving", and a
crowd of simulated viewers.

Every request goes to an address the caller names (like ``curl --resolve``): the lab's
DNS names mean nothing outside the lab, and the probes must never send traffic anywhere
but loopback or the lab's own machines. TLS is verified against a CA file the caller
gives (the lab's ACME root), never switched off.

What a playlist says and when a stream counts as moving (advanced, a new publishing
session, fresh media, the kind of playlist) is decided once, in the collection's
``module_utils/hls.py``, which the closing check of ``playbooks/configure.yml``
(``livestream.aws.stream_check``) uses too; this module brings the transport.
"""

from __future__ import annotations

import asyncio
import http.client
import socket
import ssl
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Callable

from livestream_probes.cpu import CpuSampler

# the probes' API: the parser, the decisions and the watch, from their one home
from ansible_collections.livestream.aws.plugins.module_utils.hls import (  # noqa: F401  pylint: disable=unused-import
    HlsError, Playlist, Segment, StreamCheck, Variant, Watch, advanced, check_streams, fresh, kind_error,
    new_segments, new_session, parse_playlist, watch)


class HlsClient:
    """Blocking HTTP(S) fetches for playlists and segments.

    ``resolve`` maps host names to the address to connect to (the URL's name is still the
    one TLS verifies and the Host header carries); ``ca_file`` is the CA to trust (the
    system's CAs when None); ``headers`` go with every request (and the simulated viewers'),
    e.g. the header a CDN's origin asks of the CDN.
    """

    def __init__(self, *, resolve: dict[str, str] | None = None, ca_file: str | None = None, timeout: float = 5.0,
                 headers: dict[str, str] | None = None):
        self.resolve = dict(resolve or {})
        self.ca_file = ca_file
        self.timeout = timeout
        self.context = ssl.create_default_context(cafile=ca_file)
        self.headers = dict(headers or {})

    def address(self, host: str) -> str:
        return self.resolve.get(host, host)

    def get(self, url: str) -> bytes:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            sock = socket.create_connection((self.address(host), port), timeout=self.timeout)
        except OSError as error:
            # refused or unreachable (a server restarting, a machine rebooting)
            raise HlsError(f"GET {url}: {error}") from error
        try:
            if parts.scheme == "https":
                sock = self.context.wrap_socket(sock, server_hostname=host)
            connection = http.client.HTTPConnection(host, port, timeout=self.timeout)
            connection.sock = sock
            path = parts.path + (f"?{parts.query}" if parts.query else "")
            connection.request("GET", path or "/", headers={"Host": parts.netloc, "Cache-Control": "no-cache", **self.headers})
            answer = connection.getresponse()
            body = answer.read()
        except (OSError, http.client.HTTPException) as error:
            raise HlsError(f"GET {url}: {error}") from error
        finally:
            sock.close()
        if answer.status != 200:
            raise HlsError(f"GET {url}: HTTP {answer.status}")
        return body

    def playlist(self, url: str) -> Playlist:
        return parse_playlist(self.get(url).decode("utf-8", "replace"), url)

    def media_playlist(self, url: str, variant: int = 0) -> Playlist:
        """The media playlist at ``url``, following a master playlist to its
        ``variant``-th variant (in the master's order)."""
        playlist = self.playlist(url)
        if playlist.is_master:
            playlist = self.playlist(playlist.variants[variant].uri)
        return playlist

    def watch(self, url: str, within_s: float, *, until: Callable[[Playlist, Playlist], bool] = advanced,
              since: Playlist | None = None, started: float | None = None, poll_s: float = 0.25,
              variant: int = 0) -> Watch:
        """Poll the stream at ``url`` (a media playlist, or a master playlist followed to its
        ``variant``-th rendition at every poll) until ``until(reference, current)`` holds
        (``advanced``, ``new_session``, ``fresh``... of module_utils/hls.py) or
        ``within_s`` seconds after ``started`` (a ``time.monotonic()``, by default now).
        The reference is ``since``, else the first playlist that answers; failed fetches
        are recorded in the result, not raised (see module_utils/hls.py ``watch``)."""
        return watch(lambda address: self.media_playlist(address, variant), [url], within_s=within_s, until=until,
                     since={url: since} if since is not None else None, started=started, poll_s=poll_s)[0]

    def playlist_advances(self, url: str, within_s: float, *, since: Playlist | None = None,
                          poll_s: float = 0.25) -> Watch:
        """Whether the stream at ``url`` (master or media playlist; a master's first
        variant) publishes a new segment within ``within_s`` seconds: one that the
        reference playlist (``since``, else the first playlist that answers) does not
        list. Fetch failures while waiting (a 404 while the publisher reconnects, a refused
        connection while nginx restarts) are counted, not raised: the question is only
        whether the stream moves again in time."""
        return self.watch(url, within_s, since=since, poll_s=poll_s)

    def streams_advance(self, playlists: dict[str, bool | None], within_s: float, *,
                        poll_s: float = 0.5) -> list[StreamCheck]:
        """The closing check of configure.yml (``livestream.aws.stream_check``) through this
        client: ``playlists`` maps each stream's playlist URL to whether it is a master
        playlist (None: either); each is awaited in that kind, then every media playlist
        it offers (every rendition of a master) must advance, all within ``within_s``."""
        return check_streams(self.playlist, playlists, within_s=within_s, poll_s=poll_s)

    def new_segments(self, url: str, count: int, timeout: float, *, poll_s: float = 0.1) -> list[Arrival]:
        """Watch the media playlist at ``url`` (polled every ``poll_s``) for ``count``
        segments that appear after the first poll; each comes back with the wall-clock
        time (epoch seconds) it was first seen listed and its bytes, fetched right away.
        Fewer when ``timeout`` seconds pass first."""
        deadline = time.monotonic() + timeout
        known: set[str] | None = None
        found: list[Arrival] = []
        while len(found) < count and time.monotonic() < deadline:
            try:
                playlist = self.media_playlist(url)
            except HlsError:
                time.sleep(poll_s)
                continue
            listed_at = time.time()
            uris = {segment.uri for segment in playlist.segments}
            if known is not None:
                for segment in playlist.segments:
                    if segment.uri not in known and len(found) < count:
                        found.append(Arrival(segment=segment, listed_at=listed_at, body=self.get(segment.uri)))
            known = uris if known is None else known | uris
            time.sleep(poll_s)
        return found


@dataclass
class Arrival:
    """A segment as new_segments saw it appear."""

    segment: Segment
    listed_at: float
    body: bytes


# --- simulated viewers ----------------------------------------------------------------

# Segments a viewer stays behind the live edge when it joins: the HLS specification's
# default hold-back of three target durations, which hls.js and Safari also use.
JOIN_HOLD_BACK_SEGMENTS = 3


@dataclass
class ViewerReport:
    """One simulated viewer's session.

    Lateness (the definition every figure uses): the viewer plays like a player with no
    buffer of its own beyond the stream. It joins ``JOIN_HOLD_BACK_SEGMENTS`` segments
    behind the live edge of the first playlist it loads (``joined``: when it asked for it)
    and starts playing the moment its first segment has arrived (``started``). The first
    segment is needed by ``joined + target duration`` (a start-up slower than one segment
    is a stall before the first picture); segment k > 0 is needed at ``started + the sum of
    the EXTINF durations of segments 0..k-1``. A segment is late by ``arrival - needed``
    seconds when that is positive (the moment a player would stall); ``arrival`` is when
    its last byte has been read. A segment that the
    viewer never managed to fetch before the run ended (it fell off the playlist, or the
    fetch failed) counts as missed, which is worse than late. ``playlist_requests`` and
    ``segment_requests``: every GET it sent for each (answered or not), what a server or a
    CDN's origin behind it is asked for.
    """

    viewer: int
    segments: int = 0
    playlist_requests: int = 0
    segment_requests: int = 0
    bytes: int = 0
    late: int = 0
    worst_lateness_s: float = 0.0
    missed: int = 0
    errors: list[str] = field(default_factory=list)
    started: float | None = None

    @property
    def healthy(self) -> bool:
        return self.late == 0 and self.missed == 0 and not self.errors


@dataclass
class LoadReport:
    viewers: int
    duration_s: float
    reports: list[ViewerReport]
    server_cpu_s: float | None
    client_cpu_s: float

    @property
    def segments(self) -> int:
        return sum(report.segments for report in self.reports)

    @property
    def late_segments(self) -> int:
        return sum(report.late for report in self.reports)

    @property
    def missed_segments(self) -> int:
        return sum(report.missed for report in self.reports)

    @property
    def errors(self) -> int:
        return sum(len(report.errors) for report in self.reports)

    @property
    def healthy(self) -> bool:
        return all(report.healthy for report in self.reports) and self.segments > 0

    @property
    def server_cpu_per_viewer(self) -> float | None:
        """Server CPU seconds per second of wall time, per viewer."""
        if self.server_cpu_s is None or not self.viewers or not self.duration_s:
            return None
        return self.server_cpu_s / self.duration_s / self.viewers

    def summary(self) -> dict:
        return {
            "viewers": self.viewers,
            "duration_s": round(self.duration_s, 3),
            "segments": self.segments,
            "late_segments": self.late_segments,
            "missed_segments": self.missed_segments,
            "errors": self.errors,
            "playlist_requests": sum(report.playlist_requests for report in self.reports),
            "segment_requests": sum(report.segment_requests for report in self.reports),
            "worst_lateness_s": round(max((r.worst_lateness_s for r in self.reports), default=0.0), 3),
            "server_cpu_s": None if self.server_cpu_s is None else round(self.server_cpu_s, 3),
            "server_cpu_per_viewer": None if self.server_cpu_per_viewer is None else round(self.server_cpu_per_viewer, 5),
            "client_cpu_s": round(self.client_cpu_s, 3),
            "healthy": self.healthy,
        }


class _Connection:
    """One keep-alive HTTP/1.1 connection, as a player keeps one to its origin."""

    def __init__(self, client: HlsClient, url: str):
        parts = urllib.parse.urlsplit(url)
        self.host = parts.hostname or ""
        self.netloc = parts.netloc
        self.tls = parts.scheme == "https"
        self.port = parts.port or (443 if self.tls else 80)
        self.client = client
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, url: str) -> bytes:
        reused = self.writer is not None
        try:
            return await self._attempt(url)
        except HlsError as error:
            # a server may close an idle keep-alive connection between two polls: like a
            # player, try once more on a fresh connection before calling it a failure
            if not reused or isinstance(error.__cause__, asyncio.TimeoutError):
                raise
        return await self._attempt(url)

    async def _attempt(self, url: str) -> bytes:
        try:
            return await asyncio.wait_for(self._get(url), self.client.timeout)
        except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, ValueError) as error:
            await self.close()
            raise HlsError(f"GET {url}: {error!r}") from error

    async def _get(self, url: str) -> bytes:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(
                self.client.address(self.host), self.port,
                ssl=self.client.context if self.tls else None,
                server_hostname=self.host if self.tls else None,
            )
        assert self.reader is not None
        parts = urllib.parse.urlsplit(url)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        extra = "".join(f"{name}: {value}\r\n" for name, value in self.client.headers.items())
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: {self.netloc}\r\nUser-Agent: livestream-probe\r\n{extra}\r\n".encode())
        await self.writer.drain()
        status = (await self.reader.readuntil(b"\r\n")).split(b" ", 2)
        headers: dict[str, str] = {}
        while True:
            line = await self.reader.readuntil(b"\r\n")
            if line == b"\r\n":
                break
            name, value = line.decode("latin-1").split(":", 1)
            headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = bytearray()
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    await self.reader.readuntil(b"\r\n")
                    break
                body += await self.reader.readexactly(size)
                await self.reader.readexactly(2)
        else:
            body = bytearray(await self.reader.readexactly(int(headers.get("content-length", "0"))))
        if headers.get("connection", "").lower() == "close":
            await self.close()
        if status[1] != b"200":
            raise HlsError(f"GET {url}: HTTP {status[1].decode()}")
        return bytes(body)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except (OSError, ssl.SSLError):
                pass
        self.reader = self.writer = None


def reload_after(playlist: Playlist, *, fresh: bool) -> float:
    """When a live player loads the playlist again, as hls.js (the player page's) does near
    the live edge: after the newest segment's duration when the playlist brought new
    segments and that is shorter than the target duration (a whole number of seconds: 1
    for segments of half a second), else after one target duration; after half a target
    duration when it brought nothing new (RFC 8216 6.3.4)."""
    if not fresh:
        return playlist.target_duration / 2
    newest = playlist.segments[-1].duration if playlist.segments else playlist.target_duration
    return min(playlist.target_duration, newest)


async def _viewer(number: int, client: HlsClient, url: str, deadline: float) -> ViewerReport:
    report = ViewerReport(viewer=number)
    connection = _Connection(client, url)
    loop = asyncio.get_running_loop()
    fetched_up_to: int | None = None  # media sequence of the last segment handled
    playhead = 0.0  # seconds of media before the next segment, from `started`
    media_url = url
    joined = loop.time()
    try:
        while loop.time() < deadline:
            polled = loop.time()
            report.playlist_requests += 1
            try:
                playlist = parse_playlist((await connection.get(media_url)).decode("utf-8", "replace"), media_url)
                if playlist.is_master:
                    media_url = playlist.variants[0].uri
                    continue
            except HlsError as error:
                report.errors.append(str(error))
                await asyncio.sleep(1.0)
                continue
            if fetched_up_to is None:
                joined = polled
                join = max(0, len(playlist.segments) - JOIN_HOLD_BACK_SEGMENTS)
                fetched_up_to = (playlist.segments[join].sequence - 1) if playlist.segments else playlist.media_sequence - 1
            elif playlist.segments and playlist.segments[0].sequence > fetched_up_to + 1:
                report.missed += playlist.segments[0].sequence - fetched_up_to - 1
                fetched_up_to = playlist.segments[0].sequence - 1
            fresh = [segment for segment in playlist.segments if segment.sequence > fetched_up_to]
            for segment in fresh:
                if loop.time() >= deadline:
                    break
                report.segment_requests += 1
                try:
                    body = await connection.get(segment.uri)
                except HlsError as error:
                    report.errors.append(str(error))
                    report.missed += 1
                    fetched_up_to = segment.sequence
                    playhead += segment.duration
                    continue
                arrival = loop.time()
                if report.started is None:
                    report.started = arrival
                    lateness = arrival - (joined + playlist.target_duration)
                else:
                    lateness = arrival - (report.started + playhead)
                if lateness > 0:
                    report.late += 1
                    report.worst_lateness_s = max(report.worst_lateness_s, lateness)
                report.segments += 1
                report.bytes += len(body)
                fetched_up_to = segment.sequence
                playhead += segment.duration
            wait = reload_after(playlist, fresh=bool(fresh))
            await asyncio.sleep(max(0.0, min(polled + max(wait, 0.1), deadline) - loop.time()))
    finally:
        await connection.close()
    return report


def run_viewers(url: str, viewers: int, duration_s: float, *, client: HlsClient,
                cpu: CpuSampler | None = None, spread_s: float | None = None) -> LoadReport:
    """``viewers`` simulated viewers of ``url`` for ``duration_s`` seconds, then stop.

    Viewers join evenly over ``spread_s`` seconds (by default the first second, or the
    first quarter of a shorter run), so that their requests do not all land in the same
    instant, as no real audience's do.
    """
    if viewers < 1 or duration_s <= 0:
        raise ValueError("at least one viewer, for a positive time")

    async def crowd() -> list[ViewerReport]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + duration_s
        spread = spread_s if spread_s is not None else min(duration_s / 4, 1.0)

        async def delayed(number: int) -> ViewerReport:
            await asyncio.sleep(spread * number / viewers)
            return await _viewer(number, client, url, deadline)

        return list(await asyncio.gather(*(delayed(n) for n in range(viewers))))

    cpu_before = cpu() if cpu else None
    client_before = time.process_time()
    started = time.monotonic()
    reports = asyncio.run(crowd())
    elapsed = time.monotonic() - started
    server_cpu = (cpu() - cpu_before) if cpu and cpu_before is not None else None
    return LoadReport(viewers=viewers, duration_s=elapsed, reports=reports,
                      server_cpu_s=server_cpu, client_cpu_s=time.process_time() - client_before)


@dataclass
class Ramp:
    """The search for the most viewers one server keeps up with, run by ramp_viewers.

    ``run(count)`` runs ``count`` viewers once (run_viewers, or anything that does it
    elsewhere: in another process, in a machine's network namespace) and says whether the
    run was healthy (no late, missed or failed segment). The count doubles from ``start``
    until a count fails, then bisects between the last good and the first bad count to
    1/16 of the good one; ``limit`` bounds it. A count fails when ``tries`` runs at it all
    fail (on a shared host one hiccup of another process is not a limit); ``best`` is 0
    when even ``start`` fails."""

    run: Callable[[int], bool]
    start: int = 1
    limit: int = 256
    tries: int = 1
    best: int = 0  # most viewers served without a late, missed or failed segment
    bad: int | None = None  # fewest viewers that were not
    runs: list[tuple[int, bool]] = field(default_factory=list)  # (viewers, healthy) of every run, in order

    def next_count(self) -> int | None:
        """The viewers of the next step; None once the search is over."""
        if not self.runs:
            return self.start
        if self.bad is None:
            return None if self.best >= self.limit else min(self.best * 2, self.limit)
        if self.best == 0 or self.bad - self.best <= max(1, self.best // 16):
            return None
        return (self.best + self.bad) // 2

    @property
    def done(self) -> bool:
        return bool(self.runs) and self.next_count() is None

    def record(self, count: int, healthy: bool) -> None:
        if healthy:
            self.best = max(self.best, count)
        else:
            self.bad = count if self.bad is None else min(self.bad, count)


def ramp_viewers(*ramps: Ramp, deadline: float | None = None, run_s: float = 0.0) -> bool:
    """Run the ramps to their end in lockstep: a step of each per round (up to its
    ``tries`` runs at one count), taking turns at going first, so that servers compared
    side by side meet the same moments of a shared host. No run starts that could end
    after ``deadline`` (a time.monotonic() value; a run takes up to ``run_s``): False when
    the deadline came before every ramp was done."""
    round_number = 0
    while True:
        order = ramps if round_number % 2 == 0 else ramps[::-1]
        steps = [(ramp, ramp.next_count()) for ramp in order]
        steps = [(ramp, count) for ramp, count in steps if count is not None]
        if not steps:
            return True
        for ramp, count in steps:
            healthy = False
            for _attempt in range(max(1, ramp.tries)):
                if deadline is not None and time.monotonic() + run_s > deadline:
                    return False
                healthy = bool(ramp.run(count))
                ramp.runs.append((count, healthy))
                if healthy:
                    break
            ramp.record(count, healthy)
        round_number += 1
