"""Step 2 of the lab: provision the stack against the lab's AWS API.

The lab runs the collection's own ``playbooks/provision.yml``, the one users run
against AWS, with lab inputs only: the endpoint (environment), the stack's address
plan, the lab's ssh key, a domain in a zone the lab owns.

Until that playbook exists in the checkout, ``stand_in`` builds the same stack with
plain boto3 calls, so that the rest of the lab can be developed and tested.
"""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
from pathlib import Path

from . import config
from .config import LabConfig
from .stack import clients

PLAYBOOK = config.REPOSITORY / "playbooks" / "provision.yml"
AMI_OWNER_DEBIAN = "136693071363"


def address_plan(vpc: ipaddress.IPv4Network) -> dict[str, str]:
    subnets = list(vpc.subnets(new_prefix=24))
    return {"vpc": str(vpc), "public": str(subnets[1]), "private": str(subnets[2])}


def extra_vars(lab: LabConfig, vpc: ipaddress.IPv4Network) -> dict:
    plan = address_plan(vpc)
    return {
        "livestream_stack_name": lab.stack,
        "livestream_vpc_cidr": plan["vpc"],
        "livestream_public_subnet_cidr": plan["public"],
        "livestream_private_subnet_cidr": plan["private"],
        "livestream_domain": lab.domain,
        "livestream_hosted_zone": lab.hosted_zone,
        "livestream_create_hosted_zone": True,
        # the controller is "the internet" and reaches the bastion from the transit address
        "livestream_admin_cidrs": [str(lab.transit_network)],
        "livestream_ssh_public_key_file": f"{lab.ssh_key}.pub",
    }


def provision(lab: LabConfig, vpc: ipaddress.IPv4Network, aws_env: dict[str, str], log=print) -> None:
    if PLAYBOOK.exists():
        log(f"provisioning with {PLAYBOOK.relative_to(config.REPOSITORY)}")
        command = ["ansible-playbook", "-i", "localhost,", "-c", "local", str(PLAYBOOK),
                   "-e", json.dumps(extra_vars(lab, vpc))]
        subprocess.run(command, check=True, cwd=lab.state_dir, env={**os.environ, **aws_env},
                       stdout=open(lab.state_dir / "provision.log", "w"), stderr=subprocess.STDOUT)
    else:
        log("playbooks/provision.yml is not in this checkout yet: building the stack with the lab's stand-in")
        stand_in(lab, vpc, aws_env)


def stand_in(lab: LabConfig, vpc_cidr: ipaddress.IPv4Network, aws_env: dict[str, str]) -> None:
    """The stack of the design notes, tagged as provision.yml tags it. Idempotent by tags."""
    ec2, route53 = clients(aws_env)
    name = lab.stack
    stack_filter = [{"Name": "tag:Stack", "Values": [name]}]
    if ec2.describe_vpcs(Filters=stack_filter)["Vpcs"]:
        return

    def tags(kind, what, role=None):
        items = [{"Key": "Stack", "Value": name}, {"Key": "Name", "Value": f"{name}-{what}"}]
        if role:
            items.append({"Key": "Role", "Value": role})
        return [{"ResourceType": kind, "Tags": items}]

    plan = address_plan(vpc_cidr)
    vpc = ec2.create_vpc(CidrBlock=plan["vpc"], TagSpecifications=tags("vpc", "vpc"))["Vpc"]["VpcId"]
    public = ec2.create_subnet(VpcId=vpc, CidrBlock=plan["public"], TagSpecifications=tags("subnet", "public"))["Subnet"]["SubnetId"]
    private = ec2.create_subnet(VpcId=vpc, CidrBlock=plan["private"], TagSpecifications=tags("subnet", "private"))["Subnet"]["SubnetId"]
    igw = ec2.create_internet_gateway(TagSpecifications=tags("internet-gateway", "igw"))["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    public_rt = ec2.create_route_table(VpcId=vpc, TagSpecifications=tags("route-table", "public"))["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=public_rt, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
    ec2.associate_route_table(RouteTableId=public_rt, SubnetId=public)
    key = Path(f"{lab.ssh_key}.pub").read_bytes()
    ec2.import_key_pair(KeyName=name, PublicKeyMaterial=key, TagSpecifications=tags("key-pair", "key"))
    image = sorted(ec2.describe_images(Owners=[AMI_OWNER_DEBIAN], Filters=[{"Name": "name", "Values": ["debian-12-amd64-*"]}])["Images"],
                   key=lambda item: item["Name"])[-1]["ImageId"]
    instances = {}
    for role, subnet, public_ip in (("bastion", public, True), ("frontend", public, True), ("backend", private, False)):
        instances[role] = ec2.run_instances(
            ImageId=image, MinCount=1, MaxCount=1, InstanceType="t3.micro", KeyName=name,
            NetworkInterfaces=[{"DeviceIndex": 0, "SubnetId": subnet, "AssociatePublicIpAddress": public_ip}],
            TagSpecifications=tags("instance", role, role),
        )["Instances"][0]
    bastion_eni = instances["bastion"]["NetworkInterfaces"][0]["NetworkInterfaceId"]
    ec2.modify_network_interface_attribute(NetworkInterfaceId=bastion_eni, SourceDestCheck={"Value": False})
    private_rt = ec2.create_route_table(VpcId=vpc, TagSpecifications=tags("route-table", "private"))["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=private_rt, DestinationCidrBlock="0.0.0.0/0", NetworkInterfaceId=bastion_eni)
    ec2.associate_route_table(RouteTableId=private_rt, SubnetId=private)
    eip = ec2.allocate_address(Domain="vpc", TagSpecifications=tags("elastic-ip", "frontend"))
    ec2.associate_address(AllocationId=eip["AllocationId"], InstanceId=instances["frontend"]["InstanceId"])
    zone = next((z["Id"] for z in route53.list_hosted_zones()["HostedZones"] if z["Name"] == lab.hosted_zone + "."), None)
    if zone is None:
        zone = route53.create_hosted_zone(Name=lab.hosted_zone, CallerReference=f"livestream-lab-{name}")["HostedZone"]["Id"]
    route53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch={"Changes": [{
        "Action": "UPSERT", "ResourceRecordSet": {
            "Name": lab.domain, "Type": "A", "TTL": 60, "ResourceRecords": [{"Value": eip["PublicIp"]}]}}]})
