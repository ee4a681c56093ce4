"""The service's machines run the release new stacks get (Debian 13, livestream_ami_family's
default) and the roles run clean there: no warning from nginx -t, certbot or ffmpeg
(livestream_testing.clean; molecule's verifier runs the same checks on Debian 12)."""

from __future__ import annotations

import shlex

import pytest

from livestream_testing.clean import warnings

pytestmark = pytest.mark.lab


@pytest.mark.parametrize("role", ["bastion", "frontend", "backend"])
def test_the_machines_run_debian_13(machines, ssh, role):
    result = ssh(machines[role]["name"], ". /etc/os-release && echo $ID $VERSION_ID")
    assert result.stdout.split() == ["debian", "13"], result.stdout + result.stderr


@pytest.mark.parametrize("role", ["frontend", "backend"])
def test_the_roles_run_clean(machines, ssh, role):
    def run(command: str) -> str:
        result = ssh(machines[role]["name"], f"sudo -n sh -c {shlex.quote(command)}")
        assert result.returncode == 0, f"{command}: {result.stderr}"
        return result.stdout

    assert warnings(role, run) == {}
