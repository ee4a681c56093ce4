"""The lab's AWS API for the CDN (livestream_lab.cdn_api), over HTTP with boto3 as the
provisioning module calls it: ACM issues a certificate only once its validation records are
in a delegated hosted zone, CloudFront refuses what AWS refuses and a distribution is
InProgress until the lab's edge has applied it, Route 53 aliases only a distribution that has
the name, and the origin-facing prefix list is the lab's edge, weighing as much as on AWS."""

from __future__ import annotations

import copy
import ipaddress
import json
import threading

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import observer
from livestream_lab import cdn_api, config
from livestream_lab.moto import lab_addresses

DOMAIN = "live.test"
NOTHING_FORWARDED = {"QueryString": False, "Cookies": {"Forward": "none"}}


def _client(aws, service, region="us-east-1"):
    return boto3.client(service, endpoint_url=aws.url, region_name=region, aws_access_key_id="testing",
                        aws_secret_access_key="testing", config=Config(retries={"total_max_attempts": 1}))


def _refused(code, call, *args, **params):
    with pytest.raises(ClientError) as refusal:
        call(*args, **params)
    assert refusal.value.response["Error"]["Code"] == code, refusal.value
    return refusal.value


def _zone(aws, name=DOMAIN):
    made = _client(aws, "route53").create_hosted_zone(Name=name, CallerReference=name)
    return made["HostedZone"]["Id"], sorted(made["DelegationSet"]["NameServers"])


def _records(acm, arn):
    return [option["ResourceRecord"] for option in
            acm.describe_certificate(CertificateArn=arn)["Certificate"]["DomainValidationOptions"]]


def _add(aws, zone_id, record):
    _client(aws, "route53").change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": [
        {"Action": "UPSERT", "ResourceRecordSet": {"Name": record["Name"], "Type": "CNAME", "TTL": 300,
                                                   "ResourceRecords": [{"Value": record["Value"]}]}}]})


def _status(acm, arn):
    return acm.describe_certificate(CertificateArn=arn)["Certificate"]["Status"]


def _issued(aws, domain=DOMAIN, region="us-east-1"):
    """A certificate for ``domain`` as provisioning gets one: requested, validated through the
    domain's delegated zone."""
    acm, route53 = _client(aws, "acm", region), _client(aws, "route53")
    known = [z["Id"] for z in route53.list_hosted_zones()["HostedZones"] if z["Name"].rstrip(".") == domain]
    zone_id, servers = (known[0], None) if known else _zone(aws, domain)
    if servers:
        aws.delegate({domain: servers})
    arn = acm.request_certificate(DomainName=domain, ValidationMethod="DNS", IdempotencyToken="cdn")["CertificateArn"]
    for record in _records(acm, arn):
        _add(aws, zone_id, record)
    assert _status(acm, arn) == "ISSUED"
    return arn


def _config(arn=None, aliases=(DOMAIN,), reference="livestream-live-cdn", **changes):
    """The distribution config the provisioning module makes (legacy cache settings)."""
    legacy = {"ForwardedValues": NOTHING_FORWARDED, "ViewerProtocolPolicy": "redirect-to-https",
              "TargetOriginId": "frontend"}
    made = {
        "CallerReference": reference, "Comment": "livestream live", "Enabled": True,
        "Aliases": {"Quantity": len(aliases), "Items": list(aliases)},
        "Origins": {"Quantity": 1, "Items": [{
            "Id": "frontend", "DomainName": f"origin.{DOMAIN}",
            "CustomHeaders": {"Quantity": 1, "Items": [{"HeaderName": "X-Livestream-Origin", "HeaderValue": "s3cr3t"}]},
            "CustomOriginConfig": {"HTTPPort": 80, "HTTPSPort": 443, "OriginProtocolPolicy": "https-only"},
            "OriginShield": {"Enabled": True, "OriginShieldRegion": "us-east-1"}}]},
        "DefaultCacheBehavior": {**legacy, "MinTTL": 0, "DefaultTTL": 1, "MaxTTL": 1},
        "CacheBehaviors": {"Quantity": 2, "Items": [
            {**legacy, "PathPattern": "*.m3u8", "MinTTL": 0, "DefaultTTL": 1, "MaxTTL": 2},
            {**legacy, "PathPattern": "*.ts", "MinTTL": 0, "DefaultTTL": 86400, "MaxTTL": 31536000}]},
        "CustomErrorResponses": {"Quantity": 1, "Items": [{"ErrorCode": 404, "ErrorCachingMinTTL": 1}]},
    }
    if arn:
        made["ViewerCertificate"] = {"ACMCertificateArn": arn, "SSLSupportMethod": "sni-only",
                                     "MinimumProtocolVersion": "TLSv1.2_2021"}
    made.update(changes)
    return made


