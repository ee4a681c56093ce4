"""The frontend, converged on a lab machine, seen from the internet (this host) and from
inside: HTTPS with a certificate the lab's ACME server issued, HTTP only for ACME."""

import json
import socket
import ssl
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from livestream_testing.clean import warnings

LAB = Path("/var/lib/livestream-lab/molecule")
testinfra_hosts = [f"ssh://molecule-frontend?ssh_config={LAB / 'ssh_config'}"]


@pytest.fixture(scope="module")
def lab():
    return json.loads((LAB / "lab.json").read_text())


def test_nginx_runs_and_listens(host):
    assert host.service("nginx").is_running
    assert host.socket("tcp://0.0.0.0:443").is_listening
    assert host.socket("tcp://0.0.0.0:80").is_listening


def test_player_is_served_over_https_with_a_certificate_for_the_domain(lab):
    context = ssl.create_default_context(cafile=lab["ca_cert"])
    with urllib.request.urlopen(f"https://{lab['domain']}/", context=context, timeout=10) as response:
        assert response.status == 200
        assert "max-age=" in response.headers["Strict-Transport-Security"]


def test_http_redirects_to_https(lab):
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    with pytest.raises(urllib.error.HTTPError) as answer:
        opener.open(f"http://{lab['domain']}/", timeout=10)
    assert answer.value.code in (301, 308)
    assert answer.value.headers["Location"].startswith(f"https://{lab['domain']}")


def test_old_tls_is_refused(lab):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(lab["ca_cert"])
    context.minimum_version = context.maximum_version = ssl.TLSVersion.TLSv1_1
    with pytest.raises((ssl.SSLError, OSError)):
        with socket.create_connection((lab["frontend_address"], 443), timeout=5) as raw:
            with context.wrap_socket(raw, server_hostname=lab["domain"]):
                pass


def test_the_role_runs_clean(host):
    """No warning from nginx -t or certbot on Debian 12 (livestream_testing.clean: tests/e2e/test_platform.py
    checks the same on the default release)."""
    with host.sudo():
        assert warnings("frontend", host.check_output) == {}
