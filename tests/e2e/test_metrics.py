"""Seeing the service on the lab: the player page's count of viewers matches the viewers there
are (a real browser and simulated viewers that beacon as the page does), a real Prometheus on
the controller (Debian's) scrapes the frontend's metrics over HTTPS with the lab's CA and
credentials, its stream-down rule fires when the backend's unit is stopped, and the status
command says so."""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

from livestream_probes.hls import HlsClient, HlsError
from livestream_probes.net import SILENT, tcp_state
from livestream_probes.viewers import BeaconViewers
from livestream_testing import ROOT
from livestream_testing.lab import STREAM, aws_environment
from livestream_testing.service import viewer

pytestmark = pytest.mark.lab

# the role's defaults (frontend_viewers_beacon_seconds, frontend_viewers_window_seconds)
BEACON_S = 5
WINDOW_S = 15
SIMULATED = 4


def _viewers_address(lab) -> str:
    """Where viewers reach the domain: the frontend, or with the CDN on, its edge (the lab's
    CloudFront), through which every beacon must still be counted."""
    return lab["edge_address"] if lab.get("cdn") == "cloudfront" else lab["frontend_address"]


def _client(lab, **headers) -> HlsClient:
    return HlsClient(resolve={lab["domain"]: _viewers_address(lab)}, ca_file=lab["ca_cert"], headers=headers)


def _without_cdn(lab):
    if lab.get("cdn") == "cloudfront":
        pytest.skip("with the CDN on, HTTPS to the frontend is CloudFront's alone: the metrics are read from the VPC")


def _credentials(lab) -> tuple[str, str]:
    return lab["metrics_user"], Path(lab["metrics_password_file"]).read_text().strip()


def _page_count(browser) -> int | None:
    value = browser.driver.execute_script("return document.body.dataset.viewers ?? null;")
    return None if value is None else int(value)


def _wait_count(browser, wanted: int, timeout: float) -> float:
    """Seconds until the page shows ``wanted`` watching; fails with what it showed."""
    started = time.monotonic()
    shown = None
    while time.monotonic() - started < timeout:
        shown = _page_count(browser)
        if shown == wanted:
            return time.monotonic() - started
        time.sleep(0.2)
    raise AssertionError(f"the page showed {shown} watching, not {wanted}, for {timeout:.0f} s")


def test_the_page_counts_its_viewers_within_one_refresh(lab):
    playlist = f"/hls/{STREAM}.m3u8"
    with viewer(lab, _viewers_address(lab)) as browser:
        assert browser.open(lab["player_url"] + f"?stream={STREAM}") == "Live"
        browser.wait_playing(min_advance_s=1, timeout=60)
        # the page alone (a session of an earlier run is forgotten after the window)
        _wait_count(browser, 1, WINDOW_S + 2 * BEACON_S)
        assert browser.driver.find_element("id", "viewers").text == "1 watching"
        with BeaconViewers(_client(lab), f"https://{lab['domain']}", STREAM, SIMULATED, interval_s=BEACON_S,
                           playlist=playlist) as simulated:
            assert simulated.first_round.wait(30), simulated.errors
            # every simulated viewer has said so: the page's next refresh shows them
            took = _wait_count(browser, SIMULATED + 1, BEACON_S + 2)
            assert simulated.errors == []
        print(f"the page showed {SIMULATED + 1} watching {took:.1f} s after the simulated viewers' first beacons")
        # gone: out of the count once the window has passed, at the next refresh
        _wait_count(browser, 1, WINDOW_S + BEACON_S + 2)
        assert browser.driver.find_element("id", "viewers").text == "1 watching"


def test_the_metrics_are_served_only_with_credentials_and_pass_promtool(lab):
    _without_cdn(lab)
    user, password = _credentials(lab)
    anonymous, operator = _client(lab), _client(lab, Authorization="Basic " + base64.b64encode(
        f"{user}:{password}".encode()).decode())
    base = f"https://{lab['domain']}"
    with pytest.raises(HlsError, match="HTTP 401"):
        anonymous.get(f"{base}/metrics")
    for path in ("/metrics", "/metrics/backend", "/metrics/bastion"):
        with pytest.raises(HlsError, match="HTTP 401"):
            anonymous.get(base + path)
        text = operator.get(base + path).decode()
        result = subprocess.run([shutil.which("promtool") or "promtool", "check", "metrics"], input=text,
                                capture_output=True, text=True, check=False)
        assert result.returncode == 0, f"{path}: {result.stdout}{result.stderr}"
        assert "livestream_metrics_collected_timestamp_seconds" in text, path
    frontend = operator.get(f"{base}/metrics").decode()
    assert f'livestream_stream_live{{encoder="false",stream="{STREAM}"}} 1' in frontend
    assert "livestream_certificate_expiry_timestamp_seconds{" in frontend
    assert 'livestream_stream_unit_restarts_total{stream="test",unit="test"}' in operator.get(f"{base}/metrics/backend").decode()
    assert "livestream_nat_up 1" in operator.get(f"{base}/metrics/bastion").decode()


def test_metrics_take_no_connection_but_the_pushes_to_the_frontend(lab, ssh, machines):
    """The node exporters listen on loopback; the frontend's push port answers the VPC's
    backend and bastion, not the internet (the security group drops it)."""
    frontend = machines["frontend"]["private"]
    assert tcp_state(machines["frontend"]["public"], 9101) == SILENT
    for role in ("backend", "bastion"):
        reach = ssh(machines[role]["name"], f"timeout 5 bash -c 'exec 3<>/dev/tcp/{frontend}/9101' && echo open")
        assert reach.stdout.strip() == "open", f"{role}: {reach.stderr}"
    for role in ("frontend", "backend", "bastion"):
        listening = ssh(machines[role]["name"], "ss -Hltn 'sport = :9100'").stdout.split()
        assert listening[3] == "127.0.0.1:9100", f"{role}: {listening}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _query(url: str, path: str, **params) -> dict:
    with urllib.request.urlopen(f"{url}{path}?{urllib.parse.urlencode(params)}", timeout=10) as answer:
        return json.load(answer)["data"]