def _create(cloudfront, distribution_config):
    made = cloudfront.create_distribution_with_tags(DistributionConfigWithTags={
        "DistributionConfig": distribution_config, "Tags": {"Items": [{"Key": "Stack", "Value": "live"}]}})
    return made["Distribution"], made["ETag"]


def _waiting(waiter, **params):
    """A waiter run in the background, as provisioning runs it; join() says whether it succeeded."""
    outcome = {}

    def wait():
        try:
            waiter.wait(**params, WaiterConfig={"Delay": 1, "MaxAttempts": 8})
            outcome["ok"] = True
        except Exception as error:  # pylint: disable=broad-except
            outcome["error"] = error

    thread = threading.Thread(target=wait, daemon=True)
    thread.start()
    return thread, outcome


# -- ACM -----------------------------------------------------------------------------------

def test_a_certificate_is_issued_once_every_record_is_in_a_delegated_zone(aws):
    acm = _client(aws, "acm")
    zone_id, servers = _zone(aws)
    arn = acm.request_certificate(DomainName=DOMAIN, SubjectAlternativeNames=[DOMAIN, f"www.{DOMAIN}"],
                                  ValidationMethod="DNS", IdempotencyToken="cdn")["CertificateArn"]
    pending = acm.describe_certificate(CertificateArn=arn)["Certificate"]
    assert pending["Status"] == "PENDING_VALIDATION"
    assert "IssuedAt" not in pending and "NotAfter" not in pending  # nothing issued yet
    _refused("RequestInProgressException", acm.get_certificate, CertificateArn=arn)
    records = {option["DomainName"]: option["ResourceRecord"] for option in pending["DomainValidationOptions"]}
    assert sorted(records) == [DOMAIN, f"www.{DOMAIN}"]

    waiter_thread, outcome = _waiting(acm.get_waiter("certificate_validated"), CertificateArn=arn)
    _add(aws, zone_id, records[DOMAIN])
    aws.delegate({DOMAIN: servers})
    # one name of two validated: not yet
    options = acm.describe_certificate(CertificateArn=arn)["Certificate"]["DomainValidationOptions"]
    assert {o["DomainName"]: o["ValidationStatus"] for o in options} == {
        DOMAIN: "SUCCESS", f"www.{DOMAIN}": "PENDING_VALIDATION"}
    assert _status(acm, arn) == "PENDING_VALIDATION"

    # both records, but the registrar delegates to other name servers: the internet sees neither
    _add(aws, zone_id, records[f"www.{DOMAIN}"])
    aws.delegate({DOMAIN: ["ns-1.elsewhere.example"]})
    assert _status(acm, arn) == "PENDING_VALIDATION"
    waiter_thread.join(1.5)
    assert waiter_thread.is_alive(), f"the waiter stopped before validation: {outcome}"

    aws.delegate({DOMAIN: servers})
    waiter_thread.join(10)
    assert outcome == {"ok": True}
    issued = acm.describe_certificate(CertificateArn=arn)["Certificate"]
    assert issued["Status"] == "ISSUED" and "IssuedAt" in issued
    assert {o["ValidationStatus"] for o in issued["DomainValidationOptions"]} == {"SUCCESS"}
    assert "BEGIN CERTIFICATE" in acm.get_certificate(CertificateArn=arn)["Certificate"]


