"""Step 2 of the lab: provision the stack against the lab's AWS API.

The lab runs the collection's own ``playbooks/provision.yml``, the one users run
against AWS, with lab inputs only: the endpoint (environment), the stack's address
plan, the lab's ssh key, a domain in a zone the lab owns.
"""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess

from . import config
from .config import LabConfig

PLAYBOOK = config.REPOSITORY / "playbooks" / "provision.yml"


def address_plan(vpc: ipaddress.IPv4Network) -> dict[str, str]:
    subnets = list(vpc.subnets(new_prefix=24))
    return {"vpc": str(vpc), "public": str(subnets[1]), "private": str(subnets[2])}


def extra_vars(lab: LabConfig, vpc: ipaddress.IPv4Network, cdn: str = "none", ami_family: str | None = None) -> dict:
    """The settings a user would give (``cdn``: livestream_cdn, the lab's edge standing in for
    CloudFront; ``ami_family``: livestream_ami_family, None for the collection's default)."""
    plan = address_plan(vpc)
    return {
        **({"livestream_ami_family": ami_family} if ami_family else {}),
        "livestream_cdn": cdn,
        "livestream_stack_name": lab.stack,
        "livestream_vpc_cidr": plan["vpc"],
        "livestream_public_subnet_cidr": plan["public"],
        "livestream_private_subnet_cidr": plan["private"],
        "livestream_domain": lab.domain,
        "livestream_hosted_zone": lab.hosted_zone,
        "livestream_create_hosted_zone": True,
        # the controller is on "the internet", at the lab's internet address
        "livestream_admin_cidrs": [f"{lab.internet_address}/32"],
        "livestream_ssh_public_key_file": f"{lab.ssh_key}.pub",
    }


def provision(lab: LabConfig, vpc: ipaddress.IPv4Network, aws_env: dict[str, str], log=print, cdn: str = "none",
              ami_family: str | None = None) -> None:
    log(f"provisioning with {PLAYBOOK.relative_to(config.REPOSITORY)}" + (f" (CDN: {cdn})" if cdn != "none" else "")
        + (f" ({ami_family})" if ami_family else ""))
    command = ["ansible-playbook", "-i", "localhost,", "-c", "local", str(PLAYBOOK),
               "-e", json.dumps(extra_vars(lab, vpc, cdn, ami_family))]
    with open(lab.state_dir / "provision.log", "w") as log_file:
        subprocess.run(command, check=True, cwd=lab.state_dir, env={**os.environ, **aws_env},
                       stdout=log_file, stderr=subprocess.STDOUT)
