"""The viewers' CDN as configuration (module_utils/cdn.py): what the distribution holds, how a
distribution CloudFront describes is compared with it and brought in line, and the secret kept
out of what is shown."""

from __future__ import annotations

from ansible_collections.livestream.aws.plugins.module_utils import cdn
from ansible_collections.livestream.aws.plugins.module_utils.cdn import (
    HIDDEN, differences, distribution_config, merged, origin_name, shown, value_at)
from ansible_collections.livestream.aws.plugins.module_utils.validation import cdn_errors
from livestream_lab import cdn_api

SECRET = "s" * 40
ARN = "arn:aws:acm:us-east-1:123456789012:certificate/abc"


def config(**overrides):
    return distribution_config("live", **{"domain": "live.example.com", "certificate_arn": ARN,
                                          "origin_secret": SECRET, "fragment_seconds": 1, **overrides})


def behaviours(wanted):
    return {b["PathPattern"]: b for b in wanted["CacheBehaviors"]["Items"]}


def test_the_origin_is_the_frontend_by_its_own_name_over_https_with_the_secret():
    (origin,) = config()["Origins"]["Items"]
    assert origin["DomainName"] == origin_name("live.example.com") == "origin.live.example.com"
    assert origin["CustomOriginConfig"]["OriginProtocolPolicy"] == "https-only"
    assert origin["CustomHeaders"]["Items"] == [{"HeaderName": "X-Livestream-Origin", "HeaderValue": SECRET}]
    assert origin["OriginShield"] == {"Enabled": False}
    shielded = config(origin_shield_region="eu-west-1")["Origins"]["Items"][0]["OriginShield"]
    assert shielded == {"Enabled": True, "OriginShieldRegion": "eu-west-1"}


def test_playlists_are_cached_at_most_half_a_fragment_in_whole_seconds_fragments_a_day():
    assert behaviours(config())["*.m3u8"]["MaxTTL"] == 0
    assert behaviours(config(fragment_seconds=4))["*.m3u8"]["MaxTTL"] == 2
    assert behaviours(config(fragment_seconds=0.5))["*.m3u8"]["MaxTTL"] == 0
    assert behaviours(config())["*.m3u8"]["MinTTL"] == 0
    assert (behaviours(config())["*.ts"]["DefaultTTL"], behaviours(config())["*.ts"]["MaxTTL"]) == (86400, 86400)
    # errors for a second, not CloudFront's 10: a playlist missing for a moment comes back
    assert {e["ErrorCode"]: e["ErrorCachingMinTTL"] for e in config()["CustomErrorResponses"]["Items"]} == {
        403: 1, 404: 1, 500: 1, 502: 1, 503: 1, 504: 1}
    assert config()["Aliases"]["Items"] == ["live.example.com"]
    assert config()["ViewerCertificate"]["ACMCertificateArn"] == ARN


def test_the_viewers_beacons_are_never_cached_and_reach_the_origin_with_their_query():
    viewers = behaviours(config())["/viewers"]
    assert (viewers["MinTTL"], viewers["DefaultTTL"], viewers["MaxTTL"]) == (0, 0, 0)
    # the stream and the page's session are in the query string: forwarded, and in the key
    assert viewers["ForwardedValues"]["QueryString"] is True
    assert viewers["ForwardedValues"]["Cookies"] == {"Forward": "none"}
    assert viewers["AllowedMethods"]["Items"] == ["GET", "HEAD"]
    # nothing else forwards a query string (the playlists' and fragments' keys stay the path)
    assert [b["PathPattern"] for b in config()["CacheBehaviors"]["Items"] if b["ForwardedValues"]["QueryString"]] == [
        "/viewers"]
    assert config()["DefaultCacheBehavior"]["ForwardedValues"]["QueryString"] is False


def test_what_cloudfront_fills_in_is_not_a_difference_what_we_set_is():
    wanted = config()
    described = merged(wanted, {"Logging": {"Enabled": False}, "WebACLId": "", "Staging": False})
    described["CacheBehaviors"]["Items"][0]["RealtimeLogConfigArn"] = ""
    assert differences(wanted, described) == []
    described["Origins"]["Items"][0]["OriginShield"] = {"Enabled": True, "OriginShieldRegion": "us-east-1"}
    described["CacheBehaviors"]["Items"][1]["MaxTTL"] = 31536000
    assert sorted(differences(wanted, described)) == ["CacheBehaviors.Items[1].MaxTTL", "Origins.Items[0].OriginShield.Enabled"]
    assert value_at(described, "CacheBehaviors.Items[1].MaxTTL") == 31536000
    assert value_at(described, "Origins.Items[5].Id") is None


def test_an_update_keeps_what_cloudfront_has_and_we_leave_out():
    current = {"Logging": {"Enabled": True, "Bucket": "logs"}, "Comment": "old", "Origins": {"Quantity": 0}}
    update = merged(current, {"Comment": "new", "Origins": {"Quantity": 1, "Items": [{"Id": "frontend"}]}})
    assert update == {"Logging": {"Enabled": True, "Bucket": "logs"}, "Comment": "new",
                      "Origins": {"Quantity": 1, "Items": [{"Id": "frontend"}]}}
    assert current["Comment"] == "old"


def test_the_secret_is_never_shown():
    assert SECRET not in str(shown(config()))
    assert shown({"Origins.Items[0].CustomHeaders.Items[0].HeaderValue": SECRET}) == {
        "Origins.Items[0].CustomHeaders.Items[0].HeaderValue": HIDDEN}


def test_bad_cdn_settings_are_named_and_the_secret_is_not_echoed():
    good = {"cdn": "cloudfront", "origin_secret": SECRET, "origin_shield_region": "", "fragment_seconds": 1,
            "wait_timeout": 60}
    assert cdn_errors(good) == []
    assert cdn_errors({**good, "cdn": "akamai"}) == ["CDN 'akamai' (livestream_cdn) is not one of none, cloudfront"]
    (error,) = cdn_errors({**good, "origin_secret": "short'\"secret"})
    assert "origin_secret" in error and "short" not in error
    assert cdn_errors({**good, "origin_secret": "~" + "a" * 40})  # nginx's map would read it as a regex
    assert cdn_errors({**good, "state": "absent", "origin_secret": None}) == []
    assert cdn_errors({**good, "fragment_seconds": 0.5}) == []
    assert cdn_errors({**good, "fragment_seconds": 0.25}) == [
        "fragment length 0.25 (fragment_seconds, livestream_hls_fragment_seconds) must be 0.5 s or more"]


def test_the_lab_s_cloudfront_knows_the_same_aws_names_as_the_collection():
    """The lab's API (lab/livestream_lab/cdn_api.py) keeps its own copy of AWS's fixed names
    (it runs where the collection is not imported): they must be the collection's."""
    assert cdn_api.ORIGIN_FACING == cdn.ORIGIN_FACING_PREFIX_LIST
    assert cdn_api.CLOUDFRONT_ZONE == cdn.CLOUDFRONT_ZONE_ID
    assert cdn_api.CERTIFICATE_REGION == cdn.CERTIFICATE_REGION
