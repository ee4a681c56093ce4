"""Bad inputs stop provisioning before anything is created, with a message that names them."""

from __future__ import annotations

import pytest

from provisioning import LAUNCHING_TASK, PROVISION, PUBLIC_KEY, route53, stack_vars


def nothing_exists(ec2, aws):
    assert [v for v in ec2.describe_vpcs()["Vpcs"] if not v["IsDefault"]] == []
    assert ec2.describe_key_pairs()["KeyPairs"] == []
    assert ec2.describe_instances()["Reservations"] == []
    assert route53(aws).list_hosted_zones()["HostedZones"] == []


BAD_INPUTS = {
    "overlapping subnets": (
        {"livestream_private_subnet_cidr": "10.0.1.128/25"},
        "public subnet CIDR '10.0.1.0/24' overlaps private subnet CIDR '10.0.1.128/25'",
    ),
    "subnet outside the VPC": (
        {"livestream_public_subnet_cidr": "10.1.1.0/24"},
        "public subnet CIDR '10.1.1.0/24' is outside the VPC CIDR '10.0.0.0/16'",
    ),
    "malformed domain": ({"livestream_domain": "live..example.test"}, "domain 'live..example.test' is not a valid DNS name"),
    "domain outside the zone": (
        {"livestream_domain": "live.example.org"},
        "domain 'live.example.org' is not inside the hosted zone 'example.test'",
    ),
    "admin CIDR that is a word": ({"livestream_admin_cidrs": ["office-vpn"]}, "admin CIDR 'office-vpn' is not a CIDR block"),
    "admin CIDR that is an address": (
        {"livestream_admin_cidrs": ["203.0.113.7"]},
        "admin CIDR '203.0.113.7' is not a CIDR block (did you mean 203.0.113.7/32?)",
    ),
    "admin CIDR out of range": ({"livestream_admin_cidrs": ["10.0.0.300/32"]}, "admin CIDR '10.0.0.300/32' is not a CIDR block"),
    "SSH open to the world without opt-in": (
        {"livestream_admin_cidrs": ["203.0.113.0/24", "0.0.0.0/0"]},
        "admin CIDR '0.0.0.0/0' opens SSH to the whole internet",
    ),
    "no admin CIDR at all": ({"livestream_admin_cidrs": []}, "admin CIDRs are empty"),
    "unknown AMI family": ({"livestream_ami_family": "centos7"}, "centos7"),
    "CPU credit option that is not one": (
        {"livestream_cpu_credits": "burst"}, "value of cpu_credits must be one of: standard, unlimited, got: burst"),
    "bad stack name": ({"livestream_stack_name": "Live_Stream"}, "stack name 'Live_Stream' (name, livestream_stack_name) is not valid"),
    "instance type the zone does not offer": (
        {"livestream_availability_zone": "us-east-1e"},
        "availability zone 'us-east-1e' (livestream_availability_zone) does not offer the instance type 't3.micro' "
        "of the bastion",
    ),
    "a typo of a setting": (
        {"livestream_admin_cidr": ["203.0.113.7/32"]},
        "unknown variable livestream_admin_cidr (did you mean livestream_admin_cidrs?)",
    ),
    "instance types that are not a mapping": (
        {"livestream_instance_types": "c6i.large"},
        "livestream_instance_types: c6i.large is not a mapping of role to instance type",
    ),
    "a key file that is not there": (
        {"livestream_ssh_public_key_file": "/nonexistent/id_ed25519.pub"},
        "livestream_ssh_public_key_file: no file at /nonexistent/id_ed25519.pub",
    ),
    "hosted zone that does not exist": (
        {"livestream_create_hosted_zone": False},
        "hosted zone 'example.test' for domain 'live.example.test' not found",
    ),
}


@pytest.mark.parametrize("case", BAD_INPUTS, ids=list(BAD_INPUTS))
def test_bad_input_fails_by_name_and_creates_nothing(ec2, aws, ansible, tmp_path, case):
    overrides, message = BAD_INPUTS[case]

    result = ansible.playbook(PROVISION, extra_vars=stack_vars(tmp_path, **overrides))

    assert result.returncode != 0
    assert any(message in m for m in result.failure_messages()), result.failure_messages() or result.stdout[-2000:]
    nothing_exists(ec2, aws)


