"""The lab's AWS API for a CDN in front of the frontend: ACM, CloudFront, and the CloudFront
managed prefix list, patched into moto's server process as AWS behaves where moto is kinder.

- **ACM DNS validation.** moto issues every certificate ``MOTO_ACM_VALIDATION_WAIT`` seconds
  after the request, records or not. Here an ``AMAZON_ISSUED`` certificate requested with
  ``ValidationMethod=DNS`` becomes ``ISSUED`` only once, for every name on it, the validation
  CNAME that DescribeCertificate reports is in a public hosted zone of moto's Route 53 that
  the domain's registrar delegates to (the lab plays the registrar: ``Registrar``, set over
  HTTP). Without a method ACM validates by email, which nobody answers in the lab. A pending
  certificate has no serial, validity or issue date and GetCertificate refuses it
  (``RequestInProgressException``); ``InUseBy`` lists the distributions that use it and
  DeleteCertificate refuses it while one does (``ResourceInUseException``).
- **CloudFront refusals.** Aliases without a certificate, a certificate that is not issued,
  not in us-east-1 or does not cover every alias (``InvalidViewerCertificate``); an alias
  another distribution has (``CNAMEAlreadyExists``); a behaviour without a cache policy or
  ``ForwardedValues``, or with TTLs out of order; an origin that is an IP address, Origin
  Shield without a region; an IfMatch that is not the current ETag (``PreconditionFailed``:
  moto never changes an ETag and accepts any); a new CallerReference on update
  (``IllegalUpdate``); deleting a distribution that is enabled or not deployed
  (``DistributionNotDisabled``).
- **Deployment.** Every create and update makes a new ETag and leaves the distribution
  ``InProgress`` until the lab's edge has applied that version and says so
  (``POST /livestream-lab/cloudfront/deployed``); moto's state manager never moves it.
- **Route 53 aliases to CloudFront** (zone ``Z2FDTNDATAQYW2``) must name a distribution
  that has the record's name among its aliases (``InvalidChangeBatch``), as Route 53 checks.
- **The origin-facing prefix list** ``com.amazonaws.global.cloudfront.origin-facing`` lists
  the lab's edge (``config.edge_block``: the top /28 of the lab's public block, never handed
  out as a public or Elastic IP), not moto's real CloudFront ranges, with AWS's weight: a rule that references
  a prefix list counts as its MaxEntries (55) toward the 60 rules of a security group
  (``RulesPerSecurityGroupLimitExceeded``).

Control (JSON over HTTP, beside ``/livestream-lab/strict``): ``/livestream-lab/delegations``
(GET; POST ``{zone: [name servers]}``), ``/livestream-lab/cloudfront`` (GET: every
distribution with its config as the API answers it, ETag and status) and
``/livestream-lab/cloudfront/deployed`` (POST ``{"id", "etag"}``).
"""

from __future__ import annotations

import ipaddress
import json
import threading
from typing import Any

from . import config

DELEGATIONS_PATH = "/livestream-lab/delegations"
CLOUDFRONT_PATH = "/livestream-lab/cloudfront"
DEPLOYED_PATH = "/livestream-lab/cloudfront/deployed"

ORIGIN_FACING = "com.amazonaws.global.cloudfront.origin-facing"
# what the origin-facing list counts as toward a security group's rules (its MaxEntries)
ORIGIN_FACING_MAX_ENTRIES = 55
# Route 53's hosted zone for aliases to CloudFront distributions (the same in every account)
CLOUDFRONT_ZONE = "Z2FDTNDATAQYW2"
CERTIFICATE_REGION = "us-east-1"
# CloudFront's defaults for a legacy cache behaviour's TTLs
DEFAULT_TTL, MAX_TTL = 86400, 31536000
# where ACM sends validation mail for each name
VALIDATION_MAILBOXES = ("admin", "administrator", "hostmaster", "postmaster", "webmaster")

NO_CERTIFICATE = ("To add an alternate domain name (CNAME) to a CloudFront distribution, you must attach a trusted "
                  "certificate that validates your authorization to use the domain name. For more details, see: "
                  "https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/CNAMEs.html"
                  "#alternate-domain-names-requirements")
UNUSABLE_CERTIFICATE = ("The specified SSL certificate doesn't exist, isn't in us-east-1 region, isn't valid, or "
                        "doesn't include a valid certificate chain.")
