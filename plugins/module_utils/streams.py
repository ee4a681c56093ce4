# -*- coding: utf-8 -*-
# Copyright: livestream.aws contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""What the stream contract (the livestream.aws.streams role) implies, once, for the frontend
and the backend alike: under which names each stream is published to the frontend's RTMP
applications (and so which keys the frontend accepts), and what each restreaming destination
gets. Pure functions of the streams and the ABR ladder (standard library only), used by the
filters livestream.aws.stream_publications and livestream.aws.restream_destinations."""

from __future__ import annotations

# the frontend's RTMP applications: what the backend publishes (viewers' HLS), and what
# encoders publish (streams whose source is "ingest")
LIVE = "live"
INGEST = "ingest"


def _top(ladder):
    return max((rendition["height"] for rendition in ladder), default=None)


def published_names(stream, ladder):
    """The names the backend publishes ``stream`` under to the live application: one per
    rendition of the ladder (``<name>_<height>``, highest first) in mode transcode, else its name."""
    if stream.get("mode", "copy") == "transcode":
        return [f"{stream['name']}_{rendition['height']}" for rendition in ladder]
    return [stream["name"]]


def publications(streams, ladder):
    """Every (application, name, key) the frontend accepts a publisher for: each stream's
    published names in the live application, and an encoder's stream (source ingest) in the
    ingest application too, all with the stream's key. ``path``: <application>/<name>/<key>."""
    found = []
    for stream in streams:
        places = [(LIVE, name) for name in published_names(stream, ladder)]
        if stream.get("source") == INGEST:
            places.insert(0, (INGEST, stream["name"]))
        for application, name in places:
            found.append({"application": application, "name": name, "stream": stream["name"], "key": stream["key"],
                          "path": f"{application}/{name}/{stream['key']}"})
    return found


def restream_destinations(streams, ladder):
    """One item per restreaming destination of every stream, in the order given: the backend
    unit instance's ``name`` (<stream>.<n>), the ``stream``, what it gets (``published``: the
    stream as the live application holds it, a ladder's top rendition), the ``url`` to publish to
    (<url>/<key>, or the URL alone), whether it is RTMPS (``secure``), and the ``secrets`` its
    journal must never show, longest first."""
    destinations = []
    for stream in streams:
        published = published_names(stream, ladder)[0]
        for number, destination in enumerate(stream.get("restream") or [], start=1):
            url = str(destination["url"]).rstrip("/")
            key = destination.get("key") or ""
            full = f"{url}/{key}" if key else url
            destinations.append({
                "name": f"{stream['name']}.{number}",
                "stream": stream["name"],
                "published": published,
                "url": full,
                "secure": url.startswith("rtmps://"),
                "secrets": sorted(filter(None, {full, key}), key=len, reverse=True),
            })
    return destinations
