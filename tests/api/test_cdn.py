"""livestream.aws.cdn against the lab's API: the certificate validated through a delegated
zone only, the distribution made, kept in line and removed in the order CloudFront requires,
the viewers' name as its alias, check mode, and the origin's secret never shown."""

from __future__ import annotations

import pytest

from conftest import observer

ZONE = "example.test"
DOMAIN = "live.example.test"
SECRET = "Origin-Secret-0123456789abcdefghijklmnop"
ARGS = {"name": "live", "domain": DOMAIN, "hosted_zone": ZONE, "origin_secret": SECRET, "wait_timeout": 60}


@pytest.fixture
def zone(aws):
    """The stack's hosted zone, as provisioning leaves it; (its ID, its name servers)."""
    route53 = observer(aws, "route53")
    made = route53.create_hosted_zone(Name=ZONE, CallerReference="test-zone")
    return made["HostedZone"]["Id"].split("/")[-1], made["DelegationSet"]["NameServers"]


def records(aws, zone_id):
    route53 = observer(aws, "route53")
    return {(r["Name"].rstrip("."), r["Type"]): r
            for r in route53.list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]}


def test_the_cdn_is_made_kept_in_line_and_removed(aws, zone, cloudfront_deploys, ansible):
    zone_id, servers = zone
    aws.delegate({ZONE: servers})
    cloudfront, acm = observer(aws, "cloudfront"), observer(aws, "acm", region="us-east-1")

    planned = ansible.module("livestream.aws.cdn", ARGS, check=True)
    assert planned["changed"] and not planned.get("failed"), planned
    assert cloudfront.list_distributions()["DistributionList"]["Quantity"] == 0
    assert acm.list_certificates()["CertificateSummaryList"] == []

    made = ansible.module("livestream.aws.cdn", ARGS)
    assert made["changed"] and not made.get("failed"), made.get("msg")
    (summary,) = cloudfront.list_distributions()["DistributionList"]["Items"]
    config = cloudfront.get_distribution_config(Id=summary["Id"])["DistributionConfig"]
    assert summary["Status"] == "Deployed" and made["distribution"]["id"] == summary["Id"]
    assert config["Aliases"]["Items"] == [DOMAIN]
    (origin,) = config["Origins"]["Items"]
    assert origin["DomainName"] == f"origin.{DOMAIN}" == made["origin"]
    assert origin["CustomOriginConfig"]["OriginProtocolPolicy"] == "https-only"
    assert origin["CustomHeaders"]["Items"] == [{"HeaderName": "X-Livestream-Origin", "HeaderValue": SECRET}]
    behaviours = {b["PathPattern"]: b for b in config["CacheBehaviors"]["Items"]}
    # playlists: at most half a 1-second fragment, in whole seconds; fragments: a day
    assert (behaviours["*.m3u8"]["MinTTL"], behaviours["*.m3u8"]["DefaultTTL"], behaviours["*.m3u8"]["MaxTTL"]) == (0, 0, 0)
    assert behaviours["*.ts"]["MaxTTL"] == 86400
    assert {e["ErrorCode"]: e["ErrorCachingMinTTL"] for e in config["CustomErrorResponses"]["Items"]}[404] == 1
    certificate = acm.describe_certificate(CertificateArn=made["certificate_arn"])["Certificate"]
    assert certificate["Status"] == "ISSUED" and config["ViewerCertificate"]["ACMCertificateArn"] == made["certificate_arn"]
    (validation,) = [option["ResourceRecord"] for option in certificate["DomainValidationOptions"]]
    found = records(aws, zone_id)
    assert found[(validation["Name"].rstrip("."), "CNAME")]["ResourceRecords"] == [{"Value": validation["Value"]}]
    assert found[(DOMAIN, "A")]["AliasTarget"]["DNSName"].rstrip(".") == summary["DomainName"]
    # the secret is in the distribution, never in what the run shows
    assert SECRET not in str(made)

    again = ansible.module("livestream.aws.cdn", ARGS)
    assert not again["changed"] and not again.get("failed"), again.get("actions")

    shielded = ansible.module("livestream.aws.cdn", {**ARGS, "origin_shield_region": "eu-west-1"})
    assert shielded["changed"] and shielded["actions"] == [
        f"update CloudFront distribution {summary['Id']} (Origins.Items[0].OriginShield.Enabled, "
        "Origins.Items[0].OriginShield.OriginShieldRegion)"], shielded.get("msg")
    origin = cloudfront.get_distribution_config(Id=summary["Id"])["DistributionConfig"]["Origins"]["Items"][0]
    assert origin["OriginShield"] == {"Enabled": True, "OriginShieldRegion": "eu-west-1"}

    removed = ansible.module("livestream.aws.cdn", {**ARGS, "state": "absent"})
    assert removed["changed"] and not removed.get("failed"), removed.get("msg")
    assert [action.split(" ")[0] for action in removed["actions"]] == ["delete", "disable", "delete", "delete", "delete"]
    assert cloudfront.list_distributions()["DistributionList"]["Quantity"] == 0
    assert acm.list_certificates()["CertificateSummaryList"] == []
    assert set(records(aws, zone_id)) == {(ZONE, "NS"), (ZONE, "SOA")}
    assert not ansible.module("livestream.aws.cdn", {**ARGS, "state": "absent"})["changed"]


def test_an_undelegated_zone_leaves_the_certificate_waiting_and_says_why(aws, zone, ansible):
    zone_id, _servers = zone
    result = ansible.module("livestream.aws.cdn", {**ARGS, "wait_timeout": 5})
    assert result.get("failed"), result
    assert "must delegate" in result["msg"] and "PENDING_VALIDATION" in result["msg"], result["msg"]
    # what it made it says, and a run after the delegation carries on from it
    assert result["actions"][0] == f"request an ACM certificate for {DOMAIN} in us-east-1"
    assert observer(aws, "cloudfront").list_distributions()["DistributionList"]["Quantity"] == 0
    assert any(kind == "CNAME" for _name, kind in records(aws, zone_id))


@pytest.mark.parametrize("override, message", [
    ({"origin_secret": "short"}, "the origin secret (origin_secret, livestream_cdn_origin_secret) must be 32"),
    ({"origin_shield_region": "Ireland"}, "Origin Shield region 'Ireland' (origin_shield_region"),
    ({"fragment_seconds": 0.25}, "fragment length 0.25 (fragment_seconds, livestream_hls_fragment_seconds) must be 0.5"),
])
def test_bad_input_is_refused_by_name_before_any_call(aws, zone, ansible, override, message):
    result = ansible.module("livestream.aws.cdn", {**ARGS, **override})
    assert result.get("failed") and message in result["msg"], result.get("msg")
    assert "short" not in result["msg"] or "origin_secret" not in override
    assert observer(aws, "acm", region="us-east-1").list_certificates()["CertificateSummaryList"] == []