def test_a_key_file_that_holds_no_public_key_is_refused(ec2, aws, ansible, tmp_path):
    stack = stack_vars(tmp_path)
    bad_key = tmp_path / "id_ed25519"
    bad_key.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n")

    result = ansible.playbook(PROVISION, extra_vars={**stack, "livestream_ssh_public_key_file": str(bad_key)})

    assert result.returncode != 0
    assert any("is not an OpenSSH public key" in m for m in result.failure_messages())
    nothing_exists(ec2, aws)


# What AWS refuses (and moto accepts) stops the run before anything is made, every problem
# of a kind named at once with the variable to change. "ECDSA_KEY" stands for a key file
# holding an ECDSA key, which EC2 does not import.
REFUSED_BY_AWS = {
    "names": (
        {"livestream_stack_name": "sg-live", "livestream_domain": "sg-live.example.test",
         "livestream_region": "eu-west-9", "livestream_ssh_public_key_file": "ECDSA_KEY"},
        ["stack name 'sg-live' (name, livestream_stack_name) must not start with 'sg-'",
         "region 'eu-west-9' is not an AWS region (region, livestream_region, AWS_REGION",
         "of type 'ecdsa-sha2-nistp256' (ssh_public_key, livestream_ssh_public_key_file): EC2 imports "
         "RSA and ED25519 keys only"],
    ),
    "placement": (
        {"livestream_availability_zone": "us-east-1z",
         "livestream_instance_types": {"backend": "c6i.huge", "frontend": "t4g.small"}},
        ["availability zone 'us-east-1z' (availability_zone, livestream_availability_zone) is not in region us-east-1",
         "instance type 'c6i.huge' of the backend (instance_types.backend, livestream_instance_types) is not an "
         "EC2 instance type",
         "instance type 't4g.small' of the frontend (instance_types.frontend, livestream_instance_types) runs "
         "arm64, not the AMI's x86_64"],
    ),
}


@pytest.mark.parametrize("case", REFUSED_BY_AWS, ids=list(REFUSED_BY_AWS))
def test_every_input_aws_would_refuse_is_named_in_one_run(ec2, aws, ansible, tmp_path, case):
    overrides, expected = REFUSED_BY_AWS[case]
    ecdsa = tmp_path / "id_ecdsa.pub"
    ecdsa.write_text(PUBLIC_KEY.replace("ssh-ed25519", "ecdsa-sha2-nistp256") + "\n")
    overrides = {key: str(ecdsa) if value == "ECDSA_KEY" else value for key, value in overrides.items()}

    result = ansible.playbook(PROVISION, extra_vars=stack_vars(tmp_path, **overrides))

    assert result.returncode != 0
    message = " ".join(result.failure_messages())
    for line in expected:
        assert line in message, message
    nothing_exists(ec2, aws)


def test_without_a_zone_the_first_that_offers_every_type_is_chosen(ec2, aws, ansible, tmp_path):
    result = ansible.playbook(PROVISION, check=True, extra_vars=stack_vars(tmp_path))

    assert result.returncode == 0, result.failure_messages()
    assert result.task(LAUNCHING_TASK[PROVISION])["subnets"]["public"]["availability_zone"] == "us-east-1a"


def test_no_credentials_fails_and_says_so(ec2, aws, ansible, tmp_path):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        ansible.env.pop(name, None)
    # nowhere else to find any: no files, and never the instance metadata service
    ansible.env.update(AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"), AWS_CONFIG_FILE=str(tmp_path / "none"),
                       AWS_EC2_METADATA_DISABLED="true")

    result = ansible.playbook(PROVISION, extra_vars=stack_vars(tmp_path))

    assert result.returncode != 0
    assert any("No AWS credentials for stack 'live'" in m for m in result.failure_messages()), result.failure_messages()
    nothing_exists(ec2, aws)


def test_no_region_anywhere_fails_and_says_where_to_set_one(ec2, aws, ansible, tmp_path):
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        ansible.env.pop(name, None)
    ansible.env.update(AWS_CONFIG_FILE=str(tmp_path / "none"))

    result = ansible.playbook(PROVISION, extra_vars=stack_vars(tmp_path))

    assert result.returncode != 0
    assert any("no region: set region (livestream_region), AWS_REGION, AWS_DEFAULT_REGION or the profile's region"
               in m for m in result.failure_messages()), result.failure_messages()
    nothing_exists(ec2, aws)


