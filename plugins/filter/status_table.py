# -*- coding: utf-8 -*-
# Copyright: livestream.aws contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The livestream.aws.status_table filter: what `ansible-playbook livestream.aws.status` prints,
from the stack as the API describes it and the service's metrics (role livestream.aws.metrics)
as the frontend holds them. Pure functions of their inputs (standard library only)."""

from __future__ import annotations

import re
import time

DOCUMENTATION = r"""
name: status_table
author: livestream.aws contributors
version_added: "0.1.0"
short_description: The service's status as a short table
description:
  - Given the stack (the C(stack) that M(livestream.aws.stack_info) returns) and the service's
    metrics in Prometheus' text format as the frontend holds them (its own collector's file, and
    what the backend and the bastion pushed), says the stack's addresses and instance states,
    each stream (live or not, viewers, ingest bit rate and frame rate, the age of its newest
    fragment, the restarts of its ffmpeg unit since the backend booted), the certificate's expiry,
    and whether the bastion's NAT is up.
  - A part whose metrics are missing is said to be unknown.
options:
  _input:
    description: The stack, as M(livestream.aws.stack_info) returns it (C(stack)).
    type: dict
    required: true
  frontend:
    description: The frontend's metrics (its collector's textfile), empty when unknown.
    type: str
    default: ""
  backend:
    description: The backend's metrics as it pushed them to the frontend, empty when unknown.
    type: str
    default: ""
  bastion:
    description: The bastion's metrics as it pushed them to the frontend, empty when unknown.
    type: str
    default: ""
  now:
    description: The time to measure ages against (UNIX time); this machine's clock by default.
    type: float
"""

EXAMPLES = r"""
- name: Show the service's status
  ansible.builtin.debug:
    msg: "{{ stack_info.stack | livestream.aws.status_table(frontend=frontend_text, backend=backend_text) }}"
"""

RETURN = r"""
_value:
  description: The table, one line per row, joined with newlines.
  type: str
"""

SAMPLE = re.compile(r'^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>.*)\})?\s+(?P<value>\S+)(?:\s+\d+)?$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
ROLES = ("bastion", "frontend", "backend")


def samples(text):
    """Prometheus' text format as [(name, {label: value}, value)]; comments and what does not
    parse are left out."""
    found = []
    for line in (text or "").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = SAMPLE.match(line)
        if not match:
            continue
        labels = {key: re.sub(r"\\(.)", lambda m: {"n": "\n"}.get(m.group(1), m.group(1)), value)
                  for key, value in LABEL.findall(match["labels"] or "")}
        try:
            found.append((match["name"], labels, float(match["value"])))
        except ValueError:
            continue
    return found


def _by(found, name, key):
    return {labels.get(key, ""): value for metric, labels, value in found if metric == name}


def _age(seconds):
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.0f} h"


def _table(rows):
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]


def _tag(resource, key):
    tags = resource.get("tags") or {}
    return tags.get(key, "") if isinstance(tags, dict) else ""


def instance_rows(stack):
    addresses = {a.get("instance_id"): a.get("public_ip") for a in stack.get("addresses") or [] if a.get("instance_id")}
    rows = [("role", "instance", "state", "private", "public")]
    instances = sorted(stack.get("instances") or [],
                       key=lambda i: (ROLES.index(_tag(i, "Role")) if _tag(i, "Role") in ROLES else 9, i.get("instance_id", "")))
    for instance in instances:
        public = addresses.get(instance.get("instance_id")) or instance.get("public_ip_address") or "-"
        if instance.get("instance_id") in addresses:
            public += " (Elastic IP)"
        rows.append((_tag(instance, "Role") or "?", instance.get("instance_id", "?"),
                     (instance.get("state") or {}).get("name", "?"), instance.get("private_ip_address") or "-", public))
    return rows


def stream_rows(frontend, backend):
    streams = []
    for metric, labels, _value in frontend + backend:
        if metric.startswith("livestream_stream_") and labels.get("stream") and labels["stream"] not in streams:
            streams.append(labels["stream"])
    live = _by(frontend, "livestream_stream_live", "stream")
    viewers = _by(frontend, "livestream_stream_viewers", "stream")
    rows = [("stream", "live", "viewers", "kbit/s", "fps", "newest fragment", "restarts")]
    for stream in streams:
        def of(name):
            return [(labels, value) for metric, labels, value in frontend + backend
                    if metric == name and labels.get("stream") == stream]
        rates = of("livestream_stream_ingest_bytes_per_second")
        fps = of("livestream_stream_ingest_frames_per_second")
        ages = [value for _labels, value in of("livestream_stream_newest_fragment_age_seconds")]
        restarts = [value for labels, value in of("livestream_stream_unit_restarts_total") if labels.get("unit") == stream]
        rows.append((
            stream,
            {1.0: "yes", 0.0: "no"}.get(live.get(stream), "?"),
            f"{viewers[stream]:.0f}" if stream in viewers else "?",
            f"{sum(value for _labels, value in rates) * 8 / 1000:.0f}" if rates else "-",
            f"{max(value for _labels, value in fps):g}" if fps else "-",
            # the stalest rendition's newest fragment: how far behind the slowest one is
            _age(max(ages)) if ages else "-",
            f"{restarts[0]:.0f}" if restarts else ("?" if not backend else "-"),
        ))
    return rows


def status_table(stack, frontend="", backend="", bastion="", now=None):
    now = time.time() if now is None else float(now)
    front, back, jump = samples(frontend), samples(backend), samples(bastion)
    lines = [f"stack {stack.get('name', '?')}"]
    lines += ["  " + line for line in _table(instance_rows(stack))]
    lines.append("")
    if front or back:
        lines += _table(stream_rows(front, back))
    else:
        lines.append("streams: unknown (no metrics on the frontend: is it configured?)")
    lines.append("")
    expiry = _by(front, "livestream_certificate_expiry_timestamp_seconds", "domain")
    for domain, at in sorted(expiry.items()):
        lines.append(f"certificate {domain}: expires {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(at))}, "
                     f"in {(at - now) / 86400:.0f} days")
    if not expiry:
        lines.append("certificate: unknown")
    nat = [value for metric, _labels, value in jump if metric == "livestream_nat_up"]
    lines.append("bastion NAT: " + ({1.0: "up", 0.0: "DOWN"}.get(nat[0], "?") if nat else "unknown"))
    collected = []
    for role, found in (("frontend", front), ("backend", back), ("bastion", jump)):
        at = [value for metric, _labels, value in found if metric == "livestream_metrics_collected_timestamp_seconds"]
        collected.append(f"{role} {_age(max(0.0, now - at[0]))} ago" if at else f"{role} never")
    lines.append("metrics collected: " + ", ".join(collected))
    return "\n".join(lines)


class FilterModule:
    def filters(self):
        return {"status_table": status_table}
