#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: livestream.aws contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: instances
version_added: 0.1.0
short_description: The SSH key pair and the three instances of a livestream stack
description:
  - Imports the SSH public key as the key pair C(<name>-key), and makes sure the stack has
    exactly one running instance per role.
  - C(bastion) in the public subnet with a public address and the source/destination check
    off (it is the NAT instance of the private subnet); C(frontend) in the public subnet;
    C(backend) in the private subnet without a public address.
  - Every instance requires IMDSv2 tokens and boots from an encrypted gp3 root volume that
    goes with it. It is tagged C(Stack=<name>), C(Role=<role>), C(Name=<name>-<role>) and
    C(AmiFamily=<family>) by the call that creates it.
  - Instances are found by their C(Stack) and C(Role) tags, all with one call, and created
    with a client token derived from the stack, the role and the launch settings, so neither
    a second run nor a run after an interrupted one makes a second instance of a role. AWS
    answers a token used before with its first launch, a terminated instance included; an
    instance terminated since is replaced by a launch with a token derived from it.
  - A burstable instance (T2, T3, T3a, T4g) is launched with the CPU credit option O(cpu_credits);
    other types have none, and EC2 refuses one for them.
  - An existing instance is kept as it is, except that a stopped one is started, and the
    bastion's source/destination check, the IMDSv2 requirement and the CPU credit option are
    put right. To move
    an instance to another image or type, terminate it and run again.
  - When the key pair exists with another public key, it is replaced; instances already
    running keep the key they were launched with.
  - Use M(livestream.aws.stack_teardown) to remove them.
options:
  image_id:
    description:
      - The AMI to launch, as found by M(livestream.aws.stack_validate).
    required: true
    type: str
  root_device_name:
    description:
      - The device name of the AMI's root volume.
    type: str
    default: /dev/xvda
  ami_family:
    description:
      - The AMI family of O(image_id), recorded in the C(AmiFamily) tag for the inventory.
    type: str
    choices: [debian12, debian13, ubuntu2404]
    default: debian13
  subnet_ids:
    description:
      - The stack's subnets, as returned by M(livestream.aws.network).
      - Their values may be null in check mode only, when the subnets do not exist yet.
    type: dict
    required: true
    suboptions:
      public:
        description: The public subnet.
        type: str
      private:
        description: The private subnet.
        type: str
  security_group_ids:
    description:
      - The stack's security groups by role, as returned by M(livestream.aws.security_groups).
      - Their values may be null in check mode only, when the groups do not exist yet.
    type: dict
    required: true
    suboptions:
      bastion:
        description: The bastion's group.
        type: str
      frontend:
        description: The frontend's group.
        type: str
      backend:
        description: The backend's group.
        type: str
      origin:
        description:
          - The frontend's second group (HTTPS from the CDN), which the frontend is put in too.
          - Leave it out for a frontend in its own group alone.
        type: str
author:
  - livestream.aws maintainers (@livestream-aws)
extends_documentation_fragment:
  - livestream.aws.stack.name
  - livestream.aws.stack.ssh_key
  - livestream.aws.stack.instances
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: The instances of the stack "live"
  livestream.aws.instances:
    name: live
    image_id: "{{ stack_inputs.image.image_id }}"
    root_device_name: "{{ stack_inputs.image.root_device_name }}"
    subnet_ids:
      public: "{{ live_network.subnets.public.subnet_id }}"
      private: "{{ live_network.subnets.private.subnet_id }}"
    security_group_ids: "{{ live_groups.groups }}"
    instance_types:
      backend: c6i.large
    ssh_public_key: "{{ lookup('ansible.builtin.file', '~/.ssh/id_ed25519.pub') }}"
  register: live_instances

- name: The bastion's network interface, for the private subnet's default route
  ansible.builtin.debug:
    msg: "{{ live_instances.instances.bastion.network_interface_id }}"
"""

RETURN = r"""
instances:
  description: The instance of each role (values null in check mode for one not created yet).
  returned: success
  type: dict
  contains:
    bastion:
      description: The bastion.
      type: dict
      sample:
        instance_id: i-0123456789abcdef0
        state: running
        private_ip_address: 10.0.1.10
        public_ip_address: 54.1.2.3
        network_interface_id: eni-0123456789abcdef0
        subnet_id: subnet-0123
        instance_type: t3.micro
        image_id: ami-0123
    frontend:
      description: The frontend, same keys as C(bastion).
      type: dict
    backend:
      description: The backend, same keys as C(bastion); C(public_ip_address) is null.
      type: dict
key_name:
  description: The name of the key pair the instances are launched with.
  returned: success
  type: str
  sample: live-key
actions:
  description: What was changed (in check mode, what would be), one line each.
  returned: always
  type: list
  elements: str
  sample: ["import key pair live-key", "launch live-bastion (t3.micro)"]
"""

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.livestream.aws.plugins.module_utils import options
from ansible_collections.livestream.aws.plugins.module_utils.aws import client
from ansible_collections.livestream.aws.plugins.module_utils.changes import Changes
from ansible_collections.livestream.aws.plugins.module_utils.instances import ensure_instances
from ansible_collections.livestream.aws.plugins.module_utils.security_groups import GROUPS
from ansible_collections.livestream.aws.plugins.module_utils.validation import fail_on_errors
from ansible_collections.livestream.aws.plugins.module_utils.validation import ssh_public_key_errors
from ansible_collections.livestream.aws.plugins.module_utils.validation import stack_errors


def main():
    module = AnsibleAWSModule(
        argument_spec=options.argument_spec(
            options.NAME,
            options.SSH_KEY,
            options.INSTANCES,
            image_id=dict(type="str", required=True),
            root_device_name=dict(type="str", default="/dev/xvda"),
            ami_family=options.AMI["ami_family"],
            subnet_ids=dict(type="dict", required=True, options=dict(public=dict(type="str"), private=dict(type="str"))),
            security_group_ids=dict(
                type="dict", required=True, options={group: dict(type="str") for group in GROUPS}
            ),
        ),
        supports_check_mode=True,
    )
    params = module.params
    name = params["name"]
    errors = stack_errors(name) + ssh_public_key_errors(params["ssh_public_key"])
    if not module.check_mode:
        missing = [f"subnet_ids.{k}" for k, v in params["subnet_ids"].items() if not v]
        missing += [f"security_group_ids.{k}" for k, v in params["security_group_ids"].items() if not v and k != "origin"]
        if missing:
            errors.append(f"{', '.join(missing)} required (they may only be left out in check mode)")
    fail_on_errors(module, errors)

    changes = Changes(module)
    key_name, instances = ensure_instances(
        client(module, "ec2"),
        changes,
        name,
        image_id=params["image_id"],
        root_device_name=params["root_device_name"],
        ami_family=params["ami_family"],
        subnet_ids=params["subnet_ids"],
        security_group_ids=params["security_group_ids"],
        instance_types=params["instance_types"],
        root_volume_size=params["root_volume_size"],
        cpu_credits=params["cpu_credits"],
        ssh_public_key=params["ssh_public_key"],
        wait_timeout=params["wait_timeout"],
    )
    changes.exit_json(key_name=key_name, instances=instances)


if __name__ == "__main__":
    main()
