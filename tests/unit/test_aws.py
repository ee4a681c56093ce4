"""The one resource of a kind (module_utils/aws.py: only_one)."""

from __future__ import annotations

import pytest

from ansible_collections.livestream.aws.plugins.module_utils.aws import only_one
from module_stand_in import Failed, Module


def test_none_found_is_none_and_one_is_it():
    assert only_one(Module(), [], "VpcId", "VPCs of stack 'live'") is None
    assert only_one(Module(), [{"VpcId": "vpc-1"}], "VpcId", "VPCs of stack 'live'") == {"VpcId": "vpc-1"}


def test_more_than_one_fails_naming_each():
    with pytest.raises(Failed, match=r"^there are 2 VPCs of stack 'live': \['vpc-1', 'vpc-2'\]$"):
        only_one(Module(), [{"VpcId": "vpc-1"}, {"VpcId": "vpc-2"}], "VpcId", "VPCs of stack 'live'")


def test_more_than_one_may_say_what_to_do():
    with pytest.raises(Failed, match=r": \['i-1', 'i-2'\]; terminate the extra ones and run again$"):
        only_one(Module(), [{"InstanceId": "i-1"}, {"InstanceId": "i-2"}], "InstanceId", "bastion instances of stack 'live'",
                 fix="terminate the extra ones and run again")
