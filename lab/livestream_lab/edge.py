"""CloudFront in the lab: one edge location that serves the distributions the API holds.

    root ns ("the internet": viewers) --- ls<hash>e0 | ls<hash>e1 --- edge netns ls<hash>-edge
                                                                 nginx on the edge address
    edge -> origin: through the root namespace and the internet gateway to the origin's public
    address, arriving from the edge address (what CloudFront's origin-facing prefix list holds)

The edge address is one of the last 16 addresses of the lab's public block
(``config.edge_block``); the lab's API never hands those out, and its managed prefix list
``com.amazonaws.global.cloudfront.origin-facing`` holds them.

A realiser (``python -m livestream_lab.edge --stack NAME``, started by `up`, stopped by
`down`) polls the API every ``POLL_SECONDS``, as CloudFront deploys a distribution
asynchronously after each change: it renders nginx's configuration from every distribution
(behaviours, origins, TTLs, error caching, viewer TLS), checks it (``nginx -t``), reloads
nginx, and then tells the API that the distribution's configuration (its ETag) is deployed.
It keeps the lab's public DNS in line with Route 53 too (a record that changed after `up`,
an alias to a distribution), as AWS's DNS follows the API.

Viewer certificates: CloudFront's own ``*.cloudfront.net`` and, for a distribution's
aliases, the ACM certificate it names once ACM says it is ISSUED; both issued by the lab's
ACME server (pebble) standing in for ACM, over DNS-01 through the lab's public DNS
(pebble-challtestsrv), by lego run inside the edge's namespace (which reaches nothing but
the lab's addresses).

How nginx models CloudFront (each rule's source is in lab/README.md):
- one cache per distribution; the cache key is the path (plus the query string when a
  behaviour forwards it); viewers' headers, cookies and (by default) query strings are not
  forwarded; the origin gets Host and SNI = the origin's domain name, its custom headers,
  ``Via``, ``X-Forwarded-For`` and ``User-Agent: Amazon CloudFront``;
- a cache behaviour is a regex location (path patterns in order; the default last);
- how long a response stays: a second nginx hop (a unix socket per behaviour) computes
  CloudFront's TTL from the origin's answer and hands it to the cache as X-Accel-Expires;
  the cache layer ignores Cache-Control/Expires itself;
- request collapsing is proxy_cache_lock, for behaviours that may cache (MaxTTL above 0);
  X-Cache as CloudFront sets it.
"""

from __future__ import annotations

import argparse
import hashlib
import ipaddress
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import traceback
import urllib.error
import urllib.request
from pathlib import Path

import boto3

from . import config, network, services, strict
from .config import LabConfig
from .stack import cloudfront_client, describe
from .network import comment
from .system import MARKER, alive, output, run, spawn, stop

POLL_SECONDS = 2.0
# how many rounds apart the realiser reads the whole stack (Route 53's records, the groups)
SYNC_ROUNDS = 3
NGINX = "/usr/sbin/nginx"
LEGO = "/usr/bin/lego"
# CloudFront's default error caching (custom-error-pages-expiration.html) and the 4xx/5xx
# codes it caches (HTTPStatusCodes.html#HTTPStatusCodes-cached-errors; 416 never)
DEFAULT_ERROR_CACHING_SECONDS = 10
CACHED_ERRORS = (400, 403, 404, 405, 414, 500, 501, 502, 503, 504)
# errors for which the origin's no-store/no-cache/private means "do not cache"
NO_CACHE_HONOURED_ERRORS = (404, 410, 414, 501)
# the control endpoint of the lab's API that records a deployed configuration (livestream_lab.cdn_api)
DEPLOYED_PATH = "/livestream-lab/cloudfront/deployed"
# ... and the one that lists every distribution with its configuration, ETag and status
LISTING_PATH = "/livestream-lab/cloudfront"
# viewer TLS security policies (secure-connections-supported-viewer-protocols-ciphers.html)
TLS_POLICIES = {
    "TLSv1.2_2021": ("TLSv1.2 TLSv1.3", "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                     "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                     "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"),
    "TLSv1.2_2019": ("TLSv1.2 TLSv1.3", "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                     "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                     "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
                     "ECDHE-ECDSA-AES128-SHA256:ECDHE-RSA-AES128-SHA256:"
                     "ECDHE-ECDSA-AES256-SHA384:ECDHE-RSA-AES256-SHA384"),
    "TLSv1.2_2018": ("TLSv1.2 TLSv1.3", "HIGH:!aNULL:!MD5:!3DES"),
    "TLSv1.1_2016": ("TLSv1.1 TLSv1.2 TLSv1.3", "HIGH:!aNULL:!MD5"),
    "TLSv1_2016": ("TLSv1 TLSv1.1 TLSv1.2 TLSv1.3", "HIGH:!aNULL:!MD5"),
    "TLSv1": ("TLSv1 TLSv1.1 TLSv1.2 TLSv1.3", "HIGH:!aNULL:!MD5"),
}
DEFAULT_TLS_POLICY = "TLSv1"  # CloudFront's for its own *.cloudfront.net certificate
POP = "LAB1-C1"


def log(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} edge: {message}", flush=True)


def home(lab: LabConfig) -> Path:
    return lab.state_dir / "edge"


# -- rules as regular expressions -------------------------------------------------------

