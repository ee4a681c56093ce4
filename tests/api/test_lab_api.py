"""The lab's AWS API hands out public addresses of the lab's own block, never moto's own
(54.214.x is a real AWS block, 127.x is loopback): the lab routes them to its machines."""

from __future__ import annotations

import ipaddress

from livestream_lab import config

MOTO_OWN_BLOCKS = [ipaddress.ip_network("54.214.0.0/16"), ipaddress.ip_network("127.0.0.0/8")]


def _in_lab_block(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    assert not any(ip in block for block in MOTO_OWN_BLOCKS), f"{ip} is one of moto's own addresses"
    return ip in config.STANDALONE_PUBLIC_BLOCK and ip.is_private  # 198.18.0.0/15: never routed on the internet


def test_public_and_elastic_ips_come_from_the_lab_block(ec2):
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
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