def test_a_certificate_stays_pending_with_the_record_in_a_zone_nobody_delegated_to(aws):
    acm = _client(aws, "acm")
    zone_id, _servers = _zone(aws)
    arn = acm.request_certificate(DomainName=DOMAIN, ValidationMethod="DNS")["CertificateArn"]
    _add(aws, zone_id, _records(acm, arn)[0])
    assert _status(acm, arn) == "PENDING_VALIDATION"
    assert acm.list_certificates(CertificateStatuses=["ISSUED"])["CertificateSummaryList"] == []
    # and a delegated zone without the record validates nothing either
    other_id, other_servers = _zone(aws, "other.test")
    aws.delegate({"other.test": other_servers})
    other = acm.request_certificate(DomainName="other.test", ValidationMethod="DNS")["CertificateArn"]
    assert (_status(acm, arn), _status(acm, other)) == ("PENDING_VALIDATION", "PENDING_VALIDATION")
    _add(aws, other_id, _records(acm, other)[0])
    assert (_status(acm, arn), _status(acm, other)) == ("PENDING_VALIDATION", "ISSUED")


def test_without_a_validation_method_acm_validates_by_email(aws):
    acm = _client(aws, "acm")
    _zone_id, servers = _zone(aws)
    aws.delegate({DOMAIN: servers})
    arn = acm.request_certificate(DomainName=DOMAIN)["CertificateArn"]
    (option,) = acm.describe_certificate(CertificateArn=arn)["Certificate"]["DomainValidationOptions"]
    assert option["ValidationMethod"] == "EMAIL" and "ResourceRecord" not in option
    assert f"admin@{DOMAIN}" in option["ValidationEmails"]
    assert _status(acm, arn) == "PENDING_VALIDATION"


def test_strict_mode_answers_a_new_certificate_without_its_record_for_a_while(aws):
    aws.strict(inconsistency_seconds=30)
    acm = _client(aws, "acm")
    arn = acm.request_certificate(DomainName=DOMAIN, ValidationMethod="DNS", IdempotencyToken="t")["CertificateArn"]
    (option,) = acm.describe_certificate(CertificateArn=arn)["Certificate"]["DomainValidationOptions"]
    assert option["ValidationStatus"] == "PENDING_VALIDATION" and "ResourceRecord" not in option
    # the lab's own seat sees it (AWS's side of things)
    assert _records(observer(aws, "acm", "us-east-1"), arn)[0]["Type"] == "CNAME"
    assert aws.strict_counts()["hidden"] == 1
    aws.strict(inconsistency_seconds=30)  # the window forgotten
    assert _records(acm, arn)[0]["Type"] == "CNAME"


# -- CloudFront ----------------------------------------------------------------------------

def test_cloudfront_refuses_aliases_without_a_certificate_that_covers_them(aws):
    cloudfront, acm = _client(aws, "cloudfront"), _client(aws, "acm")
    _refused("InvalidViewerCertificate", _create, cloudfront, _config())
    pending = acm.request_certificate(DomainName=DOMAIN, ValidationMethod="DNS")["CertificateArn"]
    _refused("InvalidViewerCertificate", _create, cloudfront, _config(pending))
    elsewhere = _issued(aws, region="eu-west-1")
    _refused("InvalidViewerCertificate", _create, cloudfront, _config(elsewhere))
    issued = _issued(aws)
    refusal = _refused("InvalidViewerCertificate", _create, cloudfront, _config(issued, aliases=(f"www.{DOMAIN}",)))
    assert "doesn't cover the alternate domain name" in str(refusal)
    assert cloudfront.list_distributions()["DistributionList"]["Quantity"] == 0

    made, _etag = _create(cloudfront, _config(issued))
    assert made["DistributionConfig"]["Aliases"]["Items"] == [DOMAIN]
    refusal = _refused("CNAMEAlreadyExists", _create, cloudfront, _config(issued, reference="another"))
    assert refusal.response["ResponseMetadata"]["HTTPStatusCode"] == 409


