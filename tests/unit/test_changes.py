"""How a module reports (module_utils/changes.py): its actions, check mode, the diff, and what
a failure half-way had begun."""

from __future__ import annotations

import pytest

from ansible_collections.livestream.aws.plugins.module_utils.changes import Changes
from ansible_collections.livestream.aws.plugins.module_utils.teardown import TEARDOWN_LEFT
from module_stand_in import Failed, Module


def test_nothing_recorded_is_no_change():
    module = Module()
    Changes(module).exit_json(vpc={"vpc_id": "vpc-1"})
    assert module.result == {"changed": False, "actions": [], "diff": {"before": {}, "after": {}}, "vpc": {"vpc_id": "vpc-1"}}


def test_each_change_is_an_action_and_a_line_of_the_diff():
    module = Module()
    changes = Changes(module)
    changes.record("create VPC live-vpc 10.0.0.0/16", "vpc", "absent", "10.0.0.0/16")
    changes.record("launch live-bastion (t3.micro)")
    changes.exit_json()
    assert module.result["changed"] is True
    assert module.result["actions"] == ["create VPC live-vpc 10.0.0.0/16", "launch live-bastion (t3.micro)"]
    assert module.result["diff"] == {
        "before": {"vpc": "absent", "launch live-bastion (t3.micro)": None},
        "after": {"vpc": "10.0.0.0/16", "launch live-bastion (t3.micro)": "launch live-bastion (t3.micro)"},
    }


def test_two_changes_of_one_thing_diff_from_the_first_state_to_the_last():
    changes = Changes(Module())
    changes.record("stop it", "state", "running", "stopped")
    changes.record("start it", "state", "stopped", "running")
    assert changes.diff() == {"before": {"state": "running"}, "after": {"state": "running"}}


def test_check_mode_is_the_modules():
    assert Changes(Module(check_mode=True)).check_mode is True
    assert Changes(Module()).check_mode is False


def test_a_failure_half_way_says_what_the_run_had_begun_and_what_is_left():
    module = Module()
    changes = Changes(module)
    changes.record("create VPC live-vpc 10.0.0.0/16")
    changes.record("create subnet live-public 10.0.1.0/24")
    with pytest.raises(Failed) as failed:
        module.fail_json(msg="Failed to make the subnets of stack 'live': InvalidVpcID.NotFound")
    assert failed.value.result["msg"] == (
        "Failed to make the subnets of stack 'live': InvalidVpcID.NotFound. Before it stopped this run began: "
        "create VPC live-vpc 10.0.0.0/16; create subnet live-public 10.0.1.0/24 (the last may not have happened); "
        "what it made is still there. Fix the cause and run it again (it carries on from what exists), "
        "or run teardown to remove the stack.")
    assert failed.value.result["actions"] == ["create VPC live-vpc 10.0.0.0/16", "create subnet live-public 10.0.1.0/24"]


def test_a_teardown_that_fails_half_way_says_the_rest_is_still_there():
    module = Module()
    changes = Changes(module, left=TEARDOWN_LEFT)
    changes.record("terminate instance i-1 (live-bastion)")
    with pytest.raises(Failed) as failed:
        module.fail_json(msg="Failed to terminate the instances of stack 'live'", removed=[])
    assert failed.value.result["msg"].endswith(
        "terminate instance i-1 (live-bastion) (the last may not have happened); " + TEARDOWN_LEFT)
    assert failed.value.result["removed"] == []


def test_a_failure_before_any_change_or_in_check_mode_is_the_modules_own_message():
    module = Module()
    Changes(module)
    with pytest.raises(Failed) as failed:
        module.fail_json(msg="no region")
    assert failed.value.result == {"msg": "no region"}

    module = Module(check_mode=True)
    Changes(module).record("create VPC live-vpc 10.0.0.0/16")
    with pytest.raises(Failed) as failed:
        module.fail_json(msg="Failed to make the VPC")
    assert failed.value.result == {"msg": "Failed to make the VPC"}
