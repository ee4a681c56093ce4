"""playbooks/provision.yml against a real moto server: the stack it builds, a second run,
check mode, a run killed half-way, two stacks side by side."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from provisioning import (ADMIN_CIDR, COMPLETE, COMPOSED, LAUNCHING_TASK, PROVISION, TEARDOWN, ZONE, a_records,
                          census, counts, instances_by_role, route53, stack_vars, tags)

# provision.yml (one livestream.aws.stack_provision task) and the same stack composed from
# the concept modules must build exactly the same thing
BOTH = pytest.mark.parametrize("playbook", [PROVISION, COMPOSED], ids=["provision.yml", "composed"])


def rules(group):
    """Ingress of a group as {(protocol, port, source)}, sources as CIDRs or group IDs."""
    found = set()
    for permission in group["IpPermissions"]:
        port = permission.get("FromPort")
        for ip_range in permission["IpRanges"]:
            found.add((permission["IpProtocol"], port, ip_range["CidrIp"]))
        for pair in permission["UserIdGroupPairs"]:
            found.add((permission["IpProtocol"], port, pair["GroupId"]))
    return found


@BOTH
def test_builds_the_whole_stack(ec2, aws, ansible, tmp_path, playbook):
    result = ansible.playbook(playbook, extra_vars=stack_vars(tmp_path))

    assert result.returncode == 0, result.stdout[-3000:]
    assert counts(ec2, "live") == COMPLETE

    vpc = ec2.describe_vpcs(Filters=[{"Name": "tag:Stack", "Values": ["live"]}])["Vpcs"][0]
    assert vpc["CidrBlock"] == "10.0.0.0/16"
    subnets = {tags(s)["Name"]: s for s in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])["Subnets"]}
    public, private = subnets["live-public"], subnets["live-private"]
    assert (public["CidrBlock"], private["CidrBlock"]) == ("10.0.1.0/24", "10.0.2.0/24")
    assert public["AvailabilityZone"] == private["AvailabilityZone"]
    assert public["MapPublicIpOnLaunch"] and not private["MapPublicIpOnLaunch"]

    igw = ec2.describe_internet_gateways(Filters=[{"Name": "attachment.vpc-id", "Values": [vpc["VpcId"]]}])["InternetGateways"]
    assert len(igw) == 1
    instances = instances_by_role(ec2, "live")
    bastion_eni = instances["bastion"]["NetworkInterfaces"][0]["NetworkInterfaceId"]
    tables = {tags(t)["Name"]: t for t in ec2.describe_route_tables(Filters=[{"Name": "tag:Stack", "Values": ["live"]}])["RouteTables"]}
    default = {name: next(r for r in t["Routes"] if r.get("DestinationCidrBlock") == "0.0.0.0/0") for name, t in tables.items()}
    assert default["live-public"]["GatewayId"] == igw[0]["InternetGatewayId"]
    assert default["live-private"]["NetworkInterfaceId"] == bastion_eni
    assert [a["SubnetId"] for a in tables["live-public"]["Associations"]] == [public["SubnetId"]]
    assert [a["SubnetId"] for a in tables["live-private"]["Associations"]] == [private["SubnetId"]]

    groups = {tags(g)["Name"].removeprefix("live-"): g
              for g in ec2.describe_security_groups(Filters=[{"Name": "tag:Stack", "Values": ["live"]}])["SecurityGroups"]}
    ids = {role: g["GroupId"] for role, g in groups.items()}
    assert rules(groups["bastion"]) == {("tcp", 22, ADMIN_CIDR), ("-1", None, "10.0.2.0/24")}
    assert rules(groups["frontend"]) == {
        ("tcp", 80, "0.0.0.0/0"), ("tcp", 443, "0.0.0.0/0"), ("tcp", 1935, ids["backend"]), ("tcp", 22, ids["bastion"]),
        # the metrics the backend and the bastion push
        ("tcp", 9101, ids["backend"]), ("tcp", 9101, ids["bastion"]),
        # RTMPS from encoders: livestream_ingest_cidrs, by default the admin CIDRs
        ("tcp", 1936, ADMIN_CIDR),
    }
    assert rules(groups["backend"]) == {("tcp", 22, ids["bastion"])}
    # the frontend's second group: HTTPS from a CDN, none here
    assert rules(groups["origin"]) == set() and "Role" not in tags(groups["origin"])

    for role, instance in instances.items():
        assert tags(instance) == {
            "Stack": "live", "Role": role, "Name": f"live-{role}", "AmiFamily": "debian13",
        }
        assert instance["ImageId"] == "ami-0deb13a0000000002", "the newest Debian 13 amd64 image of Debian's account"
        assert instance["MetadataOptions"]["HttpTokens"] == "required"
        assert instance["KeyName"] == "live-key"
        assert [g["GroupId"] for g in instance["NetworkInterfaces"][0]["Groups"]] == (
            [ids[role], ids["origin"]] if role == "frontend" else [ids[role]])
        root = ec2.describe_volumes(VolumeIds=[instance["BlockDeviceMappings"][0]["Ebs"]["VolumeId"]])["Volumes"][0]
        assert (root["VolumeType"], root["Encrypted"]) == ("gp3", True)
    assert instances["bastion"]["SourceDestCheck"] is False
    assert instances["frontend"]["SourceDestCheck"] is True
    assert instances["backend"]["SubnetId"] == private["SubnetId"]
    assert not instances["backend"].get("PublicIpAddress")
    assert instances["bastion"].get("PublicIpAddress")

    address = ec2.describe_addresses(Filters=[{"Name": "tag:Stack", "Values": ["live"]}])["Addresses"][0]
    assert address["InstanceId"] == instances["frontend"]["InstanceId"]
    assert a_records(route53(aws), "live.example.test") == {ZONE: [address["PublicIp"]]}

    summary = result.task("Remember the stack for the plays that follow")["ansible_facts"]["livestream_provisioned"]
    assert summary["frontend_address"] == address["PublicIp"]
    assert summary["domain"] == "live.example.test"
    assert summary["instances"]["backend"]["private_ip_address"] == instances["backend"]["PrivateIpAddress"]
    assert summary["login_user"] == "admin"


@BOTH
def test_second_run_changes_nothing(ec2, ansible, tmp_path, playbook):
    """The second run makes no change, whichever of the two playbooks built the stack."""
    stack = stack_vars(tmp_path)
    assert ansible.playbook(playbook, extra_vars=stack).returncode == 0
    before = census(ec2, "live")

    again = ansible.playbook(playbook, extra_vars=stack)

    assert again.returncode == 0, again.stdout[-3000:]
    assert again.changed() == 0
    assert census(ec2, "live") == before


@BOTH
def test_check_mode_on_an_empty_account_changes_nothing(ec2, aws, ansible, tmp_path, playbook):
    result = ansible.playbook(playbook, check=True, extra_vars=stack_vars(tmp_path))

    assert result.returncode == 0, result.stdout[-3000:]
    assert result.changed() >= 1, "check mode reports what it would create"
    actions = result.task(LAUNCHING_TASK[playbook])["actions"]
    assert "launch live-backend (t3.small)" in actions
    assert "create VPC live-vpc 10.0.0.0/16" in actions or result.task("Network (VPC, subnets, internet gateway, route tables)")["changed"]
    assert ec2.describe_vpcs()["Vpcs"] == [v for v in ec2.describe_vpcs()["Vpcs"] if v["IsDefault"]]
    assert all(n == 0 for n in counts(ec2, "live").values())
    assert ec2.describe_instances()["Reservations"] == []
    assert route53(aws).list_hosted_zones()["HostedZones"] == []


def test_the_cdn_switched_on_then_off_moves_the_records_and_https_back(ec2, aws, ansible, tmp_path):
    """provision.yml with livestream_cdn: cloudfront, then with none (README, "Grow past one
    box"): behind the CDN the frontend has a name of its own and HTTPS from CloudFront's
    prefix list only, in the origin group; switched off, the origin's record is gone and HTTPS
    is the frontend group's, open to all, again, on the same instance."""
    def https_and_origin_record():
        groups = {tags(g)["Name"].removeprefix("live-"): g
                  for g in ec2.describe_security_groups(Filters=[{"Name": "tag:Stack", "Values": ["live"]}])["SecurityGroups"]}
        https = {role: [permission for permission in group["IpPermissions"] if permission.get("FromPort") == 443]
                 for role, group in groups.items()}
        return https, a_records(route53(aws), "origin.live.example.test")

    on = ansible.playbook(PROVISION, extra_vars=stack_vars(tmp_path, livestream_cdn="cloudfront"))
    assert on.returncode == 0, on.stdout[-3000:]
    frontend = instances_by_role(ec2, "live")["frontend"]
    address = ec2.describe_addresses(Filters=[{"Name": "tag:Stack", "Values": ["live"]}])["Addresses"][0]["PublicIp"]
    https, origin = https_and_origin_record()
    assert origin == {ZONE: [address]}
    assert https["frontend"] == []
    [from_cdn] = https["origin"]
    assert not from_cdn["IpRanges"] and len(from_cdn["PrefixListIds"]) == 1

    off = ansible.playbook(PROVISION, extra_vars=stack_vars(tmp_path, livestream_cdn="none"))
    assert off.returncode == 0, off.stdout[-3000:]
    https, origin = https_and_origin_record()
    assert origin == {}
    assert https["origin"] == []
    assert [ip_range["CidrIp"] for permission in https["frontend"] for ip_range in permission["IpRanges"]] == ["0.0.0.0/0"]
    assert a_records(route53(aws), "live.example.test") == {ZONE: [address]}
    assert instances_by_role(ec2, "live")["frontend"]["InstanceId"] == frontend["InstanceId"]


def test_another_family_is_an_option_and_a_stack_keeps_the_images_it_was_launched_from(ec2, ansible, tmp_path):
    """Ubuntu (untested beyond the API), then the default family asked of the same stack: its
    instances stay as they were (README: changing livestream_ami_family changes nothing there)."""
    result = ansible.playbook(PROVISION, extra_vars=stack_vars(tmp_path, livestream_ami_family="ubuntu2404"))

    assert result.returncode == 0, result.stdout[-3000:]
    instances = instances_by_role(ec2, "live")
    assert {i["ImageId"] for i in instances.values()} == {"ami-0ub2404a000000001"}
    assert {tags(i)["AmiFamily"] for i in instances.values()} == {"ubuntu2404"}

    again = ansible.playbook(PROVISION, extra_vars=stack_vars(tmp_path))

    assert again.returncode == 0, again.stdout[-3000:]
    assert again.changed() == 0
    assert instances_by_role(ec2, "live") == instances


def cpu_credits(ec2, instances):
    specs = ec2.describe_instance_credit_specifications(InstanceIds=[i["InstanceId"] for i in instances.values()])
    by_id = {spec["InstanceId"]: spec["CpuCredits"] for spec in specs["InstanceCreditSpecifications"]}
    return {role: by_id[instance["InstanceId"]] for role, instance in instances.items()}


def test_cpu_credits_are_a_setting_kept_in_line(ec2, ansible, tmp_path):
    """Launched with the setting (the lab's API, as EC2, keeps what the launch asked for),
    an instance changed by hand is put back (check mode and diff say so first), and the
    other choice is one variable away."""
    stack = stack_vars(tmp_path)
    assert ansible.playbook(PROVISION, extra_vars=stack).returncode == 0
    instances = instances_by_role(ec2, "live")
    assert cpu_credits(ec2, instances) == {"bastion": "unlimited", "frontend": "unlimited", "backend": "unlimited"}

    backend = instances["backend"]["InstanceId"]
    ec2.modify_instance_credit_specification(
        InstanceCreditSpecifications=[{"InstanceId": backend, "CpuCredits": "standard"}])
    check = ansible.playbook(PROVISION, "--diff", check=True, extra_vars=stack)
    provision = check.task(LAUNCHING_TASK[PROVISION])
    assert provision["actions"] == ["set the CPU credits of live-backend to unlimited"]
    assert (provision["diff"]["before"]["backend cpu_credits"], provision["diff"]["after"]["backend cpu_credits"]) \
        == ("standard", "unlimited")
    assert cpu_credits(ec2, instances)["backend"] == "standard"

    assert ansible.playbook(PROVISION, extra_vars=stack).changed() == 1
    assert cpu_credits(ec2, instances)["backend"] == "unlimited"

    standard = {**stack, "livestream_cpu_credits": "standard"}
    assert ansible.playbook(PROVISION, extra_vars=standard).changed() == 1
    assert set(cpu_credits(ec2, instances).values()) == {"standard"}
    assert ansible.playbook(PROVISION, extra_vars=standard).changed() == 0


def test_a_type_without_cpu_credits_is_launched_and_kept_without_them(ec2, ansible, tmp_path):
    """EC2 refuses a credit option for a type that has none (the lab's API too): such a
    backend launches, and a second run leaves it be."""
    stack = stack_vars(tmp_path, livestream_instance_types={"backend": "c6i.large"})

    first = ansible.playbook(PROVISION, extra_vars=stack)

    assert first.returncode == 0, first.failure_messages()
    assert instances_by_role(ec2, "live")["backend"]["InstanceType"] == "c6i.large"
    assert ansible.playbook(PROVISION, extra_vars=stack).changed() == 0


def appeared(ec2, kind):
    """Has the stack's first ``kind`` been made? (one call: the poll must be quick)"""
    tagged = [{"Name": "tag:Stack", "Values": ["live"]}]
    if kind == "vpc":
        return bool(ec2.describe_vpcs(Filters=tagged)["Vpcs"])
    return bool(ec2.describe_instances(Filters=tagged)["Reservations"])


@pytest.mark.parametrize(
    ("interrupt", "when"),
    [(signal.SIGKILL, "instance"), (signal.SIGINT, "vpc")],
    ids=["SIGKILL-while-launching-instances", "SIGINT-after-the-vpc"],
)
def test_a_run_killed_half_way_then_run_again_converges(ec2, ansible, tmp_path, interrupt, when):
    stack = stack_vars(tmp_path)
    command = ["ansible-playbook", "-i", str(ansible.local_inventory), str(PROVISION), "-e", json.dumps(stack)]
    run = subprocess.Popen(command, cwd=ansible.workdir, env=ansible.env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 60
    try:
        while not appeared(ec2, when):
            assert run.poll() is None, "the run ended before it could be interrupted"
            assert time.monotonic() < deadline
            time.sleep(0.02)
        os.killpg(run.pid, interrupt)
        run.wait(timeout=30)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()
    partial = counts(ec2, "live")
    assert partial != COMPLETE, "the run was interrupted before it made the whole stack"

    again = ansible.playbook(PROVISION, extra_vars=stack)

    assert again.returncode == 0, again.stdout[-3000:]
    assert counts(ec2, "live") == COMPLETE
    assert set(instances_by_role(ec2, "live")) == {"bastion", "frontend", "backend"}


def test_two_stacks_side_by_side_do_not_touch_each_other(ec2, aws, ansible, tmp_path):
    alpha, beta = stack_vars(tmp_path, "alpha"), stack_vars(tmp_path, "beta")
    assert ansible.playbook(PROVISION, extra_vars=alpha).returncode == 0
    assert ansible.playbook(PROVISION, extra_vars=beta).returncode == 0
    assert counts(ec2, "alpha") == counts(ec2, "beta") == COMPLETE
    beta_before = census(ec2, "beta")

    gone = ansible.playbook(TEARDOWN, extra_vars=alpha)

    assert gone.returncode == 0, gone.stdout[-3000:]
    assert all(n == 0 for n in counts(ec2, "alpha").values())
    assert census(ec2, "beta") == beta_before
    records = a_records(route53(aws), "beta.example.test")
    assert list(records) == [ZONE], "the zone alpha created stays while beta's record is in it"
    assert a_records(route53(aws), "alpha.example.test") == {}
    beta_again = ansible.playbook(PROVISION, extra_vars=beta)
    assert beta_again.returncode == 0 and beta_again.changed() == 0