NOT_COVERED = ("The certificate that is attached to your distribution doesn't cover the alternate domain name "
               "(CNAME) that you're trying to add. For more details, see: "
               "https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/CNAMEs.html"
               "#alternate-domain-names-requirements")


class Registrar:
    """Which hosted zones the domain's registrar delegates to which name servers (the lab
    plays the registrar, ``lab.delegate``): what the internet resolves, so what ACM sees."""

    lock = threading.Lock()
    delegations: dict[str, list[str]] = {}

    @classmethod
    def set(cls, delegations: dict[str, list[str]]) -> dict[str, list[str]]:
        with cls.lock:
            cls.delegations = {_name(zone): sorted(_name(s) for s in servers) for zone, servers in delegations.items()}
            return dict(cls.delegations)

    @classmethod
    def get(cls) -> dict[str, list[str]]:
        with cls.lock:
            return dict(cls.delegations)


def _name(dns_name: str) -> str:
    return dns_name.rstrip(".").lower()


def _covers(certificate_name: str, alias: str) -> bool:
    """A certificate name covers an alias: the same name, or a wildcard one label up."""
    certificate_name, alias = _name(certificate_name), _name(alias)
    if certificate_name == alias:
        return True
    return certificate_name.startswith("*.") and "." in alias and alias.split(".", 1)[1] == certificate_name[2:]


def _account(arn: str) -> str:
    return arn.split(":")[4]


# -- moto's models, read in the server process ---------------------------------------------
# pylint: disable=import-outside-toplevel  # moto is imported only in the API's own process

def _distributions(account: str | None = None):
    """(backend, distribution) of one account, or of every account: an alias or a domain
    name is CloudFront's across accounts."""
    from moto.cloudfront.models import cloudfront_backends

    accounts = [account] if account else list(cloudfront_backends.keys())
    for each in accounts:
        backend = cloudfront_backends[each]["aws"]
        for distribution in list(backend.distributions.values()):
            yield backend, distribution


def _aliases(distribution) -> list[str]:
    return [_name(alias) for alias in (distribution.distribution_config.Aliases or {}).get("Items") or []]


def _certificate_users(arn: str) -> list[str]:
    return [distribution.arn for _backend, distribution in _distributions(_account(arn))
            if distribution.distribution_config.ViewerCertificate.acm_certificate_arn == arn]


def _certificate(arn: str):
    from moto.acm.models import acm_backends

    try:
        region, account = arn.split(":")[3:5]
        bundle = acm_backends[account][region]._certificates.get(arn)  # pylint: disable=protected-access
    except (IndexError, KeyError):
        return None
    if bundle is not None:
        bundle.check()
    return bundle


def _delegated_zones(account: str) -> list:
    """The account's public hosted zones that their parent delegates to (as the internet
    resolves them)."""
    from moto.route53.models import route53_backends

    delegations = Registrar.get()
    zones = []
    for zone in list(route53_backends[account]["aws"].zones.values()):
        servers = sorted(_name(server) for server in zone.delegation_set.name_servers) if zone.delegation_set else []
        if not zone.private_zone and delegations.get(_name(zone.name)) == servers and servers:
            zones.append(zone)
    return zones


def _resolves(zones: list, name: str, value: str) -> bool:
    """A CNAME ``name`` -> ``value`` as the internet sees it: in the most specific delegated
    zone that holds the name."""
    name = _name(name)
    holding = [zone for zone in zones if name == _name(zone.name) or name.endswith("." + _name(zone.name))]
    if not holding:
        return False
    zone = max(holding, key=lambda z: len(_name(z.name)))
    return any(record.type == "CNAME" and _name(record.name) == name
               and any(_name(str(v)) == _name(value) for v in record.records or [])
               for record in zone.rrsets)


# -- ACM -----------------------------------------------------------------------------------

