# -*- coding: utf-8 -*-
# Copyright: livestream.aws contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The livestream.aws.restream_destinations filter: every restreaming destination of every
stream, each with what the backend's unit for it needs (used by the livestream.aws.backend
role; the destinations' checks are the livestream.aws.streams role's; the logic is
module_utils/streams.py's)."""

from __future__ import annotations

from ansible_collections.livestream.aws.plugins.module_utils.streams import restream_destinations

DOCUMENTATION = r"""
name: restream_destinations
author: livestream.aws contributors
version_added: "0.1.0"
short_description: Every restreaming destination of a list of streams, one item each
description:
  - Given the streams (C(livestream_streams), each with an optional C(restream) list of
    C({url, key}) destinations) and the ABR ladder, returns one item per destination, in the order
    given, with the name of the backend's systemd unit instance for it, the stream the backend sends it (as the
    frontend's C(live) application has it, the ladder's top rendition for a stream in mode
    V(transcode)), and the URL to publish to (C(<url>/<key>), or the URL alone without a key).
options:
  _input:
    description: The streams.
    type: list
    elements: dict
    required: true
  ladder:
    description: The ABR ladder (C({height, video_kbps, audio_kbps}) items).
    type: list
    elements: dict
    required: true
"""

EXAMPLES = r"""
- name: One unit per destination
  ansible.builtin.debug:
    msg: "{{ item.name }} sends {{ item.published }}"
  loop: "{{ backend_streams | livestream.aws.restream_destinations(backend_abr_ladder) }}"
  loop_control:
    label: "{{ item.name }}"
"""

RETURN = r"""
_value:
  description: One item per destination.
  type: list
  elements: dict
  contains:
    name:
      description:
        - The name of the backend's unit instance for it, C(<stream>.<n>) (n from 1, in the
          stream's order), as a stream's is its name (C(livestream-stream@<name>.service)).
      type: str
      sample: studio.1
    stream:
      description: The stream's name.
      type: str
    published:
      description: The stream the frontend's C(live) application holds, which the destination gets.
      type: str
      sample: studio_1080
    url:
      description: Where to publish (a secret, since it holds the destination's key).
      type: str
    secure:
      description: Whether the destination is RTMPS (its certificate is then verified).
      type: bool
    secrets:
      description: The strings that must never reach a log (the URL, the key), longest first.
      type: list
      elements: str
"""


class FilterModule:
    def filters(self):
        return {"restream_destinations": restream_destinations}
