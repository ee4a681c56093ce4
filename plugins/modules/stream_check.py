#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: livestream.aws contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: stream_check
version_added: 0.1.0
short_description: Check that every stream of a livestream service plays over HTTPS
description:
  - Reads the list of streams that the player page offers (C(streams.json) at O(url)) and,
    for every stream, waits until its playlist is of the kind the stream is configured to
    have (a master playlist exactly when the stream has C(variants), the ABR ladder; a media
    playlist with at least one segment otherwise), then until every media playlist (a master
    playlist's renditions included) lists a segment that its first reading did not.
  - A playlist left by a stream's previous configuration (a media playlist before the ladder,
    or the other way round) stays until the new publisher's first fragment replaces it; the
    wait for the kind lets a run that switched a stream from C(copy) to C(transcode) pass.
  - All of it within one deadline (O(timeout)), every playlist polled every O(poll_interval)
    seconds; fetch failures while waiting (an HTTP error, a refused connection, a TLS error)
    are recorded and polling goes on.
  - Fails, naming the stream and the rendition and why (the last HTTP status or TLS error,
    or that the playlist stayed stale), when one does not play in time.
  - TLS is always verified, against the system's CAs or O(ca_path).
  - Changes nothing; safe in check mode. Runs where it is called (the controller, in
    C(playbooks/configure.yml)), so the service is checked the way its viewers reach it.
author:
  - livestream.aws maintainers (@livestream-aws)
options:
  url:
    description:
      - The player page's address, C(https://<domain>/); C(streams.json) and the streams'
        playlists (their C(playlist) paths) are read relative to it.
    type: str
    required: true
  ca_path:
    description:
      - A PEM file of the CA certificates to trust instead of the system's (a private ACME CA,
        such as the lab's). A path that is not a file fails the check at once.
    type: path
  timeout:
    description:
      - Seconds for the whole check, from reading C(streams.json) to the last rendition
        advancing.
    type: float
    default: 120
  poll_interval:
    description:
      - Seconds between two readings of the same playlist.
    type: float
    default: 0.5
notes:
  - The streams' list is the one the player page offers (C(/streams.json), written by the
    C(livestream.aws.frontend) role), each item with its C(name), C(playlist) (the path of its
    playlist), C(variants) (whether it is a master playlist) and C(encoder) (whether an encoder
    publishes it, over RTMPS; such a stream is left out of the check).
seealso:
  - name: HLS (RFC 8216)
    description: Master and media playlists, the media sequence.
    link: https://www.rfc-editor.org/rfc/rfc8216
"""

EXAMPLES = r"""
- name: Check that every stream plays over HTTPS
  livestream.aws.stream_check:
    url: https://live.example.com/
  when: not ansible_check_mode

- name: The same, trusting a private CA, with a shorter deadline
  livestream.aws.stream_check:
    url: https://live.example.test/
    ca_path: /var/lib/livestream-lab/pebble/root.pem
    timeout: 60
  register: streams_checked
"""

RETURN = r"""
elapsed_s:
  description: Seconds the whole check took.
  returned: always
  type: float
  sample: 3.42
encoder_streams:
  description:
    - The names of the streams that an encoder publishes (C(encoder) in C(streams.json)), which are
      not checked (they play only while their encoder publishes).
  returned: when C(streams.json) was read
  type: list
  elements: str
  sample: [studio]
