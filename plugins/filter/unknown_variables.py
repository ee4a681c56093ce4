# -*- coding: utf-8 -*-
# Copyright: livestream.aws contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The livestream.aws.unknown_variables filter: which of the variable names given are not
known, each with the nearest known name (a typo of a setting is otherwise silently ignored)."""

from __future__ import annotations

import difflib

DOCUMENTATION = r"""
name: unknown_variables
author: livestream.aws contributors
version_added: "0.1.0"
short_description: Names the variables that are not known settings, with the nearest known name
description:
  - Given the names of variables set (for example C(query('ansible.builtin.varnames', '^livestream_'))) and
    the names known, returns one message for each name that is not known, naming the nearest known
    name when one is close, so that a typo of a setting (which Ansible would ignore) stops the run.
options:
  _input:
    description: The names of the variables set.
    type: list
    elements: str
    required: true
  known:
    description: The names that are known.
    type: list
    elements: str
    required: true
"""

EXAMPLES = r"""
- name: Every livestream_* variable is a known setting
  ansible.builtin.assert:
    that: unknown | length == 0
    fail_msg: "{{ unknown | join('; ') }}"
  vars:
    unknown: "{{ query('ansible.builtin.varnames', '^livestream_') | livestream.aws.unknown_variables(livestream_settings) }}"
"""

RETURN = r"""
_value:
  description: One message per unknown name, in order, e.g. C(unknown variable livestream_admin_cidr (did you mean livestream_admin_cidrs?)).
  type: list
  elements: str
"""


def unknown_variables(names, known):
    messages = []
    for name in sorted(set(names) - set(known)):
        nearest = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        hint = f" (did you mean {nearest[0]}?)" if nearest else f" (the settings are: {', '.join(sorted(known))})"
        messages.append(f"unknown variable {name}{hint}")
    return messages


class FilterModule:
    def filters(self):
        return {"unknown_variables": unknown_variables}
