# -*- coding: utf-8 -*-
# Copyright: livestream.aws contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The livestream.aws.stream_publications filter: every application, name and key the
frontend accepts a publisher for (used by the livestream.aws.frontend role; the logic is
module_utils/streams.py's, which the backend's names come from too)."""

from __future__ import annotations

from ansible_collections.livestream.aws.plugins.module_utils.streams import publications

DOCUMENTATION = r"""
name: stream_publications
author: livestream.aws contributors
version_added: "0.1.0"
short_description: Where the frontend accepts each stream's publisher, and with which key
description:
  - Given the streams (C(livestream_streams)) and the ABR ladder, returns one item per RTMP
    application and stream name the frontend accepts a publisher for, with the stream's key - in
    the application C(live), each stream as the backend publishes it (one name per rendition,
    C(<name>_<height>), in mode V(transcode), else its name), and in the application C(ingest)
    each stream whose source is V(ingest) (what its encoder publishes).
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
- name: The names the frontend accepts publishers for
  ansible.builtin.debug:
    msg: "{{ frontend_streams | livestream.aws.stream_publications(frontend_abr_ladder) | map(attribute='name') }}"
"""

RETURN = r"""
_value:
  description: One item per accepted publication.
  type: list
  elements: dict
  contains:
    application:
      description: The RTMP application, V(live) or V(ingest).
      type: str
    name:
      description: The stream name published there.
      type: str
      sample: studio_1080
    stream:
      description: The stream it belongs to.
      type: str
      sample: studio
    key:
      description: The key it must carry (a secret).
      type: str
    path:
      description: C(<application>/<name>/<key>), the key's place under the frontend's keys directory.
      type: str
"""


class FilterModule:
    def filters(self):
        return {"stream_publications": publications}
