"""site.yml's hand-over from provisioning to configuration, against moto."""

from __future__ import annotations

import json
import subprocess

from playbook import ROOT
from provisioning import PROVISION, census, stack_vars

SITE = ROOT / "playbooks" / "site.yml"


def inventory_for(tmp_path, stack):
    path = tmp_path / f"{stack}.livestream.yml"
    path.write_text(f"plugin: livestream.aws.stack\nstack_name: {stack}\n")
    return path


def test_site_refuses_an_inventory_that_looks_for_another_stack_before_making_anything(aws, ansible, tmp_path, ec2):
    """Provisioning "live" with an inventory that reads "other" would make a stack the run
    then cannot configure: it stops first, saying which setting to change."""
    result = ansible.playbook(SITE, inventory=inventory_for(tmp_path, "other"), extra_vars=stack_vars(tmp_path, "live"))

    assert result.returncode != 0
    (message,) = result.failure_messages()
    assert "looks for stack other but this run would provision live" in message
    assert "LIVESTREAM_STACK=live" in message
    assert not any(census(ec2, "live").values())


def test_site_refuses_an_inventory_that_is_not_the_stack_plugin(aws, ansible, tmp_path, ec2):
    result = ansible.playbook(SITE, extra_vars=stack_vars(tmp_path, "live"))  # localhost only

    assert result.returncode != 0
    (message,) = result.failure_messages()
    assert "The inventory is not a livestream.aws.stack configuration: run with -i inventory/aws.livestream.yml" in message
    assert not any(census(ec2, "live").values())


def test_configure_refuses_an_inventory_without_the_stack(aws, ansible, tmp_path):
    """configure.yml on a stack not provisioned (or another one) would configure no host and
    end green: it says so instead."""
    result = ansible.playbook(ROOT / "playbooks" / "configure.yml", inventory=inventory_for(tmp_path, "live"),
                              extra_vars=stack_vars(tmp_path, "live"))

    assert result.returncode != 0
    handover = result.task("The inventory holds one machine of each role of the stack")
    messages = [item["msg"] for item in handover["results"] if item.get("failed")]
    assert len(messages) == 3  # bastion, frontend, backend
    assert "no bastion of stack live: provision it first" in messages[0]


def test_livestream_stack_names_the_stack_for_playbook_and_inventory(aws, ansible, tmp_path, ec2):
    """One setting, LIVESTREAM_STACK, names the stack for provisioning and for the shipped
    inventory configuration."""
    ansible.env["LIVESTREAM_STACK"] = "demo"
    settings = stack_vars(tmp_path, "demo")
    del settings["livestream_stack_name"]

    result = ansible.playbook(PROVISION, extra_vars=settings)

    assert result.returncode == 0, result.failure_messages()
    assert len(census(ec2, "demo")["instance"]) == 3
    listed = subprocess.run(
        ["ansible-inventory", "-i", str(ROOT / "inventory" / "aws.livestream.yml"), "--list"],
        env=ansible.env, capture_output=True, text=True, check=True,
    )
    groups = json.loads(listed.stdout)
    assert sorted(groups["stack_demo"]["hosts"]) == ["demo-backend", "demo-bastion", "demo-frontend"]