def at_least(number: int) -> str:
    """A regex (no anchors) for decimal integers without leading zeros that are >= ``number``."""
    if number <= 0:
        return r"\d+"
    digits = str(number)
    alternatives = [digits, rf"[1-9]\d{{{len(digits)},}}"]
    for index, digit in enumerate(digits):
        if digit != "9":
            low = int(digit) + 1
            rest = len(digits) - index - 1
            alternatives.append(digits[:index] + f"[{low}-9]" + (rf"\d{{{rest}}}" if rest else ""))
    return "(?:" + "|".join(alternatives) + ")"


def path_pattern(pattern: str) -> str:
    """A CloudFront PathPattern (``*`` any characters, ``/`` included; ``?`` one; case
    sensitive; with or without its leading slash) as an anchored nginx location regex."""
    body = "".join(".*" if char == "*" else "." if char == "?" else re.escape(char) for char in pattern.lstrip("/"))
    return f"^/{body}$"


def _quote(value: str) -> str:
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"').replace("$", "${lsedge_dollar}") + '"'


# -- the configuration ------------------------------------------------------------------

def _items(container: dict | None) -> list:
    return (container or {}).get("Items") or []


def _behaviours(distribution_config: dict) -> list[dict]:
    """The cache behaviours in CloudFront's order of evaluation: path patterns as listed, the default last."""
    return _items(distribution_config.get("CacheBehaviors")) + [distribution_config["DefaultCacheBehavior"]]


def _max_ttl(behaviour: dict) -> int:
    """The longest a behaviour keeps anything: its MaxTTL (CloudFront's default a year when
    unset), never below its MinTTL."""
    high = int(behaviour.get("MaxTTL", 31536000) if behaviour.get("MaxTTL") is not None else 31536000)
    return max(high, int(behaviour.get("MinTTL", 0) or 0))


def _ttl_maps(name: str, behaviour: dict, errors: dict[int, int]) -> list[str]:
    """nginx maps that compute CloudFront's TTL for one behaviour from the origin's answer
    (in the hop that talks to the origin): ``$<name>_xae``, the seconds the cache keeps it.

    Expiration.html: the origin's s-maxage (else max-age) clamped to [MinTTL, MaxTTL]; no
    directive: DefaultTTL; no-cache/no-store/private: MinTTL (0: not cached).
    custom-error-pages-expiration.html: a cached 4xx/5xx for its ErrorCachingMinTTL (10 s
    unless configured), or the origin's max-age if larger (at most MaxTTL); 404, 410, 414
    and 501 with no-cache/no-store/private are not cached; other errors are not cached."""
    low = int(behaviour.get("MinTTL", 0) or 0)
    default = int(behaviour.get("DefaultTTL", 86400) if behaviour.get("DefaultTTL") is not None else 86400)
    high = _max_ttl(behaviour)
    lines = [
        f"map $upstream_http_cache_control ${name}_age {{",
        r'    "~*(?:^|[\s,])s-maxage\s*=\s*\"?0*(\d+)" $1;',
        r'    "~*(?:^|[\s,])max-age\s*=\s*\"?0*(\d+)" $1;',
        '    default "";',
        "}",
        f"map $upstream_http_cache_control ${name}_private {{",
        r'    "~*(?:^|[\s,])(?:no-cache|no-store|private)(?:$|[\s,=])" 1;',
        "    default 0;",
        "}",
        f'map "${name}_private:${name}_age" ${name}_ttl {{',
        f'    "~^1:" {low};',
        f'    "~^0:$" {min(max(default, low), high)};',
        f'    "~^0:{at_least(high + 1)}$" {high};',
        f'    "~^0:{at_least(low)}$" ${name}_age;',
        f"    default {low};",
        "}",
    ]
    # errors: per code, the larger of ErrorCachingMinTTL and the origin's age (<= MaxTTL)
    lines.append(f'map "$status:${name}_private:${name}_age" ${name}_xae {{')
    for code in sorted(set(CACHED_ERRORS) | set(errors)):
        if code == 416:
            continue
        seconds = errors.get(code, DEFAULT_ERROR_CACHING_SECONDS)
        if code in NO_CACHE_HONOURED_ERRORS:
            lines.append(f'    "~^{code}:1:" 0;')
        if high > seconds:  # the origin's longer age, at most MaxTTL
            lines.append(f'    "~^{code}:[01]:{at_least(high + 1)}$" {high};')
            lines.append(f'    "~^{code}:[01]:{at_least(seconds + 1)}$" ${name}_age;')
        lines.append(f'    "~^{code}:" {seconds};')
    lines += ['    "~^[45]" 0;', f"    default ${name}_ttl;", "}"]
    return lines


def _origin_upstream(name: str, origin: dict, records: dict[str, list[str]]) -> list[str]:
    custom = origin.get("CustomOriginConfig") or {}
    https = custom.get("OriginProtocolPolicy", "https-only") != "http-only"
    port = int(custom.get("HTTPSPort", 443) if https else custom.get("HTTPPort", 80))
    addresses = records.get(origin["DomainName"].rstrip(".").lower(), [])
    lines = [f"upstream {name} {{"]
    # resolved through the lab's public DNS (the records the realiser serves); a name that
    # resolves nowhere is CloudFront's 502 (origin DNS failure)
    lines += [f"    server {address}:{port} max_fails=0;" for address in addresses] or \
        ["    server 127.0.0.1:9 down;"]
    lines += ["    keepalive 32;", f"    keepalive_timeout {int(custom.get('OriginKeepaliveTimeout', 5) or 5)}s;", "}"]
    return lines


