"""The rules a stack's inputs must follow (module_utils/validation.py): each bad value named."""

from __future__ import annotations

import ipaddress

import pytest

from ansible_collections.livestream.aws.plugins.module_utils.validation import (
    access_errors, check_mode_only_errors, domain_errors, fail_on_errors, network_errors, normalize_dns_name,
    parse_cidr, ssh_public_key_errors, stack_errors)
from module_stand_in import Failed, Module

ED25519 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBUjQtWjI3D++Y+7hQvPOsPuIejtshknMqqrpkRgwp8p me@laptop"


@pytest.mark.parametrize("value, said", [
    ("10.0.0.1", "'10.0.0.1' is not a CIDR block (did you mean 10.0.0.1/32?)"),
    ("nonsense", "'nonsense' is not a CIDR block"),
    ("10.0.0.0/33", "'10.0.0.0/33' is not a CIDR block"),
    ("2001:db8::/32", "is IPv6: only IPv4 CIDR blocks are supported"),
    ("10.0.0.1/16", "'10.0.0.1/16' has host bits set (did you mean 10.0.0.0/16?)"),
    (None, "None is not a CIDR block"),
])
def test_a_bad_cidr_is_none_with_the_reason(value, said):
    errors = []
    assert parse_cidr("VPC CIDR", value, errors) is None
    assert len(errors) == 1 and said in errors[0] and errors[0].startswith("VPC CIDR ")


def test_a_good_cidr_is_its_network():
    errors = []
    assert parse_cidr("admin CIDR", "203.0.113.0/24", errors) == ipaddress.ip_network("203.0.113.0/24")
    assert errors == []


def test_the_default_network_is_good():
    assert network_errors("10.0.0.0/16", "10.0.1.0/24", "10.0.2.0/24") == []


@pytest.mark.parametrize("vpc, public, private, said", [
    ("10.0.0.0/8", "10.0.1.0/24", "10.0.2.0/24", "VPC CIDR '10.0.0.0/8' has a /8 prefix: AWS accepts /16 to /28"),
    ("10.0.0.0/16", "10.0.1.0/28", "10.0.2.0/30", "private subnet CIDR '10.0.2.0/30' has a /30 prefix: AWS accepts /16 to /28"),
    ("10.0.0.0/16", "10.1.1.0/24", "10.0.2.0/24", "public subnet CIDR '10.1.1.0/24' is outside the VPC CIDR '10.0.0.0/16'"),
    ("10.0.0.0/16", "10.0.0.0/23", "10.0.1.0/24", "public subnet CIDR '10.0.0.0/23' overlaps private subnet CIDR '10.0.1.0/24'"),
])
def test_a_network_that_aws_would_refuse_is_named(vpc, public, private, said):
    assert said in network_errors(vpc, public, private)


def test_every_bad_block_is_named_at_once():
    errors = network_errors("10.0.0.1/16", "x", "10.0.2.0/24")
    assert len(errors) == 2, errors


def access(admin_cidrs, **options):
    return {"admin_cidrs": admin_cidrs, "allow_ssh_from_anywhere": False, "ingest_cidrs": None, "ingest_port": 1936,
            **options}


def test_ssh_is_open_to_the_admin_cidrs_only():
    assert access_errors(access(["203.0.113.7/32", "198.51.100.0/24"])) == []
    assert "nobody could reach the bastion" in access_errors(access([]))[0]
    (error,) = access_errors(access(["0.0.0.0/0"]))
    assert "opens SSH to the whole internet" in error and "allow_ssh_from_anywhere" in error
    assert access_errors(access(["0.0.0.0/0"], allow_ssh_from_anywhere=True)) == []
    assert "'203.0.113.7' is not a CIDR block" in access_errors(access(["203.0.113.7"]))[0]


def test_ingest_from_anywhere_when_said_explicitly():
    assert access_errors(access(["203.0.113.7/32"], ingest_cidrs=["0.0.0.0/0"])) == []
    (error,) = access_errors(access(["203.0.113.7/32"], ingest_cidrs=["studio"]))
    assert error == "ingest CIDR (livestream_ingest_cidrs) 'studio' is not a CIDR block"


@pytest.mark.parametrize("port, said", [
    (0, "ingest port 0 (livestream_ingest_port) is not a TCP port (1-65535)"),
    (70000, "ingest port 70000 (livestream_ingest_port) is not a TCP port (1-65535)"),
    (443, "ingest port 443 (livestream_ingest_port) is the frontend's HTTPS port: give RTMPS a port of its own"),
    (1935, "ingest port 1935 (livestream_ingest_port) is the frontend's RTMP from the backend port"),
])
def test_ingest_gets_a_port_of_its_own(port, said):
    (error,) = access_errors(access(["203.0.113.7/32"], ingest_port=port))
    assert error.startswith(said)


@pytest.mark.parametrize("domain, zone", [
    ("live.example.com", "example.com"),
    ("Live.Example.COM.", "example.com"),
    ("example.com", "example.com"),
])
def test_a_domain_in_its_zone_is_good(domain, zone):
    assert domain_errors(domain, zone) == []


@pytest.mark.parametrize("domain, zone, said", [
    ("live.example.org", "example.com", "domain 'live.example.org' is not inside the hosted zone 'example.com'"),
    ("liveexample.com", "example.com", "is not inside the hosted zone"),
    ("localhost", "example.com", "domain 'localhost' is not a valid DNS name"),
    ("live_stream.example.com", "example.com", "is not a valid DNS name"),
    ("-live.example.com", "example.com", "is not a valid DNS name"),
    ("live.example.com", "", "hosted zone '' is not a valid DNS name"),
])
def test_a_bad_domain_or_zone_is_named(domain, zone, said):
    assert any(said in error for error in domain_errors(domain, zone)), domain_errors(domain, zone)


def test_names_are_compared_lower_case_without_the_trailing_dot():
    assert normalize_dns_name(" Live.Example.COM. ") == "live.example.com"
    assert normalize_dns_name(None) == ""


@pytest.mark.parametrize("key", [ED25519, "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ== me", ED25519.rsplit(" ", 1)[0]])
def test_rsa_and_ed25519_keys_are_good(key):
    assert ssh_public_key_errors(key) == []


@pytest.mark.parametrize("key, said", [
    ("ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTY= me", "EC2 imports RSA and ED25519 keys only"),
    ("-----BEGIN OPENSSH PRIVATE KEY-----", "is not an OpenSSH public key"),
    ("ssh-ed25519", "is not an OpenSSH public key"),
    ("ssh-ed25519 not*base64", "is not an OpenSSH public key"),
    (None, "is not an OpenSSH public key"),
])
def test_a_key_ec2_would_not_import_is_named(key, said):
    (error,) = ssh_public_key_errors(key)
    assert said in error and "ssh_public_key" in error


def test_a_bad_stack_name_is_one_error():
    assert stack_errors("live") == []
    assert len(stack_errors("Live")) == 1


def test_an_option_an_earlier_step_provides_may_be_missing_in_check_mode_only():
    assert check_mode_only_errors(Module(check_mode=True, vpc_id=None), "vpc_id") == []
    assert check_mode_only_errors(Module(vpc_id="vpc-1"), "vpc_id") == []
    assert check_mode_only_errors(Module(vpc_id=None), "vpc_id") == [
        "vpc_id is required (it may only be left out in check mode)"]


def test_every_problem_stops_the_module_at_once():
    fail_on_errors(Module(), [])
    with pytest.raises(Failed) as failed:
        fail_on_errors(Module(), ["one", "two"])
    assert failed.value.result == {"msg": "one; two", "errors": ["one", "two"]}
