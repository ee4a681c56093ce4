"""CloudFront in the lab: a distribution created through the lab's API (with boto3, as
provisioning creates it) is realised by the lab's edge, as AWS deploys it.

On the service suites' lab (a player page and live playlists to serve), the distribution
named www.<domain> (the domain itself stays the frontend's); what the module makes (the
distribution, its certificate, records, a narrowed rule) is removed at its end.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import subprocess
import time
import uuid

import boto3
import pytest
import requests

from livestream_testing.lab import aws_environment, machine_names, ssh
from livestream_lab import config, edge, lab as lab_flow
from livestream_lab.stack import describe

pytestmark = pytest.mark.lab

SECRET = "lab-" + uuid.uuid4().hex
HEADER = "X-Livestream-Origin"
# CloudFront's hosted zone for alias records to distributions
CLOUDFRONT_ZONE = "Z2FDTNDATAQYW2"


@pytest.fixture(scope="module")
def edge_config(lab_config):
    return lab_config


@pytest.fixture(scope="module")
def edge_lab(lab):
    return lab


@pytest.fixture(scope="module")
def aws(edge_config, edge_lab):
    """boto3 clients as provisioning has them: the lab's API with the user's credentials."""
    env = aws_environment(edge_config)
    session = boto3.session.Session(aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                                    aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"], region_name="us-east-1")
    return {name: session.client(name, endpoint_url=env["AWS_ENDPOINT_URL"])
            for name in ("acm", "cloudfront", "route53", "ec2")}


def _zone_id(route53, zone: str) -> str:
    zones = route53.list_hosted_zones_by_name(DNSName=zone)["HostedZones"]
    return next(z["Id"] for z in zones if z["Name"].rstrip(".") == zone)


def _behaviour(pattern: str | None, low: int, default: int, high: int) -> dict:
    behaviour = {
        "TargetOriginId": "frontend", "ViewerProtocolPolicy": "redirect-to-https",
        "ForwardedValues": {"QueryString": False, "Cookies": {"Forward": "none"}},
        "MinTTL": low, "DefaultTTL": default, "MaxTTL": high,
        "AllowedMethods": {"Quantity": 2, "Items": ["GET", "HEAD"],
                           "CachedMethods": {"Quantity": 2, "Items": ["GET", "HEAD"]}},
    }
    if pattern:
        behaviour["PathPattern"] = pattern
    return behaviour


def _wait(predicate, timeout: float, what: str, interval: float = 1.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except (requests.RequestException, OSError) as error:
            last = error
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")


@pytest.fixture(scope="module")
def cdn(edge_config, edge_lab, aws):
    """The distribution, its ACM certificate (validated through the delegated zone) and a
    Route 53 alias www.<domain> to it, as provisioning makes them. The origin is the domain
    itself (the frontend's Elastic IP, whose certificate the frontend has)."""
    domain = edge_config.domain
    alias = f"www.{domain}"
    zone_id = _zone_id(aws["route53"], edge_config.hosted_zone)
    arn = aws["acm"].request_certificate(DomainName=alias, ValidationMethod="DNS",
                                         IdempotencyToken="testedge")["CertificateArn"]

    def validation_records():
        options = aws["acm"].describe_certificate(CertificateArn=arn)["Certificate"].get("DomainValidationOptions", [])
        return [o["ResourceRecord"] for o in options if o.get("ResourceRecord")] or None

    records = _wait(validation_records, 30, "ACM's validation records")
    aws["route53"].change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": [
        {"Action": "UPSERT", "ResourceRecordSet": {"Name": r["Name"], "Type": r["Type"], "TTL": 300,
                                                   "ResourceRecords": [{"Value": r["Value"]}]}}
        for r in {r["Name"]: r for r in records}.values()]})
    _wait(lambda: aws["acm"].describe_certificate(CertificateArn=arn)["Certificate"]["Status"] == "ISSUED",
          180, "the ACM certificate to be ISSUED", interval=3)
    settings = {
        "CallerReference": f"test-edge-{edge_config.stack}",
        "Comment": f"test edge {edge_config.stack}",
        "Enabled": True,
        "Aliases": {"Quantity": 1, "Items": [alias]},
        "Origins": {"Quantity": 1, "Items": [{
            "Id": "frontend", "DomainName": domain, "OriginPath": "",
            "CustomHeaders": {"Quantity": 1, "Items": [{"HeaderName": HEADER, "HeaderValue": SECRET}]},
            "CustomOriginConfig": {"HTTPPort": 80, "HTTPSPort": 443, "OriginProtocolPolicy": "https-only",
                                   "OriginSslProtocols": {"Quantity": 1, "Items": ["TLSv1.2"]}},
        }]},
        "DefaultCacheBehavior": _behaviour(None, 0, 60, 300),
        "CacheBehaviors": {"Quantity": 2, "Items": [_behaviour("*.m3u8", 0, 0, 0), _behaviour("*.ts", 0, 86400, 86400)]},
        "CustomErrorResponses": {"Quantity": 5, "Items": [
            {"ErrorCode": code, "ErrorCachingMinTTL": 1} for code in (404, 500, 502, 503, 504)]},
        "ViewerCertificate": {"ACMCertificateArn": arn, "SSLSupportMethod": "sni-only",
                              "MinimumProtocolVersion": "TLSv1.2_2021"},
        "HttpVersion": "http2",
    }
    cloudfront = aws["cloudfront"]
    mine = [item for item in cloudfront.list_distributions()["DistributionList"].get("Items", [])
            if cloudfront.get_distribution_config(Id=item["Id"])["DistributionConfig"]["CallerReference"]
            == settings["CallerReference"]]
    if mine:  # a lab kept from an earlier run (LIVESTREAM_REUSE_LAB=1): its distribution, as new
        etag = cloudfront.get_distribution_config(Id=mine[0]["Id"])["ETag"]
        created = cloudfront.update_distribution(Id=mine[0]["Id"], IfMatch=etag, DistributionConfig=settings)["Distribution"]
    else:
        created = cloudfront.create_distribution_with_tags(DistributionConfigWithTags={
            "DistributionConfig": settings, "Tags": {"Items": [{"Key": "Stack", "Value": edge_config.stack}]}})["Distribution"]
    aws["route53"].change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": [
        {"Action": "UPSERT", "ResourceRecordSet": {"Name": alias, "Type": "A", "AliasTarget": {
            "HostedZoneId": CLOUDFRONT_ZONE, "DNSName": created["DomainName"], "EvaluateTargetHealth": False}}}]})
    state = {"id": created["Id"], "domain_name": created["DomainName"], "alias": alias, "arn": arn,
             "edge": edge_lab["edge_address"], "ca": edge_lab["ca_cert"],
             "base": f"https://{alias}"}
    # the edge serves it over TLS once the realiser has applied it (within a few rounds)
    _wait(lambda: _get(state, "/").status_code == 200, 180, "the distribution to be served through the edge", 2)
    yield state
    # removed in CloudFront's order, so that the suites after this one find the lab as it was
    aws["route53"].change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": [
        {"Action": "DELETE", "ResourceRecordSet": {"Name": alias, "Type": "A", "AliasTarget": {
            "HostedZoneId": CLOUDFRONT_ZONE, "DNSName": created["DomainName"], "EvaluateTargetHealth": False}}}]})
    answer = cloudfront.get_distribution_config(Id=created["Id"])
    if answer["DistributionConfig"]["Enabled"]:
        answer = cloudfront.update_distribution(Id=created["Id"], IfMatch=answer["ETag"],
                                                DistributionConfig=dict(answer["DistributionConfig"], Enabled=False))
    _wait(lambda: cloudfront.get_distribution(Id=created["Id"])["Distribution"]["Status"] == "Deployed", 60,
          "the disabled distribution to be deployed")
    cloudfront.delete_distribution(Id=created["Id"], IfMatch=cloudfront.get_distribution(Id=created["Id"])["ETag"])
    aws["route53"].change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": [
        {"Action": "DELETE", "ResourceRecordSet": {"Name": r["Name"], "Type": r["Type"], "TTL": 300,
                                                   "ResourceRecords": [{"Value": r["Value"]}]}}
        for r in {r["Name"]: r for r in records}.values()]})
    aws["acm"].delete_certificate(CertificateArn=arn)