@pytest.mark.parametrize("change, code", [
    ({"DefaultCacheBehavior": {"TargetOriginId": "frontend", "ViewerProtocolPolicy": "allow-all"}},
     "InvalidArgument"),  # neither a cache policy nor legacy settings
    ({"DefaultCacheBehavior": {"TargetOriginId": "frontend", "ViewerProtocolPolicy": "allow-all", "MinTTL": 10,
                               "DefaultTTL": 1, "ForwardedValues": NOTHING_FORWARDED}}, "InvalidTTLOrder"),
    ({"DefaultCacheBehavior": {"TargetOriginId": "elsewhere", "ViewerProtocolPolicy": "allow-all", "MinTTL": 0,
                               "ForwardedValues": NOTHING_FORWARDED}}, "NoSuchOrigin"),
    ({"Origins": {"Quantity": 1, "Items": [{"Id": "frontend", "DomainName": "198.19.255.1", "CustomOriginConfig": {
        "HTTPPort": 80, "HTTPSPort": 443, "OriginProtocolPolicy": "https-only"}}]}}, "InvalidArgument"),
    ({"Origins": {"Quantity": 1, "Items": [{"Id": "frontend", "DomainName": f"origin.{DOMAIN}", "OriginShield": {
        "Enabled": True}, "CustomOriginConfig": {"HTTPPort": 80, "HTTPSPort": 443,
                                                 "OriginProtocolPolicy": "https-only"}}]}}, "InvalidArgument"),
])
def test_cloudfront_refuses_configs_aws_refuses(aws, change, code):
    cloudfront = _client(aws, "cloudfront")
    issued = _issued(aws)
    distribution_config = _config(issued, CacheBehaviors={"Quantity": 0}, **change)
    _refused(code, _create, cloudfront, distribution_config)
    _create(cloudfront, _config(issued))  # the control


def test_a_distribution_is_in_progress_until_the_lab_edge_has_applied_its_version(aws):
    cloudfront = _client(aws, "cloudfront")
    made, etag = _create(cloudfront, _config(_issued(aws)))
    # moto's state manager, left to itself, would call it Deployed at once
    aws.api("POST", "/moto-api/state-manager/set-transition", json.dumps(
        {"model_name": "cloudfront::distribution", "transition": {"progression": "immediate"}}).encode())
    assert made["Status"] == "InProgress"
    assert cloudfront.get_distribution(Id=made["Id"])["Distribution"]["Status"] == "InProgress"
    waiter_thread, outcome = _waiting(cloudfront.get_waiter("distribution_deployed"), Id=made["Id"])

    (listed,) = aws.cloudfront()
    assert (listed["Id"], listed["ETag"], listed["Status"]) == (made["Id"], etag, "InProgress")
    assert listed["DistributionConfig"]["Origins"]["Items"][0]["CustomHeaders"]["Items"][0]["HeaderValue"] == "s3cr3t"
    assert [b["PathPattern"] for b in listed["DistributionConfig"]["CacheBehaviors"]["Items"]] == ["*.m3u8", "*.ts"]

    # the edge applied an older version than the API holds: still in progress
    current = cloudfront.get_distribution_config(Id=made["Id"])
    assert current["ETag"] == etag
    changed = copy.deepcopy(current["DistributionConfig"])
    changed["Comment"] = "changed"
    updated = cloudfront.update_distribution(Id=made["Id"], IfMatch=etag, DistributionConfig=changed)
    assert updated["ETag"] != etag and updated["Distribution"]["Status"] == "InProgress"
    stale = aws.cloudfront_deployed(made["Id"], etag)
    assert (stale["Status"], stale["ETag"]) == ("InProgress", updated["ETag"])
    waiter_thread.join(1.5)
    assert waiter_thread.is_alive(), f"the waiter stopped before the edge applied the distribution: {outcome}"
    _refused("PreconditionFailed", cloudfront.update_distribution, Id=made["Id"], IfMatch=etag,
             DistributionConfig=changed)

    assert aws.cloudfront_deployed(made["Id"], updated["ETag"])["Status"] == "Deployed"
    waiter_thread.join(10)
    assert outcome == {"ok": True}
    assert cloudfront.get_distribution(Id=made["Id"])["Distribution"]["Status"] == "Deployed"
    assert cloudfront.list_distributions()["DistributionList"]["Items"][0]["Status"] == "Deployed"

    changed["CallerReference"] = "another"
    _refused("IllegalUpdate", cloudfront.update_distribution, Id=made["Id"], IfMatch=updated["ETag"],
             DistributionConfig=changed)


