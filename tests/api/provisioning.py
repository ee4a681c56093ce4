"""What the provisioning tests share: the playbooks, their inputs, and an independent
census of a stack read straight from the API with boto3 (not through our modules)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import yaml

from conftest import observer
from livestream_testing import ROOT

PROVISION = ROOT / "playbooks" / "provision.yml"
TEARDOWN = ROOT / "playbooks" / "teardown.yml"
CDN = ROOT / "playbooks" / "cdn.yml"
# the same stack from the concept modules, one task each
COMPOSED = ROOT / "tests" / "api" / "playbooks" / "composed-provision.yml"
# the task of each that launches the instances
LAUNCHING_TASK = {
    PROVISION: "Stack (inputs checked, then network, security groups, instances, NAT route, Elastic IP, DNS)",
    COMPOSED: "Key pair and instances",
}
PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBUjQtWjI3D++Y+7hQvPOsPuIejtshknMqqrpkRgwp8p tester@livestream"
ADMIN_CIDR = "198.51.100.0/24"
ZONE = "example.test"


def stack_vars(tmp_path, name="live", **overrides):
    """The extra vars a user would give for stack ``name`` (a key file of its own included)."""
    key = tmp_path / f"{name}_id_ed25519.pub"
    key.write_text(PUBLIC_KEY + "\n")
    return {
        "livestream_stack_name": name,
        "livestream_admin_cidrs": [ADMIN_CIDR],
        "livestream_hosted_zone": ZONE,
        "livestream_create_hosted_zone": True,
        "livestream_ssh_public_key_file": str(key),
        **overrides,
    }


def route53(aws):
    return observer(aws, "route53")


def census(ec2, name):
    """IDs of every EC2 resource tagged Stack=<name>, by kind (terminated instances left out)."""
    tagged = [{"Name": "tag:Stack", "Values": [name]}]
    instances = [
        i
        for r in ec2.describe_instances(Filters=tagged)["Reservations"]
        for i in r["Instances"]
        if i["State"]["Name"] != "terminated"
    ]
    return {
        "vpc": [v["VpcId"] for v in ec2.describe_vpcs(Filters=tagged)["Vpcs"]],
        "subnet": [s["SubnetId"] for s in ec2.describe_subnets(Filters=tagged)["Subnets"]],
        "internet_gateway": [g["InternetGatewayId"] for g in ec2.describe_internet_gateways(Filters=tagged)["InternetGateways"]],
        "route_table": [t["RouteTableId"] for t in ec2.describe_route_tables(Filters=tagged)["RouteTables"]],
        "security_group": [g["GroupId"] for g in ec2.describe_security_groups(Filters=tagged)["SecurityGroups"]],
        "instance": [i["InstanceId"] for i in instances],
        "elastic_ip": [a["AllocationId"] for a in ec2.describe_addresses(Filters=tagged)["Addresses"]],
        "key_pair": [k["KeyName"] for k in ec2.describe_key_pairs(Filters=tagged)["KeyPairs"]],
    }


# exactly one of each, per stack
COMPLETE = {
    "vpc": 1, "subnet": 2, "internet_gateway": 1, "route_table": 2,
    "security_group": 4, "instance": 3, "elastic_ip": 1, "key_pair": 1,
}


def counts(ec2, name):
    return {kind: len(ids) for kind, ids in census(ec2, name).items()}


def instances_by_role(ec2, name):
    found = census(ec2, name)["instance"]
    if not found:
        return {}
    described = [i for r in ec2.describe_instances(InstanceIds=found)["Reservations"] for i in r["Instances"]]
    return {tags(i)["Role"]: i for i in described}


def tags(resource):
    return {t["Key"]: t["Value"] for t in resource.get("Tags", [])}


def a_records(r53, domain):
    """Values of the A record ``domain`` in any zone, by zone name."""
    found = {}
    for zone in r53.list_hosted_zones()["HostedZones"]:
        for record in r53.list_resource_record_sets(HostedZoneId=zone["Id"])["ResourceRecordSets"]:
            if record["Name"].rstrip(".") == domain and record["Type"] == "A":
                found[zone["Name"].rstrip(".")] = [r["Value"] for r in record["ResourceRecords"]]
    return found


def plain(data):
    """ansible-inventory marks values that came from outside as unsafe: unwrap them."""
    if isinstance(data, dict):
        if set(data) == {"__ansible_unsafe"}:
            return data["__ansible_unsafe"]
        return {key: plain(value) for key, value in data.items()}
    if isinstance(data, list):
        return [plain(value) for value in data]
    return data


class Inventory:
    """ansible-inventory on a livestream.yml config file written to a scratch directory."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        # only this plugin, and a failure is an error: no fallback to other parsers hiding it
        self.env = {**os.environ, "ANSIBLE_INVENTORY_ENABLED": "livestream.aws.stack",
                    "ANSIBLE_INVENTORY_UNPARSED_FAILED": "true",
                    # the plugin keeps host keys under ~/.livestream.aws/<stack>: the test's own
                    "HOME": str(workdir)}

    def write(self, config: dict, name: str = "test.livestream.yml") -> Path:
        path = self.workdir / name
        path.write_text(yaml.safe_dump({"plugin": "livestream.aws.stack", **config}, sort_keys=False))
        return path

    def run(self, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(["ansible-inventory", *args], cwd=self.workdir, env={**self.env, **(env or {})},
                              capture_output=True, text=True, timeout=120, check=False)

    def list(self, config: dict | Path, *args: str, env: dict | None = None) -> dict:
        path = config if isinstance(config, Path) else self.write(config)
        proc = self.run("-i", str(path), "--list", *args, env=env)
        assert proc.returncode == 0, proc.stderr
        return plain(json.loads(proc.stdout))

    def error(self, config: dict, env: dict | None = None) -> str:
        """What a stack the plugin finds but cannot make hosts of fails with."""
        proc = self.run("-i", str(self.write(config)), "--list", env=env)
        assert proc.returncode != 0, proc.stdout
        return " ".join(proc.stderr.split())

    def unreadable(self, config: dict, env: dict | None = None) -> str:
        """What the plugin says when it cannot look for the stack at all (configuration,
        credentials, the API): one warning line, no hosts, and the same message in
        livestream_inventory_error, on which the playbooks stop."""
        proc = self.run("-i", str(self.write(config)), "--list", "--export", env=env)
        assert proc.returncode == 0, proc.stderr
        said = [line for line in proc.stderr.splitlines() if line.strip()]
        assert len(said) == 1, said
        listing = plain(json.loads(proc.stdout))
        assert not any(group.get("hosts") for group in listing.values() if isinstance(group, dict))
        message = listing["all"]["vars"]["livestream_inventory_error"]
        assert said[0] == f"[WARNING]: livestream.aws.stack: {message}", said
        return message
