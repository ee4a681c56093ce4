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
  - Then checks that the region is an AWS region and that AWS credentials are there, finds
    the AMI the instances will boot (the newest by name of the chosen family, published by the
    family's own account), checks that every instance type exists, runs the AMI's
    architecture and is offered in the availability zone (choosing the first zone by name that
    offers them all when O(availability_zone) is not set), and checks that the hosted zone
    exists unless O(create_hosted_zone=true).
  - Run it first (as C(playbooks/provision.yml) does) so that a bad input stops the run
    before any resource exists.
  - Read-only; safe in check mode.
author:
  - livestream.aws maintainers (@livestream-aws)
extends_documentation_fragment:
  - livestream.aws.stack.name
  - livestream.aws.stack.network
  - livestream.aws.stack.availability_zone
  - livestream.aws.stack.instances
  - livestream.aws.stack.access
  - livestream.aws.stack.dns
  - livestream.aws.stack.ami
  - livestream.aws.stack.ssh_key
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
availability_zone:
  description: The availability zone for both subnets, O(availability_zone) or the one chosen.
  returned: success
  type: str
  sample: us-east-1a
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
      sample: debian13
    login_user:
      description: The user the image lets in over SSH.
      type: str
      sample: admin
"""

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.livestream.aws.plugins.module_utils.aws import client
from ansible_collections.livestream.aws.plugins.module_utils.preflight import preflight
from ansible_collections.livestream.aws.plugins.module_utils.preflight import stack_input_options


def main():
    module = AnsibleAWSModule(argument_spec=stack_input_options(), supports_check_mode=True)
    image, zone = preflight(module, client(module, "ec2"), client(module, "route53"))
    module.exit_json(changed=False, image=image, availability_zone=zone)


if __name__ == "__main__":
    main()
