"""The certificate outlives its frontend: saved on the controller after each run, restored on
a frontend built anew, so that a rebuild does not ask the CA again (Let's Encrypt allows 5
certificates a week for the same name)."""

from __future__ import annotations

import os
import socket
import ssl
import stat

import pytest

from livestream_lab import config
from livestream_testing.playbook import Runner

pytestmark = pytest.mark.lab


def served_certificate(lab) -> bytes:
    """The certificate the frontend serves for the domain, over the internet, as DER."""
    context = ssl.create_default_context(cafile=lab["ca_cert"])
    with socket.create_connection((lab["frontend_address"], 443), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname=lab["domain"]) as tls:
            return tls.getpeercert(binary_form=True)


def test_a_rebuilt_frontend_gets_the_saved_certificate_back_without_asking_the_ca(
        lab, lab_config, machines, ssh, tmp_path):
    saved = lab_config.state_dir / "certificates" / f"{lab_config.domain}.tar"
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600 and stat.S_IMODE(saved.parent.stat().st_mode) == 0o700
    before = served_certificate(lab)
    # what a frontend built anew has: no certificate, no renewal settings, no ACME account
    ssh(machines["frontend"]["name"], "sudo rm -rf /etc/letsencrypt/accounts /etc/letsencrypt/archive "
        "/etc/letsencrypt/live /etc/letsencrypt/renewal /var/lib/livestream/certificate.tar")

    runner = Runner(tmp_path, env=dict(os.environ))
    result = runner.playbook(config.REPOSITORY / "playbooks" / "configure.yml", "--limit",
                             f"{machines['frontend']['name']},localhost", inventory=lab["inventory"])

    assert result.returncode == 0, result.stdout[-3000:]
    frontend = machines["frontend"]["name"]
    role = "livestream.aws.frontend : "
    assert result.task(role + "Unpack the saved certificate, its key, renewal settings and ACME account",
                       host=frontend)["changed"]
    assert result.task(role + "Ask the ACME server for the certificate", host=frontend).get("skipped")
    assert served_certificate(lab) == before
