"""The backend's way out to the internet: through the bastion's NAT, and no other.

"The internet" is the lab's root namespace. A TCP listener there, on the lab's internet
address, records who connects: a connection the backend opens must arrive from the
bastion's public address (masqueraded by the bastion to its private address, translated by
the internet gateway to its public one), and none must arrive once the bastion stops
forwarding.
The route is the one the AWS API holds: the private subnet's route table sends 0.0.0.0/0
to the bastion's network interface.
"""

from __future__ import annotations

import ipaddress
import re
import select
import shlex
import socket
import time

import boto3
import pytest

from livestream_testing.lab import aws_environment

pytestmark = pytest.mark.lab

# how long the backend waits for a connection before calling the listener unreachable
CONNECT_TIMEOUT_SECONDS = 5
# runs on the backend: connect, print the source address the backend itself used
CONNECT = """
import socket, sys
try:
    connection = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3]))
except OSError as error:
    print(f"{type(error).__name__}: {error}")
    sys.exit(3)
print(connection.getsockname()[0])
"""
UNREACHABLE = 3


class Listener:
    """A TCP server on the internet that notes the source address of every connection.
    The kernel completes the handshake on its own: a connection the client saw succeed
    waits in the backlog until connections() takes it."""

    def __init__(self, address: str):
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind((address, 0))  # a free port
        self._socket.listen(16)
        self.address, self.port = self._socket.getsockname()

    def connections(self, expected: int = 0, timeout: float = 10) -> list[str]:
        """The sources of the connections made so far, once ``expected`` of them are in
        (the client's last ACK may still be on its way) or ``timeout`` seconds passed."""
        sources = []
        deadline = time.monotonic() + timeout
        while True:
            wait = max(deadline - time.monotonic(), 0) if len(sources) < expected else 0
            if not select.select([self._socket], [], [], wait)[0]:
                return sources
            connection, (source, _port) = self._socket.accept()
            connection.close()
            sources.append(source)

    def close(self) -> None:
        self._socket.close()


@pytest.fixture
def listener(lab_config, lab):
    server = Listener(str(lab_config.internet_address))
    yield server
    server.close()


def _connect_from(ssh, host: str, listener: Listener):
    command = f"python3 -c {shlex.quote(CONNECT)} {listener.address} {listener.port} {CONNECT_TIMEOUT_SECONDS}"
    return ssh(host, command)


@pytest.fixture(scope="module")
def ec2(lab_config, lab):
    env = aws_environment(lab_config)
    return boto3.client("ec2", endpoint_url=env["AWS_ENDPOINT_URL"], region_name=env["AWS_DEFAULT_REGION"],
                        aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])


def _instance(ec2, stack: str, role: str) -> dict:
    reservations = ec2.describe_instances(Filters=[
        {"Name": "tag:Stack", "Values": [stack]}, {"Name": "tag:Role", "Values": [role]},
        {"Name": "instance-state-name", "Values": ["running"]}])["Reservations"]
    (instance,) = [item for reservation in reservations for item in reservation["Instances"]]
    return instance


def test_the_backend_reaches_the_internet_from_the_bastion_address(machines, ssh, listener):
    result = _connect_from(ssh, machines["backend"]["name"], listener)
    assert result.returncode == 0, result.stdout + result.stderr
    # the backend sent from its own address; the internet saw the bastion's public one
    assert result.stdout.strip() == machines["backend"]["private"]
    assert listener.connections(expected=1) == [machines["bastion"]["public"]]


def test_the_backend_route_to_the_internet_is_the_route_table_to_the_bastion(lab_config, machines, ssh, ec2):
    backend = _instance(ec2, lab_config.stack, "backend")
    bastion = _instance(ec2, lab_config.stack, "bastion")
    tables = ec2.describe_route_tables(Filters=[
        {"Name": "association.subnet-id", "Values": [backend["SubnetId"]]}])["RouteTables"]
    assert len(tables) == 1, f"the backend's subnet has {len(tables)} route tables of its own"
    default = [route for route in tables[0]["Routes"] if route.get("DestinationCidrBlock") == "0.0.0.0/0"]
    assert len(default) == 1, tables[0]["Routes"]
    (bastion_eni,) = [eni for eni in bastion["NetworkInterfaces"] if eni["Attachment"]["DeviceIndex"] == 0]
    assert default[0].get("NetworkInterfaceId") == bastion_eni["NetworkInterfaceId"], default[0]
    assert bastion_eni["PrivateIpAddress"] == machines["bastion"]["private"]

    # On the backend the internet is behind the VPC router (the subnet's first address, as
    # in AWS), which the route table above programs; no other way out.
    route = ssh(machines["backend"]["name"], f"ip -4 route get {lab_config.internet_address}")
    assert route.returncode == 0, route.stderr
    gateway = re.search(r"\bvia (\S+)", route.stdout)
    subnet = ec2.describe_subnets(SubnetIds=[backend["SubnetId"]])["Subnets"][0]
    assert gateway is not None, route.stdout
    assert gateway.group(1) == str(ipaddress.ip_network(subnet["CidrBlock"]).network_address + 1), route.stdout


def test_without_the_bastion_forwarding_the_backend_cannot_reach_the_internet(machines, ssh, listener):
    bastion, backend = machines["bastion"]["name"], machines["backend"]["name"]
    forwarding = ssh(bastion, "cat /proc/sys/net/ipv4/ip_forward")
    assert forwarding.stdout.strip() == "1", forwarding.stdout + forwarding.stderr

    switched_off = ssh(bastion, "sudo -n sysctl -qw net.ipv4.ip_forward=0")
    try:
        assert switched_off.returncode == 0, switched_off.stderr
        attempt = _connect_from(ssh, backend, listener)
    finally:
        restored = ssh(bastion, "sudo -n sysctl -qw net.ipv4.ip_forward=1")
    assert restored.returncode == 0, f"forwarding on the bastion NOT restored: {restored.stderr}"

    assert attempt.returncode == UNREACHABLE, attempt.stdout + attempt.stderr
    assert listener.connections() == []
    # the control: forwarding back on, the same attempt gets through (and the lab is as it was)
    again = _connect_from(ssh, backend, listener)
    assert again.returncode == 0, again.stdout + again.stderr
    assert listener.connections(expected=1) == [machines["bastion"]["public"]]
