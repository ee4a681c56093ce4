"""Bring a lab up, take it down: the flow of `make lab`, step by step.

1. the lab's AWS: a moto server on loopback with Debian's AMIs (12 and 13) among others;
2. the stack provisioned against it (playbooks/provision.yml), and the hosted zone
   delegated to it as a user would at the registrar;
3. what the API reports made real: subnets, router, machines;
4. DNS, ACME and the apt proxy;
5. the machines reached through the inventory and checked;
6. the service configured by the checkout's top-level site.yml.

``up`` is idempotent (a second run keeps what runs and fixes what is missing), and
``down`` removes every trace, also after an ``up`` that was killed half-way.
"""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
import shutil
import subprocess
import time
from pathlib import Path

from . import config, edge, machines, network, provision, services, streams
from .config import LabConfig
from .moto import MotoServer
from .stack import Stack, clients, describe
from .system import MARKER, alive, lab_processes, log, marked, output, run, stop

# the top of the checkout's site.yml, as a user of a clone runs it (the collection found as
# that playbook's adjacent collections/, not through ANSIBLE_COLLECTIONS_PATH)
SITE = config.REPOSITORY / "site.yml"


class State:
    """What `down` needs that names alone do not give: written before it is acted on."""

    def __init__(self, lab: LabConfig):
        self.path = lab.state_file
        self.data = json.loads(self.path.read_text()) if self.path.exists() else {}

    def __getitem__(self, key):
        return self.data.get(key)

    def __setitem__(self, key, value):
        self.data[key] = value
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(self.data, indent=2))


# -- up ---------------------------------------------------------------------------------

def up(lab: LabConfig, checks: bool = True, configure_service: bool = True, strict_mode: dict | None = None,
       cdn: str | None = None, ami_family: str | None = None) -> dict:
    """Bring the lab up; ``strict_mode`` (livestream_lab.strict's settings, e.g. strict.AS_AWS)
    makes its API as strict as AWS's for this run, else it is as plain as moto. ``cdn``: the
    stack's livestream_cdn ("cloudfront": viewers through the lab's edge), kept for the next
    ``up``; None keeps what the lab had (at first "none"). ``ami_family``: the stack's
    livestream_ami_family, kept the same way (at first the collection's default); the machines
    boot the Debian release of the AMI the instances were launched from."""
    with marked(str(lab.state_dir)):
        return _up(lab, checks, configure_service, strict_mode, cdn, ami_family)