def validate_certificates_by_dns() -> None:
    """ACM's DNS validation, as module docstring says; replaces moto's validation by time."""
    from moto.acm.exceptions import AWSError
    from moto.acm.models import AWSCertificateManagerBackend, CertBundle
    from moto.acm.responses import AWSCertificateManagerResponse
    from moto.core.utils import utcnow

    describe = CertBundle.describe

    def check(self) -> None:
        if self._not_valid_after(self._cert) <= utcnow():  # pylint: disable=protected-access
            self.status = "EXPIRED"
            return
        if self.type != "AMAZON_ISSUED" or self.status != "PENDING_VALIDATION":
            return
        if getattr(self, "lab_validation_method", "DNS") != "DNS":
            return  # mail that nobody in the lab answers
        validated = getattr(self, "lab_validated", set())
        zones = _delegated_zones(_account(self.arn))
        options = describe(self)["Certificate"]["DomainValidationOptions"]
        for option in options:
            record = option["ResourceRecord"]
            if option["DomainName"] not in validated and _resolves(zones, record["Name"], record["Value"]):
                validated.add(option["DomainName"])
        self.lab_validated = validated
        if all(option["DomainName"] in validated for option in options):
            self.status = "ISSUED"
            self.lab_issued_at = utcnow()

    def described(self) -> dict[str, Any]:
        result = describe(self)
        certificate = result["Certificate"]
        certificate["InUseBy"] = _certificate_users(self.arn)
        if self.type != "AMAZON_ISSUED":
            return result
        if self.status != "ISSUED":
            for field in ("IssuedAt", "NotBefore", "NotAfter", "Serial", "Issuer"):
                certificate.pop(field, None)
        elif hasattr(self, "lab_issued_at"):
            certificate["IssuedAt"] = certificate["NotBefore"] = self.lab_issued_at.timestamp()
        validated = getattr(self, "lab_validated", set())
        for option in certificate.get("DomainValidationOptions", []):
            if self.status == "ISSUED" or option["DomainName"] in validated:
                option["ValidationStatus"] = "SUCCESS"
            elif self.status != "PENDING_VALIDATION":
                option["ValidationStatus"] = "FAILED"
            if getattr(self, "lab_validation_method", "DNS") == "EMAIL":
                domain = option["DomainName"].removeprefix("*.")
                option.pop("ResourceRecord", None)
                option["ValidationMethod"] = "EMAIL"
                option["ValidationEmails"] = [f"{box}@{domain}" for box in VALIDATION_MAILBOXES]
        return result

    request = AWSCertificateManagerResponse.request_certificate

    def request_certificate(self):
        result = request(self)
        bundle = self.acm_backend.get_certificate(result.result["CertificateArn"])
        if not hasattr(bundle, "lab_validation_method"):  # an IdempotencyToken's repeat keeps the first
            bundle.lab_validation_method = self._get_param("ValidationMethod") or "EMAIL"  # pylint: disable=W0212
        return result

    get = AWSCertificateManagerResponse.get_certificate

    def get_certificate(self):
        arn = self._get_param("CertificateArn")  # pylint: disable=protected-access
        if arn and self.acm_backend.get_certificate(arn).status != "ISSUED":
            raise AWSError(f"Certificate {arn} in account {self.current_account} is not yet issued.",
                           exception_type="RequestInProgressException")
        return get(self)

    delete = AWSCertificateManagerBackend.delete_certificate

    def delete_certificate(self, arn: str) -> None:
        if arn in self._certificates and _certificate_users(arn):  # pylint: disable=protected-access
            raise AWSError(f"Certificate {arn} in account {self.account_id} is in use.",
                           exception_type="ResourceInUseException")
        delete(self, arn)

    CertBundle.check = check
    CertBundle.describe = described
    AWSCertificateManagerResponse.request_certificate = request_certificate
    AWSCertificateManagerResponse.get_certificate = get_certificate
    AWSCertificateManagerBackend.delete_certificate = delete_certificate


# -- CloudFront ----------------------------------------------------------------------------

