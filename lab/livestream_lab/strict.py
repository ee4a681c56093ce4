"""The lab's AWS API made as strict as AWS's, where moto is kinder: a WSGI layer in front of
moto's server (``python -m livestream_lab.moto --strict ...``).

- **Eventual consistency.** EC2 documents that a resource made by a create call may be
  unknown to other calls for a while after the call returns. For ``inconsistency_seconds``
  after the response of a create call, a request that names the new resource's ID fails
  as EC2 fails it (``InvalidVpcID.NotFound``, ``InvalidGroup.NotFound``, ...), and Describe
  calls leave it out of what they list (what a tag-filtered Describe does on AWS). ACM
  answers a new certificate without its validation records (``ResourceRecord``) for as long,
  and holds a certificate in use for as long after the distribution that used it is deleted
  (``ResourceInUseException``), as ACM does.
- **Throttling.** A share of the calls (``throttle_rate``) is refused as AWS refuses them
  under load: EC2 with HTTP 503 ``RequestLimitExceeded``, Route 53 with HTTP 400
  ``Throttling`` (``PriorRequestNotComplete`` for a change to record sets), ACM with HTTP 400
  ``ThrottlingException``, CloudFront with HTTP 400 ``Throttling``.
- **Launch tokens.** A RunInstances call with a ``ClientToken`` used before gets the first
  call's answer again, with the instances' state now, a terminated instance included (AWS
  keeps tokens at least 24 hours); with other parameters, ``IdempotentParameterMismatch``.
  moto would launch again. Always on.
- **What AWS refuses and moto accepts**, refused always (strict mode on or off): an
  instance launched with a type its subnet's zone does not offer (``Unsupported``), an
  ECDSA key imported (EC2 takes RSA and ED25519), a security group named like an ID
  (``sg-...``), and with ``DependencyViolation`` the deletion of what something still uses:
  a security group an interface is in or another group's rule references, a subnet that
  holds interfaces, a VPC with subnets, an attached internet gateway or security groups.

Which calls are refused comes from a seeded random generator, so a failing run can be
run again the same way. The lab's own view of the API (what it realises as machines and
networks: AWS's side of things) signs with the access key ``LAB_ACCESS_KEY_ID`` and is
never refused. What the layer did is counted, and both the settings and the
counts are read and set over HTTP at ``/livestream-lab/strict`` (GET: counts and settings;
POST a JSON object: new settings, counts reset), so one server serves tests with and
without strict mode.
"""

from __future__ import annotations

import base64
import io
import json
import random
import re
import threading
import time
import urllib.parse
import uuid
from xml.etree import ElementTree

CONTROL_PATH = "/livestream-lab/strict"
# the lab's own seat: requests signed with this access key pass untouched
LAB_ACCESS_KEY_ID = "LIVESTREAMLABSEAT"
# what `up --strict` and the tests use: 1.5 s of inconsistency after a create, 15% throttled
AS_AWS = {"inconsistency_seconds": 1.5, "throttle_rate": 0.15}

# The ID prefixes of what provisioning creates, and EC2's error code for an unknown one.
NOT_FOUND_CODES = {
    "vpc": "InvalidVpcID.NotFound",
    "subnet": "InvalidSubnetID.NotFound",
    "igw": "InvalidInternetGatewayID.NotFound",
    "rtb": "InvalidRouteTableID.NotFound",
    "rtbassoc": "InvalidAssociationID.NotFound",
    "sg": "InvalidGroup.NotFound",
    "eipalloc": "InvalidAllocationID.NotFound",
    "eipassoc": "InvalidAssociationID.NotFound",
    "i": "InvalidInstanceID.NotFound",
    "eni": "InvalidNetworkInterfaceID.NotFound",
}
ID_PATTERN = re.compile(r"^(" + "|".join(sorted(NOT_FOUND_CODES, key=len, reverse=True)) + r")-[0-9a-f]{8,17}$")

# The create calls, and the response elements that hold the IDs of what they made.
CREATED_IDS = {
    "CreateVpc": ("vpcId",),
    "CreateSubnet": ("subnetId",),
    "CreateInternetGateway": ("internetGatewayId",),
    "CreateRouteTable": ("routeTableId",),
    "AssociateRouteTable": ("associationId",),
    "CreateSecurityGroup": ("groupId",),
    "AllocateAddress": ("allocationId",),
    "AssociateAddress": ("associationId",),
    "RunInstances": ("instanceId", "networkInterfaceId"),
}

