"""The lab end to end: the API's stack made real, reachable the way AWS's would be.

Runs on root with the lab's Debian packages (`make setup-lab`); the base image is built
once and cached. The last test takes the lab down and compares the host with before.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import shlex
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from livestream_probes.net import OPEN, tcp_state
from livestream_testing.playbook import Runner
from livestream_testing.lab import aws_environment, inventory_hosts, lab_identifiers, machine_names, snapshot, ssh
from livestream_lab import config, lab as lab_flow, machines, network
from livestream_lab.stack import clients, describe
from livestream_lab.system import lab_processes

pytestmark = pytest.mark.lab


def _connects(address: str, port: int, timeout: float = 3) -> bool:
    return tcp_state(address, port, timeout=timeout) == OPEN


def _soon(holds, within_s: float = 20) -> bool:
    """Whether ``holds()`` comes true within ``within_s``: a change made through the API is
    applied by this test and by the CDN edge's realiser, which may still apply what it read
    before the change for a moment (and puts it right at its next round), as a change on AWS
    takes a moment to reach every host."""
    deadline = time.monotonic() + within_s
    while not holds():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True


def _running_instance(ec2, lab_config, role: str) -> dict:
    """The stack's running instance of ``role``, as the API describes it."""
    return ec2.describe_instances(Filters=[
        {"Name": "tag:Stack", "Values": [lab_config.stack]}, {"Name": "tag:Role", "Values": [role]},
        {"Name": "instance-state-name", "Values": ["running"]}])["Reservations"][0]["Instances"][0]


def _machines(lab_config) -> dict[str, dict]:
    """name -> the supervisor's view of the machine (spec, pids)."""
    found = {}
    for spec_path in (lab_config.state_dir / "machines").glob("*/machine.json"):
        spec = json.loads(spec_path.read_text())
        spec["supervisor"] = int((spec_path.parent / "supervisor.pid").read_text())
        found[spec["name"]] = spec
    return found