def _get(cdn: dict, path: str, **kwargs) -> requests.Response:
    return requests.get(cdn["base"] + path, verify=cdn["ca"], timeout=10, allow_redirects=False, **kwargs)


def _origin_requests(edge_config, path: str) -> int:
    """How many times the edge asked the origin for ``path`` (its origin-facing log, which the
    hop to the origin writes when its request ends: a moment after the viewer's answer)."""
    time.sleep(0.3)
    log = edge.home(edge_config) / "origin.log"
    return sum(1 for line in log.read_text().splitlines() if f'"GET {path} ' in line) if log.exists() else 0


def _playlist_path(cdn) -> str:
    """A rendition's live playlist (from the master playlist of the default stream, if it
    has renditions), else the stream's own."""
    master = _get(cdn, "/hls/test.m3u8")
    assert master.status_code == 200, master.status_code
    lines = master.text.splitlines()
    variants = [lines[i + 1] for i, line in enumerate(lines[:-1]) if line.startswith("#EXT-X-STREAM-INF")]
    return "/hls/" + variants[0] if variants else "/hls/test.m3u8"


def _media_sequence(text: str) -> int:
    return int(re.search(r"#EXT-X-MEDIA-SEQUENCE:(\d+)", text).group(1))


def test_the_distributions_names_resolve_to_the_edge(edge_config, cdn):
    """Its own name and the Route 53 alias made after `up`, through the lab's public DNS."""
    block = config.edge_block(lab_flow.State(edge_config)["public_block"])
    for name in (cdn["domain_name"], cdn["alias"]):
        address = socket.gethostbyname(name)
        assert address == cdn["edge"], name
        assert ipaddress.ip_address(address) in block


