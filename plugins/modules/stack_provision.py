#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: livestream.aws contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: stack_provision
version_added: 0.1.0
short_description: Build a whole livestream stack, or bring it back in line, in one step
description:
  - Checks every input, the credentials, the AMI and the hosted zone first (as
    M(livestream.aws.stack_validate) does), and creates nothing when any of them is wrong.
  - Then does, in order and in one process, what M(livestream.aws.network),
    M(livestream.aws.security_groups), M(livestream.aws.instances), M(livestream.aws.nat_route),
    M(livestream.aws.frontend_address) and M(livestream.aws.dns_record) do, with the same code;
    see those modules for what each step makes and how it finds what exists.
  - One module instead of six saves the start-up of five module processes, which is most
    of the time a run takes when the stack is already in place. Use the six modules to
    compose a different stack.
  - Idempotent; a run killed half-way and run again converges to one of each resource. In
    check mode, reports what would be created or changed and changes nothing.
  - Use M(livestream.aws.stack_teardown) to remove the stack.
options:
  ttl:
    description:
      - The DNS record's time to live, in seconds.
    type: int
    default: 300
author:
  - livestream.aws maintainers (@livestream-aws)
extends_documentation_fragment:
  - livestream.aws.stack.name
  - livestream.aws.stack.network
  - livestream.aws.stack.availability_zone
  - livestream.aws.stack.access
  - livestream.aws.stack.dns
  - livestream.aws.stack.ami
  - livestream.aws.stack.ssh_key
  - livestream.aws.stack.instances
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: The stack "live", published as live.example.com
  livestream.aws.stack_provision:
    name: live
    domain: live.example.com
    hosted_zone: example.com
    admin_cidrs: [203.0.113.7/32]
    ssh_public_key: "{{ lookup('ansible.builtin.file', '~/.ssh/id_ed25519.pub') }}"
  register: live

- name: Where is everything?
  ansible.builtin.debug:
    msg: "{{ live.instances.bastion.public_ip_address }} {{ live.frontend_address.public_ip }}"
"""

RETURN = r"""
region:
  description:
    - The region the stack is in, as resolved from O(region), C(AWS_REGION), C(AWS_DEFAULT_REGION) or the
      profile's own region (the order the inventory plugin follows too).
  returned: success
  type: str
  sample: eu-west-1
image:
  description: The AMI the instances boot (see M(livestream.aws.stack_validate)).
  returned: success
  type: dict
  sample: {"image_id": "ami-0123", "name": "debian-13-amd64-20261117-1512", "login_user": "admin", "family": "debian13"}
vpc:
  description: The VPC (see M(livestream.aws.network)).
  returned: success
  type: dict
  sample: {"vpc_id": "vpc-0123", "cidr_block": "10.0.0.0/16"}
subnets:
  description: The public and the private subnet (see M(livestream.aws.network)).
  returned: success
  type: dict
internet_gateway_id:
  description: The internet gateway's ID.
  returned: success
  type: str
  sample: igw-0123456789abcdef0
route_tables:
  description: The route tables' IDs, by tier.
  returned: success
  type: dict
  sample: {"public": "rtb-0123", "private": "rtb-4567"}
security_groups:
  description: The security group IDs by role.
  returned: success
  type: dict
  sample: {"bastion": "sg-0123", "frontend": "sg-4567", "backend": "sg-89ab"}
key_name:
  description: The key pair the instances are launched with.
  returned: success
  type: str
  sample: live-key
instances:
  description: The instance of each role (see M(livestream.aws.instances)).
  returned: success
  type: dict
frontend_address:
  description: The frontend's Elastic IP (C(public_ip), C(allocation_id)).
  returned: success
  type: dict
  sample: {"public_ip": "198.51.100.7", "allocation_id": "eipalloc-0123"}