def test_no_ami_of_the_family_fails_and_says_which(ec2, aws, ansible, tmp_path):
    debian_amd64 = ec2.describe_images(Owners=["136693071363"], Filters=[{"Name": "architecture", "Values": ["x86_64"]}])["Images"]
    for image in debian_amd64:
        ec2.deregister_image(ImageId=image["ImageId"])

    result = ansible.playbook(PROVISION, extra_vars=stack_vars(tmp_path))

    assert result.returncode != 0
    assert any(
        "No debian13 AMI named 'debian-13-amd64-*' for x86_64 owned by 136693071363 found" in m
        for m in result.failure_messages()
    ), result.failure_messages()
    nothing_exists(ec2, aws)


def test_ssh_from_anywhere_is_accepted_with_the_explicit_opt_in(ec2, aws, ansible, tmp_path):
    stack = stack_vars(tmp_path, livestream_admin_cidrs=["0.0.0.0/0"], livestream_allow_ssh_from_anywhere=True)

    result = ansible.playbook(PROVISION, check=True, extra_vars=stack)

    assert result.returncode == 0, result.failure_messages()
    assert "SSH" not in " ".join(result.failure_messages())
    provision = result.task(LAUNCHING_TASK[PROVISION])
    assert "tcp 22 from 0.0.0.0/0" in provision["diff"]["after"]["bastion ingress"]


# Each module checks its own inputs before its first call: with an endpoint that answers
# nothing, the error is still about the input.
MODULE_CASES = {
    "network": ({"name": "live", "vpc_cidr": "10.0.0.0/8"}, "VPC CIDR '10.0.0.0/8' has a /8 prefix"),
    "security_groups": (
        {"name": "live", "vpc_id": "vpc-1", "admin_cidrs": ["0.0.0.0/0"]},
        "admin CIDR '0.0.0.0/0' opens SSH to the whole internet",
    ),
    "instances": (
        {"name": "live", "image_id": "ami-1", "ssh_public_key": "hello", "subnet_ids": {"public": "s-1", "private": "s-2"},
         "security_group_ids": {"bastion": "sg-1", "frontend": "sg-2", "backend": "sg-3"}},
        "SSH public key 'hello' (ssh_public_key, livestream_ssh_public_key_file) is not an OpenSSH public key",
    ),
    "dns_record": (
        {"name": "live", "domain": "live.example.org", "hosted_zone": "example.test", "address": "192.0.2.1"},
        "domain 'live.example.org' is not inside the hosted zone 'example.test'",
    ),
    "nat_route": ({"name": "-live", "network_interface_id": "eni-1"}, "stack name '-live' (name, livestream_stack_name) is not valid"),
    "frontend_address": ({"name": "live"}, "instance_id is required"),
    "stack_provision": (
        {"name": "live", "admin_cidrs": ["192.0.2.0/24"], "domain": "live.example.test", "hosted_zone": "example.test",
         "ssh_public_key": PUBLIC_KEY, "private_subnet_cidr": "10.0.0.0/8"},
        "private subnet CIDR '10.0.0.0/8' has a /8 prefix",
    ),
    "stack_validate": (
        {"name": "live", "admin_cidrs": ["192.0.2.0/24"], "domain": "live.example.test", "hosted_zone": "example.test",
         "ssh_public_key": PUBLIC_KEY, "vpc_cidr": "10.0.0.0/29", "public_subnet_cidr": "10.0.0.0/28",
         "private_subnet_cidr": "10.0.0.16/28"},
        "public subnet CIDR '10.0.0.0/28' is outside the VPC CIDR '10.0.0.0/29'",
    ),
    "stack_teardown": ({"name": "live", "domain": "live.example.org", "hosted_zone": "example.test"}, "is not inside the hosted zone"),
}


@pytest.mark.parametrize("module", MODULE_CASES, ids=list(MODULE_CASES))
def test_each_module_refuses_bad_input_before_calling_aws(aws, ansible, module):
    args, message = MODULE_CASES[module]

    result = ansible.module(f"livestream.aws.{module}", {**args, "endpoint_url": "http://127.0.0.1:9"})

    assert result["failed"]
    assert message in result["msg"]