def _up(lab: LabConfig, checks: bool, configure_service: bool, strict_mode: dict | None, cdn: str | None,
        ami_family: str | None) -> dict:
    started = time.monotonic()
    _refuse_name_clash(lab)
    lab.state_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(lab.state_dir, 0o755)
    state = State(lab)
    state["stack"] = lab.stack
    state["cdn"] = cdn or state["cdn"] or "none"
    state["ami_family"] = ami_family or state["ami_family"]
    if not lab.ssh_key.exists():
        run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"livestream-lab-{lab.stack}", "-f", lab.ssh_key)

    moto = _moto(lab, state, _free_block(state, "public_block", lab.default_public_block))
    moto.strict(**(strict_mode or {}))
    if strict_mode:
        log(f"the API is in strict mode: {strict_mode}")
    vpc = _free_block(state, "vpc_cidr", lab.default_vpc_cidr)
    provision.provision(lab, vpc, moto.environment(), log=log, cdn=state["cdn"], ami_family=state["ami_family"])
    delegate(lab, state, moto.environment())
    # the API learns it too: ACM validates a certificate by DNS only through a delegated zone
    moto.delegate(state["delegations"])
    # the CDN's edge address: CloudFront's names and the Route 53 aliases to them resolve there
    edge_address = config.edge_address(state["public_block"])
    stack = describe(lab.stack, moto.environment(), delegations=state["delegations"], edge=edge_address)
    if stack.vpc_cidr != vpc:
        state["vpc_cidr"] = str(stack.vpc_cidr)
    log(f"the API reports {len(stack.subnets)} subnets and {len(stack.instances)} instances in {stack.vpc_cidr}")

    network.up(lab, stack)
    services.apt_proxy(lab)
    services.acme(lab)
    services.dns(lab, stack)
    for index, instance in enumerate(stack.instances):
        machines.prepare(lab, stack, instance)
        machines.start(lab, stack, index, instance)
    # CloudFront: an edge on the internet, realising the API's distributions from now on
    edge.up(lab, state["public_block"], log_to=log)
    for instance in stack.instances:
        machines.wait_booted(lab, instance)
    log("machines up: " + ", ".join(f"{i.name} {i.private_address}" + (f" (public {i.public_address})" if i.public_address else "")
                                    for i in stack.instances))
    write_access(lab, stack)
    write_inventory(lab, moto)
    # for a shell: `. <state>/aws.env` points the AWS CLI, boto3 and Ansible at the lab's API
    (lab.state_dir / "aws.env").write_text("".join(f"export {k}={v}\n" for k, v in sorted(moto.environment().items())))

    summary = {
        "stack": lab.stack,
        "domain": lab.domain,
        "vpc_cidr": str(stack.vpc_cidr),
        "player_url": f"https://{lab.domain}/",
        # "cloudfront": the domain is the distribution's (the edge's), the frontend is frontend_name
        "cdn": state["cdn"],
        "ami_family": state["ami_family"],
        # how the internet reaches them: the frontend's Elastic IP, the bastion's public IP
        "frontend_address": str(stack.by_role("frontend").public_address),
        "bastion_address": str(stack.by_role("bastion").public_address),
        # the CDN edge (CloudFront's point of presence), serving the distributions the API holds
        "edge_address": str(edge_address),
        "ca_cert": str(lab.ca_cert),
        "acme_directory": lab.acme_directory,
        "acme_ca_bundle": str(lab.state_dir / "acme" / "tls-ca.pem"),
        "apt_proxy": lab.apt_proxy_url,
        "aws_endpoint_url": moto.url,
        "inventory": str(inventory_path(lab)),
        "aws_env": str(lab.state_dir / "aws.env"),
        "ssh_config": str(lab.ssh_config),
        "ssh_key": str(lab.ssh_key),
        # /stat and /metrics from this host: basic authentication (frontend_stat_users)
        "metrics_user": METRICS_USER,
        "metrics_password_file": str(lab.state_dir / "credentials" / "metrics-password"),
    }
    write_group_vars(lab, vpc, summary)
    # the name the frontend answers to, as the playbooks decide it from those settings
    summary["frontend_name"] = streams.frontend_name(lab)
    (lab.state_dir / "lab.json").write_text(json.dumps(summary, indent=2))
    if checks:
        check(lab, stack, summary)
    if configure_service:
        configure(lab, vpc, moto, summary)
    if strict_mode:
        log(f"strict mode did: {moto.strict_counts()}")
    log(f"up in {time.monotonic() - started:.0f}s")
    return summary


def _refuse_name_clash(lab: LabConfig) -> None:
    """Kernel object names carry 4 hex digits of the stack name: two running labs must differ."""
    if not config.STATE_ROOT.exists():
        return
    for other in config.STATE_ROOT.iterdir():
        if other.name != lab.stack and other.is_dir() and config.stack_name_error(other.name) is None \
                and config.load(other.name).tag == lab.tag:
            raise RuntimeError(f"the lab {other.name!r} is up and its interface names would clash with "
                               f"{lab.stack!r}'s: take it down or choose another stack name")


