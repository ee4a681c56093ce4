"""site.yml's hand-over from provisioning to configuration, against moto."""

from __future__ import annotations

import json
import subprocess

from playbook import ROOT
from provisioning import LAUNCHING_TASK, PROVISION, census, stack_vars

SITE = ROOT / "playbooks" / "site.yml"


def inventory_for(tmp_path, stack):
    path = tmp_path / f"{stack}.livestream.yml"
    path.write_text(f"plugin: livestream.aws.stack\nstack_name: {stack}\n")
    return path


def test_site_refuses_an_inventory_that_looks_for_another_stack(aws, ansible, tmp_path):
    """Provisioned "live", inventory reads "other": the run fails and says so, before any
    host is contacted, rather than configuring no host and ending green."""
    result = ansible.playbook(SITE, inventory=inventory_for(tmp_path, "other"), extra_vars=stack_vars(tmp_path, "live"))

    assert result.returncode != 0
    handover = result.task("The inventory holds the stack just provisioned")
    messages = [item["msg"] for item in handover["results"] if item.get("failed")]
    assert len(messages) == 3  # bastion, frontend, backend
    assert "no bastion of stack live" in messages[0]
    assert "stack_name live" in messages[0]
    # provisioning itself ran: the failure is the hand-over, not the stack
    assert result.task(LAUNCHING_TASK[PROVISION])["changed"]


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