def test_teardown_goes_disabled_deployed_deleted_then_the_certificate(aws):
    cloudfront, acm = _client(aws, "cloudfront"), _client(aws, "acm")
    certificate = _issued(aws)
    made, etag = _create(cloudfront, _config(certificate))
    aws.cloudfront_deployed(made["Id"], etag)
    assert acm.describe_certificate(CertificateArn=certificate)["Certificate"]["InUseBy"] == [made["ARN"]]
    _refused("DistributionNotDisabled", cloudfront.delete_distribution, Id=made["Id"], IfMatch=etag)

    current = cloudfront.get_distribution_config(Id=made["Id"])
    disabled = {**current["DistributionConfig"], "Enabled": False}
    etag = cloudfront.update_distribution(Id=made["Id"], IfMatch=current["ETag"], DistributionConfig=disabled)["ETag"]
    _refused("DistributionNotDisabled", cloudfront.delete_distribution, Id=made["Id"], IfMatch=etag)  # in progress
    _refused("ResourceInUseException", acm.delete_certificate, CertificateArn=certificate)
    aws.cloudfront_deployed(made["Id"], etag)
    _refused("PreconditionFailed", cloudfront.delete_distribution, Id=made["Id"], IfMatch=current["ETag"])
    _refused("InvalidIfMatchVersion", cloudfront.delete_distribution, Id=made["Id"], IfMatch="")

    cloudfront.delete_distribution(Id=made["Id"], IfMatch=etag)
    assert aws.cloudfront() == []
    acm.delete_certificate(CertificateArn=certificate)
    _refused("ResourceNotFoundException", acm.describe_certificate, CertificateArn=certificate)


def test_strict_mode_holds_a_certificate_in_use_for_a_while_after_its_distribution(aws):
    cloudfront, acm = _client(aws, "cloudfront"), _client(aws, "acm")
    certificate = _issued(aws)
    made, etag = _create(cloudfront, _config(certificate, Enabled=False))
    aws.cloudfront_deployed(made["Id"], etag)
    aws.strict(inconsistency_seconds=30)
    cloudfront.delete_distribution(Id=made["Id"], IfMatch=etag)
    refusal = _refused("ResourceInUseException", acm.delete_certificate, CertificateArn=certificate)
    assert refusal.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    aws.strict(inconsistency_seconds=30)  # the window forgotten
    acm.delete_certificate(CertificateArn=certificate)


def test_strict_mode_throttles_acm_and_cloudfront_as_they_do(aws):
    aws.strict(throttle_rate=1.0)
    throttled = _refused("ThrottlingException", _client(aws, "acm").list_certificates)
    assert throttled.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    throttled = _refused("Throttling", _client(aws, "cloudfront").list_distributions)
    assert throttled.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert aws.strict_counts()["throttled"] == 2


# -- Route 53 ------------------------------------------------------------------------------

def test_route53_aliases_only_a_distribution_that_has_the_name(aws):
    cloudfront, route53 = _client(aws, "cloudfront"), _client(aws, "route53")
    made, _etag = _create(cloudfront, _config(_issued(aws)))
    (zone,) = route53.list_hosted_zones()["HostedZones"]

    def alias(name, zone_id=cdn_api.CLOUDFRONT_ZONE, target=made["DomainName"]):
        return route53.change_resource_record_sets(HostedZoneId=zone["Id"], ChangeBatch={"Changes": [
            {"Action": "UPSERT", "ResourceRecordSet": {"Name": name, "Type": "A", "AliasTarget": {
                "HostedZoneId": zone_id, "DNSName": target, "EvaluateTargetHealth": False}}}]})

    _refused("InvalidChangeBatch", alias, f"www.{DOMAIN}")  # not among the distribution's aliases
    _refused("InvalidChangeBatch", alias, DOMAIN, zone_id=zone["Id"].split("/")[-1])  # not CloudFront's zone
    _refused("InvalidChangeBatch", alias, DOMAIN, target="d111111abcdef8.cloudfront.net")  # no such distribution
    alias(DOMAIN)
    records = route53.list_resource_record_sets(HostedZoneId=zone["Id"])["ResourceRecordSets"]
    assert [r["AliasTarget"]["DNSName"].rstrip(".") for r in records if r["Type"] == "A"] == [made["DomainName"]]


