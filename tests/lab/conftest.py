"""One lab for the whole session, under a stack name of its own (so that it runs beside a
lab brought up by hand), and what the host looked like before it."""

from __future__ import annotations

import pytest

from livestream_testing.lab import STACK, require_lab_host, snapshot
from livestream_lab import config, lab as lab_flow, strict


@pytest.fixture(scope="session")
def lab_config():
    return config.load(STACK)


@pytest.fixture(scope="session")
def host_before(lab_config):
    require_lab_host()
    lab_flow.down(lab_config)  # a lab left over by an interrupted run
    return snapshot()


@pytest.fixture(scope="session")
def lab(lab_config, host_before):
    """The lab, up, with its checks passed, its API as strict as AWS's while it came up
    (provisioning, the inventory and the checks met it); taken down at the end of the session."""
    # bare machines: these tests are about the lab; the configured service is make lab's and molecule's
    summary = lab_flow.up(lab_config, configure_service=False, strict_mode={**strict.AS_AWS, "seed": 1})
    yield summary
    lab_flow.down(lab_config)
