# -*- coding: utf-8 -*-
# Copyright: livestream.aws contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""HLS playlists and what "the stream plays" means, in one place.

The closing check of ``playbooks/configure.yml`` (the ``livestream.aws.stream_check``
module) and the tests' and benchmarks' probes (``livestream_probes.hls``) read playlists
and decide with these functions; each brings its own transport, a ``fetch(url)`` that
returns a parsed ``Playlist`` or raises ``HlsError`` (the module: Ansible's ``open_url``;
the probes: a connection to an address given per name). Standard library only.

The decisions, between a reference reading of a media playlist and a later one:

- ``new_segments`` / ``advanced``: the later one lists a segment (by URI) that the
  reference does not: the stream published a new fragment. Segment URIs, not the
  media sequence, because nginx-rtmp keeps ``EXT-X-MEDIA-SEQUENCE`` while the playlist is
  still filling up, and a publisher that starts again may number from zero.
- ``new_session``: such a segment starts at a discontinuity (nginx-rtmp marks the first
  fragment of a publisher that came back), or the numbering started again.
- ``fresh``: the later one lists only segments that the reference does not: everything
  it offers was published after the reference was read.
- ``kind_error``: a playlist is not of the kind the stream is configured to have (a
  master playlist exactly when the stream has variants; a media playlist with at least
  one segment).

``watch`` polls playlists until a decision holds for each or a deadline passes (short
polls, no fixed waits); ``check_streams`` is the whole check of a set of streams: each
playlist of the expected kind, then every media playlist (a master's renditions
included) advancing.
"""

from __future__ import annotations

import time
import urllib.parse
from dataclasses import dataclass, field


class HlsError(Exception):
    """A playlist or segment could not be fetched or parsed (the message says which, and why)."""


@dataclass
class Segment:
    uri: str
    duration: float
    sequence: int
    # an EXT-X-DISCONTINUITY comes before it: a new encoder session starts here (nginx-rtmp
    # marks the first segment after a publisher reconnects)
    discontinuity: bool = False


@dataclass
class Variant:
    uri: str
    bandwidth: int
    resolution: str | None = None


@dataclass
class Playlist:
    """A master playlist (``variants``) or a media playlist (the rest)."""

    url: str
    variants: list[Variant] = field(default_factory=list)
    target_duration: float = 0.0
    media_sequence: int = 0
    segments: list[Segment] = field(default_factory=list)
    ended: bool = False

    @property
    def is_master(self) -> bool:
        return bool(self.variants)

    @property
    def last_uri(self) -> str | None:
        return self.segments[-1].uri if self.segments else None

    @property
    def last_sequence(self) -> int | None:
        return self.segments[-1].sequence if self.segments else None

    def short(self) -> str:
        """The playlist in one line; '|' marks a discontinuity."""
        if self.is_master:
            return "master: " + " ".join(variant.uri.rsplit("/", 1)[-1] for variant in self.variants)
        return f"seq {self.media_sequence}: " + " ".join(
            ("|" if segment.discontinuity else "") + segment.uri.rsplit("/", 1)[-1] for segment in self.segments)


def parse_playlist(text: str, url: str) -> Playlist:
    """Parse an M3U8 master or media playlist; URIs come back absolute (joined to ``url``)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines or lines[0] != "#EXTM3U":
        raise HlsError(f"{url}: not an M3U8 playlist")
    playlist = Playlist(url=url)
    pending_duration: float | None = None
    pending_variant: dict[str, str] | None = None
    pending_discontinuity = False
    sequence = 0
    try:
        for line in lines[1:]:
            if line.startswith("#EXT-X-TARGETDURATION:"):
                playlist.target_duration = float(line.split(":", 1)[1])
            elif line.startswith("#EXT-X-MEDIA-SEQUENCE:"):
                playlist.media_sequence = sequence = int(line.split(":", 1)[1])
            elif line.startswith("#EXTINF:"):
                pending_duration = float(line.split(":", 1)[1].split(",", 1)[0])
            elif line.startswith("#EXT-X-STREAM-INF:"):
                pending_variant = _attributes(line.split(":", 1)[1])
            elif line == "#EXT-X-DISCONTINUITY":
                pending_discontinuity = True
            elif line.startswith("#EXT-X-ENDLIST"):
                playlist.ended = True
            elif not line.startswith("#"):
                absolute = urllib.parse.urljoin(url, line)
                if pending_variant is not None:
                    playlist.variants.append(Variant(
                        uri=absolute,
                        bandwidth=int(pending_variant.get("BANDWIDTH", "0")),
                        resolution=pending_variant.get("RESOLUTION"),
                    ))
                    pending_variant = None
                elif pending_duration is not None:
                    playlist.segments.append(Segment(uri=absolute, duration=pending_duration, sequence=sequence,
                                                     discontinuity=pending_discontinuity))
                    sequence += 1
                    pending_duration = None
                    pending_discontinuity = False
    except ValueError as error:
        raise HlsError(f"{url}: not a valid M3U8 playlist ({error})") from error
    return playlist