# In a Describe response: the sets whose items are resources, and each item's own ID.
LISTED_IDS = {
    "vpcSet": "vpcId",
    "subnetSet": "subnetId",
    "internetGatewaySet": "internetGatewayId",
    "routeTableSet": "routeTableId",
    "associationSet": "routeTableAssociationId",
    "securityGroupInfo": "groupId",
    "addressesSet": "allocationId",
    "instancesSet": "instanceId",
    "networkInterfaceSet": "networkInterfaceId",
}


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


class Settings:
    def __init__(self, inconsistency_seconds: float = 0.0, throttle_rate: float = 0.0, seed: int = 0):
        self.inconsistency_seconds = float(inconsistency_seconds)
        self.throttle_rate = float(throttle_rate)
        self.seed = int(seed)

    def as_dict(self) -> dict:
        return {"inconsistency_seconds": self.inconsistency_seconds, "throttle_rate": self.throttle_rate,
                "seed": self.seed}


class StrictAPI:
    """WSGI middleware around moto's server application."""

    def __init__(self, app, settings: Settings | None = None, clock=time.monotonic):
        self.app = app
        self.clock = clock
        self.lock = threading.Lock()
        self.configure(settings or Settings())

    def configure(self, settings: Settings) -> None:
        with self.lock:
            self.settings = settings
            self.random = random.Random(settings.seed)
            self.young: dict[str, float] = {}  # ID (or certificate ARN) -> until when it stays unknown
            self.held: dict[str, float] = {}  # certificate ARN -> until when ACM still sees it in use
            # ClientToken -> (parameters, first answer): kept as long as the account (AWS: 24 h at least)
            self.launches: dict[str, tuple[str, bytes]] = getattr(self, "launches", {})
            self.counts = {"requests": 0, "throttled": 0, "not_found": 0, "hidden": 0, "created": 0, "refused": 0,
                           "token_reused": 0}

    # -- WSGI ---------------------------------------------------------------------------
    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path == CONTROL_PATH:
            return self._control(environ, start_response)
        if path == "/moto-api/reset":
            with self.lock:
                self.launches.clear()  # a new account
        if path.startswith(("/moto-api", "/livestream-lab/")) or (
                f"Credential={LAB_ACCESS_KEY_ID}/" in environ.get("HTTP_AUTHORIZATION", "")):
            return self.app(environ, start_response)
        body = self._body(environ)
        service, action, params = self._request(environ, path, body)
        with self.lock:
            self.counts["requests"] += 1
            throttled = self.settings.throttle_rate and self.random.random() < self.settings.throttle_rate
            if throttled:
                self.counts["throttled"] += 1
        if throttled:
            return self._throttle(service, action, start_response)
        if service == "ec2":
            if action == "RunInstances" and params.get("ClientToken"):
                answer = self._launched_before(environ, params)
                if answer is not None:
                    return _respond(start_response, answer)
            refusal = self._refusal(environ, action, params)
            if refusal:
                with self.lock:
                    self.counts["refused"] += 1
                return _ec2_error(start_response, "400 Bad Request", *refusal)
            unknown = self._names_young_id(params)
            if unknown:
                with self.lock:
                    self.counts["not_found"] += 1
                prefix = unknown.split("-", 1)[0]
                return _ec2_error(start_response, "400 Bad Request", NOT_FOUND_CODES[prefix],
                                  f"The ID '{unknown}' does not exist")
        if service == "acm" and action == "DeleteCertificate" and self._held(params.get("CertificateArn", [""])[0]):
            return _respond(start_response, _json_error("ResourceInUseException", (
                f"Certificate {params['CertificateArn'][0]} in account {_account(environ)} is in use.")))
        releasing = self._certificate_of(environ, action) if service == "cloudfront" else None
        status, headers, content = self._forward(environ, body)
        if service == "acm" and status.startswith("200"):
            content = self._acm_consistency(action, params, content)
            headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
            headers.append(("Content-Length", str(len(content))))
        if releasing and status.startswith("204") and self.settings.inconsistency_seconds:
            with self.lock:
                self.held[releasing] = self.clock() + self.settings.inconsistency_seconds
        if service == "ec2" and status.startswith("200"):
            if action == "RunInstances" and params.get("ClientToken"):
                with self.lock:
                    self.launches[params["ClientToken"][0]] = (self._launch_parameters(params), content)
            if action in CREATED_IDS:
                self._remember(action, content)
            elif action.startswith("Describe"):
                content = self._hide_young(content)
                headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
                headers.append(("Content-Length", str(len(content))))
        start_response(status, headers)
        return [content]

    def _control(self, environ, start_response):
        if environ.get("REQUEST_METHOD") == "POST":
            self.configure(Settings(**json.loads(self._body(environ) or b"{}")))
        with self.lock:
            answer = json.dumps({"settings": self.settings.as_dict(), "counts": dict(self.counts)}).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(answer)))])
        return [answer]

    @staticmethod
    def _body(environ) -> bytes:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        return body

    @staticmethod
    def _request(environ, path: str, body: bytes) -> tuple[str, str, dict[str, list[str]]]:
        """(service, action, parameters) of a request: EC2's query protocol, Route 53's and
        CloudFront's REST ones, or ACM's JSON one (its top-level strings as parameters)."""
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if target.startswith("CertificateManager."):
            try:
                document = json.loads(body or b"{}")
            except ValueError:
                document = {}
            return "acm", target.split(".", 1)[1], {k: [v] for k, v in document.items() if isinstance(v, str)}
        if path.startswith("/2020-05-31/"):
            return "cloudfront", f"{environ.get('REQUEST_METHOD', 'GET')} {path}", {}
        if path.startswith("/2013-04-01/"):
            method = environ.get("REQUEST_METHOD", "GET")
            action = "ChangeResourceRecordSets" if path.endswith("/rrset") and method == "POST" else f"{method} {path}"
            return "route53", action, {}
        params = urllib.parse.parse_qs(body.decode(errors="replace")) if body else {}
        params.update(urllib.parse.parse_qs(environ.get("QUERY_STRING", "")))
        action = (params.get("Action") or [""])[0]
        service = "ec2" if "Version" in params and action else "other"
        return service, action, params

    def _forward(self, environ, body: bytes):
        captured = {}

        def capture(status, headers, exc_info=None):
            captured["status"], captured["headers"] = status, list(headers)

        environ["wsgi.input"] = io.BytesIO(body)
        result = self.app(environ, capture)
        try:
            content = b"".join(result)
        finally:
            if hasattr(result, "close"):
                result.close()
        return captured["status"], captured["headers"], content

    # -- what AWS refuses -------------------------------------------------------------------
    def _refusal(self, environ, action: str, params: dict[str, list[str]]) -> tuple[str, str] | None:
        """(code, message) of EC2's refusal of a call moto would accept, or None."""
        first = {key: values[0] for key, values in params.items() if values}
        if action == "CreateSecurityGroup" and first.get("GroupName", "").startswith("sg-"):
            return "InvalidParameterValue", "Group names may not be in the format sg-*"
        if action == "ImportKeyPair":
            material = base64.b64decode(first.get("PublicKeyMaterial", "") + "==").decode(errors="replace")
            if material.startswith("ecdsa-"):
                return "InvalidKey.Format", "Key is not in valid OpenSSH public key format"
        ec2 = _ec2_backend(environ)
        dependency = _dependency(ec2, action, first)
        if dependency:
            return "DependencyViolation", dependency
        if action == "RunInstances":
            subnet_id = first.get("SubnetId") or first.get("NetworkInterface.1.SubnetId")
            instance_type = first.get("InstanceType", "m1.small")
            subnet = next(iter(ec2.describe_subnets(filters={"subnet-id": [subnet_id]})), None) if subnet_id else None
            if subnet and not ec2.describe_instance_type_offerings("availability-zone", {
                    "location": [subnet.availability_zone], "instance-type": [instance_type]}):
                return ("Unsupported", f"Your requested instance type ({instance_type}) is not supported in your "
                        f"requested Availability Zone ({subnet.availability_zone}).")
        return None

    @staticmethod
    def _launch_parameters(params: dict[str, list[str]]) -> str:
        return json.dumps({key: values for key, values in sorted(params.items()) if key != "ClientToken"})

    def _launched_before(self, environ, params: dict[str, list[str]]):
        """(status, headers, body) of a repeated launch token, or None for a new one."""
        token = params["ClientToken"][0]
        with self.lock:
            known = self.launches.get(token)
            if known is not None:
                self.counts["token_reused"] += 1
        if known is None:
            return None
        first_parameters, first_answer = known
        if first_parameters != self._launch_parameters(params):
            return _xml_answer("400 Bad Request", _ec2_error_body(
                "IdempotentParameterMismatch",
                "Arguments on this idempotent request are inconsistent with arguments used in previous request(s)."))
        root = ElementTree.fromstring(first_answer)
        instances = {instance.id: instance for instance in _ec2_backend(environ).all_instances()}
        code = {"pending": "0", "running": "16", "shutting-down": "32", "terminated": "48", "stopping": "64",
                "stopped": "80"}
        for item in [e for e in root.iter() if _local(e.tag) == "item"]:
            instance_id = next((c.text for c in item if _local(c.tag) == "instanceId"), None)
            state = next((c for c in item if _local(c.tag) == "instanceState"), None)
            if instance_id in instances and state is not None:
                now = instances[instance_id].state
                for child in state:
                    if _local(child.tag) == "name":
                        child.text = now
                    elif _local(child.tag) == "code":
                        child.text = code.get(now, child.text)
        return _xml_answer("200 OK", _serialize(root))

    # -- consistency ----------------------------------------------------------------------
    def _acm_consistency(self, action: str, params: dict[str, list[str]], content: bytes) -> bytes:
        """A new certificate's ARN is remembered; DescribeCertificate of a young one answers
        without its validation records, as ACM does for a few seconds after the request."""
        if not self.settings.inconsistency_seconds:
            return content
        document = json.loads(content or b"{}")
        if action == "RequestCertificate" and document.get("CertificateArn"):
            with self.lock:  # a token's repeat keeps the first window
                self.young.setdefault(document["CertificateArn"], self.clock() + self.settings.inconsistency_seconds)
                self.counts["created"] += 1
            return content
        if action != "DescribeCertificate" or not self._is_young(params.get("CertificateArn", [""])[0]):
            return content
        hidden = 0
        for option in document.get("Certificate", {}).get("DomainValidationOptions", []):
            hidden += option.pop("ResourceRecord", None) is not None
        with self.lock:
            self.counts["hidden"] += hidden
        return json.dumps(document).encode()

    def _is_young(self, key: str) -> bool:
        with self.lock:
            return self.young.get(key, 0) > self.clock()

    def _held(self, arn: str) -> bool:
        with self.lock:
            held = self.held.get(arn, 0) > self.clock()
            if held:
                self.counts["refused"] += 1
            return held

    @staticmethod
    def _certificate_of(environ, action: str) -> str | None:
        """The ACM certificate of the distribution a DeleteDistribution names, read before it goes."""
        match = re.fullmatch(r"DELETE /2020-05-31/distribution/([^/]+)", action)
        if not match:
            return None
        # pylint: disable-next=import-outside-toplevel
        from moto.cloudfront.models import cloudfront_backends

        distribution = cloudfront_backends[_account(environ)]["aws"].distributions.get(match.group(1))
        return distribution.distribution_config.ViewerCertificate.acm_certificate_arn if distribution else None

    def _names_young_id(self, params: dict[str, list[str]]) -> str | None:
        """A young ID the request names (filters aside: a filter that matches nothing new
        just lists less, as on AWS)."""
        now = self.clock()
        with self.lock:
            for key, values in params.items():
                if key.startswith("Filter.") or key.startswith("TagSpecification."):
                    continue
                for value in values:
                    if value in self.young and self.young[value] > now:
                        return value
        return None

    def _remember(self, action: str, content: bytes) -> None:
        if not self.settings.inconsistency_seconds:
            return
        wanted = CREATED_IDS[action]
        until = self.clock() + self.settings.inconsistency_seconds
        ids = [element.text for element in ElementTree.fromstring(content).iter()
               if _local(element.tag) in wanted and element.text and ID_PATTERN.match(element.text)]
        with self.lock:
            for new in ids:
                self.young[new] = until
            self.counts["created"] += len(ids)

    def _hide_young(self, content: bytes) -> bytes:
        now = self.clock()
        with self.lock:
            young = {key for key, until in self.young.items() if until > now}
        if not young:
            return content
        root = ElementTree.fromstring(content)
        hidden = 0
        for container in list(root.iter()):
            id_name = LISTED_IDS.get(_local(container.tag))
            if not id_name:
                continue
            for item in list(container):
                own = next((child.text for child in item if _local(child.tag) == id_name), None)
                if own in young:
                    container.remove(item)
                    hidden += 1
        # a reservation whose instances are all hidden is not listed either
        for reservations in [e for e in root.iter() if _local(e.tag) == "reservationSet"]:
            for reservation in list(reservations):
                instances = next((c for c in reservation if _local(c.tag) == "instancesSet"), None)
                if instances is not None and len(instances) == 0:
                    reservations.remove(reservation)
        if not hidden:
            return content
        with self.lock:
            self.counts["hidden"] += hidden
        return _serialize(root)

    # -- throttling -----------------------------------------------------------------------
    def _throttle(self, service: str, action: str, start_response):
        if service == "route53":
            code = "PriorRequestNotComplete" if action == "ChangeResourceRecordSets" else "Throttling"
            body = (f'<?xml version="1.0"?><ErrorResponse xmlns="https://route53.amazonaws.com/doc/2013-04-01/">'
                    f"<Error><Type>Sender</Type><Code>{code}</Code><Message>Rate exceeded</Message></Error>"
                    f"<RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>").encode()
            return _respond(start_response, _xml_answer("400 Bad Request", body))
        if service == "acm":
            return _respond(start_response, _json_error("ThrottlingException", "Rate exceeded"))
        if service == "cloudfront":
            body = (f'<?xml version="1.0"?><ErrorResponse xmlns="http://cloudfront.amazonaws.com/doc/2020-05-31/">'
                    f"<Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error>"
                    f"<RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>").encode()
            return _respond(start_response, _xml_answer("400 Bad Request", body))
        return _ec2_error(start_response, "503 Service Unavailable", "RequestLimitExceeded", "Request limit exceeded.")