def render(lab: LabConfig, edge_address, distributions: list[dict], certificates: dict[str, dict],
           records: dict[str, list[str]], default_certificate: dict | None) -> str:
    """nginx's whole configuration for the edge: ``distributions`` as the API gives them
    (get_distribution's Distribution), ``certificates`` (distribution ID -> {names, cert,
    key}: its aliases' certificate, once issued), ``records`` (the lab's public DNS),
    ``default_certificate`` (CloudFront's own *.cloudfront.net, once issued)."""
    base = home(lab)
    address = str(edge_address)
    ca = lab.ca_cert
    lines = [
        "# written by livestream_lab.edge from the lab's CloudFront API: do not edit",
        "daemon off;",
        "worker_processes auto;",
        f"pid {base / 'nginx.pid'};",
        f"error_log {base / 'error.log'} warn;",
        "user nobody nogroup;",
        "events {", "    worker_connections 4096;", "}",
        "http {",
        "    server_tokens off;",
        "    default_type application/octet-stream;",
        "    log_format lsedge '$time_iso8601 $remote_addr $scheme $host \"$request\" $status "
        "$upstream_cache_status $body_bytes_sent';",
        "    log_format lsorigin '$time_iso8601 $status \"$request\" $upstream_addr';",
        # the viewers' log, buffered (a ramp of viewers writes a line per fragment each)
        f"    access_log {base / 'access.log'} lsedge buffer=64k flush=1s;",
        "    sendfile on;",
        "    tcp_nopush on;",
        *(f"    {kind}_temp_path {base / 'tmp' / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")),
        "    ssl_session_cache shared:lsedge_tls:10m;",
        "    ssl_prefer_server_ciphers on;",
        '    geo $lsedge_dollar { default "$"; }',
        r'    map $request_uri $lsedge_path { "~^([^?]*)" $1; }',
        '    map "$status:$upstream_cache_status" $lsedge_x_cache {',
        '        "~^[45]" "Error from cloudfront";',
        '        "~:HIT$" "Hit from cloudfront";',
        '        "~:REVALIDATED$" "RefreshHit from cloudfront";',
        '        default "Miss from cloudfront";',
        "    }",
    ]
    enabled = [d for d in distributions if d["DistributionConfig"].get("Enabled")]
    http2 = any(d["DistributionConfig"].get("HttpVersion", "http2").startswith("http2") for d in enabled)
    policies = [(d["DistributionConfig"].get("ViewerCertificate") or {}).get("MinimumProtocolVersion", DEFAULT_TLS_POLICY)
                for d in enabled]
    # nginx negotiates the protocol before it reads SNI: the strictest distribution's, edge-wide
    order = list(TLS_POLICIES)  # strictest first
    strictest = min((p for p in policies if p in TLS_POLICIES), key=order.index, default=DEFAULT_TLS_POLICY)
    lines += [f"    ssl_protocols {TLS_POLICIES.get(strictest, TLS_POLICIES[DEFAULT_TLS_POLICY])[0]};",
              # what no distribution serves: CloudFront's 403 on HTTP, no TLS handshake without a certificate
              "    server {", f"        listen {address}:80 default_server;", "        return 403;", "    }",
              "    server {", f"        listen {address}:443 ssl{' http2' if http2 else ''} default_server;",
              "        ssl_reject_handshake on;", "    }"]
    for distribution in enabled:
        lines += ["    " + line for line in _distribution(lab, distribution, certificates.get(distribution["Id"]),
                                                          records, default_certificate, address, ca)]
    lines.append("}")
    return "\n".join(lines) + "\n"


