"""The lab's AWS API: it hands out public addresses of the lab's own block, never moto's
own (54.214.x is a real AWS block, 127.x is loopback), and in strict mode it is as
eventually consistent and as throttled as AWS's."""

from __future__ import annotations

import ipaddress

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import observer
from livestream_lab import config, strict
from livestream_lab.stack import delegated_zones

MOTO_OWN_BLOCKS = [ipaddress.ip_network("54.214.0.0/16"), ipaddress.ip_network("127.0.0.0/8")]


def _in_lab_block(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    assert not any(ip in block for block in MOTO_OWN_BLOCKS), f"{ip} is one of moto's own addresses"
    return ip in config.STANDALONE_PUBLIC_BLOCK and ip.is_private  # 198.18.0.0/15: never routed on the internet


def test_public_and_elastic_ips_come_from_the_lab_block(ec2):
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24", AvailabilityZone="us-east-1a")["Subnet"]["SubnetId"]
    image = ec2.describe_images(Owners=["136693071363"])["Images"][0]["ImageId"]
    instances = [ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, NetworkInterfaces=[
        {"DeviceIndex": 0, "SubnetId": subnet, "AssociatePublicIpAddress": True}])["Instances"][0] for _count in range(2)]
    launched = [instance["PublicIpAddress"] for instance in instances]
    assert all(_in_lab_block(address) for address in launched), launched
    assert len(set(launched)) == 2, launched

    elastic = ec2.allocate_address(Domain="vpc")
    assert _in_lab_block(elastic["PublicIp"]), elastic
    assert elastic["PublicIp"] not in launched
    # as on AWS, an Elastic IP replaces the address the instance got at launch
    ec2.associate_address(AllocationId=elastic["AllocationId"], InstanceId=instances[0]["InstanceId"])
    described = ec2.describe_instances(InstanceIds=[instances[0]["InstanceId"]])["Reservations"][0]["Instances"][0]
    assert described["PublicIpAddress"] == elastic["PublicIp"]


# -- strict mode: the API as strict as AWS's where moto is kinder ----------------------------

def _client(aws, service, access_key="testing"):
    return boto3.client(service, endpoint_url=aws.url, region_name="us-east-1", aws_access_key_id=access_key,
                        aws_secret_access_key="testing", config=Config(retries={"total_max_attempts": 1}))


def test_strict_mode_keeps_a_new_id_unknown_for_a_while(aws):
    aws.strict(inconsistency_seconds=30)
    ec2 = _client(aws, "ec2")
    tagged = [{"Name": "tag:Stack", "Values": ["young"]}]
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16", TagSpecifications=[
        {"ResourceType": "vpc", "Tags": [{"Key": "Stack", "Value": "young"}]}])["Vpc"]["VpcId"]
    with pytest.raises(ClientError) as refused:
        ec2.describe_vpcs(VpcIds=[vpc])
    assert refused.value.response["Error"]["Code"] == "InvalidVpcID.NotFound"
    with pytest.raises(ClientError) as refused:
        ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.1.0/24")
    assert refused.value.response["Error"]["Code"] == "InvalidVpcID.NotFound"
    assert ec2.describe_vpcs(Filters=tagged)["Vpcs"] == []
    # the lab's own seat sees what is there (it realises the network: AWS's side of things)
    assert [v["VpcId"] for v in _client(aws, "ec2", strict.LAB_ACCESS_KEY_ID).describe_vpcs(Filters=tagged)["Vpcs"]] == [vpc]
    counts = aws.strict_counts()
    assert (counts["not_found"], counts["hidden"], counts["created"]) == (2, 1, 1)
    # and once the window has passed (here: strict mode set again, which forgets it) it is known
    aws.strict(inconsistency_seconds=30)
    assert [v["VpcId"] for v in ec2.describe_vpcs(VpcIds=[vpc])["Vpcs"]] == [vpc]


def test_strict_mode_throttles_as_ec2_and_route53_do(aws):
    aws.strict(throttle_rate=1.0)
    with pytest.raises(ClientError) as refused:
        _client(aws, "ec2").describe_vpcs()
    assert refused.value.response["Error"]["Code"] == "RequestLimitExceeded"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    with pytest.raises(ClientError) as refused:
        _client(aws, "route53").list_hosted_zones()
    assert refused.value.response["Error"]["Code"] == "Throttling"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert aws.strict_counts()["throttled"] == 2
    aws.strict()
    assert _client(aws, "ec2").describe_vpcs()["Vpcs"] is not None


def test_strict_mode_refuses_the_same_calls_for_the_same_seed(aws):
    def refused(seed):
        aws.strict(throttle_rate=0.5, seed=seed)
        ec2, outcome = _client(aws, "ec2"), []
        for _count in range(20):
            try:
                ec2.describe_vpcs()
                outcome.append(True)
            except ClientError:
                outcome.append(False)
        return outcome

    assert refused(7) == refused(7)
    assert refused(7) != refused(8)


