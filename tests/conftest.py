"""Fixtures shared by every test suite: the AWS API (a real moto server over HTTP) and
a way to run ansible-playbook against it the way a user would."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from livestream_lab import strict
from livestream_lab.moto import MotoServer
from livestream_testing import ROOT
from livestream_testing.playbook import Runner

# Running `pytest` from the venv works like `make pytest`: the venv's tools first, the
# working tree importable as livestream.aws (the link collections/ansible_collections/livestream/aws).
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
os.environ.setdefault("ANSIBLE_COLLECTIONS_PATH", str(ROOT / "collections"))
os.environ.setdefault("ANSIBLE_CONFIG", str(ROOT / "ansible.cfg"))


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