def _moto(lab: LabConfig, state: State, public_block: ipaddress.IPv4Network) -> MotoServer:
    known = state["moto"]
    if known and alive(known["pid"]):
        server = MotoServer(port=known["port"], recording_dir=lab.state_dir / "moto", public_block=public_block)
        try:
            server.api("GET", "/moto-api/data.json")
            return server
        except OSError:
            pass
    server = MotoServer(log_path=lab.state_dir / "moto.log", env={MARKER: str(lab.state_dir)},
                        recording_dir=lab.state_dir / "moto", public_block=public_block)
    server.start()
    state["moto"] = {"pid": server.process.pid, "port": server.port, "url": server.url}
    log(f"the lab's AWS API (moto) listens on {server.url}, public addresses from {public_block}")
    return server


def _free_block(state: State, key: str, propose) -> ipaddress.IPv4Network:
    """An address block of the lab's (the VPC's, the public addresses'): ``propose(0)``
    from the stack name, moved on while the host already routes any of it; kept in the state."""
    if state[key]:
        return ipaddress.ip_network(state[key])
    used = []
    for line in output("ip", "-4", "route", "show", "table", "all").splitlines():
        words = line.split()
        candidate = words[1] if words and words[0] in ("unreachable", "blackhole", "local", "broadcast") else words[0] if words else ""
        try:
            used.append(ipaddress.ip_network(candidate, strict=False))
        except ValueError:
            continue
    for offset in range(224):
        block = propose(offset)
        if not any(block.overlaps(net) for net in used if net.prefixlen > 0):
            state[key] = str(block)
            return block
    raise RuntimeError(f"no free address block for the lab's {key} (tried 224 from {propose(0)})")


def write_access(lab: LabConfig, stack: Stack) -> None:
    """An ssh config for people and tests (`ssh -F <state>/ssh_config live-backend`), the
    path the inventory plugin takes on AWS: the bastion at its public address, every other
    machine at its private address through the bastion (the security groups let SSH in
    from the bastion's private address only); the machines' known host keys.
    Ansible uses the inventory plugin instead (write_inventory)."""
    bastion = stack.by_role("bastion")
    known_hosts = []
    config_lines = []
    for instance in stack.instances:
        root = machines.machine_dir(lab, instance) / "root"
        # under the instance's ID (as the inventory plugin checks them: HostKeyAlias) and its addresses
        names = ",".join(str(name) for name in (instance.id, instance.private_address, instance.public_address) if name)
        for key in sorted((root / "etc/ssh").glob("ssh_host_*_key.pub")):
            kind, material = key.read_text().split()[:2]
            known_hosts.append(f"{names} {kind} {material}")
        address = bastion.public_address if instance.id == bastion.id else instance.private_address
        config_lines += [f"Host {instance.name} {address}", f"  HostName {address}"]
        if instance.id != bastion.id:
            config_lines.append(f"  ProxyJump admin@{bastion.public_address}")
    config_lines += [
        "Host *", "  User admin", f"  IdentityFile {lab.ssh_key}", "  IdentitiesOnly yes",
        f"  UserKnownHostsFile {lab.known_hosts}", "  StrictHostKeyChecking yes", "  LogLevel ERROR",
        "  ConnectTimeout 10",
    ]
    lab.known_hosts.write_text("\n".join(known_hosts) + "\n")
    lab.ssh_config.write_text("\n".join(config_lines) + "\n")


def inventory_path(lab: LabConfig) -> Path:
    # the plugin takes files whose names end in livestream.yml
    return lab.state_dir / "lab.livestream.yml"


def write_inventory(lab: LabConfig, moto: MotoServer) -> None:
    """The collection's inventory plugin as the README configures it for AWS, pointed at
    the lab: its endpoint and credentials, its key, its known host keys; nothing else."""
    settings = {
        "plugin": "livestream.aws.stack",
        "stack_name": lab.stack,
        "endpoint_url": moto.url,
        "regions": [moto.environment()["AWS_DEFAULT_REGION"]],
        "access_key": moto.environment()["AWS_ACCESS_KEY_ID"],
        "secret_key": moto.environment()["AWS_SECRET_ACCESS_KEY"],
        "ssh_private_key_file": str(lab.ssh_key),
        # the lab knows every machine's host key: only those, and ~/.livestream.aws left alone
        "known_hosts_file": str(lab.known_hosts),
        "host_key_checking": "yes",
    }
    inventory_path(lab).write_text(json.dumps(settings, indent=2) + "\n")


