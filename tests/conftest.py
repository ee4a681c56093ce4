"""Fixtures shared by every test suite: the AWS API (a real moto server over HTTP), a way to
run ansible-playbook against it the way a user would, and the lab with the whole service
configured that the service suites share."""

from __future__ import annotations

import os
import shutil
import sys
import threading
from pathlib import Path

import pytest

from livestream_lab import config, strict
from livestream_lab.moto import MotoServer
from livestream_testing import ROOT
from livestream_testing.playbook import Runner
from livestream_testing.service import lab, machines, ssh, stream_key  # noqa: F401  pylint: disable=unused-import

# Running `pytest` from the venv works like `make pytest`: the venv's tools first, the
# working tree importable as livestream.aws (the link collections/ansible_collections/livestream/aws).
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
os.environ.setdefault("ANSIBLE_COLLECTIONS_PATH", str(ROOT / "collections"))
os.environ.setdefault("ANSIBLE_CONFIG", str(ROOT / "ansible.cfg"))


# The service suites, tests/e2e and then tests/faults (which breaks the service on purpose, one
# fault at a time, each test waiting until it has recovered), share one lab with the whole
# service configured by site.yml: stack "e2e" (LIVESTREAM_E2E_STACK names another), so that it
# runs beside make lab, molecule and tests/lab (whose conftest gives it a lab of its own); up
# at the first test that needs it, down at the session's end (livestream_testing.service).
SERVICE_STACK = os.environ.get("LIVESTREAM_E2E_STACK", "e2e")


# Modules that switch the whole service lab run after every other test of the service suites,
# so that no other test meets the lab switched, and faults' "site.yml changes nothing" follows
# its own faults only; in this order, each configuring the lab from its settings and its own
# (restreaming and audio-only streams; then the CDN on, by site.yml, whose default streams undo
# the restreaming), none switching it back: the lab is taken down at the session's end.
SERVICE_SUITES = ("tests/e2e/", "tests/faults/")
SERVICE_LAB_SWITCHES = ("tests/e2e/test_restream.py", "tests/e2e/test_cdn_service.py")


def pytest_collection_modifyitems(items):
    """pytest runs tests/e2e, then tests/faults, in path order: move the modules of
    SERVICE_LAB_SWITCHES, in that order, after the last test of either (the lab stays up to
    the session's end)."""
    def module(item):
        return item.nodeid.split("::")[0]
    switching = sorted((item for item in items if module(item) in SERVICE_LAB_SWITCHES),
                       key=lambda item: SERVICE_LAB_SWITCHES.index(module(item)))
    rest = [item for item in items if module(item) not in SERVICE_LAB_SWITCHES]
    service = [index for index, item in enumerate(rest) if item.nodeid.startswith(SERVICE_SUITES)]
    if switching and service:
        items[:] = rest[:service[-1] + 1] + switching + rest[service[-1] + 1:]


@pytest.fixture(scope="session")
def lab_config():
    return config.load(SERVICE_STACK)


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory):
    """One moto server for the whole session, on a free loopback port."""
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with MotoServer(log_path=log) as server:
        yield server


@pytest.fixture
def aws(moto_server, monkeypatch):
    """An empty AWS account behind the standard AWS environment variables."""
    moto_server.reset()
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    for name, value in moto_server.environment().items():
        monkeypatch.setenv(name, value)
    return moto_server


@pytest.fixture
def cloudfront_deploys(aws):
    """What CloudFront does once a distribution's configuration is on every edge, done here at
    once for every new version (the lab's edge does it after applying it, tests/lab): without it
    a wait for 'Deployed' would run out."""
    stop = threading.Event()

    def deploy():
        while not stop.wait(0.2):
            for distribution in aws.cloudfront():
                if distribution["Status"] == "InProgress":
                    aws.cloudfront_deployed(distribution["Id"], distribution["ETag"])

    thread = threading.Thread(target=deploy, daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join()


def observer(aws, service, region=None):
    """A client that reads (and sets up) the account as it is: the lab's own seat, which
    strict mode never refuses, so that what a test checks is not itself throttled."""
    import boto3

    return boto3.client(service, endpoint_url=aws.url, aws_access_key_id=strict.LAB_ACCESS_KEY_ID,
                        aws_secret_access_key="testing", region_name=region)


@pytest.fixture
def ec2(aws):
    return observer(aws, "ec2")


@pytest.fixture
def ansible(tmp_path):
    """Runs playbooks and ad-hoc modules in a scratch directory, results parsed."""
    if not shutil.which("ansible-playbook"):
        pytest.fail("ansible-playbook is not on PATH: run the tests through `make test`")
    return Runner(tmp_path, env=dict(os.environ))
