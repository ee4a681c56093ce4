"""Simulated viewers as the player page counts them (roles/frontend/files/player/player.js): each
has a random session ID of its own and, while it watches, sends the page's beacon
(``/viewers?stream=<name>&session=<id>``) every ``interval_s`` and reads the stream's playlist,
as a player does. Through an ``HlsClient`` (its address per name, its CA, its headers)."""

from __future__ import annotations

import json
import secrets
import threading
import time
import urllib.parse

from .hls import HlsClient, HlsError


class BeaconViewers:
    """``count`` viewers of ``stream`` at ``base_url`` (https://<domain>), one thread for all.
    ``first_round`` is set once each has sent its first beacon; ``errors`` holds what failed."""

    def __init__(self, client: HlsClient, base_url: str, stream: str, count: int, *, interval_s: float = 5.0,
                 playlist: str | None = None):
        self.client = client
        self.base_url = base_url.rstrip("/")
        self.stream = stream
        self.sessions = [secrets.token_hex(16) for _viewer in range(count)]
        self.interval_s = interval_s
        self.playlist = playlist
        self.first_round = threading.Event()
        self.errors: list[str] = []
        self.counts: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def beacon_url(self, session: str) -> str:
        return f"{self.base_url}/viewers?" + urllib.parse.urlencode({"stream": self.stream, "session": session})

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            for session in self.sessions:
                try:
                    self.counts = json.loads(self.client.get(self.beacon_url(session)))["viewers"]
                    if self.playlist:
                        self.client.get(f"{self.base_url}{self.playlist}")
                except (HlsError, ValueError, KeyError) as error:
                    self.errors.append(str(error))
            self.first_round.set()
            self._stop.wait(max(0.0, self.interval_s - (time.monotonic() - started)))

    def __enter__(self) -> BeaconViewers:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