def delegate(lab: LabConfig, state: "State", aws_env: dict[str, str]) -> None:
    """What a user does at the domain's registrar after provisioning printed the new hosted
    zone's name servers: the parent delegates to them (the lab's public DNS serves only
    delegated zones, as the internet resolves only those)."""
    _ec2, route53 = clients(aws_env)
    zones = route53.list_hosted_zones_by_name(DNSName=lab.hosted_zone, MaxItems="1")["HostedZones"]
    zone = next((z for z in zones if z["Name"].rstrip(".") == lab.hosted_zone), None)
    if zone is None:
        raise RuntimeError(f"provisioning left no hosted zone {lab.hosted_zone} to delegate")
    servers = sorted(route53.get_hosted_zone(Id=zone["Id"])["DelegationSet"]["NameServers"])
    state["delegations"] = {**(state["delegations"] or {}), lab.hosted_zone: servers}
    log(f"the registrar delegates {lab.hosted_zone} to {' '.join(servers)}")


def check(lab: LabConfig, stack: Stack, summary: dict) -> None:
    log("checking: ssh to every machine, the frontend's name in DNS, a certificate from pebble over HTTP-01")
    playbook = Path(__file__).resolve().parents[1] / "playbooks" / "check.yml"
    extra = {
        "lab_domain": summary["frontend_name"], "lab_viewer_domain": lab.domain,
        "lab_frontend_address": summary["frontend_address"],
        "lab_state_dir": str(lab.state_dir), "lab_acme_directory": lab.acme_directory,
        "lab_ca_cert": str(lab.ca_cert),
    }
    env = {**os.environ, "SSL_CERT_FILE": summary["acme_ca_bundle"], "ANSIBLE_HOST_KEY_CHECKING": "true"}
    env.pop("REQUESTS_CA_BUNDLE", None)
    result = subprocess.run(
        ["ansible-playbook", "-i", summary["inventory"], str(playbook), "-e", json.dumps(extra)],
        env=env, cwd=lab.state_dir, capture_output=True, text=True, check=False)
    (lab.state_dir / "check.log").write_text(result.stdout + result.stderr)
    if result.returncode != 0:
        raise RuntimeError(f"lab checks failed (see {lab.state_dir / 'check.log'}):\n{result.stdout[-3000:]}")
    resolved = output("getent", "hosts", summary["frontend_name"]).split()
    if not resolved or resolved[0] != summary["frontend_address"]:
        raise RuntimeError(f"{summary['frontend_name']} resolves to {resolved} on this host, not to the frontend")
    log("checks passed")


def configure_vars(lab: LabConfig, vpc: ipaddress.IPv4Network, summary: dict) -> dict:
    """site.yml's inputs in the lab: provisioning's, plus the lab's ACME server and a
    credentials directory inside the lab (so that `down` takes the stream keys with it)."""
    return {
        **provision.extra_vars(lab, vpc, summary["cdn"], summary.get("ami_family")),
        "frontend_acme_directory": lab.acme_directory,
        "frontend_acme_ca_bundle": summary["acme_ca_bundle"],
        "livestream_credentials_dir": str(lab.state_dir / "credentials"),
        # a certificate from this lab's pebble, kept where `down` takes it with the lab (the
        # next lab's pebble has another CA)
        "frontend_certificate_store": str(lab.state_dir / "certificates"),
        # site.yml's last play checks the streams over HTTPS from this host: trust pebble's root
        "livestream_verify_ca_path": summary["ca_cert"],
        # the lab's operator reads /stat and the metrics from this host (the internet) with these
        "frontend_stat_users": [{"name": METRICS_USER, "password": metrics_password(lab)}],
    }