def _distribution(lab: LabConfig, distribution: dict, certificate: dict | None, records: dict[str, list[str]],
                  default_certificate: dict | None, address: str, ca: Path) -> list[str]:
    base = home(lab)
    ident = distribution["Id"].lower()
    settings = distribution["DistributionConfig"]
    origins = {origin["Id"]: origin for origin in _items(settings.get("Origins"))}
    errors = {int(item["ErrorCode"]): int(item.get("ErrorCachingMinTTL", DEFAULT_ERROR_CACHING_SECONDS))
              for item in _items(settings.get("CustomErrorResponses"))}
    via = f"1.1 {hashlib.sha256(ident.encode()).hexdigest()[:32]}.cloudfront.net (CloudFront)"
    lines = [f"# distribution {distribution['Id']} ({distribution['DomainName']}), ETag {distribution.get('ETag', '')}",
             f"proxy_cache_path {base / 'cache' / ident} levels=1:2 keys_zone=lsedge_{ident}:16m max_size=2g "
             "inactive=1d use_temp_path=off;"]
    for index, origin in enumerate(origins.values()):
        lines += _origin_upstream(f"lsedge_{ident}_o{index}", origin, records)
    origin_index = {origin_id: index for index, origin_id in enumerate(origins)}
    locations = []
    for number, behaviour in enumerate(_behaviours(settings)):
        name = f"lsedge_{ident}_b{number}"
        socket = base / "run" / f"{ident}-b{number}.sock"
        origin = origins.get(behaviour.get("TargetOriginId"))
        lines += _ttl_maps(name, behaviour, errors)
        lines += [f"upstream {name} {{", f"    server unix:{socket};", "    keepalive 32;", "}"]
        # the hop to the origin: the origin's TTL rules applied, as X-Accel-Expires for the cache
        lines += ["server {", f"    listen unix:{socket};", f"    access_log {base / 'origin.log'} lsorigin;",
                  "    location / {"]
        if origin is None:
            lines += ["        return 502;"]
        else:
            custom = origin.get("CustomOriginConfig") or {}
            https = custom.get("OriginProtocolPolicy", "https-only") != "http-only"
            host = origin["DomainName"].rstrip(".")
            lines += [f"        proxy_pass {'https' if https else 'http'}://lsedge_{ident}_o{origin_index[origin['Id']]};",
                      "        proxy_http_version 1.1;",
                      '        proxy_set_header Connection "";',
                      f"        proxy_set_header Host {_quote(host)};",
                      f"        proxy_connect_timeout {int(origin.get('ConnectionTimeout', 10) or 10)}s;",
                      f"        proxy_read_timeout {int(custom.get('OriginReadTimeout', 30) or 30)}s;"]
            lines += [f"        proxy_set_header {header['HeaderName']} {_quote(header['HeaderValue'])};"
                      for header in _items(origin.get("CustomHeaders"))]
            if origin.get("OriginPath"):  # what CloudFront puts before the request's path
                lines.append(f"        rewrite ^ {_quote(origin['OriginPath'].rstrip('/'))[:-1]}$uri\" break;")
            if https:
                protocols = " ".join(_items(custom.get("OriginSslProtocols"))) or "TLSv1.2"
                lines += ["        proxy_ssl_server_name on;", f"        proxy_ssl_name {_quote(host)};",
                          "        proxy_ssl_verify on;", f"        proxy_ssl_trusted_certificate {ca};",
                          "        proxy_ssl_verify_depth 4;", "        proxy_ssl_session_reuse on;",
                          f"        proxy_ssl_protocols {protocols} TLSv1.3;"]
        lines += [f"        add_header X-Accel-Expires ${name}_xae always;", "    }", "}"]
        locations += _location(behaviour, name, ident, via)
    servers = []
    if default_certificate:
        servers.append(([distribution["DomainName"]], default_certificate,
                        (settings.get("ViewerCertificate") or {}).get("MinimumProtocolVersion", DEFAULT_TLS_POLICY)))
    aliases = _items(settings.get("Aliases"))
    if aliases and certificate:
        servers.append((aliases, certificate,
                        (settings.get("ViewerCertificate") or {}).get("MinimumProtocolVersion", DEFAULT_TLS_POLICY)))
    if not servers:  # HTTP only until a certificate is there
        servers.append(([distribution["DomainName"], *aliases], None, DEFAULT_TLS_POLICY))
    for names, cert, policy in servers:
        protocols, ciphers = TLS_POLICIES.get(policy, TLS_POLICIES[DEFAULT_TLS_POLICY])
        lines += ["server {", f"    listen {address}:80;"]
        if cert:
            lines += [f"    listen {address}:443 ssl;", f"    ssl_certificate {cert['cert']};",
                      f"    ssl_certificate_key {cert['key']};", f"    ssl_protocols {protocols};",
                      f"    ssl_ciphers {ciphers};"]
        lines.append(f"    server_name {' '.join(names)};")
        lines += ["    " + line for line in locations]
        lines.append("}")
    return lines


def _location(behaviour: dict, name: str, ident: str, via: str) -> list[str]:
    pattern = behaviour.get("PathPattern")
    forwarded = behaviour.get("ForwardedValues") or {}
    query = bool(forwarded.get("QueryString"))
    cookies = (forwarded.get("Cookies") or {}).get("Forward", "none")
    methods = _items(behaviour.get("AllowedMethods")) or ["GET", "HEAD"]
    policy = behaviour.get("ViewerProtocolPolicy", "allow-all")
    regex = path_pattern(pattern).replace('"', '\\"') if pattern else ""
    lines = [f'location ~ "{regex}" {{' if pattern else "location / {"]
    if policy == "redirect-to-https":
        lines += ["    if ($scheme = http) {", "        return 301 https://$host$request_uri;", "    }"]
    elif policy == "https-only":
        lines += ["    if ($scheme = http) {", "        return 403;", "    }"]
    lines += [f"    if ($request_method !~ ^({'|'.join(sorted(set(methods)))})$) {{", "        return 403;", "    }"]
    lines += [f"    proxy_pass http://{name}{'$request_uri' if query else '$lsedge_path'};",
              "    proxy_http_version 1.1;",
              # what the viewer sent stays at the edge, except what the behaviour forwards
              "    proxy_pass_request_headers off;",
              '    proxy_set_header Connection "";',
              "    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
              f"    proxy_set_header Via {_quote(via)};",
              '    proxy_set_header User-Agent "Amazon CloudFront";']
    for header in _items(forwarded.get("Headers")):
        if header != "*" and re.fullmatch(r"[A-Za-z0-9-]+", header):
            lines.append(f"    proxy_set_header {header} $http_{header.lower().replace('-', '_')};")
    if cookies != "none":
        lines.append("    proxy_set_header Cookie $http_cookie;")
    # request collapsing: one request to the origin per object, the others wait for it. Not
    # for a behaviour that never caches (MaxTTL 0: live playlists, beacons): nginx's lock would
    # hold every other viewer until the first response, then let them through one at a time
    # (polling every half second), where CloudFront hands them all that one response; without
    # the lock each goes to the origin at once (more origin requests than CloudFront's, never a
    # delay it would not add)
    collapse = _max_ttl(behaviour) > 0
    lines += [f"    proxy_cache lsedge_{ident};",
              f"    proxy_cache_key {'$request_uri' if query else '$lsedge_path'};",
              "    proxy_cache_methods GET HEAD;"]
    lines += (["    proxy_cache_lock on;", "    proxy_cache_lock_age 10s;", "    proxy_cache_lock_timeout 10s;"]
              if collapse else ["    proxy_cache_lock off;"])
    # an expired object is revalidated (If-Modified-Since / If-None-Match); the TTL comes from
    # the hop to the origin (CloudFront's rules), nothing else
    lines += ["    proxy_cache_revalidate on;",
              "    proxy_ignore_headers Cache-Control Expires Vary" + (" Set-Cookie;" if cookies == "none" else ";")]
    if cookies == "none":
        lines.append("    proxy_hide_header Set-Cookie;")
    lines += ["    add_header X-Cache $lsedge_x_cache always;", f"    add_header Via {_quote(via)} always;",
              f"    add_header X-Amz-Cf-Pop {POP} always;", "    add_header X-Amz-Cf-Id $request_id always;", "}"]
    return lines


