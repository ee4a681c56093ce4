"""How a stack and its resources are named and tagged (module_utils/naming.py), and the lab's
use of the same stack name rule."""

from __future__ import annotations

import pytest

from ansible_collections.livestream.aws.plugins.module_utils.naming import (
    named_filters, resource_name, stack_filters, stack_name_error, stack_tags, tag_specifications, tags_of)
from livestream_lab import config

GOOD = ["live", "a1", "tv-2", "x" * 32, "s-g", "sgx"]
BAD = ["", None, "l", "Live", "1live", "-live", "live-", "live_1", "live.tv", "x" * 33, "sg-live"]


@pytest.mark.parametrize("name", GOOD)
def test_a_good_stack_name(name):
    assert stack_name_error(name) is None


@pytest.mark.parametrize("name", BAD)
def test_a_bad_stack_name_says_why_and_where_it_was_given(name):
    error = stack_name_error(name, "stack_name")
    assert error.startswith(f"stack name {name!r} (stack_name) ")


def test_a_name_like_a_group_id_is_refused_for_the_groups_sake():
    assert "AWS refuses such security group names" in stack_name_error("sg-live")


@pytest.mark.parametrize("name", GOOD + BAD[2:])
def test_the_lab_takes_exactly_the_names_the_collection_takes(name):
    if stack_name_error(name) is None:
        assert config.load(name).stack == name
    else:
        with pytest.raises(ValueError, match="stack name"):
            config.load(name)


def test_a_stacks_resources_are_selected_by_its_tag():
    assert stack_filters("live") == [{"Name": "tag:Stack", "Values": ["live"]}]
    assert stack_filters("live", {"vpc-id": "vpc-1", "instance-state-name": ["pending", "running"]}) == [
        {"Name": "tag:Stack", "Values": ["live"]},
        {"Name": "vpc-id", "Values": ["vpc-1"]},
        {"Name": "instance-state-name", "Values": ["pending", "running"]},
    ]


def test_one_resource_is_found_by_its_name():
    assert resource_name("live", "public") == "live-public"
    assert named_filters("live", "private") == [
        {"Name": "tag:Stack", "Values": ["live"]}, {"Name": "tag:Name", "Values": ["live-private"]}]


def test_the_tags_of_a_stack_resource():
    assert stack_tags("live") == {"Stack": "live"}
    assert stack_tags("live", role="bastion", resource_name="live-bastion", extra={"AmiFamily": "debian12"}) == {
        "Stack": "live", "Role": "bastion", "Name": "live-bastion", "AmiFamily": "debian12"}
    # the stack's own tags win over extras of the same key
    assert stack_tags("live", extra={"Stack": "other"}) == {"Stack": "live"}


def test_tags_are_given_to_the_create_call_and_read_back_as_a_dict():
    (spec,) = tag_specifications("vpc", {"Stack": "live", "Name": "live-vpc"})
    assert spec["ResourceType"] == "vpc"
    assert tags_of({"Tags": spec["Tags"]}) == {"Stack": "live", "Name": "live-vpc"}
    assert tags_of({}) == {}
