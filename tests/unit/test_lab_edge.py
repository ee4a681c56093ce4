"""The lab's CloudFront edge: its rules as nginx configuration, checked without nginx.

CloudFront's TTL rules (Expiration.html, custom-error-pages-expiration.html) become nginx
maps; these tests evaluate the maps as nginx does (entries in order, the first regex that
matches wins, else the default) for the origin's answers that matter.
"""

from __future__ import annotations

import ipaddress
import re

import pytest

from livestream_lab import config, edge


@pytest.mark.parametrize("number", [0, 1, 2, 9, 10, 59, 60, 61, 99, 100, 300, 301, 999, 86400, 86401])
def test_at_least_matches_exactly_the_numbers_from_its_bound(number):
    pattern = re.compile(f"^{edge.at_least(number)}$")
    for value in list(range(0, 1200)) + [86399, 86400, 86401, 99999, 123456789]:
        assert bool(pattern.match(str(value))) == (value >= number), (number, value)


@pytest.mark.parametrize("pattern, path, matches", [
    ("*.m3u8", "/hls/test_720.m3u8", True),
    ("*.m3u8", "/hls/test.m3u8.ts", False),
    ("*.ts", "/hls/test_720-12.ts", True),
    ("*.ts", "/hls/test.TS", False),  # case sensitive
    ("/hls/*", "/hls/a/b", True),
    ("hls/*", "/hls/a", True),  # with or without the leading slash
    ("a?.ts", "/ab.ts", True),
    ("a?.ts", "/abc.ts", False),
])
def test_path_patterns_match_as_cloudfronts(pattern, path, matches):
    assert bool(re.match(edge.path_pattern(pattern), path)) == matches


def _maps(lines: list[str]) -> dict[str, tuple[str, list[tuple[str, str]], str]]:
    """name -> (source, [(pattern, value)], default) of nginx map blocks."""
    maps, current = {}, None
    for line in lines:
        line = line.strip()
        header = re.match(r'^map ("?)(.+?)\1 \$(\w+) \{$', line)
        if header:
            current = header.group(3)
            maps[current] = (header.group(2), [], "")
        elif line == "}":
            current = None
        elif current:
            entry = re.match(r'^("(?:[^"\\]|\\.)*"|\S+) (.+);$', line)
            key, value = entry.group(1).strip('"').replace('\\"', '"'), entry.group(2).strip('"')
            source, entries, default = maps[current]
            if key == "default":
                maps[current] = (source, entries, value)
            else:
                entries.append((key, value))
    return maps


def _evaluate(maps, name: str, variables: dict[str, str]) -> str:
    source, entries, default = maps[name]

    def expand(text, groups=()):
        text = re.sub(r"\$(\d)", lambda m: groups[int(m.group(1)) - 1] or "", text)
        return re.sub(r"\$(\w+)", lambda m: lookup(m.group(1)), text)

    def lookup(variable):
        return _evaluate(maps, variable, variables) if variable in maps else variables[variable]

    value = expand(source)
    for key, result in entries:
        flags = re.IGNORECASE if key.startswith("~*") else 0
        regex = key[2:] if key.startswith("~*") else key[1:]
        match = re.search(regex, value, flags) if key.startswith("~") else (value == key and re.match("", ""))
        if match:
            return expand(result, match.groups())
    return expand(default)


BEHAVIOUR = {"MinTTL": 0, "DefaultTTL": 60, "MaxTTL": 300}
ERRORS = {404: 1, 500: 1, 502: 1, 503: 1, 504: 1}