dns:
  description:
    - The viewers' name (C(fqdn)), the A record that points at the frontend (C(record) - C(fqdn) itself,
      or C(origin.<fqdn>) with O(cdn=cloudfront)) and its hosted zone (C(hosted_zone_id)).
    - When this run made the hosted zone (O(create_hosted_zone)), also its name servers
      (C(name_servers)), which its parent zone (the domain's registrar) must delegate to;
      otherwise an empty list.
  returned: success
  type: dict
  sample: {"fqdn": "live.example.com", "record": "live.example.com", "hosted_zone_id": "Z0123456789ABCDEFGHIJ",
           "name_servers": ["ns-1234.awsdns-26.org", "ns-567.awsdns-06.net"]}
actions:
  description: What was changed (in check mode, what would be), one line each, in order.
  returned: always
  type: list
  elements: str
  sample: ["create VPC live-vpc 10.0.0.0/16", "launch live-bastion (t3.micro)"]
"""

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.livestream.aws.plugins.module_utils import options
from ansible_collections.livestream.aws.plugins.module_utils.aws import client
from ansible_collections.livestream.aws.plugins.module_utils.cdn import origin_name
from ansible_collections.livestream.aws.plugins.module_utils.changes import Changes
from ansible_collections.livestream.aws.plugins.module_utils.instances import ensure_instances
from ansible_collections.livestream.aws.plugins.module_utils.network import ensure_nat_route
from ansible_collections.livestream.aws.plugins.module_utils.network import ensure_network
from ansible_collections.livestream.aws.plugins.module_utils.preflight import preflight
from ansible_collections.livestream.aws.plugins.module_utils.preflight import stack_input_options
from ansible_collections.livestream.aws.plugins.module_utils.publishing import ensure_dns_record
from ansible_collections.livestream.aws.plugins.module_utils.publishing import ensure_frontend_address
from ansible_collections.livestream.aws.plugins.module_utils.publishing import ensure_record_tags
from ansible_collections.livestream.aws.plugins.module_utils.publishing import frontend_address
from ansible_collections.livestream.aws.plugins.module_utils.publishing import remove_a_record
from ansible_collections.livestream.aws.plugins.module_utils.security_groups import SecurityGroups
from ansible_collections.livestream.aws.plugins.module_utils.validation import normalize_dns_name


def main():
    module = AnsibleAWSModule(
        argument_spec=options.argument_spec(
            stack_input_options(), ttl=dict(type="int", default=300)
        ),
        supports_check_mode=True,
    )
    params = module.params
    name = params["name"]
    ec2 = client(module, "ec2")
    route53 = client(module, "route53")
    image, zone = preflight(module, ec2, route53)

    changes = Changes(module)
    security_groups = SecurityGroups(
        ec2, changes, name, private_subnet_cidr=params["private_subnet_cidr"], access=params)
    described = {}  # the route tables as the network step found or made them: no second look
    network = ensure_network(
        ec2, changes, name, vpc_cidr=params["vpc_cidr"], public_subnet_cidr=params["public_subnet_cidr"],
        private_subnet_cidr=params["private_subnet_cidr"], availability_zone=zone,
        while_subnets_settle=security_groups.make, route_tables=described,
    )
    groups = security_groups.rules()
    # allocated before the instances launch: known to EC2 by the time it is associated
    address = frontend_address(ec2, changes, name)
    key_name, instances = ensure_instances(
        ec2,
        changes,
        name,
        image_id=image["image_id"],
        root_device_name=image["root_device_name"],
        ami_family=params["ami_family"],
        subnet_ids={tier: network["subnets"][tier]["subnet_id"] for tier in ("public", "private")},
        security_group_ids=groups,
        instance_types=params["instance_types"],
        root_volume_size=params["root_volume_size"],
        cpu_credits=params["cpu_credits"],
        ssh_public_key=params["ssh_public_key"],
        wait_timeout=params["wait_timeout"],
    )
    ensure_nat_route(ec2, changes, name, interface_id=instances["bastion"]["network_interface_id"], table=described["private"])
    address = ensure_frontend_address(ec2, changes, name, instance_id=instances["frontend"]["instance_id"], address=address)
    public_ip, allocation_id = address["PublicIp"], address["AllocationId"]
    domain = normalize_dns_name(params["domain"])
    zone_name = normalize_dns_name(params["hosted_zone"])
    # behind a CDN the frontend has a name of its own, the origin's; the viewers' name becomes
    # the distribution's alias (livestream.aws.cdn), replacing the record to the address
    record = origin_name(domain) if params["cdn"] != "none" else domain
    zone_id, servers = ensure_dns_record(
        route53, changes, name, domain=record, zone_name=zone_name, address=public_ip,
        create_hosted_zone=params["create_hosted_zone"], ttl=params["ttl"],
    )
    if params["cdn"] == "none":
        # the origin's name from a CDN there was, once the viewers' name points here again
        remove_a_record(route53, changes, name, zone_id=zone_id, domain=origin_name(domain), address=public_ip)
    ensure_record_tags(ec2, changes, name, public_ip=public_ip, domain=record, zone_name=zone_name, address=address)

    changes.exit_json(
        region=module.region,
        image=image,
        security_groups=groups,
        key_name=key_name,
        instances=instances,
        frontend_address={"public_ip": public_ip, "allocation_id": allocation_id},
        dns={"fqdn": domain, "record": record, "hosted_zone_id": zone_id, "name_servers": servers},
        **network,
    )


if __name__ == "__main__":
    main()
