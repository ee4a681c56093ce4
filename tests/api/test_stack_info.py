"""livestream.aws.stack_info against a real moto server, run through ansible-playbook."""

import pytest


def make_stack(ec2, name):
    tags = [{"Key": "Stack", "Value": name}, {"Key": "Name", "Value": f"{name}-vpc"}]
    vpc = ec2.create_vpc(
        CidrBlock="10.0.0.0/16",
        TagSpecifications=[{"ResourceType": "vpc", "Tags": tags}],
    )["Vpc"]
    subnet = ec2.create_subnet(
        VpcId=vpc["VpcId"],
        CidrBlock="10.0.1.0/24",
        AvailabilityZone="us-east-1a",  # one that offers the default type: the lab's API checks, as AWS does
        TagSpecifications=[{"ResourceType": "subnet", "Tags": tags}],
    )["Subnet"]
    instance = ec2.run_instances(
        ImageId="ami-0deb12a0000000002",
        MinCount=1,
        MaxCount=1,
        SubnetId=subnet["SubnetId"],
        TagSpecifications=[{"ResourceType": "instance", "Tags": tags + [{"Key": "Role", "Value": "frontend"}]}],
    )["Instances"][0]
    return {"vpc": vpc["VpcId"], "subnet": subnet["SubnetId"], "instance": instance["InstanceId"]}


def test_reports_exactly_the_resources_of_the_stack(ec2, ansible):
    live = make_stack(ec2, "live")
    make_stack(ec2, "other")
    ec2.create_vpc(CidrBlock="10.9.0.0/16")  # untagged: nobody's stack

    result = ansible.module("livestream.aws.stack_info", {"name": "live"})

    assert not result.get("failed"), result.get("msg")
    assert result["changed"] is False
    stack = result["stack"]
    assert [v["vpc_id"] for v in stack["vpcs"]] == [live["vpc"]]
    assert [s["subnet_id"] for s in stack["subnets"]] == [live["subnet"]]
    assert [i["instance_id"] for i in stack["instances"]] == [live["instance"]]
    assert stack["instances"][0]["tags"] == {"Stack": "live", "Name": "live-vpc", "Role": "frontend"}
    assert result["resource_count"] == 3


def test_terminated_instances_are_left_out(ec2, ansible):
    live = make_stack(ec2, "live")
    ec2.terminate_instances(InstanceIds=[live["instance"]])

    result = ansible.module("livestream.aws.stack_info", {"name": "live"})

    assert result["stack"]["instances"] == []


def test_action_group_sets_the_endpoint_for_every_module(aws, ec2, ansible, monkeypatch):
    """module_defaults: group/livestream.aws.aws reaches our modules (meta/runtime.yml)."""
    make_stack(ec2, "live")
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    ansible.env.pop("AWS_ENDPOINT_URL")
    play = {
        "hosts": "localhost",
        "gather_facts": False,
        "module_defaults": {"group/livestream.aws.aws": {"endpoint_url": aws.url, "region": "us-east-1"}},
        "tasks": [{"name": "info", "livestream.aws.stack_info": {"name": "live"}, "register": "info"}],
    }

    result = ansible.playbook([play])

    assert result.returncode == 0, result.stdout
    assert len(result.task("info")["stack"]["vpcs"]) == 1


def test_runs_in_check_mode(ec2, ansible):
    make_stack(ec2, "live")

    result = ansible.module("livestream.aws.stack_info", {"name": "live"}, check=True)

    assert not result.get("failed"), result.get("msg")
    assert len(result["stack"]["instances"]) == 1


@pytest.mark.parametrize("bad_name", ["Live", "-live", "live_stream", "x" * 40])
def test_bad_stack_name_is_refused_by_name(aws, ansible, bad_name):
    result = ansible.module("livestream.aws.stack_info", {"name": bad_name})

    assert result["failed"]
    assert repr(bad_name) in result["msg"]


def test_unreachable_endpoint_fails_with_the_stack_named(aws, ansible):
    result = ansible.module(
        "livestream.aws.stack_info", {"name": "live", "endpoint_url": "http://127.0.0.1:9"}
    )

    assert result["failed"]
    assert "stack 'live'" in result["msg"]