def _status(lab, lab_config) -> str:
    """`ansible-playbook livestream.aws.status` with the lab's inventory, as a user runs it."""
    env = {**os.environ, **aws_environment(lab_config), "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.default",
           "ANSIBLE_COLLECTIONS_PATH": str(ROOT / "collections"), "ANSIBLE_NOCOLOR": "1"}
    result = subprocess.run(["ansible-playbook", "-i", lab["inventory"], "livestream.aws.status",
                             "-e", f"livestream_stack_name={lab['stack']}"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    return result.stdout


def test_prometheus_scrapes_the_frontend_and_the_stream_down_rule_fires(lab, lab_config, ssh, machines, tmp_path):
    _without_cdn(lab)
    prometheus = shutil.which("prometheus")
    if not prometheus:
        pytest.fail("Debian's prometheus is missing: run `make setup` (bindep.txt)")
    user, password = _credentials(lab)
    (tmp_path / "password").write_text(password)
    shutil.copy(ROOT / "prometheus" / "livestream.rules.yml", tmp_path / "livestream.rules.yml")
    job = {"scheme": "https", "basic_auth": {"username": user, "password_file": str(tmp_path / "password")},
           "tls_config": {"ca_file": lab["ca_cert"]}, "static_configs": [{"targets": [lab["domain"]]}]}
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump({
        "global": {"scrape_interval": "2s", "evaluation_interval": "2s"},
        "rule_files": ["livestream.rules.yml"],
        "scrape_configs": [{"job_name": f"livestream-{role}", "metrics_path": path, **job}
                           for role, path in (("frontend", "/metrics"), ("backend", "/metrics/backend"),
                                              ("bastion", "/metrics/bastion"))],
    }))
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = (tmp_path / "prometheus.log").open("w")
    server = subprocess.Popen([prometheus, f"--config.file={tmp_path / 'prometheus.yml'}",
                               f"--storage.tsdb.path={tmp_path / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
                              stdout=log, stderr=subprocess.STDOUT)
    backend = machines["backend"]["name"]
    unit = f"livestream-stream@{STREAM}.service"
    stopped = None
    try:
        # every target up over HTTPS, the stream live
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                targets = _query(url, "/api/v1/targets")["activeTargets"]
                live = _query(url, "/api/v1/query", query=f'livestream_stream_live{{stream="{STREAM}"}}')["result"]
            except OSError:
                time.sleep(0.5)
                continue
            if len(targets) == 3 and all(t["health"] == "up" for t in targets) and live and live[0]["value"][1] == "1":
                break
            time.sleep(0.5)
        else:
            raise AssertionError(f"targets {[(t['scrapeUrl'], t['health'], t.get('lastError')) for t in targets]}, live {live}")
        assert _query(url, "/api/v1/query", query="livestream_nat_up")["result"][0]["value"][1] == "1"
        assert float(_query(url, "/api/v1/query", query="livestream_certificate_expiry_timestamp_seconds - time()")
                     ["result"][0]["value"][1]) > 14 * 86400

        result = ssh(backend, f"sudo -n systemctl stop {unit}")
        assert result.returncode == 0, result.stderr
        stopped = time.monotonic()
        # Prometheus sees it down at its next scrape after the collector's next run (10 s)
        while time.monotonic() - stopped < 40:
            live = _query(url, "/api/v1/query", query=f'livestream_stream_live{{stream="{STREAM}"}}')["result"]
            if live and live[0]["value"][1] == "0":
                break
            time.sleep(1)
        else:
            raise AssertionError(f"Prometheus still sees {STREAM} live 40 s after its unit stopped: {live}")
        # meanwhile, the status command says so too
        status = _status(lab, lab_config)
        print(status)
        assert f"stack {lab['stack']}" in status and "bastion NAT: up" in status
        assert "(Elastic IP)" in status and f"certificate {lab['frontend_name']}: expires" in status
        (row,) = [line.split() for line in status.splitlines() if line.strip().startswith(f"{STREAM} ")]
        assert row[1] == "no", row
        # the rule: a minute down, then firing
        firing = None
        while time.monotonic() - stopped < 130:
            alerts = _query(url, "/api/v1/alerts")["alerts"]
            firing = [a for a in alerts if a["labels"]["alertname"] == "LivestreamStreamDown"
                      and a["labels"].get("stream") == STREAM and a["state"] == "firing"]
            if firing:
                break
            time.sleep(1)
        took = time.monotonic() - stopped
        assert firing, f"LivestreamStreamDown not firing {took:.0f} s after the unit stopped: {alerts}"
        assert took >= 60, f"fired after {took:.0f} s, before the rule's minute"
        print(f"LivestreamStreamDown fired {took:.0f} s after the backend's unit stopped")
    finally:
        if stopped is not None:
            ssh(backend, f"sudo -n systemctl start {unit}")
        server.terminate()
        server.wait(timeout=30)
        log.close()
    # the lab as it was: the stream advances again
    client = _client(lab)
    assert client.playlist_advances(f"https://{lab['domain']}/hls/{STREAM}.m3u8", within_s=60)