def _refusal(distribution_config: dict[str, Any], own_id: str | None) -> tuple[str, str] | None:
    """(code, message) of CloudFront's refusal of a distribution config, or None."""
    aliases = [_name(alias) for alias in (distribution_config.get("Aliases") or {}).get("Items") or []]
    viewer = distribution_config.get("ViewerCertificate") or {}
    arn = viewer.get("ACMCertificateArn")
    if aliases and not arn and not viewer.get("IAMCertificateId"):
        return "InvalidViewerCertificate", NO_CERTIFICATE
    if arn:
        bundle = _certificate(arn)
        if bundle is None or arn.split(":")[3] != CERTIFICATE_REGION or bundle.status != "ISSUED":
            return "InvalidViewerCertificate", UNUSABLE_CERTIFICATE
        names = [*bundle.sans, bundle.common_name]
        if any(not any(_covers(name, alias) for name in names) for alias in aliases):
            return "InvalidViewerCertificate", NOT_COVERED
    for _backend, other in _distributions():
        if other.distribution_id != own_id and set(aliases) & set(_aliases(other)):
            return ("CNAMEAlreadyExists",
                    "One or more of the CNAMEs you provided are already associated with a different resource.")
    origins = (distribution_config.get("Origins") or {}).get("Items") or []
    for origin in origins:
        try:
            ipaddress.ip_address(origin.get("DomainName", ""))
            return "InvalidArgument", "The parameter origin name cannot be an IP address."
        except ValueError:
            pass
        shield = origin.get("OriginShield") or {}
        if shield.get("Enabled") and not shield.get("OriginShieldRegion"):
            return "InvalidArgument", "The parameter OriginShieldRegion is required when OriginShield is enabled."
    behaviours = [distribution_config.get("DefaultCacheBehavior") or {},
                  *((distribution_config.get("CacheBehaviors") or {}).get("Items") or [])]
    for behaviour in behaviours:
        if behaviour.get("TargetOriginId") not in {origin.get("Id") for origin in origins}:
            return "NoSuchOrigin", "One or more of your origins or origin groups do not exist."
        legacy = "ForwardedValues" in behaviour
        if not legacy and not behaviour.get("CachePolicyId"):
            return "InvalidArgument", "The parameter ForwardedValues is required."
        if legacy and behaviour.get("CachePolicyId"):
            return ("InvalidArgument", "The parameter ForwardedValues cannot be used when a cache policy is "
                    "associated to the cache behavior.")
        if legacy:
            ttls = (int(behaviour.get("MinTTL") or 0), int(behaviour.get("DefaultTTL", DEFAULT_TTL)),
                    int(behaviour.get("MaxTTL", MAX_TTL)))
            if not ttls[0] <= ttls[1] <= ttls[2]:
                return "InvalidTTLOrder", "The TTL order specified is not valid."
    return None


def deploy_through_the_lab() -> None:
    """CloudFront's versions and refusals, as the module docstring says: a new ETag and
    ``InProgress`` on every create and update, ``Deployed`` only when the lab's edge says so."""
    from moto.cloudfront.exceptions import CloudFrontException, InvalidIfMatchVersion, NoSuchDistribution
    from moto.cloudfront.models import CloudFrontBackend, Distribution, random_id
    from moto.core.utils import utcnow

    def refuse(distribution_config, own_id=None):
        refusal = _refusal(distribution_config, own_id)
        if refusal:
            raise CloudFrontException(*refusal)

    def new_version(distribution) -> None:
        distribution.etag = random_id()
        distribution.lab_status = "InProgress"
        distribution.last_modified_time = utcnow()

    def current(backend, distribution_id, if_match):
        distribution = backend.distributions.get(distribution_id)
        if distribution is None:
            raise NoSuchDistribution
        if not if_match:
            raise InvalidIfMatchVersion
        if if_match != distribution.etag:
            raise CloudFrontException("PreconditionFailed",
                                      "The request failed because it didn't meet the preconditions in one or more "
                                      "request-header fields.")
        return distribution

    create = CloudFrontBackend.create_distribution_with_tags

    def create_distribution_with_tags(self, distribution_config, tags):
        refuse(distribution_config)
        distribution, location, _etag = create(self, distribution_config, tags)
        new_version(distribution)
        return distribution, location, distribution.etag

    update = CloudFrontBackend.update_distribution

    def update_distribution(self, dist_config, _id, if_match):
        distribution = current(self, _id, if_match)
        if dist_config and dist_config.get("CallerReference") != distribution.distribution_config.caller_reference:
            raise CloudFrontException("IllegalUpdate", "The update contains modifications that are not allowed.")
        refuse(dist_config or {}, _id)
        distribution, location, _etag = update(self, dist_config, _id, if_match)
        new_version(distribution)
        return distribution, location, distribution.etag

    delete = CloudFrontBackend.delete_distribution

    def delete_distribution(self, distribution_id, if_match):
        distribution = current(self, distribution_id, if_match)
        if distribution.distribution_config.Enabled or distribution.status != "Deployed":
            raise CloudFrontException("DistributionNotDisabled",
                                      "The distribution you are trying to delete has not been disabled.")
        delete(self, distribution_id, if_match)

    def status(self) -> str:
        return getattr(self, "lab_status", "InProgress")

    def set_status(self, value: str) -> None:
        self.lab_status = value

    CloudFrontBackend.create_distribution_with_tags = create_distribution_with_tags
    CloudFrontBackend.update_distribution = update_distribution
    CloudFrontBackend.delete_distribution = delete_distribution
    # moto's ManagedState would move it to Deployed by itself (immediately, by default)
    Distribution.status = property(status, set_status)