# who reads the frontend's /stat and /metrics from the host (a Prometheus, a status command):
# the user's name, its password generated once in the lab's credentials (metrics_password)
METRICS_USER = "metrics"


def metrics_password(lab: LabConfig) -> str:
    """The lab's /stat and /metrics password, generated on first use (``down`` takes it along)."""
    path = lab.state_dir / "credentials" / "metrics-password"
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(24) + "\n")
    return path.read_text().strip()


def write_group_vars(lab: LabConfig, vpc: ipaddress.IPv4Network, summary: dict) -> None:
    """Next to the lab's inventory, so that any playbook run with it (site.yml, molecule's
    converge) gets the lab's settings without being told."""
    group_vars = lab.state_dir / "group_vars"
    group_vars.mkdir(exist_ok=True)
    (group_vars / "all.json").write_text(json.dumps(configure_vars(lab, vpc, summary), indent=2) + "\n")


def configure(lab: LabConfig, vpc: ipaddress.IPv4Network, moto: MotoServer, summary: dict) -> None:
    log("configuring the machines with site.yml (the roles, through the inventory plugin)")
    env = {**os.environ, **moto.environment()}
    env.pop("ANSIBLE_COLLECTIONS_PATH", None)
    result = subprocess.run(
        ["ansible-playbook", "-i", summary["inventory"], str(SITE), "-e", json.dumps(configure_vars(lab, vpc, summary))],
        env=env, cwd=lab.state_dir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)
    (lab.state_dir / "site.log").write_text(result.stdout)
    if result.returncode != 0:
        raise RuntimeError(f"site.yml failed (see {lab.state_dir / 'site.log'}):\n{result.stdout[-3000:]}")
    log("the service is configured and site.yml saw every stream's playlist advance over HTTPS")


# -- down -------------------------------------------------------------------------------

def down(lab: LabConfig) -> None:
    started = time.monotonic()
    state = State(lab)
    lab_id = str(lab.state_dir)
    supervisors = [pid for pid in lab_processes(lab_id) if _is_supervisor(pid)]
    # machines first, so that they shut down in order, then every other lab process
    stop(supervisors, timeout=30)
    stop(lab_processes(lab_id), timeout=10)
    machines.unmount(lab)
    machines.remove_cgroups(lab)
    edge.down(lab)
    network.down(lab)
    if state["vpc_cidr"]:
        network.remove_root_route(state["vpc_cidr"])
    services.remove_hosts_block(lab)
    if lab.state_dir.exists():
        shutil.rmtree(lab.state_dir)
    try:
        config.STATE_ROOT.rmdir()
    except OSError:
        pass
    log(f"down in {time.monotonic() - started:.0f}s")


def _is_supervisor(pid: int) -> bool:
    try:
        return b"livestream_lab.machines" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def status(lab: LabConfig) -> int:
    summary_path = lab.state_dir / "lab.json"
    if not summary_path.exists():
        print(f"lab {lab.stack}: not up")
        return 1
    summary = json.loads(summary_path.read_text())
    print(json.dumps(summary, indent=2))
    processes = lab_processes(str(lab.state_dir))
    print(f"{len(processes)} lab processes running")
    cdn = edge.status(lab)
    if cdn:
        print(f"CDN edge (CloudFront) on {cdn['address']} in netns {cdn['netns']}: {cdn['processes']} processes, "
              f"realiser {'running' if cdn['realiser_running'] else 'NOT running'}")
        for ident, etag in sorted(cdn["distributions"].items()):
            served = "enabled" if ident in cdn["enabled"] else "disabled"
            names = " ".join(cdn["certificates"].get(ident, []))
            print(f"  {ident} {cdn['domains'][ident]} ETag {etag} {served}" + (f", TLS for {names}" if names else ""))
    return 0