# -- the network ------------------------------------------------------------------------

def network_up(lab: LabConfig, public_block) -> None:
    """The edge's namespace on the internet: viewers (the root namespace) reach the edge
    address; the edge reaches the lab's public addresses (origins) through the root
    namespace and the internet gateway, and the ACME server and public DNS on the
    internet address; nothing else (no default route)."""
    ns, (root_side, edge_side) = lab.edge_netns, lab.edge_links
    address, block = config.edge_address(public_block), config.edge_block(public_block)
    link = lab.edge_network
    if ns not in output("ip", "netns", "list").split():
        run("ip", "netns", "add", ns)
    run("ip", "link", "set", "lo", "up", netns=ns)
    network._link(root_side, None, edge_side, ns)  # pylint: disable=protected-access
    run("ip", "addr", "replace", f"{lab.edge_link_address}/{link.prefixlen}", "dev", root_side)
    run("sysctl", "-qw", f"net.ipv6.conf.{root_side}.disable_ipv6=1", check=False)
    run("ip", "link", "set", root_side, "up")
    run("ip", "addr", "replace", f"{lab.edge_link_address + 1}/{link.prefixlen}", "dev", edge_side, netns=ns)
    run("ip", "addr", "replace", f"{address}/32", "dev", "lo", netns=ns)
    run("ip", "link", "set", edge_side, "up", netns=ns)
    for destination in (ipaddress.ip_network(public_block), lab.internet_network):
        run("ip", "route", "replace", str(destination), "via", str(lab.edge_link_address), "dev", edge_side,
            "src", str(address), netns=ns)
    # the internet routes the edge's addresses to it ...
    run("ip", "route", "replace", str(block), "via", str(lab.edge_link_address + 1), "dev", root_side,
        "src", str(lab.internet_address))
    # ... the internet gateway too (the answers of the origins)
    run("ip", "route", "replace", str(block), "via", str(lab.internet_address), "dev", lab.transit_links[1],
        netns=lab.gateway_netns)
    # the root namespace forwards between the edge and the gateway only: per interface (the
    # host's own ip_forward is left as it is), and its FORWARD chain says so
    for interface in (root_side, lab.transit_links[0]):
        run("sysctl", "-qw", f"net.ipv4.conf.{interface}.forwarding=1")
    hook_rules(lab)


def hook_rules(lab: LabConfig) -> None:
    """The root namespace's FORWARD rules for the edge (marked as the lab's, so that
    network.py's hooks removal takes them too); idempotent."""
    root_side, transit = lab.edge_links[0], lab.transit_links[0]
    mark = ["-m", "comment", "--comment", comment(lab)]
    wanted = [["-i", root_side, "-o", transit, *mark, "-j", "ACCEPT"],
              ["-i", transit, "-o", root_side, *mark, "-j", "ACCEPT"],
              ["-i", root_side, *mark, "-j", "DROP"],
              ["-i", transit, *mark, "-j", "DROP"]]
    for rule in reversed(wanted):
        network.ensure_rule("filter", "FORWARD", rule)


# -- certificates -----------------------------------------------------------------------

def _hook_script(lab: LabConfig) -> Path:
    """lego's exec DNS provider: the TXT record set in (and cleared from) the lab's public DNS."""
    path = home(lab) / "dns-hook.sh"
    management = f"http://{lab.internet_address}:{config.PUBLIC_DNS_MANAGEMENT_PORT}"
    path.write_text("\n".join([
        "#!/bin/sh",
        "# lego exec provider: $1 = present|cleanup, $2 = the record's name, $3 = its value",
        "set -eu",
        'case "$1" in',
        f"  present) curl -sf --noproxy '*' -d \"{{\\\"host\\\":\\\"$2\\\",\\\"value\\\":\\\"$3\\\"}}\" {management}/set-txt ;;",
        f"  cleanup) curl -sf --noproxy '*' -d \"{{\\\"host\\\":\\\"$2\\\"}}\" {management}/clear-txt ;;",
        "esac", ""]))
    path.chmod(0o755)
    return path


