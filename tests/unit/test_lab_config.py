"""The lab's names and address blocks: valid for the kernel, and apart for two labs."""

from __future__ import annotations

import ipaddress
import os
import subprocess

import pytest

from ansible_collections.livestream.aws.plugins.module_utils.images import AMI_FAMILIES, DEFAULT_AMI_FAMILY, name_pattern
from livestream_lab import config, image, system

STACKS = ["live", "labtest", "molecule", "a1", "x" * 32]


@pytest.mark.parametrize("stack", STACKS)
def test_interface_names_fit_the_kernel(stack):
    lab = config.load(stack)
    names = [lab.bridge(9), *lab.router_leg(9), *lab.transit_links, lab.machine_veth(9, 9)]
    assert all(len(name) <= 15 for name in names), names


def test_two_labs_share_no_name_and_no_address_block():
    one, other = config.load("live"), config.load("labtest")
    assert one.bridge(0) != other.bridge(0)
    assert one.netns != other.netns
    assert one.state_dir != other.state_dir
    assert one.cgroup_dirs() != other.cgroup_dirs()
    assert not one.transit_network.overlaps(other.transit_network)
    assert not one.default_vpc_cidr().overlaps(other.default_vpc_cidr())


@pytest.mark.parametrize("stack", STACKS)
def test_address_blocks_stay_private_and_clear_of_the_aws_default(stack):
    lab = config.load(stack)
    assert lab.transit_network.subnet_of(config.TRANSIT_BLOCK)
    vpc = lab.default_vpc_cidr()
    assert vpc.is_private and vpc.prefixlen == 16
    assert not vpc.overlaps(ipaddress.ip_network("10.0.0.0/16"))


def test_a_stack_name_that_cannot_name_a_lab_is_refused():
    with pytest.raises(ValueError, match="not valid"):
        config.load("Bad_Name")


def test_a_foreground_command_of_up_is_a_lab_process_and_others_are_not(tmp_path):
    """A killed `up` leaves its running foreground children (ssh-keygen, mount) for `down`."""
    lab_id = str(tmp_path)
    with system.marked(lab_id):
        inside = subprocess.Popen(["sleep", "30"])
    outside = subprocess.Popen(["sleep", "30"])
    try:
        found = system.lab_processes(lab_id)
        assert inside.pid in found
        assert outside.pid not in found
        assert system.MARKER not in os.environ
    finally:
        for process in (inside, outside):
            process.kill()
            process.wait()


def test_a_machine_boots_the_debian_release_of_its_ami_and_nothing_else():
    assert image.suite_of("debian-13-amd64-20261117-1512") == "trixie"
    assert image.suite_of("debian-12-arm64-20241201-1948") == "bookworm"
    # an AMI the lab has no image of is refused by name, not booted as Debian
    for name in ("ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20241109", "debian-11-amd64-x", ""):
        with pytest.raises(LookupError, match="no image for the AMI"):
            image.suite_of(name)
    # each release its own cached image
    assert image.image_path("trixie") != image.image_path("bookworm")


def test_the_lab_builds_by_default_the_release_the_collection_launches_by_default():
    assert image.suite_of(name_pattern(DEFAULT_AMI_FAMILY)) == image.DEFAULT_SUITE
    # every Debian family the collection offers, the lab boots
    for family in AMI_FAMILIES:
        if family.startswith("debian"):
            assert image.suite_of(name_pattern(family)) in image.SUITES.values()
    # make test builds every release's image beside the suites, the default's first (the one
    # the first labs wait for)
    assert image.by_preference()[0] == image.DEFAULT_SUITE
    assert sorted(image.by_preference()) == sorted(image.SUITES.values())
