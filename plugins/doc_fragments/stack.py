# -*- coding: utf-8 -*-
# Copyright: livestream.aws contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# The options several livestream.aws modules share, one fragment per group. Each fragment
# matches, option for option, the argument spec of the same name in
# plugins/module_utils/options.py.


class ModuleDocFragment:
    NAME = r"""
options:
  name:
    description:
      - The stack name, as in the C(Stack) tag of its resources; every resource is tagged
        C(Stack=<name>) and named C(<name>-<what>).
    required: true
    type: str
    aliases: [stack_name]
"""

    NETWORK = r"""
options:
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
"""

    AVAILABILITY_ZONE = r"""
options:
  availability_zone:
    description:
      - The availability zone of both subnets.
      - When not set, the first zone of the region (by name) that offers every role's instance
        type (not every zone offers every type, for example C(us-east-1e) offers no C(t3)).
    type: str
"""

    ACCESS = r"""
options:
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
  ingest_cidrs:
    description:
      - The IPv4 blocks from which encoders (OBS, ffmpeg) may publish to the frontend over
        RTMPS, on O(ingest_port); publishing also needs the stream's key.
      - When not set, O(admin_cidrs). V(0.0.0.0/0) (anyone, as streaming services allow, the
        key being the guard) is accepted when given here explicitly.
      - Plain RTMP (1935/tcp) is never open to these; only the backend publishes over it.
    type: list
    elements: str
  ingest_port:
    description:
      - The frontend's RTMPS port (the C(livestream.aws.frontend) role's C(frontend_ingest_port)).
    type: int
    default: 1936
  cdn:
    description:
      - With V(cloudfront), viewers reach the frontend through a CloudFront distribution
        (M(livestream.aws.cdn)) - HTTPS (443/tcp) reaches it only from CloudFront's origin-facing
        addresses (the AWS-managed prefix list C(com.amazonaws.global.cloudfront.origin-facing)), in
        the stack's fourth group, C(origin), which the frontend is in too (AWS counts that list as 55
        of a group's 60 inbound rules). HTTP (80/tcp) stays open to all, for Let's Encrypt's HTTP-01
        validation.
      - With V(none), HTTPS reaches the frontend from anywhere and the C(origin) group has no rule.
    type: str
    choices: [none, cloudfront]
    default: none
"""

    DNS = r"""
options:
  domain:
    description:
      - The name the frontend is published under; inside O(hosted_zone) (the zone's apex is allowed).
    type: str
    required: true
  hosted_zone:
    description:
      - The Route 53 public hosted zone that holds O(domain).
    type: str
    required: true
  create_hosted_zone:
    description:
      - Create O(hosted_zone) (tagged C(Stack=<name>)) when there is none of that name. When
        V(false), the zone must exist.
      - The zone's name servers must then be delegated to by its parent before the name resolves
        on the internet.
    type: bool
    default: false
"""

    AMI = r"""
options:
  ami_family:
    description:
      - Which operating system the instances run, the newest image by name from the publisher's
        own account. V(debian13) (Debian 13, the default), V(debian12) (Debian 12), V(ubuntu2404)
        (Ubuntu 24.04, untested, as no test reaches its package archive).
      - On a stack that exists it changes nothing, as its instances keep the image they were
        launched from. Only an instance launched later (one terminated, then replaced) gets the
        new family.
    type: str
    choices: [debian12, debian13, ubuntu2404]
    default: debian13
  architecture:
    description:
      - The instances' CPU architecture.
    type: str
    choices: [x86_64, arm64]
    default: x86_64
"""

    SSH_KEY = r"""
options:
  ssh_public_key:
    description:
      - The OpenSSH public key (the text of a C(.pub) file) the instances trust.
    type: str
    required: true
"""

    INSTANCES = r"""
options:
  instance_types:
    description:
      - The instance type of each role. Roles not given keep their default.
    type: dict
    default: {}
    suboptions:
      bastion:
        description: The bastion's instance type.
        type: str
        default: t3.micro
      frontend:
        description: The frontend's instance type.
        type: str
        default: t3.small
      backend:
        description: The backend's instance type.
        type: str
        default: t3.small
  root_volume_size:
    description:
      - The size of each instance's root volume, in GiB.
    type: int
    default: 10
  cpu_credits:
    description:
      - The CPU credit option of every instance whose type is burstable (T2, T3, T3a, T4g),
        set at launch and put back on an instance changed since. Other types have no credits
        and are left alone.
      - V(unlimited) (AWS's own default for T3) never holds an instance below what it needs;
        an encoder or a busy frontend that stays above the type's baseline (20% of each vCPU
        for C(t3.small)) is billed for the surplus, at 0.05 USD a vCPU-hour in us-east-1.
      - V(standard) never costs more than the instance; once its credits are spent, it is held
        at the baseline, which stalls a live stream that needs more.
    type: str
    choices: [standard, unlimited]
    default: unlimited
  wait_timeout:
    description:
      - How many seconds to wait for new or started instances to run.
    type: int
    default: 600
"""