def test_every_machine_answers_over_ssh_through_the_inventory_plugin(lab, lab_config):
    result = subprocess.run(
        ["ansible", "all", "-i", lab["inventory"], "-m", "ansible.builtin.command", "-a", "hostname",
         "-o"], capture_output=True, text=True, check=False, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    names = machine_names(lab_config)
    for name in names.values():
        # the machine answers with its own name: the inventory reached the right machine
        assert f"{name} | CHANGED | rc=0 | (stdout) {name}" in result.stdout


def test_the_bastion_is_reached_at_its_public_address_and_every_other_host_at_its_private_one(lab, lab_config):
    hosts = inventory_hosts(lab_config)
    block = ipaddress.ip_network(lab_flow.State(lab_config)["public_block"])
    bastion = hosts["bastion"]
    assert bastion["address"] == bastion["public"] == lab["bastion_address"]
    assert ipaddress.ip_address(bastion["public"]) in block
    assert ipaddress.ip_address(hosts["frontend"]["public"]) in block
    assert hosts["frontend"]["public"] == lab["frontend_address"]
    assert hosts["backend"]["public"] is None
    for role in ("frontend", "backend"):
        variables = json.loads(subprocess.run(
            ["ansible-inventory", "-i", lab["inventory"], "--host", hosts[role]["name"]],
            capture_output=True, text=True, check=True).stdout)
        # a host behind the bastion, at its private address: a hop to a public address
        # would leave through the internet gateway and be refused as it is on AWS
        assert variables["ansible_host"] == hosts[role]["private"], role
        assert f"admin@{bastion['public']}" in variables["ansible_ssh_common_args"], role
    # the internet (the root namespace) reaches the bastion's public address, and no
    # private address at all, the public subnet's included
    assert _connects(bastion["public"], 22)
    for role in ("bastion", "frontend", "backend"):
        assert not _connects(hosts[role]["private"], 22, timeout=1), role


def test_a_controller_inside_the_vpc_reaches_every_host_at_its_private_address(lab, lab_config, tmp_path):
    """use_private_addresses: the controller sits in the VPC (here: in the bastion's own
    network namespace, which its group lets reach the others), the API is read from here."""
    settings = json.loads(Path(lab["inventory"]).read_text())
    inside = tmp_path / "inside.livestream.yml"
    inside.write_text(json.dumps({**settings, "use_private_addresses": True}))
    listing = subprocess.run(["ansible-inventory", "-i", str(inside), "--list", "--yaml", "--output",
                              str(tmp_path / "static.yml")], capture_output=True, text=True, check=False)
    assert listing.returncode == 0, listing.stderr
    hosts = inventory_hosts(lab_config)
    for role, host in hosts.items():
        variables = json.loads(subprocess.run(["ansible-inventory", "-i", str(inside), "--host", host["name"]],
                                              capture_output=True, text=True, check=True).stdout)
        assert variables["ansible_host"] == host["private"], role
        # not even the hop goes to a public address
        assert hosts["bastion"]["public"] not in variables.get("ansible_ssh_common_args", ""), role
    command = machines.in_network_of(lab_config, hosts["bastion"]["name"], [
        "ansible", "all", "-i", str(tmp_path / "static.yml"), "-m", "ansible.builtin.command", "-a", "hostname", "-o"])
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    for host in hosts.values():
        assert f"{host['name']} | CHANGED | rc=0 | (stdout) {host['name']}" in result.stdout


def test_first_connections_take_new_host_keys_without_a_prompt_and_keep_them_per_instance(lab, lab_config, tmp_path):
    """The README's inventory as a new user has it: no known host yet, Ansible checking host
    keys (its default), no terminal to answer a prompt. Every machine answers, the hop
    through the bastion included, and the keys are then kept under the instances' IDs; a
    changed key for the same instance is refused."""
    settings = json.loads(Path(lab["inventory"]).read_text())
    known_hosts = tmp_path / "stack" / "known_hosts"
    config = tmp_path / "first.livestream.yml"
    config.write_text(json.dumps({**{k: v for k, v in settings.items() if k != "host_key_checking"},
                                  "known_hosts_file": str(known_hosts)}))
    # new connections (not the lab's, multiplexed), host keys checked as Ansible does by default
    env = {**os.environ, "ANSIBLE_HOST_KEY_CHECKING": "true", "ANSIBLE_SSH_CONTROL_PATH_DIR": str(tmp_path / "cp")}

    def every_machine():
        return subprocess.run(["ansible", "all", "-i", str(config), "-m", "ansible.builtin.command", "-a", "hostname",
                               "-o"], capture_output=True, text=True, check=False, timeout=120,
                              stdin=subprocess.DEVNULL, env=env)

    def kept(alias):
        return subprocess.run(["ssh-keygen", "-F", alias, "-f", str(known_hosts)], capture_output=True,
                              text=True, check=False).returncode == 0

    first = every_machine()
    assert first.returncode == 0, first.stdout + first.stderr
    hosts = inventory_hosts(lab_config)
    ids = {instance.name: instance.id for instance in describe(lab_config.stack, aws_environment(lab_config)).instances}
    assert all(kept(ids[host["name"]]) for host in hosts.values()), known_hosts.read_text()
    assert not any(kept(host["private"]) for host in hosts.values())  # under the IDs, not the addresses

    # the frontend's key changed, as a man in the middle's would: refused, the others still in
    frontend = ids[hosts["frontend"]["name"]]
    subprocess.run(["ssh-keygen", "-R", frontend, "-f", str(known_hosts)], capture_output=True, check=True)
    with known_hosts.open("a") as keys:
        keys.write(f"{frontend} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBUjQtWjI3D++Y+7hQvPOsPuIejtshknMqqrpkRgwp8p\n")
    env["ANSIBLE_SSH_CONTROL_PATH_DIR"] = str(tmp_path / "cp-again")
    again = every_machine()
    assert again.returncode != 0
    assert f"{hosts['frontend']['name']} | UNREACHABLE" in again.stdout, again.stdout + again.stderr
    assert f"{hosts['backend']['name']} | CHANGED" in again.stdout, again.stdout


def test_a_failed_ssh_wait_says_which_hop_failed_and_why(lab, lab_config, tmp_path):
    """configure.yml's wait for ssh, as a user meets it: from an address outside the admin
    CIDRs the bastion's security group drops ssh (the hop from this machine times out), and a
    key other than the instances' is refused at the backend's login, behind the bastion (and
    then, as Debian 13's sshd penalises the bastion's address, the connection is closed).
    Each host's failure names its hop, ssh's words and the setting to change."""
    hosts = inventory_hosts(lab_config)
    other_key = tmp_path / "other_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other_key)], check=True)
    broken = tmp_path / "broken.yml"
    broken.write_text(json.dumps({"all": {"hosts": {
        hosts["bastion"]["name"]: {"ansible_ssh_extra_args": f"-o BindAddress={lab_config.outsider_address}"},
        hosts["backend"]["name"]: {"ansible_ssh_private_key_file": str(other_key)},
    }}}))
    admin = f"{lab_config.internet_address}/32"
    runner = Runner(tmp_path, env={**os.environ, "ANSIBLE_SSH_CONTROL_PATH_DIR": str(tmp_path / "cp")})

    result = runner.playbook(
        config.REPOSITORY / "playbooks" / "configure.yml", "-i", str(broken),
        "--limit", f"{hosts['bastion']['name']},{hosts['backend']['name']},localhost",
        inventory=lab["inventory"],
        extra_vars={"livestream_stack_name": lab_config.stack, "livestream_admin_cidrs": [admin],
                    "livestream_ssh_wait_seconds": 20})

    assert result.returncode != 0
    stop = "Stop on what waiting cannot mend, or when the wait is over"
    bastion = result.task(stop, host=hosts["bastion"]["name"])["msg"]
    assert bastion.startswith(f"{hosts['bastion']['name']}: this machine could not reach {hosts['bastion']['public']}:22 "
                              "(Connection timed out)"), bastion
    assert f"this machine's public address is not in livestream_admin_cidrs ({admin})" in bastion
    backend = result.task(stop, host=hosts["backend"]["name"])["msg"]
    assert backend.startswith(f"{hosts['backend']['name']}: the login on {hosts['backend']['private']} was refused"), backend
    # ssh's words: the refusal itself, or (Debian 13's sshd, after a few of them from the
    # bastion's address while the wait retried) the connection closed before sshd's greeting
    assert "Permission denied (publickey)" in backend or "PerSourcePenalties" in backend, backend
    assert f"the private key ssh offers ({other_key}) is not the private half" in backend
    assert "livestream_ssh_public_key_file" in backend


def test_the_domain_resolves_to_the_frontend_inside_the_lab_and_on_the_host(lab, lab_config):
    names = machine_names(lab_config)
    for role in ("backend", "bastion"):
        resolved = ssh(lab_config, names[role], f"getent hosts {lab['domain']}").stdout.split()
        assert resolved[0] == lab["frontend_address"]
    assert socket.gethostbyname(lab["domain"]) == lab["frontend_address"]
    # the VPC resolver has no upstream: names the lab does not hold never leak out
    assert ssh(lab_config, names["backend"], "getent hosts deb.debian.org", check=False).returncode != 0


def test_pebble_issued_a_certificate_for_the_domain_over_http01_to_the_frontend(lab, lab_config):
    chain = lab_config.state_dir / "acme" / "check" / "fullchain.pem"
    verified = subprocess.run(
        ["openssl", "verify", "-CAfile", lab["ca_cert"], "-untrusted", chain, "-verify_hostname", lab["domain"], chain],
        capture_output=True, text=True, check=False)
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_the_backend_reaches_the_apt_proxy_only_once_the_bastion_forwards_and_masquerades(lab, lab_config):
    names = machine_names(lab_config)
    # the image's boot-time update (unattended-upgrades, as on a new instance) waits for the
    # same way out and holds apt's lock meanwhile: out of the way, as an admin would
    ssh(lab_config, names["backend"], "sudo systemctl stop apt-daily.service apt-daily-upgrade.service")
    update = "sudo apt-get -q -o Acquire::Retries=0 -o Acquire::http::Timeout=5 update"
    before = ssh(lab_config, names["backend"], update, check=False, timeout=120)
    said = before.stdout + before.stderr
    assert "Could not get lock" not in said and ("Failed to fetch" in said or before.returncode != 0), said

    with _the_bastion_forwarding(lab_config):
        after = ssh(lab_config, names["backend"], update, check=False, timeout=180)
    assert after.returncode == 0, after.stdout + after.stderr
    assert "Failed to fetch" not in after.stdout + after.stderr


@contextlib.contextmanager
def _the_bastion_forwarding(lab_config):
    """What the bastion role does (forward, masquerade what leaves the VPC), done here from the
    host in the bastion's network namespace, and undone."""
    def in_bastion(*argv: str) -> list[str]:
        return machines.in_network_of(lab_config, machine_names(lab_config)["bastion"], list(argv))

    vpc = lab_flow.State(lab_config)["vpc_cidr"]
    subprocess.run(in_bastion("sysctl", "-qw", "net.ipv4.ip_forward=1"), check=True)
    subprocess.run(in_bastion("iptables", "-t", "nat", "-A", "POSTROUTING", "-s", vpc, "!", "-d", vpc,
                              "-j", "MASQUERADE"), check=True)
    try:
        yield
    finally:
        subprocess.run(in_bastion("iptables", "-t", "nat", "-F", "POSTROUTING"), check=False)
        subprocess.run(in_bastion("sysctl", "-qw", "net.ipv4.ip_forward=0"), check=False)


def test_the_bastion_forwards_only_while_its_source_dest_check_is_off(lab, lab_config):
    """EC2 drops, at an interface whose source/destination check is on, what is neither from
    nor to its own address: a NAT instance forwards nothing until the check is off (the
    collection's instances module turns it off for the bastion). The lab drops the same, and
    follows the attribute changed in the API; one value, the instance's and its primary
    interface's alike, as on EC2."""
    names = machine_names(lab_config)
    environment = aws_environment(lab_config)
    ec2, _route53 = clients(environment)
    bastion = _running_instance(ec2, lab_config, "bastion")
    primary = next(eni["NetworkInterfaceId"] for eni in bastion["NetworkInterfaces"]
                   if eni["Attachment"]["DeviceIndex"] == 0)

    def check_is() -> tuple[bool, bool]:
        instance = ec2.describe_instance_attribute(InstanceId=bastion["InstanceId"], Attribute="sourceDestCheck")
        interface = ec2.describe_network_interface_attribute(NetworkInterfaceId=primary, Attribute="sourceDestCheck")
        return instance["SourceDestCheck"]["Value"], interface["SourceDestCheck"]["Value"]

    def backend_reaches_the_apt_proxy() -> bool:
        reach = f"timeout 5 bash -c 'exec 3<>/dev/tcp/{lab_config.internet_address}/{config.APT_PROXY_PORT}'"
        return ssh(lab_config, names["backend"], reach, check=False).returncode == 0

    def apply() -> None:
        network.apply_security_groups(lab_config, describe(lab_config.stack, environment))

    assert check_is() == (False, False)  # as provisioned
    with _the_bastion_forwarding(lab_config):
        assert backend_reaches_the_apt_proxy()
        ec2.modify_instance_attribute(InstanceId=bastion["InstanceId"], SourceDestCheck={"Value": True})
        try:
            assert check_is() == (True, True)
            apply()
            assert _soon(lambda: not backend_reaches_the_apt_proxy())
        finally:
            ec2.modify_network_interface_attribute(NetworkInterfaceId=primary, SourceDestCheck={"Value": False})
            apply()
        assert check_is() == (False, False)
        assert _soon(backend_reaches_the_apt_proxy)


def test_up_again_keeps_the_running_lab(lab, lab_config):
    before = _machines(lab_config)
    summary = lab_flow.up(lab_config, checks=False, configure_service=False)
    after = _machines(lab_config)
    assert summary["frontend_address"] == lab["frontend_address"]
    # same machines, not restarted
    assert {name: spec["supervisor"] for name, spec in after.items()} == \
        {name: spec["supervisor"] for name, spec in before.items()}
    ssh(lab_config, machine_names(lab_config)["backend"], "true")


def test_the_security_groups_the_api_holds_are_enforced_and_followed(lab, lab_config):
    hosts = inventory_hosts(lab_config)
    names = {role: host["name"] for role, host in hosts.items()}
    frontend, elastic_ip = hosts["frontend"]["private"], hosts["frontend"]["public"]

    def reach(address: str) -> str:
        return f"timeout 5 bash -c 'exec 3<>/dev/tcp/{address}/22'"
    # the frontend's group lets SSH in from the bastion's group only, which AWS matches
    # against the private addresses of the group's members: not from the internet, not
    # from the backend (across the router), yes from the bastion to the private address
    # (same subnet, no router), and not from the bastion to the Elastic IP (through the
    # internet gateway, arriving from the bastion's public address)
    assert not _connects(elastic_ip, 22)
    assert ssh(lab_config, names["backend"], reach(frontend), check=False).returncode != 0
    assert ssh(lab_config, names["bastion"], reach(frontend), check=False).returncode == 0
    assert ssh(lab_config, names["bastion"], reach(elastic_ip), check=False).returncode != 0

    # a rule added in the API is enforced once the lab realises the network again, and its
    # removal too (`make lab` would also re-provision, which takes the stray rule away)
    environment = aws_environment(lab_config)
    ec2, _route53 = clients(environment)
    instance = _running_instance(ec2, lab_config, "frontend")
    group = instance["NetworkInterfaces"][0]["Groups"][0]["GroupId"]
    rule = [{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=rule)
    try:
        network.up(lab_config, describe(lab_config.stack, environment))
        assert _soon(lambda: _connects(elastic_ip, 22))
    finally:
        ec2.revoke_security_group_ingress(GroupId=group, IpPermissions=rule)
        network.up(lab_config, describe(lab_config.stack, environment))
    assert _soon(lambda: not _connects(elastic_ip, 22))


def test_the_bastion_lets_ssh_in_from_the_admin_cidrs_only(lab, lab_config):
    bastion = lab["bastion_address"]
    # the lab's admin CIDR is its internet address: the same port from another address
    # of the internet is dropped by the bastion's group
    assert _connects(bastion, 22)
    with socket.socket() as outsider:
        outsider.bind((str(lab_config.outsider_address), 0))
        outsider.settimeout(3)
        # dropped (silence), not refused or unroutable: the group said no
        with pytest.raises(TimeoutError):
            outsider.connect((bastion, 22))


def _lab_rules_in_the_hosts_chains(lab_config) -> list[str]:
    return sorted(line for table, chain in network.HOOKED_CHAINS for line in network.our_rules(lab_config, table, chain))


def test_the_groups_applied_again_never_leave_a_port_open_meanwhile(lab, lab_config):
    """AWS changes a group's rules without a moment in which the instance is open to all;
    the lab applies its groups again at any time (`up`, and the CDN edge's realiser when a
    group changed in the API), two of them at once at worst: the outsider must meet the
    bastion's closed port all along, and the lab's other rules on the host must stay."""
    bastion, before = lab["bastion_address"], _lab_rules_in_the_hosts_chains(lab_config)
    stack = describe(lab_config.stack, aws_environment(lab_config))
    done, let_in, attempts, applied = threading.Event(), [], 0, []

    def apply_again() -> None:
        while not done.is_set():
            network.apply_security_groups(lab_config, stack)
            applied.append(1)
    appliers = [threading.Thread(target=apply_again), threading.Thread(target=apply_again)]
    for applier in appliers:
        applier.start()
    try:
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:
            attempts += 1
            with socket.socket() as outsider:
                outsider.bind((str(lab_config.outsider_address), 0))
                outsider.settimeout(0.2)
                try:
                    outsider.connect((bastion, 22))
                    let_in.append(attempts)
                except TimeoutError:
                    pass
    finally:
        done.set()
        for applier in appliers:
            applier.join()
    assert not let_in, f"{len(let_in)} of {attempts} connections from the outsider were let in"
    assert attempts > 20 and len(applied) > 4, (attempts, len(applied))
    assert _lab_rules_in_the_hosts_chains(lab_config) == before
    assert _connects(bastion, 22)


# runs on a machine: accept one connection on a port, print the peer's address
ACCEPT_ONE = ("import socket, sys; s = socket.create_server(('', int(sys.argv[1]))); s.settimeout(20); "
              "c, peer = s.accept(); print(peer[0])")


def test_traffic_to_a_public_address_hairpins_through_the_gateway(lab, lab_config):
    hosts = inventory_hosts(lab_config)
    names = {role: host["name"] for role, host in hosts.items()}
    # port 80 of the frontend is open to the internet; nothing listens there on a bare machine
    listener = subprocess.Popen(
        ["ssh", "-F", str(lab_config.ssh_config), names["frontend"], f"sudo python3 -c {shlex.quote(ACCEPT_ONE)} 80"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        connect = f"for i in $(seq 50); do timeout 2 bash -c 'exec 3<>/dev/tcp/{hosts['frontend']['public']}/80' && exit 0; sleep 0.2; done; exit 1"
        assert ssh(lab_config, names["bastion"], connect, check=False, timeout=60).returncode == 0
        seen, errors = listener.communicate(timeout=30)
    finally:
        listener.kill()
    # the frontend saw the bastion's public address, not its private one
    assert seen.strip() == hosts["bastion"]["public"], errors


def test_a_machine_survives_a_reboot(lab, lab_config):
    frontend = machine_names(lab_config)["frontend"]
    boot_id = ssh(lab_config, frontend, "cat /proc/sys/kernel/random/boot_id").stdout
    ssh(lab_config, frontend, "sudo systemctl reboot", check=False)
    deadline = time.monotonic() + 120
    while True:
        result = ssh(lab_config, frontend, "cat /proc/sys/kernel/random/boot_id; systemctl is-system-running --wait",
                     check=False)
        if result.returncode == 0 and result.stdout.split()[0] != boot_id.strip():
            break
        assert time.monotonic() < deadline, f"{frontend} did not come back: {result.stderr}"
        time.sleep(1)
    assert result.stdout.split()[1] in ("running", "degraded")
    private = inventory_hosts(lab_config)["frontend"]["private"]
    addresses = ssh(lab_config, frontend, "ip -4 -br addr show dev eth0").stdout
    assert private in addresses
    # and the backend still reaches it across the VPC, straight, after the reboot: RTMP is
    # let in from the backend (nothing listens on bare machines, so the answer is a refusal)
    backend = machine_names(lab_config)["backend"]
    probe = ssh(lab_config, backend, f"timeout 5 bash -c 'exec 3<>/dev/tcp/{private}/1935'", check=False)
    assert probe.returncode == 0 or "Connection refused" in probe.stderr, probe


def test_down_leaves_the_host_as_it_was(lab, lab_config, host_before):
    marks = lab_identifiers(lab_config, lab)
    during = snapshot()
    assert any(any(mark in item for mark in marks) for item in during["links"]), "the lab left no mark to look for"

    lab_flow.down(lab_config)
    time.sleep(0.5)
    after = snapshot()

    for kind in ("links", "netns", "routes", "rules", "mounts", "cgroups", "iptables", "nft", "processes", "state",
                 "hosts"):
        traces = sorted(item for item in after[kind] - host_before[kind] if any(mark in item for mark in marks))
        assert not traces, f"{kind} left behind by the lab: {traces}"
    # /etc/hosts as it was, but for the blocks of other labs that came, went or changed meanwhile
    assert host_before["hosts_outside_labs"] <= after["hosts_outside_labs"]
    assert after["sysctls"] == host_before["sysctls"]
    assert not lab_config.state_dir.exists()
    assert not lab_processes(str(lab_config.state_dir))


def test_down_after_a_killed_up_leaves_no_trace(host_before):
    """`up` killed while it boots the machines: `down` still finds and removes everything."""
    killed = config.load("labkill")
    lab_flow.down(killed)
    command = [sys.executable, "-m", "livestream_lab", "--stack", killed.stack, "up", "--no-checks", "--no-configure"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not list((killed.state_dir / "machines").glob("*/supervisor.pid")):
            assert process.poll() is None, f"up ended before it started a machine: {process.stderr.read()}"
            assert time.monotonic() < deadline, "up never started a machine"
            time.sleep(0.1)
    finally:
        process.kill()
        process.wait()
    assert lab_processes(str(killed.state_dir)), "the killed up left nothing running to clean up"
    vpc = lab_flow.State(killed)["vpc_cidr"]

    lab_flow.down(killed)
    after = snapshot()
    marks = lab_identifiers(killed, None) + [vpc.split(".0.0/")[0] + "."]
    for kind in ("links", "netns", "routes", "rules", "mounts", "cgroups", "iptables", "processes", "state", "hosts"):
        traces = sorted(item for item in after[kind] - host_before[kind] if any(mark in item for mark in marks))
        assert not traces, f"{kind} left behind after a killed up: {traces}"
    assert not lab_processes(str(killed.state_dir))