def certificate(lab: LabConfig, names: list[str]) -> dict:
    """A certificate for ``names`` from the lab's ACME server over DNS-01 (kept and reused
    while it has more than 30 days left), as {names, cert, key}."""
    names = sorted({name.lower().rstrip(".") for name in names}, key=lambda n: (n.startswith("*"), n))
    key = hashlib.sha256(" ".join(names).encode()).hexdigest()[:16]
    directory = home(lab) / "certs" / key
    cert, private = directory / "fullchain.pem", directory / "key.pem"
    if cert.exists() and run("openssl", "x509", "-checkend", str(30 * 86400), "-noout", "-in", cert,
                             check=False).returncode == 0:
        return {"names": names, "cert": str(cert), "key": str(private)}
    lego_home = home(lab) / "lego"
    env = {**os.environ, "LEGO_CA_CERTIFICATES": str(lab.state_dir / "acme" / "tls-ca.pem"),
           "EXEC_PATH": str(_hook_script(lab)), "LEGO_DISABLE_CNAME_SUPPORT": "true",
           "EXEC_PROPAGATION_TIMEOUT": "30", "EXEC_POLLING_INTERVAL": "1",
           # lego waits this long between the names of one certificate (60 s by default)
           "EXEC_SEQUENCE_INTERVAL": "1"}
    command = ["ip", "netns", "exec", lab.edge_netns, LEGO, "--server", lab.acme_directory, "--accept-tos",
               "--email", f"cloudfront@{lab.hosted_zone}", "--path", str(lego_home), "--key-type", "rsa2048",
               "--dns", "exec", "--dns.disable-cp", "--dns.resolvers",
               f"{lab.internet_address}:{config.PUBLIC_DNS_PORT}"]
    for name in names:
        command += ["-d", name]
    result = subprocess.run(command + ["run"], env=env, capture_output=True, text=True, timeout=180, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"lego could not get a certificate for {names}: {result.stderr[-2000:]}")
    issued = lego_home / "certificates" / names[0].replace("*", "_")
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(f"{issued}.crt", cert)
    shutil.copyfile(f"{issued}.key", private)
    private.chmod(0o600)
    log(f"certificate issued by the lab's ACME server for {' '.join(names)}")
    return {"names": names, "cert": str(cert), "key": str(private)}


# -- the API ------------------------------------------------------------------------------

def _state(lab: LabConfig) -> dict:
    return json.loads(lab.state_file.read_text()) if lab.state_file.exists() else {}


def aws_environment(url: str) -> dict[str, str]:
    return {"AWS_ACCESS_KEY_ID": strict.LAB_ACCESS_KEY_ID, "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": url}


def distributions(api_url: str, aws_env: dict[str, str]) -> list[dict]:
    """Every distribution the API holds, each as GetDistribution answers it, with its ETag:
    from the lab API's control endpoint (one call), else through CloudFront's own API."""
    try:
        with urllib.request.urlopen(api_url + LISTING_PATH, timeout=10) as response:
            return json.loads(response.read())["distributions"]
    except urllib.error.HTTPError as error:
        if error.code not in (404, 405):
            raise
    cloudfront = cloudfront_client(aws_env)
    found = []
    for page in cloudfront.get_paginator("list_distributions").paginate():
        for item in page.get("DistributionList", {}).get("Items", []) or []:
            try:
                answer = cloudfront.get_distribution(Id=item["Id"])
            except cloudfront.exceptions.NoSuchDistribution:
                continue  # deleted in between
            found.append({**answer["Distribution"], "ETag": answer["ETag"]})
    return found


def acm_certificate(aws_env: dict[str, str], arn: str) -> dict | None:
    """The ACM certificate (us-east-1, as CloudFront requires) as DescribeCertificate gives it."""
    session = boto3.session.Session(aws_access_key_id=aws_env["AWS_ACCESS_KEY_ID"],
                                    aws_secret_access_key=aws_env["AWS_SECRET_ACCESS_KEY"], region_name="us-east-1")
    acm = session.client("acm", endpoint_url=aws_env["AWS_ENDPOINT_URL"])
    try:
        return acm.describe_certificate(CertificateArn=arn)["Certificate"]
    except acm.exceptions.ResourceNotFoundException:
        return None