def _ec2_error_body(code: str, message: str) -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>{code}</Code>'
            f"<Message>{message}</Message></Error></Errors><RequestID>{uuid.uuid4()}</RequestID></Response>").encode()


def _json_error(code: str, message: str):
    """(status, headers, body) of an error of a JSON protocol (ACM's)."""
    body = json.dumps({"__type": code, "message": message}).encode()
    return "400 Bad Request", [("Content-Type", "application/x-amz-json-1.1"), ("Content-Length", str(len(body))),
                               ("x-amzn-RequestId", str(uuid.uuid4()))], body


def _serialize(root) -> bytes:
    """An answer parsed and changed, as XML again, in its own default namespace."""
    namespace = root.tag[1:].split("}", 1)[0] if root.tag.startswith("{") else ""
    if namespace:
        ElementTree.register_namespace("", namespace)
    return ElementTree.tostring(root, encoding="utf-8", xml_declaration=True)


def _xml_answer(status: str, body: bytes):
    """(status, headers, body) of an XML answer the layer gives itself."""
    return status, [("Content-Type", "text/xml"), ("Content-Length", str(len(body)))], body


def _respond(start_response, answer):
    status, headers, body = answer
    start_response(status, headers)
    return [body]


def _ec2_error(start_response, status: str, code: str, message: str):
    return _respond(start_response, _xml_answer(status, _ec2_error_body(code, message)))