# -- EC2: the origin-facing prefix list ----------------------------------------------------

def _origin_facing(ec2):
    (found,) = ec2.describe_managed_prefix_lists(Filters=[
        {"Name": "prefix-list-name", "Values": [cdn_api.ORIGIN_FACING]}])["PrefixLists"]
    return found


def test_the_origin_facing_prefix_list_is_the_lab_edge_which_is_never_handed_out(aws):
    ec2 = _client(aws, "ec2")
    found = _origin_facing(ec2)
    entries = ec2.get_managed_prefix_list_entries(PrefixListId=found["PrefixListId"])["Entries"]
    edge = config.edge_block(config.STANDALONE_PUBLIC_BLOCK)
    assert [entry["Cidr"] for entry in entries] == [str(edge)]
    assert edge.num_addresses == 16 and edge.broadcast_address == config.STANDALONE_PUBLIC_BLOCK.broadcast_address
    assert (found["MaxEntries"], found["OwnerId"]) == (cdn_api.ORIGIN_FACING_MAX_ENTRIES, "AWS")
    # the API's address generator, round and round the block, never reaches the edge
    draw = lab_addresses(config.STANDALONE_PUBLIC_BLOCK)
    drawn = {ipaddress.ip_address(draw()) for _count in range(600)}
    assert len(drawn) == 254 - 15 and not any(address in edge for address in drawn)
    assert ipaddress.ip_address(ec2.allocate_address(Domain="vpc")["PublicIp"]) not in edge


def test_a_rule_naming_the_prefix_list_counts_as_its_max_entries(aws):
    ec2 = _client(aws, "ec2")
    prefix_list = _origin_facing(ec2)["PrefixListId"]
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    group = ec2.create_security_group(GroupName="live-frontend", Description="x", VpcId=vpc)["GroupId"]

    def allow(port, cidrs=(), prefix_lists=()):
        return ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[{
            "IpProtocol": "tcp", "FromPort": port, "ToPort": port,
            "IpRanges": [{"CidrIp": cidr} for cidr in cidrs],
            "PrefixListIds": [{"PrefixListId": pl} for pl in prefix_lists]}])

    def rules():
        found = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [group]}])
        return found["SecurityGroupRules"]

    allow(443, prefix_lists=[prefix_list])  # 55
    allow(80, cidrs=["0.0.0.0/0"])  # 56
    allow(22, cidrs=[f"100.64.0.{n}/32" for n in range(4)])  # 60: the quota
    before = len(rules())
    _refused("RulesPerSecurityGroupLimitExceeded", allow, 1935, cidrs=["10.9.2.0/24"])
    _refused("RulesPerSecurityGroupLimitExceeded", allow, 80, prefix_lists=[prefix_list])
    assert len(rules()) == before

    # a call with several permissions is refused whole
    other = ec2.create_security_group(GroupName="live-other", Description="x", VpcId=vpc)["GroupId"]
    _refused("RulesPerSecurityGroupLimitExceeded", ec2.authorize_security_group_ingress, GroupId=other,
             IpPermissions=[{"IpProtocol": "tcp", "FromPort": port, "ToPort": port,
                             "PrefixListIds": [{"PrefixListId": prefix_list}]} for port in (80, 443)])
    assert ec2.describe_security_groups(GroupIds=[other])["SecurityGroups"][0]["IpPermissions"] == []