def notify_deployed(api_url: str, distribution_id: str, etag: str) -> str:
    """Tell the lab's API that the edge serves version ``etag`` of a distribution (its status
    becomes Deployed): "deployed"; "stale" when a newer version came meanwhile (the next
    round applies it); "unwired" when the API has no such control endpoint."""
    body = json.dumps({"id": distribution_id, "etag": etag}).encode()
    request = urllib.request.Request(api_url + DEPLOYED_PATH, data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()
        return "deployed"
    except urllib.error.HTTPError as error:
        if error.code == 409:
            return "stale"
        if error.code == 405 or (error.code == 404 and b"no such distribution" not in error.read()):
            return "unwired"
        if error.code == 404:
            return "stale"  # deleted meanwhile
        raise


# -- the realiser ---------------------------------------------------------------------------

class Realiser:
    """The loop of ``python -m livestream_lab.edge``: the API's distributions made real."""

    def __init__(self, lab: LabConfig):
        self.lab = lab
        state = _state(lab)
        self.public_block = ipaddress.ip_network(state["public_block"])
        self.address = config.edge_address(self.public_block)
        self.api_url = state["moto"]["url"]
        self.aws_env = aws_environment(self.api_url)
        self.records: dict[str, list[str]] = {}
        # the security groups' rules as `up` enforced them (first seen), then as the realiser did
        self.rules: list[str] | None = None
        self.instances = 0
        # the distributions' versions when the stack was last read, and the rounds since
        self.versions: dict[str, str] | None = None
        self.rounds = 0
        self.applied = ""
        self.deployed: dict[str, str] = {}
        self.wildcard: dict | None = None
        self.certificates: dict[str, dict] = {}
        self.retry_after: dict[tuple, float] = {}
        # an nginx left running by an earlier realiser (its own pid file): kept, reloaded
        pid_file = home(lab) / "nginx.pid"
        running = int(pid_file.read_text().strip() or 0) if pid_file.exists() else 0
        self.nginx: int | None = running if alive(running) else None
        self.unwired = False

    def cycle(self) -> None:
        found = distributions(self.api_url, self.aws_env)
        # the stack (DNS, groups) every SYNC_ROUNDS rounds, or at once when a distribution
        # changed: a whole description of the stack each round would cost every lab's host
        # CPU for nothing most of the time
        versions = {d["Id"]: d["ETag"] for d in found}
        self.rounds += 1
        if versions != self.versions or self.rounds >= SYNC_ROUNDS:
            self.sync_stack()
            self.versions, self.rounds = versions, 0
        enabled = [d for d in found if d["DistributionConfig"].get("Enabled")]
        if enabled and self.wildcard is None:
            self.wildcard = self.certificate(["*.cloudfront.net"])
        for distribution in enabled:
            self.alias_certificate(distribution)
        text = render(self.lab, self.address, found, self.certificates, self.records, self.wildcard)
        if text != self.applied or not self.running():
            self.apply(text)
        served = {d["Id"]: d["ETag"] for d in found}
        for distribution in found:
            ident, etag = distribution["Id"], distribution["ETag"]
            if self.deployed.get(ident) == etag and distribution.get("Status") == "Deployed":
                continue
            if not self.complete(distribution):
                continue  # served without its certificates yet: not what the API says it is
            if self.unwired:
                continue
            outcome = notify_deployed(self.api_url, ident, etag)
            if outcome == "deployed":
                log(f"{ident} deployed (ETag {etag})")
                self.deployed[ident] = etag
            elif outcome == "unwired":
                self.unwired = True
                log(f"the API has no {DEPLOYED_PATH}: the distributions' status is left to it")
        (home(self.lab) / "applied.json").write_text(json.dumps(
            {"address": str(self.address), "distributions": served,
             "domains": {d["Id"]: d["DomainName"] for d in found},
             "enabled": [d["Id"] for d in enabled],
             "certificates": {ident: cert["names"] for ident, cert in self.certificates.items()}}, indent=2))

    def complete(self, distribution: dict) -> bool:
        """Whether the edge serves all of an enabled distribution: with TLS for its own name
        and, when it has aliases and an ACM certificate, for them."""
        settings = distribution["DistributionConfig"]
        if not settings.get("Enabled"):
            return True
        wants_aliases = _items(settings.get("Aliases")) and (settings.get("ViewerCertificate") or {}).get("ACMCertificateArn")
        return self.wildcard is not None and (not wants_aliases or distribution["Id"] in self.certificates)

    def alias_certificate(self, distribution: dict) -> None:
        viewer = distribution["DistributionConfig"].get("ViewerCertificate") or {}
        arn = viewer.get("ACMCertificateArn")
        aliases = _items(distribution["DistributionConfig"].get("Aliases"))
        if not arn or not aliases:
            self.certificates.pop(distribution["Id"], None)
            return
        acm = acm_certificate(self.aws_env, arn)
        if not acm or acm.get("Status") != "ISSUED":
            self.certificates.pop(distribution["Id"], None)  # as ACM: no certificate, no TLS for the aliases
            return
        names = acm.get("SubjectAlternativeNames") or [acm["DomainName"]]
        current = self.certificates.get(distribution["Id"])
        if current is None or current["names"] != sorted({n.lower() for n in names}, key=lambda n: (n.startswith("*"), n)):
            issued = self.certificate(names)
            if issued:
                self.certificates[distribution["Id"]] = issued

    def certificate(self, names: list[str]) -> dict | None:
        """``certificate``, tried again no sooner than a minute after it failed (the other
        distributions are served meanwhile, and the ACME server is not hammered)."""
        key = tuple(sorted(names))
        if time.monotonic() < self.retry_after.get(key, 0):
            return None
        try:
            return certificate(self.lab, names)
        except (RuntimeError, OSError, subprocess.SubprocessError) as error:
            self.retry_after[key] = time.monotonic() + 60
            log(f"no certificate for {' '.join(names)} yet (tried again in 60 s): {error}")
            return None

    def sync_stack(self) -> None:
        """The lab's public DNS and the security groups, in line with the API between `up`s:
        CloudFront's distribution comes after `up` (site.yml), and so do the alias that moves
        the domain to it and the frontend's group narrowed to CloudFront's prefix list."""
        state = _state(self.lab)
        try:
            stack = describe(self.lab.stack, self.aws_env, delegations=state.get("delegations") or {}, edge=self.address)
        except LookupError:
            return  # the stack is being torn down, or not provisioned yet
        # the groups' rules, the interfaces' groups and their source/destination checks
        rules = network.security_group_rules(self.lab, stack)
        if self.rules is not None and rules != self.rules and len(stack.instances) == self.instances:
            network.apply_security_groups(self.lab, stack)
            log("security groups follow the API")
        self.rules, self.instances = rules, len(stack.instances)
        if stack.records != self.records:
            services.dns(self.lab, stack)
            if self.records:
                log("DNS follows Route 53: " + ", ".join(
                    f"{name} -> {' '.join(addresses)}" for name, addresses in sorted(stack.records.items())
                    if self.records.get(name) != addresses and not name.endswith(".ec2.internal")))
            self.records = stack.records

    def running(self) -> bool:
        return bool(self.nginx) and alive(self.nginx)

    def apply(self, text: str) -> None:
        base = home(self.lab)
        candidate = base / "nginx.conf.new"
        candidate.write_text(text)
        check = run("ip", "netns", "exec", self.lab.edge_netns, NGINX, "-t", "-q", "-e", base / "error.log",
                    "-c", candidate, capture=True, check=False)
        if check.returncode != 0:
            raise RuntimeError(f"nginx refused the edge's configuration: {check.stderr[-2000:]}")
        os.replace(candidate, base / "nginx.conf")
        if self.running():
            os.kill(self.nginx, signal.SIGHUP)
            log("configuration reloaded")
        else:
            for stale in (base / "run").glob("*.sock"):  # an nginx killed before leaves its sockets
                stale.unlink()
            self.nginx = spawn([NGINX, "-e", base / "error.log", "-c", base / "nginx.conf"], str(self.lab.state_dir),
                               base / "nginx.log", netns=self.lab.edge_netns)
            (base / "nginx.launcher.pid").write_text(str(self.nginx))
            log(f"nginx started on {self.address}")
        time.sleep(0.3)  # the new workers take over
        self.applied = text

    def run(self) -> None:
        stopping = []
        signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
        log(f"realising the API's CloudFront distributions on {self.address} every {POLL_SECONDS:.0f}s")
        while not stopping:
            started = time.monotonic()
            try:
                self.cycle()
            except Exception:  # pylint: disable=broad-exception-caught
                # the API throttles or is gone for a moment: try again on the next round
                log("round failed:\n" + traceback.format_exc(limit=3))
            time.sleep(max(0.2, POLL_SECONDS - (time.monotonic() - started)))
        if self.running():
            stop([self.nginx], timeout=10)


# -- up / down / status ---------------------------------------------------------------------

def prepare(lab: LabConfig) -> None:
    base = home(lab)
    for path in (base, base / "run", base / "cache", base / "certs", base / "tmp"):
        path.mkdir(parents=True, exist_ok=True)
    for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (base / "tmp" / kind).mkdir(exist_ok=True)
    # nginx's workers run as nobody: their cache and buffers only
    run("chown", "-R", "nobody:nogroup", base / "cache", base / "tmp")


def up(lab: LabConfig, public_block, log_to=print) -> None:
    """The edge's network, then its realiser (once: `up` is idempotent)."""
    network_up(lab, public_block)
    prepare(lab)
    pid_file = home(lab) / "realiser.pid"
    if pid_file.exists() and alive(int(pid_file.read_text().strip() or 0)):
        return
    pid = spawn([sys.executable, "-m", "livestream_lab.edge", "--stack", lab.stack], str(lab.state_dir),
                home(lab) / "realiser.log")
    pid_file.write_text(str(pid))
    log_to(f"the CDN edge (CloudFront) on {config.edge_address(public_block)} in netns {lab.edge_netns}, "
           "realised from the API every 2s")


def down(lab: LabConfig) -> None:
    """Every process in the edge's namespace (nginx, whose workers rewrite their environment,
    and lego), then the namespace; the links go with network.down's."""
    pid_file = home(lab) / "realiser.pid"
    if pid_file.exists():
        stop([int(pid_file.read_text().strip() or 0)], timeout=15)
    if lab.edge_netns in output("ip", "netns", "list").split():
        pids = [int(pid) for pid in output("ip", "netns", "pids", lab.edge_netns).split()]
        stop(pids, timeout=10)
        run("ip", "netns", "del", lab.edge_netns)
    state = _state(lab)
    if state.get("public_block"):
        run("ip", "route", "del", str(config.edge_block(state["public_block"])), check=False)


def status(lab: LabConfig) -> dict | None:
    applied = home(lab) / "applied.json"
    if not applied.exists():
        return None
    summary = json.loads(applied.read_text())
    summary["netns"] = lab.edge_netns
    pids = output("ip", "netns", "pids", lab.edge_netns).split() if \
        lab.edge_netns in output("ip", "netns", "list").split() else []
    summary["processes"] = len(pids)
    pid_file = home(lab) / "realiser.pid"
    summary["realiser_running"] = pid_file.exists() and alive(int(pid_file.read_text().strip() or 0))
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m livestream_lab.edge")
    parser.add_argument("--stack", required=True)
    args = parser.parse_args(argv)
    lab = config.load(args.stack)
    if os.environ.get(MARKER) != str(lab.state_dir):
        raise SystemExit("the edge's realiser is started by `python -m livestream_lab up`")
    Realiser(lab).run()


if __name__ == "__main__":
    main()
