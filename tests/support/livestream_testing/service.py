"""Session fixtures of the suites that run the configured service on a lab of their own
(tests/e2e, tests/faults). A suite's conftest defines `lab_config` (its stack) and
imports these."""

from __future__ import annotations

import subprocess

import pytest

from livestream_probes import browser as browser_probe
from livestream_probes.browser import Browser

from livestream_testing.lab import inventory_hosts, service_lab, ssh as lab_ssh, stream_key as read_stream_key


@pytest.fixture(scope="session")
def lab(lab_config):
    """The lab's summary (lab.json), with the service configured by site.yml; up for the
    session, down at its end."""
    with service_lab(lab_config.stack) as summary:
        yield summary


@pytest.fixture(scope="session")
def machines(lab_config, lab):
    """role -> {name, address}, from the inventory plugin's view of the stack."""
    return inventory_hosts(lab_config)


@pytest.fixture(scope="session")
def stream_key(lab_config, lab):
    """The key of the default stream "test", where site.yml generated it."""
    return read_stream_key(lab_config)


@pytest.fixture(scope="session")
def ssh(lab_config, lab):
    """Runs a command on a lab machine the way an admin would: ssh with the lab's config,
    through the bastion. The caller judges the result; a connection left hanging (a
    machine going down) is a failed attempt, not an error."""
    def run(host: str, command: str, timeout: float = 60) -> subprocess.CompletedProcess:
        try:
            return lab_ssh(lab_config, host, command, check=False, timeout=timeout)
        except subprocess.TimeoutExpired as error:
            return subprocess.CompletedProcess(error.cmd, 255, "", f"timed out after {timeout}s")
    return run


# Where a secret must never be, on every machine: what a user who is not root sees of the
# process lists (the lab's admin user), every journal, every file under /var/log.
SECRET_PLACES = {
    "process list": "ps -eo user,args",
    # every field of every entry (-o export): journald also keeps the logging process's command line
    "journal": "sudo -n journalctl --no-pager -o export",
    "logs": "sudo -n find /var/log -type f -exec cat {} +",
}


def secrets_found(ssh, machines, secrets: dict[str, str]) -> list[str]:
    """Each place of SECRET_PLACES, on each machine, where one of ``secrets`` (what -> the
    secret) can be read: "<what> in the <place> of the <role>"; never the secret itself."""
    found = []
    for role in ("bastion", "frontend", "backend"):
        for place, command in SECRET_PLACES.items():
            result = ssh(machines[role]["name"], command, timeout=120)
            assert result.returncode == 0, f"{role} {place}: {result.stderr[-500:]}"
            found += [f"{what} in the {place} of the {role}" for what, secret in secrets.items() if secret in result.stdout]
    return found


def viewer(lab, address: str | None = None) -> Browser:
    """Chromium on the lab's internet, trusting only the lab's ACME root (as a viewer's machine
    trusts Let's Encrypt) and finding the domain at the frontend's public address (or at
    ``address``: the CDN's edge); a test that needs it fails, naming the set-up, where Chromium
    is missing. Use it as a context manager."""
    if not browser_probe.available():
        pytest.fail("chromium, chromedriver or certutil is missing: run `make setup-lab`")
    return Browser(ca_file=lab["ca_cert"], resolve={lab["domain"]: address or lab["frontend_address"]})
