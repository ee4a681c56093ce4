"""The inventory plugin's choices (plugins/inventory/stack.py): the address of each host, the
bastion, which hosts are reached through it, the ssh options for that, and the login user's family."""

from __future__ import annotations

import shlex

import pytest
from ansible.errors import AnsibleError

from ansible_collections.livestream.aws.plugins.inventory.stack import (
    direct_address, host_key_args, os_family, pick_bastion, proxy_command_args, through_bastion)

PRIVATE, PUBLIC = "10.0.2.4", "198.51.100.7"


def test_a_host_is_reached_at_its_public_address_unless_it_has_none_or_the_controller_is_inside():
    assert direct_address(PRIVATE, PUBLIC, use_private_addresses=False) == PUBLIC
    assert direct_address(PRIVATE, None, use_private_addresses=False) == PRIVATE
    assert direct_address(PRIVATE, PUBLIC, use_private_addresses=True) == PRIVATE


def test_the_bastion_is_a_running_one_then_the_first_launched():
    assert pick_bastion([]) is None
    assert pick_bastion([("b1", "pending", "2026-01-01T00:00"), ("b2", "running", "2026-01-02T00:00")]) == "b2"
    assert pick_bastion([("b2", "running", "2026-01-02T00:00"), ("b1", "running", "2026-01-01T00:00")]) == "b1"


@pytest.mark.parametrize("public, bastion, bastion_public, private_mode, through", [
    (False, "live-bastion", True, False, True),   # the backend, the usual way
    (True, "live-bastion", True, False, True),    # the frontend too: the groups let SSH in from the bastion only
    (True, "live-bastion", False, True, True),    # from inside the VPC, at the bastion's private address
    (True, None, False, False, False),            # no bastion: straight to its public address
    (True, "live-bastion", False, False, False),  # a bastion out of reach: the same
])
def test_which_hosts_are_reached_through_the_bastion(public, bastion, bastion_public, private_mode, through):
    assert through_bastion("live", "live-frontend", public, bastion, bastion_public, private_mode) is through


def test_a_private_host_without_a_bastion_cannot_be_reached():
    with pytest.raises(AnsibleError, match="has no public address and the stack has no running bastion"):
        through_bastion("live", "live-backend", False, None, False, False)


def test_a_private_host_behind_a_bastion_without_a_public_address_cannot_be_reached_from_outside():
    with pytest.raises(AnsibleError, match="which has no public address; set use_private_addresses: true"):
        through_bastion("live", "live-backend", False, "live-bastion", False, False)


def test_the_hop_is_a_proxy_command_with_the_bastions_user_port_key_and_options():
    args = shlex.split(proxy_command_args("admin", PUBLIC, 2222, "/keys/100%.pem", ["-o", "ConnectTimeout=5"]))
    assert args[0] == "-o" and args[1].startswith("ProxyCommand=")
    assert shlex.split(args[1][len("ProxyCommand="):]) == [
        "ssh", "-W", "%h:%p", "-p", "2222", "-i", "/keys/100%%.pem", "-o", "IdentitiesOnly=yes",
        "-o", "ConnectTimeout=5", f"admin@{PUBLIC}"]
    assert shlex.split(shlex.split(proxy_command_args(None, PUBLIC, 22))[1])[-1] == PUBLIC


def test_host_keys_are_kept_under_the_instance_id():
    assert host_key_args("i-1", "/home/me/known_hosts", "accept-new") == [
        "-o", "HostKeyAlias=i-1", "-o", "UserKnownHostsFile=/home/me/known_hosts", "-o", "StrictHostKeyChecking=accept-new"]
    assert host_key_args("i-1", None, "accept-new") == []


@pytest.mark.parametrize("image_name, tag, family", [
    ("debian-12-amd64-20241201-1948", None, "debian"),
    ("ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20250115", "debian12", "ubuntu"),
    ("my-golden-image", "ubuntu2404", "ubuntu"),
    ("my-golden-image", "debian12", "debian"),
    (None, None, None),
    ("amzn2-ami-hvm", "", None),
])
def test_the_login_users_family_from_the_image_name_then_the_tag(image_name, tag, family):
    assert os_family(image_name, tag) == family