def _attributes(text: str) -> dict[str, str]:
    """EXT-X-STREAM-INF attributes; quoted values may hold commas (CODECS)."""
    found: dict[str, str] = {}
    key, value, quoted, reading_key = "", "", False, True
    for char in text + ",":
        if reading_key:
            if char == "=":
                reading_key = False
            else:
                key += char
        elif char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            found[key.strip()] = value
            key, value, reading_key = "", "", True
        else:
            value += char
    return found


# --- the decisions --------------------------------------------------------------------

def new_segments(reference: Playlist, current: Playlist) -> list[Segment]:
    """The segments ``current`` lists that ``reference`` does not (by URI), in order."""
    known = {segment.uri for segment in reference.segments}
    return [segment for segment in current.segments if segment.uri not in known]


def advanced(reference: Playlist, current: Playlist) -> bool:
    """The stream published a new fragment between the two readings."""
    return bool(new_segments(reference, current))


def new_session(reference: Playlist, current: Playlist) -> bool:
    """A new publishing session made a segment since ``reference``: a new segment that
    starts at a discontinuity, or any new segment of a playlist whose numbering started
    again (a frontend with empty HLS storage). The fragment that nginx closes when the
    old publisher drops is new too, but is not taken for the stream coming back."""
    restarted = current.media_sequence < reference.media_sequence
    return any(segment.discontinuity or restarted for segment in new_segments(reference, current))


def fresh(reference: Playlist, current: Playlist, at_least: int = 1) -> bool:
    """``current`` lists at least ``at_least`` segments and none that ``reference``
    lists: all the media it offers was published after the reference was read."""
    return len(current.segments) >= at_least and len(new_segments(reference, current)) == len(current.segments)


def kind_error(playlist: Playlist, master: bool | None) -> str | None:
    """Why ``playlist`` is not of the kind its stream is configured to have (None when it
    is): a master playlist exactly when ``master``, a media playlist with at least one
    segment otherwise; ``master`` None takes either kind. A playlist left by the stream's
    previous configuration (a media playlist before the ladder, or the other way round)
    stays until the new publisher's first fragment replaces it."""
    if master and not playlist.is_master:
        return "a media playlist, where the stream has variants (a master playlist)"
    if master is False and playlist.is_master:
        return "a master playlist, where the stream has no variants (a media playlist)"
    if not playlist.is_master and not playlist.segments:
        return "a media playlist with no segment yet"
    return None


# --- watching -----------------------------------------------------------------------

@dataclass
class Watch:
    """What watching one playlist saw; true when the awaited decision held in time.

    ``from_*`` is the reference reading's last segment, ``to_*`` the last segment of the
    reading that decided (or of the last reading). ``new`` holds every segment seen
    after the reference, in the order first seen; ``seen`` each distinct playlist read,
    in one line; ``errors`` every failed fetch, with the seconds since the start."""

    url: str
    advanced: bool = False
    elapsed_s: float = 0.0
    polls: int = 0
    from_sequence: int | None = None
    from_uri: str | None = None
    to_sequence: int | None = None
    to_uri: str | None = None
    errors: list[str] = field(default_factory=list)
    seen: list[str] = field(default_factory=list)
    new: list[Segment] = field(default_factory=list)
    reference: Playlist | None = None
    last: Playlist | None = None

    def __bool__(self) -> bool:
        return self.advanced

    def explain(self) -> str:
        """Why the watch did not succeed (or what it saw), in one sentence."""
        if self.advanced:
            return (f"advanced from sequence {self.from_sequence} to {self.to_sequence} "
                    f"in {self.elapsed_s:.1f}s")
        if self.last is None:
            last = self.errors[-1].split(" ", 1)[-1] if self.errors else "nothing read"
            return f"no answer in {self.elapsed_s:.1f}s ({len(self.errors)} failed fetches, the last: {last})"
        if self.new:
            # new segments, but not what was awaited (a new session, a fresh window...)
            text = (f"not yet: {len(self.new)} new segments in {self.elapsed_s:.1f}s and {self.polls} playlists "
                    f"(at sequence {self.to_sequence}); last playlists {self.seen[-3:]}")
        else:
            text = (f"stale: no new segment in {self.elapsed_s:.1f}s and {self.polls} playlists "
                    f"(still at sequence {self.to_sequence}); last playlists {self.seen[-3:]}")
        if self.errors:
            text += f"; {len(self.errors)} failed fetches, the last {self.errors[-3:]}"
        return text

    def summary(self) -> dict:
        """The watch as plain data (what the module returns)."""
        return {"url": self.url, "advanced": self.advanced, "elapsed_s": round(self.elapsed_s, 2),
                "polls": self.polls, "from_sequence": self.from_sequence, "to_sequence": self.to_sequence,
                "errors": self.errors[-5:]}