def test_https_through_the_edge_returns_the_player_page_and_a_playlist(cdn):
    page = _get(cdn, "/")
    assert page.status_code == 200
    assert "<video" in page.text
    assert page.headers["X-Cache"] in ("Hit from cloudfront", "Miss from cloudfront")
    assert "cloudfront.net (CloudFront)" in page.headers["Via"]
    playlist = _get(cdn, _playlist_path(cdn))
    assert playlist.status_code == 200
    assert playlist.text.startswith("#EXTM3U")
    # HTTP is redirected to HTTPS, as the behaviour's ViewerProtocolPolicy says
    plain = requests.get(f"http://{cdn['alias']}/", timeout=10, allow_redirects=False)
    assert plain.status_code == 301 and plain.headers["Location"] == f"https://{cdn['alias']}/"


def test_the_edge_refuses_tls_below_1_2(cdn):
    result = subprocess.run(["openssl", "s_client", "-connect", f"{cdn['edge']}:443", "-servername", cdn["alias"],
                             "-tls1_1", "-CAfile", cdn["ca"]], input="", capture_output=True, text=True, timeout=20,
                            check=False)
    assert result.returncode != 0


def test_the_origin_request_carries_the_secret_header_with_the_origin_as_host(edge_config, cdn):
    """The frontend logs what it receives for a moment (its role logs no headers)."""
    frontend = machine_names(edge_config)["frontend"]
    servers = "/etc/nginx/livestream/servers.conf"
    probe = ('log_format edgeprobe "$http_x_livestream_origin $host $http_user_agent";',
             "access_log /var/log/nginx/edgeprobe.log edgeprobe;")
    ssh(edge_config, frontend, f"sudo cp {servers} /root/servers.conf.saved && "
        f"sudo sed -i '1i {probe[0]}' {servers} && "
        f"sudo sed -i 's|^    server_name {edge_config.domain};|&\\n    {probe[1]}|' {servers} && "
        "sudo nginx -t -q && sudo /usr/local/sbin/livestream-nginx-reload")
    expected = f"{SECRET} {edge_config.domain} Amazon CloudFront"
    try:
        # a path nobody asked the edge for yet: a miss, which goes to the origin (and is a 404
        # there); until the frontend's old workers are gone, the edge's kept-alive connection
        # may meet one that does not log yet
        def logged():
            assert _get(cdn, f"/probe-{uuid.uuid4().hex}").status_code == 404
            return ssh(edge_config, frontend, "sudo cat /var/log/nginx/edgeprobe.log").stdout.splitlines()

        seen = _wait(logged, 30, "the frontend's log of a request through the edge")
    finally:
        ssh(edge_config, frontend, f"sudo cp /root/servers.conf.saved {servers} && sudo /usr/local/sbin/livestream-nginx-reload && "
            "sudo rm -f /var/log/nginx/edgeprobe.log /root/servers.conf.saved")
    assert set(seen) == {expected}


def test_a_second_request_for_a_fragment_is_a_hit(edge_config, cdn):
    playlist = _get(cdn, _playlist_path(cdn)).text
    fragment = [line for line in playlist.splitlines() if line and not line.startswith("#")][-1]
    path = f"/hls/{fragment}"
    first = _get(cdn, path)
    assert first.status_code == 200
    second = _get(cdn, path)
    assert second.status_code == 200 and second.content == first.content
    assert second.headers["X-Cache"] == "Hit from cloudfront"
    assert _origin_requests(edge_config, path) == 1
    # the query string is neither forwarded nor in the cache key
    third = _get(cdn, path + "?viewer=1")
    assert third.headers["X-Cache"] == "Hit from cloudfront"
    assert _origin_requests(edge_config, path) == 1


