"""Provisioning, its re-run, a replaced instance, the inventory and teardown against the
lab's API in strict mode (livestream_lab.strict): a new resource unknown to other calls for
1.5 s after its create call returns, and 15% of the calls throttled, as AWS may do both."""

from __future__ import annotations

import pytest

from livestream_lab import strict
from provisioning import COMPLETE, PROVISION, TEARDOWN, Inventory, census, counts, stack_vars


@pytest.fixture
def strict_api(aws):
    """Strict mode on for the test (the seed picks which calls are refused: tests/lab's lab
    and the benchmark use others); what it did at the end."""
    aws.strict(**strict.AS_AWS, seed=2)
    yield aws
    print("strict mode:", aws.strict_counts())


def _backends(ec2, live_only=True):
    states = [{"Name": "instance-state-name", "Values": ["pending", "running"]}] if live_only else []
    return [i["InstanceId"] for r in ec2.describe_instances(Filters=[
        {"Name": "tag:Stack", "Values": ["live"]}, {"Name": "tag:Role", "Values": ["backend"]}, *states])["Reservations"]
        for i in r["Instances"]]


def test_provision_rerun_replacement_inventory_and_teardown_hold_under_strict_mode(ec2, strict_api, ansible, tmp_path):
    stack = stack_vars(tmp_path)

    created = ansible.playbook(PROVISION, extra_vars=stack)
    assert created.returncode == 0, created.stdout[-3000:]
    done = strict_api.strict_counts()
    # the run met what it is about: new IDs refused, listings without them, throttling
    assert done["not_found"] + done["hidden"] > 0 and done["throttled"] > 0, done
    assert counts(ec2, "live") == COMPLETE
    before = census(ec2, "live")

    again = ansible.playbook(PROVISION, extra_vars=stack)
    assert again.returncode == 0, again.stdout[-3000:]
    assert again.changed() == 0
    assert census(ec2, "live") == before

    # AWS answers a reused launch token with the first launch for a day at least, a terminated
    # instance included: re-provisioning launches a new instance instead of waiting on it
    (gone,) = _backends(ec2)
    ec2.terminate_instances(InstanceIds=[gone])
    reused_before = strict_api.strict_counts()["token_reused"]
    replaced = ansible.playbook(PROVISION, extra_vars=stack)
    assert replaced.returncode == 0, replaced.stdout[-3000:]
    assert strict_api.strict_counts()["token_reused"] > reused_before, "the first launch's token was asked again"
    assert counts(ec2, "live") == COMPLETE
    assert len(_backends(ec2)) == 1 and _backends(ec2) != [gone]

    groups = Inventory(tmp_path).list({"stack_name": "live"})
    assert [len(groups[role]["hosts"]) for role in ("bastion", "frontend", "backend")] == [1, 1, 1]

    removed = ansible.playbook(TEARDOWN, extra_vars=stack)
    assert removed.returncode == 0, removed.stdout[-3000:]
    assert {kind: ids for kind, ids in census(ec2, "live").items() if ids} == {}