@pytest.mark.parametrize("behaviour, status, cache_control, seconds", [
    # Expiration.html: the origin's max-age within [MinTTL, MaxTTL]; none: DefaultTTL
    (BEHAVIOUR, "200", "", "60"),
    (BEHAVIOUR, "200", "public, max-age=120", "120"),
    (BEHAVIOUR, "200", "max-age=3600", "300"),
    (BEHAVIOUR, "200", "max-age=0", "0"),
    (BEHAVIOUR, "200", "max-age=600, s-maxage=30", "30"),  # s-maxage first, for a shared cache
    (BEHAVIOUR, "200", "no-cache", "0"),
    (BEHAVIOUR, "200", "private, max-age=100", "0"),
    ({"MinTTL": 30, "DefaultTTL": 60, "MaxTTL": 300}, "200", "no-store", "30"),
    ({"MinTTL": 30, "DefaultTTL": 60, "MaxTTL": 300}, "200", "max-age=5", "30"),
    # the playlists' behaviour: never cached, whatever the origin says
    ({"MinTTL": 0, "DefaultTTL": 0, "MaxTTL": 0}, "200", "max-age=60", "0"),
    ({"MinTTL": 0, "DefaultTTL": 0, "MaxTTL": 0}, "200", "", "0"),
    # fragments
    ({"MinTTL": 0, "DefaultTTL": 86400, "MaxTTL": 86400}, "200", "public, max-age=60", "60"),
    # custom-error-pages-expiration.html: ErrorCachingMinTTL, 10 s by default, or the origin's
    # larger max-age within MaxTTL; no-cache honoured for 404/410/414/501 only
    (BEHAVIOUR, "404", "", "1"),
    (BEHAVIOUR, "404", "no-cache", "0"),
    (BEHAVIOUR, "404", "max-age=120", "120"),
    (BEHAVIOUR, "404", "max-age=3600", "300"),
    (BEHAVIOUR, "503", "no-store", "1"),
    (BEHAVIOUR, "403", "", "10"),
    ({"MinTTL": 0, "DefaultTTL": 0, "MaxTTL": 0}, "404", "", "1"),
    (BEHAVIOUR, "416", "", "0"),
    (BEHAVIOUR, "409", "", "0"),
    (BEHAVIOUR, "301", "", "60"),
])
def test_the_ttl_the_cache_gets_follows_cloudfronts_rules(behaviour, status, cache_control, seconds):
    maps = _maps(edge._ttl_maps("b", behaviour, ERRORS))  # pylint: disable=protected-access
    variables = {"upstream_http_cache_control": cache_control, "status": status}
    assert _evaluate(maps, "b_xae", variables) == seconds


def test_the_viewers_behaviour_reaches_the_origin_every_time_with_its_query_string():
    """/viewers (cdn.distribution_config): TTL 0 whatever the origin says, the query string in
    the key and forwarded, as CloudFront does: every beacon reaches the origin."""
    from ansible_collections.livestream.aws.plugins.module_utils.cdn import distribution_config  # pylint: disable=import-outside-toplevel

    wanted = distribution_config("live", domain="live.example.com", certificate_arn="arn:x", origin_secret="s" * 40,
                                 fragment_seconds=1)
    (viewers,) = [b for b in wanted["CacheBehaviors"]["Items"] if b["PathPattern"] == "/viewers"]
    maps = _maps(edge._ttl_maps("v", viewers, ERRORS))  # pylint: disable=protected-access
    for cache_control in ("", "no-store", "public, max-age=60"):
        assert _evaluate(maps, "v_xae", {"upstream_http_cache_control": cache_control, "status": "200"}) == "0"
    lines = edge._location(viewers, "v", "d1", "1.1 x.cloudfront.net (CloudFront)")  # pylint: disable=protected-access
    assert lines[0] == 'location ~ "^/viewers$" {'
    assert "    proxy_pass http://v$request_uri;" in lines
    assert "    proxy_cache_key $request_uri;" in lines
    # never cached: no lock holding the other viewers' beacons behind the first one
    assert "    proxy_cache_lock off;" in lines and "    proxy_cache_lock on;" not in lines
    # a path pattern that CloudFront evaluates before the playlists' and the default
    assert re.fullmatch(edge.path_pattern("/viewers"), "/viewers")
    assert not re.fullmatch(edge.path_pattern("/viewers"), "/viewers.m3u8")


def test_the_edge_is_the_top_of_the_public_block_and_apart_from_the_labs_other_links():
    block = ipaddress.ip_network("198.18.7.0/24")
    assert config.edge_block(block) == ipaddress.ip_network("198.18.7.240/28")
    assert config.edge_address(block) in config.edge_block(block)
    lab = config.load("cdnedge")
    assert all(len(name) <= 15 for name in (*lab.edge_links, lab.edge_netns))
    links = [lab.internet_network, lab.gateway_network, lab.edge_network]
    assert all(not a.overlaps(b) for i, a in enumerate(links) for b in links[i + 1:])
    assert lab.edge_network.subnet_of(lab.transit_network)