def _scope(environ) -> tuple[str, str]:
    """(account, region) of the caller, from its signature."""
    from moto.iam.models import get_account_id_from  # pylint: disable=import-outside-toplevel

    scope = re.search(r"Credential=([^/,]+)/[^/]+/([^/]+)/", environ.get("HTTP_AUTHORIZATION", ""))
    access_key, region = scope.groups() if scope else ("", "us-east-1")
    return get_account_id_from(access_key), region


def _account(environ) -> str:
    return _scope(environ)[0]


def _ec2_backend(environ):
    """moto's EC2 backend of the caller's account and region: the layer reads it directly, so
    that its own look-ups are neither refused (IAM), recorded nor counted as calls."""
    # pylint: disable-next=import-outside-toplevel
    from moto.ec2.models import ec2_backends

    account, region = _scope(environ)
    return ec2_backends[account][region]


def _dependency(ec2, action: str, first: dict[str, str]) -> str | None:
    """EC2's DependencyViolation message for deleting what something still uses, or None:
    a group an interface is in or another group's rule names, a subnet with interfaces, a
    VPC with subnets, an attached internet gateway or security groups of its own. moto
    deletes the group and the subnet, and the VPC with its gateway attached."""
    if action == "DeleteSecurityGroup" and first.get("GroupId"):
        group = first["GroupId"]
        referencing = {g.id for g in ec2.describe_security_groups(filters={"ip-permission.group-id": [group]})}
        if ec2.get_all_network_interfaces(filters={"group-id": [group]}) or referencing - {group}:
            return f"resource {group} has a dependent object"
    if action == "DeleteSubnet" and first.get("SubnetId"):
        if ec2.get_all_network_interfaces(filters={"subnet-id": [first["SubnetId"]]}):
            return f"The subnet '{first['SubnetId']}' has dependencies and cannot be deleted."
    if action == "DeleteVpc" and first.get("VpcId"):
        vpc = first["VpcId"]
        if (ec2.describe_subnets(filters={"vpc-id": [vpc]})
                or ec2.describe_internet_gateways(filters={"attachment.vpc-id": [vpc]})
                or [g for g in ec2.describe_security_groups(filters={"vpc-id": [vpc]}) if g.name != "default"]):
            return f"The vpc '{vpc}' has dependencies and cannot be deleted."
    return None
