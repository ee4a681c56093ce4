"""The lab's AWS API: a moto server on loopback, with Debian and Ubuntu AMIs, that hands
out public and Elastic IPs from the lab's own block.

moto on its own gives instances public IPs in 54.214.0.0/16 (a real AWS block) and Elastic
IPs in 127.0.0.0/8 (loopback): neither may be a lab host. ``python -m livestream_lab.moto``
runs moto's server with its two address generators replaced by one that draws from the
block given (in order, wrapping round), and refuses to start if moto no longer has them.
The block's top /28 is the lab's CloudFront edge (``config.edge_block``): never handed out.
"""

from __future__ import annotations

import argparse
import importlib
import ipaddress
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from importlib import metadata
from pathlib import Path

from . import cdn_api, config, strict

AMIS_PATH = Path(__file__).with_name("amis.json")
REGION = "us-east-1"
# moto accepts any credentials; these make the standard AWS environment complete.
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class MotoServer:
    """A moto server process, started on a loopback port and reached over HTTP."""

    def __init__(self, port: int | None = None, host: str = "127.0.0.1", log_path: Path | None = None,
                 env: dict[str, str] | None = None, recording_dir: Path | None = None,
                 public_block: ipaddress.IPv4Network = config.STANDALONE_PUBLIC_BLOCK):
        self.host = host
        self.port = port or free_port(host)
        self.public_block = public_block
        self.log_path = log_path
        # the lab marks its processes through the environment (to find them all again)
        self.extra_env = env or {}
        self.process: subprocess.Popen | None = None
        # moto's recorder writes to ./moto_recording by default: keep it out of the cwd
        # (the lab keeps it in its own state directory, which `down` removes)
        if recording_dir:
            recording_dir.mkdir(parents=True, exist_ok=True)
        self.recording_path = Path(recording_dir or tempfile.mkdtemp(prefix="moto-recording-")) / "requests.jsonl"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def environment(self, region: str = REGION) -> dict[str, str]:
        """The standard AWS environment that points boto3 and Ansible at this server."""
        return {
            **CREDENTIALS,
            "AWS_DEFAULT_REGION": region,
            "AWS_REGION": region,
            "AWS_ENDPOINT_URL": self.url,
        }

    def start(self, timeout: float = 30.0) -> "MotoServer":
        env = {
            **os.environ,
            "MOTO_AMIS_PATH": str(AMIS_PATH),
            "MOTO_ENABLE_RECORDING": "True",
            "MOTO_RECORDER_FILEPATH": str(self.recording_path),
            **self.extra_env,
        }
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self.process = subprocess.Popen(
            [sys.executable, "-m", "livestream_lab.moto", "--public-block", str(self.public_block),
             "-H", self.host, "-p", str(self.port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        delay = 0.05
        while True:
            if self.process and self.process.poll() is not None:
                raise RuntimeError(f"moto_server on port {self.port} exited with {self.process.returncode}")
            try:
                self.api("GET", "/moto-api/data.json")
                return
            except (urllib.error.URLError, ConnectionError):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"moto_server did not answer on {self.url} within {timeout}s") from None
                time.sleep(delay)
                delay = min(delay * 2, 0.5)

    def api(self, method: str, path: str, body: bytes | None = None) -> bytes:
        # not a form: moto reads some bodies as raw data, which a form's content type empties
        request = urllib.request.Request(self.url + path, data=body, method=method,
                                         headers={"Content-Type": "application/octet-stream"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.read()

    def reset(self) -> None:
        """Forget every resource: the next test starts from an empty account (strict mode off)."""
        self.api("POST", "/moto-api/reset")
        self.strict()

    def strict(self, inconsistency_seconds: float = 0.0, throttle_rate: float = 0.0, seed: int = 0) -> dict:
        """Set the API's strict mode (livestream_lab.strict; all zero: off) and return its counts so far."""
        settings = {"inconsistency_seconds": inconsistency_seconds, "throttle_rate": throttle_rate, "seed": seed}
        return self.strict_counts(json.dumps(settings).encode())

    def strict_counts(self, settings: bytes | None = None) -> dict:
        """What strict mode did since it was last set: requests, throttled, not_found, hidden, created."""
        return json.loads(self.api("POST" if settings else "GET", strict.CONTROL_PATH, settings))["counts"]

    def delegate(self, delegations: dict[str, list[str]]) -> dict[str, list[str]]:
        """Tell the API what the domain's registrar delegates (zone -> name servers, the whole
        set, as ``state["delegations"]``): ACM validates a certificate by DNS only through a
        delegated zone. Returns the delegations as the API holds them."""
        answer = self.api("POST", cdn_api.DELEGATIONS_PATH, json.dumps(delegations).encode())
        return json.loads(answer)["delegations"]

    def cloudfront(self) -> list[dict]:
        """Every CloudFront distribution as GetDistribution answers it (``Id``, ``ARN``,
        ``Status``, ``DomainName``, ``DistributionConfig``, ...), plus its ``ETag`` and ``Account``."""
        return json.loads(self.api("GET", cdn_api.CLOUDFRONT_PATH))["distributions"]

    def cloudfront_deployed(self, distribution_id: str, etag: str) -> dict:
        """The lab's edge has applied version ``etag`` of a distribution: it is ``Deployed``
        (answer ``{"Id", "ETag", "Status"}``), unless a newer version came since (then it stays
        ``InProgress`` and the answer carries the current ``ETag`` and an ``error``)."""
        body = json.dumps({"id": distribution_id, "etag": etag}).encode()
        try:
            return json.loads(self.api("POST", cdn_api.DEPLOYED_PATH, body))
        except urllib.error.HTTPError as error:
            if error.code == 409:
                return json.loads(error.read())
            raise

    def enforce_iam(self, enforce: bool = True) -> None:
        """Turn moto's IAM enforcement on (every call after this one must be signed by an IAM
        user's key and allowed by its policies; moto evaluates actions only, not resources or
        conditions) or off again."""
        self.api("POST", "/moto-api/reset-auth", b"0" if enforce else b"inf")

    # moto's request recorder counts the API calls a playbook makes.
    def start_recording(self) -> None:
        self.api("POST", "/moto-api/recorder/reset-recording")
        self.api("POST", "/moto-api/recorder/start-recording")

    def stop_recording(self) -> list[dict]:
        self.api("POST", "/moto-api/recorder/stop-recording")
        raw = self.api("GET", "/moto-api/recorder/download-recording").decode()
        return [json.loads(line) for line in raw.splitlines() if line.strip()]

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None
        shutil.rmtree(self.recording_path.parent, ignore_errors=True)

    def __enter__(self) -> "MotoServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


# -- the server process -------------------------------------------------------------------

# moto's modules that import an address generator, and the name each imports
ADDRESS_GENERATORS = (
    ("moto.ec2.models.elastic_network_interfaces", "random_public_ip"),  # an instance's public IP
    ("moto.ec2.models.elastic_ip_addresses", "random_ip"),  # an Elastic IP
)


def lab_addresses(block: ipaddress.IPv4Network):
    """A generator of addresses in ``block`` but its CloudFront edge, as moto's generators are
    called: no arguments."""
    edge = config.edge_block(block)
    hosts = itertools.cycle([address for address in block.hosts() if address not in edge])
    return lambda: str(next(hosts))


def sign_bodiless_requests_as_sent() -> None:
    """moto's IAM enforcement re-signs a request to check its signature, and signs a GET's query
    parameters as if they were its body: every Route 53 GET with a query (ListHostedZonesByName,
    ListResourceRecordSets) is then refused as SignatureDoesNotMatch. Sign what was sent."""
    # pylint: disable-next=import-outside-toplevel
    from moto.iam.access_control import IAMRequestBase

    build = IAMRequestBase._create_aws_request  # pylint: disable=protected-access

    def as_sent(self):
        request = build(self)
        if request.method in ("GET", "HEAD", "DELETE"):
            request.data = b""
        return request

    IAMRequestBase._create_aws_request = as_sent  # pylint: disable=protected-access


def tag_launched_interfaces() -> None:
    """RunInstances applies a TagSpecification for ``network-interface`` to the interfaces it
    creates; moto applies only ``instance`` and ``volume``. Apply it, as EC2 does."""
    # pylint: disable-next=import-outside-toplevel
    from moto.ec2.models.instances import InstanceBackend

    run = InstanceBackend.run_instances

    def run_instances(self, *args, **kwargs):
        interface_tags = kwargs.get("tags", {}).get("network-interface", {})
        reservation = run(self, *args, **kwargs)
        for instance in reservation.instances:
            for interface in instance.nics.values():
                interface.add_tags(interface_tags)
        return reservation

    InstanceBackend.run_instances = run_instances


def one_source_dest_check() -> None:
    """An instance's source/destination check is its primary network interface's, as on EC2:
    ModifyInstanceAttribute changes what DescribeNetworkInterfaces (and the interfaces that
    DescribeInstances lists) report, and ModifyNetworkInterfaceAttribute on the primary
    interface what the instance reports. moto keeps two values: an instance turned into a NAT
    by the one call would still show the check on its interface, and the other way round."""
    # pylint: disable-next=import-outside-toplevel
    from moto.ec2.models.instances import Instance

    def get(self):
        nics = self.__dict__.get("nics") or {}
        return nics[0].source_dest_check if 0 in nics else self.__dict__.get("lab_source_dest_check", True)

    def put(self, value):
        nics = self.__dict__.get("nics") or {}
        if 0 in nics:
            nics[0].source_dest_check = value
        else:  # moto's __init__ sets it before the interfaces exist (their default is True too)
            self.__dict__["lab_source_dest_check"] = value

    Instance.source_dest_check = property(get, put)


def model_cpu_credits() -> None:
    """A burstable instance's CPU credit option, as EC2 keeps it: launched with the request's
    CreditSpecification, else its family's default (T2 standard, T3/T3a/T4g unlimited);
    read by DescribeInstanceCreditSpecifications (standard for any other type), changed by
    ModifyInstanceCreditSpecification. A CreditSpecification for a type without credits is
    refused (InstanceCreditSpecification.NotSupported). moto answers "standard" for every
    instance and has no Modify call: a product that sets nothing, or sets it wrongly, would
    pass against it."""
    # pylint: disable-next=import-outside-toplevel
    from moto.core.responses import ActionResult
    from moto.ec2.exceptions import EC2ClientError  # pylint: disable=import-outside-toplevel
    from moto.ec2.models.instance_types import INSTANCE_TYPES  # pylint: disable=import-outside-toplevel
    from moto.ec2.responses.instances import InstanceResponse  # pylint: disable=import-outside-toplevel

    def burstable(instance_type):
        return bool(INSTANCE_TYPES.get(instance_type, {}).get("BurstablePerformanceSupported"))

    def default(instance_type):
        return "standard" if instance_type.startswith("t2.") else "unlimited"

    def not_supported(instance_type):
        return EC2ClientError("InstanceCreditSpecification.NotSupported",
                              f"The {instance_type} instance type does not support T2 Unlimited.")

    run = InstanceResponse.run_instances

    def run_instances(self):
        asked = (self._get_param("CreditSpecification") or {}).get("CpuCredits")
        instance_type = self._get_param("InstanceType", "m1.small")
        if asked and not burstable(instance_type):
            raise not_supported(instance_type)
        if asked not in (None, "standard", "unlimited"):
            raise EC2ClientError("InvalidParameterValue", f"Invalid value '{asked}' for CpuCredits")
        result = run(self)
        for instance in result.result.instances:
            if not hasattr(instance, "lab_cpu_credits"):  # a ClientToken's repeat keeps the first
                instance.lab_cpu_credits = asked or default(instance.instance_type)
        return result

    def credits_of(instance):
        if not burstable(instance.instance_type):
            return "standard"
        return getattr(instance, "lab_cpu_credits", default(instance.instance_type))

    def describe_instance_credit_specifications(self):
        instances = self.ec2_backend.describe_instance_credit_specifications(self._get_param("InstanceIds", []))
        return ActionResult({"InstanceCreditSpecifications": [
            {"InstanceId": instance.id, "CpuCredits": credits_of(instance)} for instance in instances]})

    def modify_instance_credit_specification(self):
        done, refused = [], []
        for item in self._get_param("InstanceCreditSpecifications", []):
            instance = self.ec2_backend.get_instance(item["InstanceId"])
            if not burstable(instance.instance_type):
                error = not_supported(instance.instance_type)
                refused.append({"InstanceId": instance.id, "Error": {"Code": error.code, "Message": error.message}})
                continue
            instance.lab_cpu_credits = item["CpuCredits"]
            done.append({"InstanceId": instance.id})
        return ActionResult({"SuccessfulInstanceCreditSpecifications": done,
                             "UnsuccessfulInstanceCreditSpecifications": refused})

    InstanceResponse.run_instances = run_instances
    InstanceResponse.describe_instance_credit_specifications = describe_instance_credit_specifications
    InstanceResponse.modify_instance_credit_specification = modify_instance_credit_specification


def serve(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m livestream_lab.moto")
    parser.add_argument("--public-block", required=True, type=ipaddress.IPv4Network)
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True)
    args = parser.parse_args(argv)
    # imported here: only the lab's API process needs moto's server
    # pylint: disable-next=import-outside-toplevel
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import run_simple  # pylint: disable=import-outside-toplevel

    generate = lab_addresses(args.public_block)
    for module_name, name in ADDRESS_GENERATORS:
        module = importlib.import_module(module_name)
        if not callable(getattr(module, name, None)):
            # a moto upgrade moved it: handing out moto's own addresses instead would put
            # a real AWS block or loopback where the lab expects its own
            raise SystemExit(f"moto {metadata.version('moto')}: {module_name}.{name} is gone; the lab cannot give "
                             f"out addresses from {args.public_block}")
        setattr(module, name, generate)
    sign_bodiless_requests_as_sent()
    tag_launched_interfaces()
    one_source_dest_check()
    model_cpu_credits()
    cdn_api.install(args.public_block)
    os.environ.setdefault("MOTO_PORT", str(args.port))
    app = DomainDispatcherApplication(create_backend_app)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    # strict mode starts off; MotoServer.strict sets it over HTTP
    run_simple(args.host, args.port, strict.StrictAPI(cdn_api.Control(app)), threaded=True,
               request_handler=MotoRequestHandler)


if __name__ == "__main__":
    serve()