def test_simultaneous_requests_for_a_fragment_are_collapsed(edge_config, cdn):
    from concurrent.futures import ThreadPoolExecutor  # pylint: disable=import-outside-toplevel
    playlist_path = _playlist_path(cdn)
    old = _media_sequence(_get(cdn, playlist_path).text)
    # the next fragment, asked for by 20 viewers at once as soon as it is listed
    playlist = _wait(lambda: (p := _get(cdn, playlist_path).text) and _media_sequence(p) > old and p, 30,
                     "a new fragment", interval=0.2)
    fragment = "/hls/" + [line for line in playlist.splitlines() if line and not line.startswith("#")][-1]
    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(lambda _viewer: _get(cdn, fragment).status_code, range(20)))
    assert answers == [200] * 20
    assert _origin_requests(edge_config, fragment) == 1


def test_a_playlist_is_never_served_staler_than_its_behaviour_allows(edge_config, cdn):
    """*.m3u8 has MaxTTL 0 (and the origin says no-cache): every request reaches the origin,
    and the playlist advances through the edge as it does at the origin."""
    path = _playlist_path(cdn)
    before = _origin_requests(edge_config, path)
    sequences = []
    for _attempt in range(6):
        response = _get(cdn, path)
        assert response.headers["X-Cache"] == "Miss from cloudfront"
        sequences.append(_media_sequence(response.text))
        time.sleep(1)
    assert _origin_requests(edge_config, path) == before + 6
    assert sequences[-1] > sequences[0], sequences


def test_a_404_is_cached_for_its_error_caching_minimum_ttl_only(edge_config, cdn):
    path = f"/missing-{uuid.uuid4().hex}.html"  # the player's location: a 404 without Cache-Control
    first = _get(cdn, path)
    assert first.status_code == 404
    assert "max-age" not in first.headers.get("Cache-Control", "")
    assert first.headers["X-Cache"] == "Error from cloudfront"
    assert _get(cdn, path).status_code == 404
    assert _origin_requests(edge_config, path) == 1  # cached ...
    # ... for ErrorCachingMinTTL (1 s) only: nginx keeps expiry times in whole seconds, so
    # an object is fresh for its TTL plus at most one second
    time.sleep(2.1)
    assert _get(cdn, path).status_code == 404
    assert _origin_requests(edge_config, path) == 2


def test_a_fragment_asked_for_before_it_exists_stays_missing_one_second_only(edge_config, cdn):
    """CloudFront caches an error for the larger of ErrorCachingMinTTL and the origin's max-age
    (custom-error-pages-expiration.html): the frontend gives fragments' max-age to fragments
    alone, so a player that asks a moment early gets the fragment a second later."""
    path = f"/hls/missing-{uuid.uuid4().hex}.ts"
    first = _get(cdn, path)
    assert first.status_code == 404
    assert "max-age" not in first.headers.get("Cache-Control", ""), first.headers.get("Cache-Control")
    time.sleep(2.1)
    assert _get(cdn, path).status_code == 404
    assert _origin_requests(edge_config, path) == 2


def test_an_unconfigured_error_is_cached_for_cloudfronts_default(edge_config, cdn, ssh, machines):
    """403 is not in CustomErrorResponses: CloudFront's default, 10 s. The origin's 403: a
    page nginx may not read (root's alone), put there for the test."""
    path = f"/private-{uuid.uuid4().hex}.html"
    frontend = machines["frontend"]["name"]
    made = ssh(frontend, f"sudo -n install -m 600 /dev/null /var/www/livestream{path}")
    assert made.returncode == 0, made.stderr
    try:
        before = _origin_requests(edge_config, path)
        first = _get(cdn, path)
        assert first.status_code == 403, (first.status_code, first.text[:200])
        assert first.headers["X-Cache"] == "Error from cloudfront"
        time.sleep(2.1)  # past the 1 s of the configured codes
        assert _get(cdn, path).status_code == 403
        assert _origin_requests(edge_config, path) == before + 1
    finally:
        ssh(frontend, f"sudo -n rm -f /var/www/livestream{path}")


def _reaches(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=2):
            return True
    except OSError:
        return False