def test_the_api_refuses_what_aws_refuses_and_moto_accepts(aws):
    ec2 = _client(aws, "ec2")
    vpc = ec2.create_vpc(CidrBlock="10.8.0.0/16")["Vpc"]["VpcId"]
    zone_e = ec2.create_subnet(VpcId=vpc, CidrBlock="10.8.1.0/24", AvailabilityZone="us-east-1e")["Subnet"]["SubnetId"]
    zone_a = ec2.create_subnet(VpcId=vpc, CidrBlock="10.8.2.0/24", AvailabilityZone="us-east-1a")["Subnet"]["SubnetId"]
    image = ec2.describe_images(Owners=["136693071363"])["Images"][0]["ImageId"]
    with pytest.raises(ClientError) as refused:
        ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType="t3.small", SubnetId=zone_e)
    assert refused.value.response["Error"]["Code"] == "Unsupported"
    assert "(t3.small) is not supported in your requested Availability Zone (us-east-1e)" in str(refused.value)
    # the control: the same launch where the type is offered
    ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType="t3.small", SubnetId=zone_a)

    with pytest.raises(ClientError) as refused:
        ec2.create_security_group(GroupName="sg-live-bastion", Description="x", VpcId=vpc)
    assert refused.value.response["Error"]["Code"] == "InvalidParameterValue"
    ec2.create_security_group(GroupName="live-bastion", Description="x", VpcId=vpc)

    ed25519 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBUjQtWjI3D++Y+7hQvPOsPuIejtshknMqqrpkRgwp8p x"
    with pytest.raises(ClientError) as refused:
        ec2.import_key_pair(KeyName="ecdsa", PublicKeyMaterial=ed25519.replace("ssh-ed25519", "ecdsa-sha2-nistp256"))
    assert refused.value.response["Error"]["Code"] == "InvalidKey.Format"
    ec2.import_key_pair(KeyName="ed25519", PublicKeyMaterial=ed25519)
    assert aws.strict_counts()["refused"] == 3


def test_the_api_refuses_to_delete_what_something_still_uses(aws):
    ec2 = _client(aws, "ec2")

    def refused(call, **params):
        with pytest.raises(ClientError) as refusal:
            call(**params)
        assert refusal.value.response["Error"]["Code"] == "DependencyViolation", refusal.value

    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.1.0/24", AvailabilityZone="us-east-1a")["Subnet"]["SubnetId"]
    used, referenced, referencing = (ec2.create_security_group(GroupName=name, Description="x", VpcId=vpc)["GroupId"]
                                     for name in ("used", "referenced", "referencing"))
    ec2.authorize_security_group_ingress(GroupId=referencing, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "UserIdGroupPairs": [{"GroupId": referenced}]}])
    # a group that references itself only is not held by that
    ec2.authorize_security_group_ingress(GroupId=referencing, IpPermissions=[
        {"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": referencing}]}])
    interface = ec2.create_network_interface(SubnetId=subnet, Groups=[used])["NetworkInterface"]["NetworkInterfaceId"]
    gateway = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=gateway, VpcId=vpc)

    refused(ec2.delete_security_group, GroupId=used)  # an interface is in it
    refused(ec2.delete_security_group, GroupId=referenced)  # another group's rule names it
    refused(ec2.delete_subnet, SubnetId=subnet)  # it holds an interface
    refused(ec2.delete_vpc, VpcId=vpc)  # subnets, a gateway, groups
    # in the order AWS asks for, each goes
    ec2.delete_network_interface(NetworkInterfaceId=interface)
    ec2.delete_security_group(GroupId=used)
    ec2.delete_security_group(GroupId=referencing)
    ec2.delete_security_group(GroupId=referenced)
    ec2.delete_subnet(SubnetId=subnet)
    refused(ec2.delete_vpc, VpcId=vpc)  # the gateway is still attached
    ec2.detach_internet_gateway(InternetGatewayId=gateway, VpcId=vpc)
    ec2.delete_vpc(VpcId=vpc)
    assert aws.strict_counts()["refused"] == 5


def test_a_launch_token_is_answered_with_its_first_launch(aws):
    ec2 = _client(aws, "ec2")
    vpc = ec2.create_vpc(CidrBlock="10.7.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.7.1.0/24", AvailabilityZone="us-east-1a")["Subnet"]["SubnetId"]
    image = ec2.describe_images(Owners=["136693071363"])["Images"][0]["ImageId"]
    launch = {"ImageId": image, "MinCount": 1, "MaxCount": 1, "InstanceType": "t3.micro", "SubnetId": subnet,
              "ClientToken": "once"}
    first = ec2.run_instances(**launch)["Instances"][0]["InstanceId"]
    assert ec2.run_instances(**launch)["Instances"][0]["InstanceId"] == first
    ec2.terminate_instances(InstanceIds=[first])
    again = ec2.run_instances(**launch)["Instances"][0]
    assert (again["InstanceId"], again["State"]["Name"]) == (first, "terminated")
    with pytest.raises(ClientError) as refused:
        ec2.run_instances(**{**launch, "InstanceType": "t3.small"})
    assert refused.value.response["Error"]["Code"] == "IdempotentParameterMismatch"
    assert len([i for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]]) == 1


def test_the_lab_serves_a_hosted_zone_only_once_its_parent_delegates_to_it(aws):
    """As the internet resolves: a zone nobody delegated to (just made, or made anew with other
    name servers) is not found, and so no ACME server validates a name in it."""
    route53 = observer(aws, "route53")

    def zone(name):
        made = route53.create_hosted_zone(Name=name, CallerReference=name)
        return sorted(made["DelegationSet"]["NameServers"])

    delegated, forgotten, moved = zone("live.test"), zone("new.test"), zone("moved.test")

    served = delegated_zones(route53, {"live.test": delegated, "moved.test": ["ns-1.elsewhere.example"]})

    assert [z["Name"].rstrip(".") for z in served] == ["live.test"]
    assert forgotten and moved  # they have name servers; no parent points at them