streams:
  description:
    - Each stream the player offers and what the check saw of it, in the order of C(streams.json),
      those an encoder publishes left out.
  returned: when C(streams.json) was read
  type: list
  elements: dict
  contains:
    name:
      description: The stream's name.
      type: str
      sample: test
    playlist:
      description: The address of the stream's playlist.
      type: str
      sample: https://live.example.com/hls/test.m3u8
    variants:
      description: Whether the stream is configured with variants (a master playlist).
      type: bool
      sample: true
    kind:
      description: The kind of playlist last read, V(master) or V(media); null when none was read.
      type: str
      sample: master
    ok:
      description: Whether the playlist was of the expected kind and every media playlist advanced.
      type: bool
      sample: true
    error:
      description: Why the stream did not play (naming the rendition), null when it did.
      type: str
      sample: null
    renditions:
      description:
        - Each media playlist watched (the stream's own, or its master playlist's renditions, in
          the master's order) and what was seen of it.
        - Empty when the stream's playlist never was of the expected kind.
      type: list
      elements: dict
      contains:
        url:
          description: The media playlist's address.
          type: str
          sample: https://live.example.com/hls/test_720p2628kbs/index.m3u8
        advanced:
          description: Whether it listed a new segment in time.
          type: bool
          sample: true
        from_sequence:
          description: The media sequence number of the last segment of its first reading.
          type: int
          sample: 41
        to_sequence:
          description: The media sequence number of the last segment of its last reading.
          type: int
          sample: 42
        elapsed_s:
          description: Seconds from the start of the check to the reading that decided (or to the last one).
          type: float
          sample: 2.1
        polls:
          description: How many readings answered.
          type: int
          sample: 4
        errors:
          description: The last (up to five) failed fetches, each with the seconds since the start.
          type: list
          elements: str
          sample: ["0.4s GET https://live.example.com/hls/test_720p2628kbs/index.m3u8: HTTP 404"]
"""

import http.client
import json
import os
import ssl
import time
import urllib.error

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.urls import ConnectionError as UrlsConnectionError, open_url

from ansible_collections.livestream.aws.plugins.module_utils.hls import HlsError, check_streams, parse_playlist

# the longest a single request may take (the deadline may leave less)
REQUEST_TIMEOUT_S = 10


def _reason(error):
    """An HTTP status, a TLS error or a connection error, in a few words."""
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code}"
    if isinstance(error, urllib.error.URLError):
        error = error.reason if isinstance(error.reason, BaseException) else error
        if not isinstance(error, ssl.SSLError):
            return str(getattr(error, "reason", error))
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"TLS error: certificate verify failed: {error.verify_message}"
    if isinstance(error, ssl.SSLError):
        return f"TLS error: {error.reason or error}"
    return str(error) or type(error).__name__


class Reader:
    """GETs over HTTPS with the CA to trust, each within the check's deadline."""

    def __init__(self, ca_path, deadline):
        self.ca_path = ca_path
        self.deadline = deadline

    def get(self, url):
        timeout = max(1.0, min(REQUEST_TIMEOUT_S, self.deadline - time.monotonic()))
        try:
            answer = open_url(url, timeout=timeout, validate_certs=True, ca_path=self.ca_path,
                              headers={"Cache-Control": "no-cache"}, follow_redirects="safe")
            return answer.read()
        except (urllib.error.URLError, ssl.SSLError, OSError, http.client.HTTPException, UrlsConnectionError,
                ValueError) as error:
            raise HlsError(f"GET {url}: {_reason(error)}") from error

    def playlist(self, url):
        return parse_playlist(self.get(url).decode("utf-8", "replace"), url)

    def streams(self, url):
        try:
            streams = json.loads(self.get(url))
        except ValueError as error:
            raise HlsError(f"GET {url}: not JSON ({error})") from error
        if not isinstance(streams, list) or not all(isinstance(item, dict) and item.get("playlist")
                                                    for item in streams):
            raise HlsError(f"GET {url}: not a list of streams with their playlists")
        return streams


def read_streams(reader, url, deadline, poll_interval):
    """streams.json, polled until it answers or the deadline passes: (streams, errors)."""
    errors = []
    while True:
        try:
            return reader.streams(url), errors
        except HlsError as error:
            errors.append(str(error))
        if time.monotonic() >= deadline:
            return None, errors
        time.sleep(min(poll_interval, max(0.0, deadline - time.monotonic())))


def run(params):
    """The check: (failed, message, result)."""
    started = time.monotonic()
    deadline = started + params["timeout"]
    base = params["url"] if params["url"].endswith("/") else params["url"] + "/"
    reader = Reader(params["ca_path"], deadline)
    listing = base + "streams.json"
    streams, errors = read_streams(reader, listing, deadline, params["poll_interval"])
    if streams is None:
        return True, (f"Could not read the list of streams {listing} within {params['timeout']:g}s: "
                      f"{errors[-1] if errors else 'no answer'}"), {"elapsed_s": round(time.monotonic() - started, 2)}
    # an encoder's stream plays only while its encoder publishes: nothing to wait for here
    waiting = [item.get("name") for item in streams if item.get("encoder")]
    offered = len(streams)
    streams = [item for item in streams if not item.get("encoder")]
    urls = [base + str(item["playlist"]).lstrip("/") for item in streams]
    playlists = {}
    for url, item in zip(urls, streams):
        playlists.setdefault(url, bool(item.get("variants")))
    checks = check_streams(reader.playlist, playlists, within_s=max(0.0, deadline - time.monotonic()),
                           poll_s=params["poll_interval"])
    by_url = {check.url: check for check in checks}
    report, failures = [], []
    for url, item in zip(urls, streams):
        check = by_url[url]
        last = check.playlist.last
        error = None if check else check.explain()
        if error:
            failures.append(f"stream {item.get('name', url)!r}: {error}")
        report.append({
            "name": item.get("name"),
            "playlist": url,
            "variants": playlists[url],
            "kind": None if last is None else ("master" if last.is_master else "media"),
            "ok": bool(check),
            "error": error,
            "renditions": [watched.summary() for watched in check.renditions],
        })
    result = {"streams": report, "encoder_streams": waiting, "elapsed_s": round(time.monotonic() - started, 2)}
    if not offered:
        return True, f"The player offers no stream ({listing} is an empty list)", result
    if failures:
        return True, (f"Not every stream plays over HTTPS within {params['timeout']:g}s: "
                      + "; ".join(failures)), result
    encoders = f"; live when their encoders publish: {', '.join(map(str, waiting))}" if waiting else ""
    return False, f"Every stream plays over HTTPS ({len(streams)}){encoders}", result


def main():
    module = AnsibleModule(
        argument_spec={
            "url": {"type": "str", "required": True},
            "ca_path": {"type": "path"},
            "timeout": {"type": "float", "default": 120},
            "poll_interval": {"type": "float", "default": 0.5},
        },
        supports_check_mode=True,
    )
    if not module.params["url"].startswith("https://"):
        module.fail_json(msg=f"url must be an https:// address (TLS is always verified), not {module.params['url']!r}")
    if module.params["timeout"] <= 0 or module.params["poll_interval"] <= 0:
        module.fail_json(msg="timeout and poll_interval must be positive")
    # at once, not as every request failing until the timeout
    if module.params["ca_path"] and not os.path.isfile(module.params["ca_path"]):
        module.fail_json(msg=f"ca_path: {module.params['ca_path']} is not a file on this machine")
    failed, message, result = run(module.params)
    if failed:
        module.fail_json(msg=message, changed=False, **result)
    module.exit_json(msg=message, changed=False, **result)


if __name__ == "__main__":
    main()