def test_the_origin_narrowed_to_cloudfronts_prefix_list_answers_the_edge_only(edge_config, edge_lab, cdn, aws):
    """The frontend's HTTPS opened to CloudFront's origin-facing managed prefix list only
    (as provisioning narrows it): the lab enforces the list's entries (the edge's /28),
    from the moment the API holds the rule (the realiser follows it between `up`s)."""
    ec2 = aws["ec2"]
    lists = ec2.describe_managed_prefix_lists(Filters=[{
        "Name": "prefix-list-name", "Values": ["com.amazonaws.global.cloudfront.origin-facing"]}])["PrefixLists"]
    assert lists, "the lab's API has no CloudFront origin-facing prefix list"
    entries = ec2.get_managed_prefix_list_entries(PrefixListId=lists[0]["PrefixListId"])["Entries"]
    assert [entry["Cidr"] for entry in entries] == [str(config.edge_block(lab_flow.State(edge_config)["public_block"]))]
    # the frontend's groups, as the lab sees the stack: its own (HTTPS open to all without a
    # CDN) and the origin group, where provisioning puts the prefix list (55 of a group's 60
    # rules: it would not fit beside the frontend's own)
    frontend = describe(edge_config.stack, aws_environment(edge_config)).by_role("frontend")
    groups = ec2.describe_security_groups(GroupIds=frontend.interfaces[0].groups)["SecurityGroups"]

    def named_origin(group):
        return any(tag["Key"] == "Name" and tag["Value"].endswith("-origin") for tag in group.get("Tags", []))

    [origin] = [g["GroupId"] for g in groups if named_origin(g)]
    [own] = [g for g in groups if g["GroupId"] != origin]
    https = [r for r in own["IpPermissions"] if r.get("FromPort") == 443]
    opened = {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443,
              "IpRanges": [{"CidrIp": ip["CidrIp"]} for rule in https for ip in rule.get("IpRanges", [])]}
    narrowed = {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443,
                "PrefixListIds": [{"PrefixListId": lists[0]["PrefixListId"]}]}
    already = any(item.get("PrefixListId") == lists[0]["PrefixListId"]
                  for g in groups if g["GroupId"] == origin for rule in g["IpPermissions"]
                  for item in rule.get("PrefixListIds", []))
    group = own["GroupId"]
    if opened["IpRanges"]:
        ec2.revoke_security_group_ingress(GroupId=group, IpPermissions=[opened])
    if not already:  # provisioning has not narrowed it yet: as it does with the CDN on
        ec2.authorize_security_group_ingress(GroupId=origin, IpPermissions=[narrowed])
    try:
        _wait(lambda: not _reaches(edge_lab["frontend_address"], 443), 30, "the frontend's 443 closed to the internet")
        path = f"/missing-{uuid.uuid4().hex}.html"  # a miss: to the origin, through the group
        assert _get(cdn, path).status_code == 404
        assert _origin_requests(edge_config, path) == 1
        assert _reaches(edge_lab["frontend_address"], 80)  # the rest of the group as it was
    finally:
        if not already:
            ec2.revoke_security_group_ingress(GroupId=origin, IpPermissions=[narrowed])
        if opened["IpRanges"]:
            ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[opened])
    if opened["IpRanges"]:
        _wait(lambda: _reaches(edge_lab["frontend_address"], 443), 30, "the frontend's 443 open again")


def test_a_changed_configuration_goes_in_progress_then_deployed(edge_config, cdn, aws):
    cloudfront = aws["cloudfront"]
    answer = cloudfront.get_distribution_config(Id=cdn["id"])
    settings, etag = answer["DistributionConfig"], answer["ETag"]
    _wait(lambda: cloudfront.get_distribution(Id=cdn["id"])["Distribution"]["Status"] == "Deployed", 30,
          "the first configuration to be deployed")
    settings["DefaultCacheBehavior"]["DefaultTTL"] = 30
    updated = cloudfront.update_distribution(Id=cdn["id"], IfMatch=etag, DistributionConfig=settings)
    assert updated["Distribution"]["Status"] == "InProgress"
    _wait(lambda: cloudfront.get_distribution(Id=cdn["id"])["Distribution"]["Status"] == "Deployed", 30,
          "the change to be deployed")
    applied = (edge.home(edge_config) / "nginx.conf").read_text()
    assert f"ETag {updated['ETag']}" in applied


def test_a_disabled_distribution_is_no_longer_served(cdn, aws):
    cloudfront = aws["cloudfront"]
    answer = cloudfront.get_distribution_config(Id=cdn["id"])
    settings = answer["DistributionConfig"]
    settings["Enabled"] = False
    cloudfront.update_distribution(Id=cdn["id"], IfMatch=answer["ETag"], DistributionConfig=settings)

    def refused():
        try:
            _get(cdn, "/")
        except requests.exceptions.SSLError:
            return True
        return False

    _wait(refused, 30, "the edge to stop serving the disabled distribution")
    assert requests.get(f"http://{cdn['alias']}/", timeout=10, allow_redirects=False).status_code == 403