def deployed(distribution_id: str, etag: str) -> tuple[int, dict[str, Any]]:
    """The lab's edge has applied version ``etag`` of a distribution: it is Deployed, unless
    a newer version came since (409, it stays InProgress)."""
    for _backend, distribution in _distributions():
        if distribution.distribution_id == distribution_id:
            if distribution.etag != etag:
                return 409, {"Id": distribution_id, "ETag": distribution.etag, "Status": distribution.status,
                             "error": f"{etag} is not the distribution's current version"}
            distribution.status = "Deployed"
            return 200, {"Id": distribution_id, "ETag": etag, "Status": "Deployed"}
    return 404, {"Id": distribution_id, "error": "no such distribution"}


def listing() -> list[dict[str, Any]]:
    """Every distribution as GetDistribution answers it (JSON: times as ISO 8601), ETag and
    account included: what the lab's edge realises."""
    import botocore.parsers
    import botocore.session
    from moto.core.serialize import XFormedAttributePicker, get_serializer_class
    from moto.core.utils import get_service_model

    moto_model = get_service_model("cloudfront").operation_model("GetDistribution")
    botocore_model = botocore.session.get_session().get_service_model("cloudfront").operation_model("GetDistribution")
    parser = botocore.parsers.create_parser("rest-xml")
    answer = []
    for backend, distribution in _distributions():
        serializer = get_serializer_class("cloudfront", "rest-xml")(
            operation_model=moto_model, value_picker=XFormedAttributePicker())
        serialized = serializer.serialize({"Distribution": distribution, "ETag": distribution.etag})
        body = serialized["body"]
        parsed = parser.parse({"status_code": 200, "headers": serialized["headers"],
                               "body": body.encode() if isinstance(body, str) else body}, botocore_model.output_shape)
        parsed.pop("ResponseMetadata", None)
        answer.append({"Account": backend.account_id, "ETag": distribution.etag, **parsed["Distribution"]})
    return json.loads(json.dumps(answer, default=lambda value: value.isoformat()))


# -- Route 53 ------------------------------------------------------------------------------

def check_aliases_to_distributions() -> None:
    """Route 53 makes an alias to CloudFront (zone Z2FDTNDATAQYW2, or a cloudfront.net name)
    only to a distribution whose aliases include the record's name; moto takes any target."""
    from moto.route53.exceptions import Route53ClientError
    from moto.route53.models import Route53Backend

    change = Route53Backend.change_resource_record_sets

    def change_resource_record_sets(self, zoneid, change_list):
        for item in change_list:
            record = item.get("ResourceRecordSet") or {}
            alias = record.get("AliasTarget")
            if item.get("Action") not in ("CREATE", "UPSERT") or not alias:
                continue
            target, zone = _name(alias.get("DNSName", "")), alias.get("HostedZoneId", "")
            if zone != CLOUDFRONT_ZONE and not target.endswith(".cloudfront.net"):
                continue
            name = _name(record.get("Name", ""))
            if zone != CLOUDFRONT_ZONE or not any(
                    _name(distribution.domain_name) == target and any(_covers(a, name) for a in _aliases(distribution))
                    for _backend, distribution in _distributions()):
                raise Route53ClientError("InvalidChangeBatch", (
                    f"[Tried to create an alias that targets {target}., type {record.get('Type')} in zone {zone}, "
                    "but the alias target name does not lie within the target zone]"))
        return change(self, zoneid, change_list)

    Route53Backend.change_resource_record_sets = change_resource_record_sets


# -- EC2: the origin-facing prefix list and its weight ------------------------------------

def serve_the_lab_edge(public_block: ipaddress.IPv4Network) -> None:
    """The origin-facing prefix list lists the lab's edge (moto seeds real CloudFront ranges,
    which the lab never routes) with CloudFront's MaxEntries."""
    from moto.ec2.models.managed_prefixes import ManagedPrefixListBackend

    create = ManagedPrefixListBackend.create_default_pls
    entries = [{"Cidr": str(config.edge_block(public_block)), "Description": "the lab's CloudFront edge"}]

    def create_default_pls(self) -> None:
        create(self)
        for prefix_list in self.managed_prefix_lists.values():
            if prefix_list.prefix_list_name == ORIGIN_FACING:
                prefix_list.version = 1
                prefix_list.entries = {1: [dict(entry) for entry in entries]}
                prefix_list.max_entries = ORIGIN_FACING_MAX_ENTRIES

    ManagedPrefixListBackend.create_default_pls = create_default_pls


