#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: livestream.aws contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: stack_validate
version_added: 0.1.0
short_description: Check every input of a livestream stack before anything is created
description:
  - Checks, in one step, every input the provisioning modules will get, with the same rules
    they apply themselves, and fails with a message that names each bad value.
  - Then checks that AWS credentials are there, finds the AMI the instances will boot (the
    newest by name of the chosen family, published by the family's own account), and checks
    that the hosted zone exists unless O(create_hosted_zone=true).
  - Run it first (as C(playbooks/provision.yml) does) so that a bad input stops the run
    before any resource exists.
  - Read-only; safe in check mode.
options:
  name:
    description:
      - The stack name, as in the C(Stack) tag of its resources.
    required: true
    type: str
    aliases: [stack_name]
  vpc_cidr:
    description:
      - The VPC's IPv4 block, V(/16) to V(/28).
    type: str
    default: 10.0.0.0/16
  public_subnet_cidr:
    description:
      - The public subnet's block; inside O(vpc_cidr), apart from O(private_subnet_cidr).
    type: str
    default: 10.0.1.0/24
  private_subnet_cidr:
    description:
      - The private subnet's block; inside O(vpc_cidr), apart from O(public_subnet_cidr).
    type: str
    default: 10.0.2.0/24
  admin_cidrs:
    description:
      - The IPv4 blocks allowed to reach the bastion over SSH. At least one.
      - V(0.0.0.0/0) is refused unless O(allow_ssh_from_anywhere=true).
    type: list
    elements: str
    required: true
  allow_ssh_from_anywhere:
    description:
      - Accept an admin CIDR that opens SSH to the whole internet.
    type: bool
    default: false
  domain:
    description:
      - The name the frontend is published under; inside O(hosted_zone).
    type: str
    required: true
  hosted_zone:
    description:
      - The Route 53 public hosted zone that holds O(domain).
    type: str
    required: true
  create_hosted_zone:
    description:
      - Whether the provisioning will create O(hosted_zone). When V(false), the zone must exist.
    type: bool
    default: false
  ami_family:
    description:
      - Which operating system the instances run.
    type: str
    choices: [debian12, ubuntu2404]
    default: debian12
  architecture:
    description:
      - The instances' CPU architecture.
    type: str
    choices: [x86_64, arm64]
    default: x86_64
  ssh_public_key:
    description:
      - The OpenSSH public key (the text of a C(.pub) file) the instances will trust.
    type: str
    required: true
author:
  - livestream.aws maintainers (@livestream-aws)
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Check the inputs and find the AMI before creating anything
  livestream.aws.stack_validate:
    name: live
    admin_cidrs: [203.0.113.7/32]
    domain: live.example.com
    hosted_zone: example.com
    ssh_public_key: "{{ lookup('ansible.builtin.file', '~/.ssh/id_ed25519.pub') }}"
  register: stack_inputs

- name: Boot the AMI it found
  livestream.aws.instances:
    name: live
    image_id: "{{ stack_inputs.image.image_id }}"
    # ...
"""

RETURN = r"""
image:
  description: The AMI the instances will boot.
  returned: success
  type: dict
  contains:
    image_id:
      description: The AMI ID.
      type: str
      sample: ami-0deb12a0000000002
    name:
      description: The AMI name.
      type: str
      sample: debian-12-amd64-20241201-1948
    owner_id:
      description: The account that published it.
      type: str
      sample: "136693071363"
    root_device_name:
      description: The device name of its root volume.
      type: str
      sample: /dev/xvda
    family:
      description: The AMI family asked for.
      type: str
      sample: debian12
    login_user:
      description: The user the image lets in over SSH.
      type: str
      sample: admin
"""

try:
    import botocore
except ImportError:
    pass  # handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

from ansible_collections.livestream.aws.plugins.module_utils.stack import AMI_FAMILIES
from ansible_collections.livestream.aws.plugins.module_utils.stack import find_hosted_zone
from ansible_collections.livestream.aws.plugins.module_utils.stack import find_image
from ansible_collections.livestream.aws.plugins.module_utils.stack import image_search_description
from ansible_collections.livestream.aws.plugins.module_utils.validation import admin_access_errors
from ansible_collections.livestream.aws.plugins.module_utils.validation import domain_errors
from ansible_collections.livestream.aws.plugins.module_utils.validation import fail_on_errors
from ansible_collections.livestream.aws.plugins.module_utils.validation import network_errors
from ansible_collections.livestream.aws.plugins.module_utils.validation import normalize_dns_name
from ansible_collections.livestream.aws.plugins.module_utils.validation import ssh_public_key_errors
from ansible_collections.livestream.aws.plugins.module_utils.validation import stack_errors


def main():
    module = AnsibleAWSModule(
        argument_spec=dict(
            name=dict(type="str", required=True, aliases=["stack_name"]),
            vpc_cidr=dict(type="str", default="10.0.0.0/16"),
            public_subnet_cidr=dict(type="str", default="10.0.1.0/24"),
            private_subnet_cidr=dict(type="str", default="10.0.2.0/24"),
            admin_cidrs=dict(type="list", elements="str", required=True),
            allow_ssh_from_anywhere=dict(type="bool", default=False),
            domain=dict(type="str", required=True),
            hosted_zone=dict(type="str", required=True),
            create_hosted_zone=dict(type="bool", default=False),
            ami_family=dict(type="str", choices=list(AMI_FAMILIES), default="debian12"),
            architecture=dict(type="str", choices=["x86_64", "arm64"], default="x86_64"),
            ssh_public_key=dict(type="str", required=True, no_log=False),
        ),
        supports_check_mode=True,
    )
    params = module.params
    fail_on_errors(
        module,
        stack_errors(params["name"])
        + network_errors(params["vpc_cidr"], params["public_subnet_cidr"], params["private_subnet_cidr"])
        + admin_access_errors(params["admin_cidrs"], params["allow_ssh_from_anywhere"])
        + domain_errors(params["domain"], params["hosted_zone"])
        + ssh_public_key_errors(params["ssh_public_key"]),
    )

    family, architecture = params["ami_family"], params["architecture"]
    wanted = image_search_description(family, architecture)
    ec2 = module.client("ec2", retry_decorator=AWSRetry.jittered_backoff())
    try:
        image = find_image(ec2, family, architecture)
    except botocore.exceptions.NoCredentialsError as e:
        module.fail_json_aws(
            e,
            msg=f"No AWS credentials for stack {params['name']!r}: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
        )
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        module.fail_json_aws(e, msg=f"Failed to look up the {wanted} for stack {params['name']!r}")
    if image is None:
        module.fail_json(msg=f"No {wanted} found in region {module.region}")

    zone_name = normalize_dns_name(params["hosted_zone"])
    if not params["create_hosted_zone"]:
        route53 = module.client("route53", retry_decorator=AWSRetry.jittered_backoff())
        try:
            zone_id = find_hosted_zone(module, route53, zone_name)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            module.fail_json_aws(e, msg=f"Failed to look up the hosted zone {zone_name!r} for stack {params['name']!r}")
        if zone_id is None:
            module.fail_json(
                msg=f"hosted zone {zone_name!r} for domain {params['domain']!r} not found: create it, "
                "or let the stack create it (create_hosted_zone / livestream_create_hosted_zone)"
            )

    module.exit_json(
        changed=False,
        image=dict(
            image_id=image["ImageId"],
            name=image["Name"],
            owner_id=image["OwnerId"],
            root_device_name=image.get("RootDeviceName", "/dev/xvda"),
            family=family,
            login_user=AMI_FAMILIES[family]["login_user"],
        ),
    )


if __name__ == "__main__":
    main()
