# -*- coding: utf-8 -*-
# Copyright: livestream.aws contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The livestream.aws.cdn_origin filter: the frontend's own name behind a CDN (the name is
module_utils/cdn.py's, which livestream.aws.cdn and livestream.aws.stack_provision use too)."""

from __future__ import annotations

from ansible_collections.livestream.aws.plugins.module_utils.cdn import origin_name

DOCUMENTATION = r"""
name: cdn_origin
author: livestream.aws contributors
version_added: "0.3.0"
short_description: The frontend's own name behind the viewers' CDN
description:
  - Given the viewers' name, returns the name the CDN reaches the frontend by, C(origin.<domain>) -
    the name provisioning points at the frontend's address when C(livestream_cdn) is V(cloudfront),
    and the name of the frontend's certificate then.
options:
  _input:
    description: The viewers' name (C(livestream_domain)).
    type: str
    required: true
"""

EXAMPLES = r"""
- name: The frontend's name behind CloudFront
  ansible.builtin.debug:
    msg: "{{ 'live.example.com' | livestream.aws.cdn_origin }}"  # origin.live.example.com
"""

RETURN = r"""
_value:
  description: The origin's name.
  type: str
  sample: origin.live.example.com
"""


class FilterModule:
    def filters(self):
        return {"cdn_origin": origin_name}