def weigh_prefix_list_rules() -> None:
    """A rule that references a prefix list counts as the list's MaxEntries toward the 60
    inbound (or outbound) rules of a VPC security group, and a call that would go beyond is
    refused whole (``RulesPerSecurityGroupLimitExceeded``); moto counts it as one rule."""
    from moto.ec2.exceptions import RulesPerSecurityGroupLimitExceededError
    from moto.ec2.responses.security_groups import SecurityGroups

    def weight(ec2, prefix_list_id: str | None) -> int:
        if not prefix_list_id:
            return 1
        prefix_list = ec2.managed_prefix_lists.get(prefix_list_id)
        if prefix_list is None:
            return 1
        latest = list(prefix_list.entries.values())[-1] if prefix_list.entries else []
        return int(prefix_list.max_entries or len(latest) or 1)

    def guarded(authorize, rules_of):
        def call(self):
            added: dict[str, int] = {}
            for kwargs in self._process_rules_from_querystring():  # pylint: disable=protected-access
                group = self.ec2_backend.get_security_group_by_name_or_id(kwargs["group_name_or_id"],
                                                                          kwargs.get("vpc_id"))
                if group is None or not group.vpc_id:
                    continue
                added[group.id] = added.get(group.id, sum(weight(self.ec2_backend, rule.prefix_list_id)
                                                          for rule in rules_of(group)))
                added[group.id] += len(kwargs.get("ip_ranges") or []) + len(kwargs.get("source_groups") or [])
                added[group.id] += sum(weight(self.ec2_backend, item.get("PrefixListId"))
                                       for item in kwargs.get("prefix_list_ids") or [])
                if added[group.id] > 60:
                    raise RulesPerSecurityGroupLimitExceededError
            return authorize(self)
        return call

    SecurityGroups.authorize_security_group_ingress = guarded(SecurityGroups.authorize_security_group_ingress,
                                                              lambda group: group.ingress_rules)
    SecurityGroups.authorize_security_group_egress = guarded(SecurityGroups.authorize_security_group_egress,
                                                             lambda group: group.egress_rules)


def install(public_block: ipaddress.IPv4Network) -> None:
    """Everything above, in moto's server process, before the first request."""
    from moto.ec2.models import ec2_backends

    validate_certificates_by_dns()
    deploy_through_the_lab()
    check_aliases_to_distributions()
    serve_the_lab_edge(public_block)
    weigh_prefix_list_rules()
    # a moto without the list (or that seeds it elsewhere) would leave real AWS ranges in it
    probe = ec2_backends["123456789012"]["us-east-1"]
    if not [pl for pl in probe.managed_prefix_lists.values()
            if pl.prefix_list_name == ORIGIN_FACING and pl.max_entries == ORIGIN_FACING_MAX_ENTRIES]:
        raise SystemExit(f"moto no longer seeds {ORIGIN_FACING}: the lab cannot list its edge in it")


# pylint: enable=import-outside-toplevel

class Control:
    """WSGI: the control endpoints above, in front of moto's application; moto's reset (a new
    account) forgets the registrar's delegations too."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET")
        if path == "/moto-api/reset":
            Registrar.set({})
        if path not in (DELEGATIONS_PATH, CLOUDFRONT_PATH, DEPLOYED_PATH):
            return self.app(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = json.loads(environ["wsgi.input"].read(length) or b"{}") if length else {}
        if path == DELEGATIONS_PATH:
            code, answer = 200, {"delegations": Registrar.set(body) if method == "POST" else Registrar.get()}
        elif path == CLOUDFRONT_PATH:
            code, answer = 200, {"distributions": listing()}
        elif method != "POST" or not body.get("id") or not body.get("etag"):
            code, answer = 400, {"error": 'POST {"id": ..., "etag": ...}'}
        else:
            code, answer = deployed(body["id"], body["etag"])
        content = json.dumps(answer).encode()
        reasons = {200: "OK", 400: "Bad Request", 404: "Not Found", 409: "Conflict"}
        start_response(f"{code} {reasons[code]}", [("Content-Type", "application/json"),
                                                   ("Content-Length", str(len(content)))])
        return [content]