def watch(fetch, urls, *, within_s, until=advanced, since=None, poll_s=0.25, started=None,
          clock=time.monotonic, sleep=time.sleep) -> list[Watch]:
    """Poll each playlist of ``urls`` (``fetch(url)`` returns a ``Playlist`` or raises
    ``HlsError``) until ``until(reference, current)`` holds for every one, or until
    ``within_s`` seconds after ``started`` (a ``clock()`` time, by default now). Returns
    one ``Watch`` per URL, in order.

    The reference is ``since[url]`` (a reading taken before, e.g. before a fault), else
    the first reading that answers (which ``until`` is asked about too, so a predicate on
    the current reading alone, such as its kind, holds at once). Failed fetches (a 404
    while the publisher reconnects, a refused connection while nginx restarts, a TLS
    error) are recorded, not raised: the question is only whether the decision holds in
    time. A decision reached after the deadline does not count.
    """
    started = clock() if started is None else started
    since = since or {}
    watches = [Watch(url=url) for url in urls]
    for each in watches:
        reference = since.get(each.url)
        if reference is not None:
            each.reference = reference
            each.from_sequence, each.from_uri = reference.last_sequence, reference.last_uri
    while True:
        for each in watches:
            if not each.advanced:
                _poll(each, fetch, until, started, within_s, clock)
        if all(watches):
            return watches
        remaining = within_s - (clock() - started)
        if remaining <= 0:
            return watches
        sleep(min(poll_s, remaining))


def _poll(each: Watch, fetch, until, started: float, within_s: float, clock) -> None:
    try:
        current = fetch(each.url)
    except HlsError as error:
        each.elapsed_s = clock() - started
        each.errors.append(f"{each.elapsed_s:.1f}s {error}")
        return
    each.elapsed_s = clock() - started
    each.polls += 1
    each.last = current
    line = current.short()
    if not each.seen or each.seen[-1] != line:
        each.seen.append(line)
    if each.reference is None:
        each.reference = current
        each.from_sequence, each.from_uri = current.last_sequence, current.last_uri
    known = {segment.uri for segment in each.new}
    each.new.extend(segment for segment in new_segments(each.reference, current) if segment.uri not in known)
    each.to_sequence, each.to_uri = current.last_sequence, current.last_uri
    if each.elapsed_s <= within_s and until(each.reference, current):
        each.advanced = True


# --- the whole check of a set of streams -------------------------------------------

@dataclass
class StreamCheck:
    """One stream: the wait for its playlist (of the expected kind), then each media
    playlist it offers (itself, or a master playlist's renditions) watched to advance."""

    url: str
    playlist: Watch
    # the kind expected: True a master playlist, False a media playlist, None either
    master: bool | None = None
    renditions: list[Watch] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.playlist) and bool(self.renditions) and all(self.renditions)

    def explain(self) -> str:
        """What failed, naming the rendition; empty when nothing did."""
        if not self.playlist:
            kind = kind_error(self.playlist.last, self.master) if self.playlist.last is not None else None
            if kind:
                return (f"{self.url} is {kind} after {self.playlist.elapsed_s:.1f}s "
                        f"(last read: {self.playlist.seen[-1:]})")
            return f"{self.url}: {self.playlist.explain()}"
        return "; ".join(f"rendition {watched.url}: {watched.explain()}" for watched in self.renditions
                         if not watched)


def check_streams(fetch, streams, *, within_s, poll_s=0.5, clock=time.monotonic, sleep=time.sleep) -> list[StreamCheck]:
    """The closing check of a set of streams, with one deadline (``within_s`` from now)
    for all of it: ``streams`` maps each stream's playlist URL to whether it is a master
    playlist (True: the stream has variants; False: a media playlist; None: either);
    ``fetch(url)`` reads the playlist at ``url`` as it is (not following a master).
    First each playlist is polled until it is of that kind (``kind_error``), then every
    media playlist (the stream's own, or each of its master's renditions) until it lists
    a segment that its first reading did not (``advanced``). All the streams are polled
    together, each playlist every ``poll_s`` seconds."""
    started = clock()
    urls = list(streams)

    def of_its_kind(_reference: Playlist, current: Playlist) -> bool:
        return kind_error(current, streams[current.url]) is None

    found = watch(fetch, urls, within_s=within_s, until=of_its_kind, poll_s=poll_s, started=started,
                  clock=clock, sleep=sleep)
    checks = [StreamCheck(url=url, playlist=each, master=streams[url]) for url, each in zip(urls, found)]
    media: list[str] = []
    since: dict[str, Playlist] = {}
    owner: dict[str, StreamCheck] = {}
    for check in checks:
        playlist = check.playlist.last
        if not check.playlist or playlist is None:
            continue
        if playlist.is_master:
            rendition_urls = [variant.uri for variant in playlist.variants]
        else:
            rendition_urls = [playlist.url]
            since[playlist.url] = playlist  # the reading that was of the right kind
        for url in rendition_urls:
            if url not in owner:
                media.append(url)
                owner[url] = check
    watched = watch(fetch, media, within_s=within_s, since=since, poll_s=poll_s, started=started,
                    clock=clock, sleep=sleep)
    for each in watched:
        owner[each.url].renditions.append(each)
    return checks
