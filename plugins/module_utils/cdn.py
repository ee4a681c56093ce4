# -*- coding: utf-8 -*-
# Copyright: livestream.aws contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The viewers' CDN: a CloudFront distribution in front of the frontend, its ACM certificate
(us-east-1, validated through the stack's hosted zone) and the viewers' name as an alias of it.
Used by livestream.aws.cdn. What the distribution holds is decided by ``distribution_config``
(a pure function: the cache behaviours, the origin and its secret header); the rest finds,
makes, brings in line and removes the AWS resources."""

from __future__ import annotations

import copy
import hashlib

try:
    import botocore
except ImportError:
    pass  # handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.tagging import ansible_dict_to_boto3_tag_list
from ansible_collections.amazon.aws.plugins.module_utils.tagging import boto3_tag_list_to_ansible_dict

from ansible_collections.livestream.aws.plugins.module_utils.aws import only_one
from ansible_collections.livestream.aws.plugins.module_utils.aws import paginate
from ansible_collections.livestream.aws.plugins.module_utils.aws import wait_for
from ansible_collections.livestream.aws.plugins.module_utils.naming import resource_name
from ansible_collections.livestream.aws.plugins.module_utils.naming import STACK_TAG
from ansible_collections.livestream.aws.plugins.module_utils.naming import stack_tags
from ansible_collections.livestream.aws.plugins.module_utils.publishing import change_records
from ansible_collections.livestream.aws.plugins.module_utils.publishing import find_record

# CloudFront takes certificates from ACM in this region only, whatever the stack's region.
CERTIFICATE_REGION = "us-east-1"
# The hosted zone ID of every CloudFront distribution, for Route 53 alias records (AWS's
# Route 53 API reference, AliasTarget).
CLOUDFRONT_ZONE_ID = "Z2FDTNDATAQYW2"
# The addresses CloudFront reaches origins from, as an AWS-managed prefix list.
ORIGIN_FACING_PREFIX_LIST = "com.amazonaws.global.cloudfront.origin-facing"
# The header the distribution adds to every request to the origin, with the stack's secret:
# the frontend answers HLS and page requests only when it carries it.
ORIGIN_HEADER = "X-Livestream-Origin"
ORIGIN_ID = "frontend"
# The status codes whose answers CloudFront caches for ERROR_CACHING_SECONDS instead of its
# default 10 s: a playlist missing for a moment (a publisher's restart) must not stay missing.
ERROR_CODES = (403, 404, 500, 502, 503, 504)
ERROR_CACHING_SECONDS = 1
# Fragments never change once published: cached for as long as the origin says, up to a day.
FRAGMENT_TTL = 86400
# The player page, its script and streams.json: cached briefly (a change of streams shows
# within PAGE_MAX_TTL).
PAGE_DEFAULT_TTL = 10
PAGE_MAX_TTL = 60
HIDDEN = "********"
# The players' beacons and the viewer count they get back (the frontend's /viewers): never
# cached, each with its query string (the stream, the page's session) forwarded to the origin,
# so that every viewer behind the CDN is counted by the origin.
VIEWERS_PATH = "/viewers"


def origin_name(domain):
    """The frontend's own name behind the distribution (its certificate's, the origin's)."""
    return f"origin.{domain}"


def comment(name):
    return f"livestream.aws stack {name}: the viewers' CDN"


def _items(values):
    return {"Quantity": len(values), "Items": list(values)} if values else {"Quantity": 0}


def _behaviour(*, min_ttl, default_ttl, max_ttl, compress, path_pattern=None, query_string=False):
    """A cache behaviour in CloudFront's legacy cache settings (TTLs and forwarded values in
    the behaviour itself): GET and HEAD only, no cookie or header in the key, nor the query
    string unless ``query_string`` (then forwarded, all of it, and part of the key)."""
    behaviour = {
        "TargetOriginId": ORIGIN_ID,
        "ViewerProtocolPolicy": "redirect-to-https",
        "AllowedMethods": {**_items(["GET", "HEAD"]), "CachedMethods": _items(["GET", "HEAD"])},
        "ForwardedValues": {
            "QueryString": query_string,
            "Cookies": {"Forward": "none"},
            "Headers": {"Quantity": 0},
            "QueryStringCacheKeys": {"Quantity": 0},
        },
        "MinTTL": min_ttl,
        "DefaultTTL": default_ttl,
        "MaxTTL": max_ttl,
        "Compress": compress,
        "SmoothStreaming": False,
        "FieldLevelEncryptionId": "",
        "TrustedSigners": {"Enabled": False, "Quantity": 0},
        "LambdaFunctionAssociations": {"Quantity": 0},
    }
    if path_pattern:
        behaviour = {"PathPattern": path_pattern, **behaviour}
    return behaviour


def distribution_config(name, *, domain, certificate_arn, origin_secret, fragment_seconds,
                        origin_shield_region=None):
    """The DistributionConfig the stack wants (what ``ensure_distribution`` compares and sets):

    - one origin, the frontend by its own name (``origin_name``) over HTTPS, every request
      carrying ORIGIN_HEADER with ``origin_secret``; Origin Shield in ``origin_shield_region``
      when given (one request per object from all edges);
    - playlists (``*.m3u8``): the origin's Cache-Control honoured up to half a fragment
      (CloudFront counts whole seconds: 0 for fragments under 2 s, every request revalidated,
      simultaneous ones collapsed into one);
    - fragments (``*.ts``): as long as the origin says, up to a day;
    - the viewers' beacons (VIEWERS_PATH): never cached, the query string forwarded;
    - the rest (the player page, its script, streams.json): briefly;
    - errors cached ERROR_CACHING_SECONDS, not CloudFront's default 10 s;
    - the viewers' ``domain`` as the alias, with the ACM certificate, SNI, TLS 1.2 at least."""
    origin = {
        "Id": ORIGIN_ID,
        "DomainName": origin_name(domain),
        "OriginPath": "",
        "CustomHeaders": _items([{"HeaderName": ORIGIN_HEADER, "HeaderValue": origin_secret}]),
        "CustomOriginConfig": {
            "HTTPPort": 80,
            "HTTPSPort": 443,
            "OriginProtocolPolicy": "https-only",
            "OriginSslProtocols": _items(["TLSv1.2"]),
            "OriginReadTimeout": 30,
            "OriginKeepaliveTimeout": 5,
        },
        "ConnectionAttempts": 3,
        "ConnectionTimeout": 10,
        "OriginShield": ({"Enabled": True, "OriginShieldRegion": origin_shield_region}
                         if origin_shield_region else {"Enabled": False}),
    }
    playlist_ttl = int(float(fragment_seconds) / 2)
    return {
        "CallerReference": f"livestream-{name}-cdn",
        "Comment": comment(name),
        "Enabled": True,
        "Aliases": _items([domain]),
        "DefaultRootObject": "",
        "Origins": _items([origin]),
        "DefaultCacheBehavior": _behaviour(min_ttl=0, default_ttl=PAGE_DEFAULT_TTL, max_ttl=PAGE_MAX_TTL, compress=True),
        "CacheBehaviors": _items([
            _behaviour(path_pattern=VIEWERS_PATH, min_ttl=0, default_ttl=0, max_ttl=0, compress=False, query_string=True),
            _behaviour(path_pattern="*.m3u8", min_ttl=0, default_ttl=0, max_ttl=playlist_ttl, compress=True),
            _behaviour(path_pattern="*.ts", min_ttl=0, default_ttl=FRAGMENT_TTL, max_ttl=FRAGMENT_TTL, compress=False),
        ]),
        "CustomErrorResponses": _items([
            {"ErrorCode": code, "ResponsePagePath": "", "ResponseCode": "", "ErrorCachingMinTTL": ERROR_CACHING_SECONDS}
            for code in ERROR_CODES
        ]),
        "ViewerCertificate": {
            "CloudFrontDefaultCertificate": False,
            "ACMCertificateArn": certificate_arn,
            "SSLSupportMethod": "sni-only",
            "MinimumProtocolVersion": "TLSv1.2_2021",
        },
        "PriceClass": "PriceClass_All",
        "HttpVersion": "http2",
        "IsIPV6Enabled": False,
    }


def differences(wanted, current, path=""):
    """The paths at which ``current`` (a DistributionConfig as CloudFront returns it, with
    every default filled in) does not hold what ``wanted`` says; what ``wanted`` leaves out is
    not compared. Lists are compared item by item (CloudFront keeps their order)."""
    if isinstance(wanted, dict) and isinstance(current, dict):
        found = []
        for key, value in wanted.items():
            found.extend(differences(value, current.get(key), f"{path}.{key}" if path else key))
        return found
    if isinstance(wanted, list) and isinstance(current, list) and len(wanted) == len(current):
        return [p for index, (w, c) in enumerate(zip(wanted, current)) for p in differences(w, c, f"{path}[{index}]")]
    # CloudFront answers numbers and booleans as it was given them, empty strings as absent
    if wanted == current or (wanted == "" and current is None):
        return []
    return [path]


def merged(current, wanted):
    """``current`` with every part ``wanted`` says replaced (what it leaves out kept as
    CloudFront has it): the config an UpdateDistribution sends, which must be whole."""
    result = copy.deepcopy(current)
    for key, value in wanted.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merged(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def value_at(config, path):
    """The value at ``path`` (as ``differences`` names it: ``Origins.Items[0].Id``), or None."""
    value = config
    for part in path.replace("[", ".[").split("."):
        if part.startswith("["):
            index = int(part[1:-1])
            value = value[index] if isinstance(value, list) and index < len(value) else None
        else:
            value = value.get(part) if isinstance(value, dict) else None
    return value


def shown(config):
    """``config`` (a whole config, or values by path) as a diff or a result may show it: the
    origin's secret hidden wherever it is."""
    if isinstance(config, dict):
        return {key: HIDDEN if key == "HeaderValue" or key.endswith(".HeaderValue") else shown(value)
                for key, value in config.items()}
    if isinstance(config, list):
        return [shown(value) for value in config]
    return config


def _tag_list(name):
    """The tags of the stack's certificate and distribution, as ACM and CloudFront take them."""
    return ansible_dict_to_boto3_tag_list(stack_tags(name, resource_name=resource_name(name, "cdn")))


def _is_the_stacks(tag_list, name):
    """Whether a resource with these tags (as ACM and CloudFront list them) is the stack's."""
    return boto3_tag_list_to_ansible_dict(tag_list).get(STACK_TAG) == name


def _client_token(name, domain):
    """ACM's IdempotencyToken (at most 32 word characters): a retried request of the same
    stack's certificate for the same name is the same request, for an hour."""
    return hashlib.sha256(f"{name}:{domain}".encode()).hexdigest()[:32]


# ---- the certificate -------------------------------------------------------------------

# Until ACM has worked out the validation record, DescribeCertificate lists the domain
# without ResourceRecord (amazon.aws's acm_certificate and the AWS CLI docs wait for it too).
RECORD_KNOWN = {
    "delay": 1,
    "operation": "DescribeCertificate",
    "maxAttempts": 1,
    "acceptors": [
        {"matcher": "pathAll", "argument": "Certificate.DomainValidationOptions[].ResourceRecord.Type",
         "expected": "CNAME", "state": "success"},
        {"matcher": "error", "expected": "ResourceNotFoundException", "state": "retry"},
    ],
}


def find_certificate(acm, module, name, domain):
    """The stack's certificate for ``domain`` (CertificateArn, ...), or None. Found by its
    name and its Stack tag: ACM may hold other certificates for the same name."""
    summaries = [
        summary for summary in paginate(acm, "list_certificates", "CertificateSummaryList")
        if summary.get("DomainName", "").lower() == domain
    ]
    ours = []
    for summary in summaries:
        tags = acm.list_tags_for_certificate(CertificateArn=summary["CertificateArn"], aws_retry=True).get("Tags", [])
        if _is_the_stacks(tags, name):
            ours.append(summary)
    return only_one(module, ours, "CertificateArn", f"ACM certificates of stack {name!r} for {domain!r}",
                    fix="delete the ones not in use by the stack's distribution")


def validation_records(certificate):
    """The CNAME record each name of a described certificate is validated by (Name, Value)."""
    return [option["ResourceRecord"] for option in certificate.get("DomainValidationOptions", [])
            if option.get("ResourceRecord")]


def ensure_certificate(acm, route53, changes, name, *, domain, zone_id, wait_timeout):
    """The stack's ACM certificate for ``domain``, requested if missing, its validation record
    put in the hosted zone ``zone_id``, waited for until ACM has issued it (it checks through
    public DNS: the zone must be delegated). Returns the described certificate ({} in check
    mode for a new one)."""
    module = changes.module
    step = "find"
    try:
        found = find_certificate(acm, module, name, domain)
        if found is None:
            changes.record(f"request an ACM certificate for {domain} in {CERTIFICATE_REGION}",
                           f"certificate {domain}", "absent", "requested")
            if changes.check_mode:
                return {}
            step = "request"
            arn = acm.request_certificate(
                DomainName=domain, ValidationMethod="DNS", IdempotencyToken=_client_token(name, domain),
                Options={"CertificateTransparencyLoggingPreference": "ENABLED"},
                Tags=_tag_list(name),
                aws_retry=True,
            )["CertificateArn"]
        else:
            arn = found["CertificateArn"]
        step = "read the validation record of"
        wait_for(acm, "certificate_validation_record_known", delay=5, max_attempts=24, spec=RECORD_KNOWN,
                 CertificateArn=arn)
        certificate = acm.describe_certificate(CertificateArn=arn, aws_retry=True)["Certificate"]
        step = "publish the validation record of"
        for record in validation_records(certificate):
            ensure_cname(route53, changes, name, zone_id=zone_id, record=record)
        if certificate["Status"] != "ISSUED":
            step = "wait for ACM to validate"
            if changes.check_mode:
                return certificate
            wait_for(acm, "certificate_validated", delay=15, max_attempts=max(1, wait_timeout // 15),
                     CertificateArn=arn)
            certificate = acm.describe_certificate(CertificateArn=arn, aws_retry=True)["Certificate"]
        return certificate
    except botocore.exceptions.WaiterError as e:
        module.fail_json(msg=(
            f"ACM has not validated the certificate of {domain!r} (stack {name!r}) within {wait_timeout} s "
            f"({e.last_response.get('Certificate', {}).get('Status', 'status unknown') if e.last_response else e}): "
            "its validation record is in the hosted zone, and ACM looks it up through public DNS, so the zone's "
            "parent (the domain's registrar) must delegate to the zone's name servers; run again once it does "
            "(cdn_wait_timeout, livestream_cdn_wait_seconds, waits longer)"))
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        module.fail_json_aws(e, msg=f"Failed to {step} the ACM certificate of {domain!r} (stack {name!r})")
    return None


def ensure_cname(route53, changes, name, *, zone_id, record):
    """The CNAME ``record`` ({Name, Value}) in the zone (ACM's validation record)."""
    current = find_record(route53, zone_id, record["Name"], "CNAME")
    values = [value["Value"] for value in (current or {}).get("ResourceRecords", [])]
    if values != [record["Value"]]:
        changes.record(f"publish the validation record {record['Name'].rstrip('.')}",
                       f"{record['Name'].rstrip('.')} CNAME", values, [record["Value"]])
        if not changes.check_mode:
            change_records(route53, zone_id, name, [{"Action": "UPSERT", "ResourceRecordSet": {
                "Name": record["Name"], "Type": "CNAME", "TTL": 300, "ResourceRecords": [{"Value": record["Value"]}]}}],
                "the CDN certificate's validation record")


# ---- the distribution ------------------------------------------------------------------

def find_distribution(cloudfront, module, name):
    """The stack's distribution (summary: Id, ARN, DomainName, Status, ...), or None: by its
    comment, confirmed by its Stack tag."""
    summaries = paginate(cloudfront, "list_distributions", "DistributionList.Items")
    ours = []
    for summary in summaries:
        if summary.get("Comment") != comment(name):
            continue
        tags = cloudfront.list_tags_for_resource(Resource=summary["ARN"], aws_retry=True)["Tags"].get("Items", [])
        if _is_the_stacks(tags, name):
            ours.append(summary)
    return only_one(module, ours, "Id", f"CloudFront distributions of stack {name!r}",
                    fix="disable and delete the ones the domain does not point at")


def ensure_distribution(cloudfront, changes, name, *, config, wait_timeout):
    """The stack's distribution holding ``config`` (``distribution_config``), made or brought in
    line, then waited for until CloudFront has deployed it. Returns its summary (Id, DomainName,
    ...; None in check mode for a new one)."""
    module = changes.module
    step = "find"
    try:
        found = find_distribution(cloudfront, module, name)
        if found is None:
            changes.record(f"create CloudFront distribution for {config['Aliases']['Items'][0]}",
                           "distribution", None, shown(config))
            if changes.check_mode:
                return None
            step = "create"
            made = cloudfront.create_distribution_with_tags(
                DistributionConfigWithTags={"DistributionConfig": config, "Tags": {"Items": _tag_list(name)}},
                aws_retry=True
            )["Distribution"]
            distribution_id = made["Id"]
        else:
            distribution_id = found["Id"]
            step = "read"
            answer = cloudfront.get_distribution_config(Id=distribution_id, aws_retry=True)
            current = answer["DistributionConfig"]
            # the caller reference is fixed at creation: one made by hand keeps its own
            wanted = {key: value for key, value in config.items() if key != "CallerReference"}
            changed = differences(wanted, current)
            if changed:
                changes.record(f"update CloudFront distribution {distribution_id} ({', '.join(changed)})",
                               "distribution", shown({path: value_at(current, path) for path in changed}),
                               shown({path: value_at(wanted, path) for path in changed}))
                if not changes.check_mode:
                    step = "update"
                    cloudfront.update_distribution(Id=distribution_id, IfMatch=answer["ETag"],
                                                   DistributionConfig=merged(current, wanted), aws_retry=True)
        if changes.check_mode:
            return found
        step = "wait for CloudFront to deploy"
        wait_for(cloudfront, "distribution_deployed", delay=20, max_attempts=max(1, wait_timeout // 20),
                 Id=distribution_id)
        return cloudfront.get_distribution(Id=distribution_id, aws_retry=True)["Distribution"]
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError, botocore.exceptions.WaiterError) as e:
        module.fail_json_aws(e, msg=f"Failed to {step} the CloudFront distribution of stack {name!r}")
    return None


def ensure_alias(route53, changes, name, *, zone_id, domain, target):
    """The A record ``domain`` as an alias of the distribution whose name is ``target``
    (replacing a plain A record, the frontend's address, in the same change)."""
    current = find_record(route53, zone_id, domain, "A")
    alias = (current or {}).get("AliasTarget", {})
    wanted = (target or "").rstrip(".").lower()
    if alias.get("DNSName", "").rstrip(".").lower() != wanted or not wanted:
        before = alias.get("DNSName") or [value["Value"] for value in (current or {}).get("ResourceRecords", [])]
        changes.record(f"point {domain} at the CloudFront distribution {target or ''}".rstrip(),
                       f"{domain} A", before, f"alias {target}")
        if not changes.check_mode:
            # a plain record (to the frontend's address) is replaced in the same batch
            replaced = [{"Action": "DELETE", "ResourceRecordSet": current}] if current and not alias else []
            change_records(route53, zone_id, name, replaced + [{
                "Action": "CREATE" if replaced else "UPSERT",
                "ResourceRecordSet": {"Name": domain, "Type": "A", "AliasTarget": {
                    "HostedZoneId": CLOUDFRONT_ZONE_ID, "DNSName": target, "EvaluateTargetHealth": False}}}],
                "the viewers' name, to the CDN")


# ---- removal ---------------------------------------------------------------------------

def remove_cdn(cloudfront, acm, route53, changes, name, *, domain, zone_id, wait_timeout):
    """Remove the stack's CDN, in the order AWS requires: the viewers' alias (only while it
    points at the stack's distribution: a name left pointing at a deleted distribution could be
    claimed by another account's), the distribution (disabled, deployed so, then deleted), the
    certificate (once no distribution uses it) and its validation records. What is not there
    is skipped; ``zone_id`` None: no record to look at."""
    module = changes.module
    step = "find the CloudFront distribution"
    try:
        found = find_distribution(cloudfront, module, name)
        if found is not None and zone_id:
            step = f"remove the alias {domain}"
            current = find_record(route53, zone_id, domain, "A")
            target = (current or {}).get("AliasTarget", {}).get("DNSName", "").rstrip(".").lower()
            if current and target == found["DomainName"].rstrip(".").lower():
                changes.record(f"delete the alias {domain} of the CloudFront distribution {found['Id']}",
                               f"{domain} A", f"alias {target}", "absent")
                if not changes.check_mode:
                    change_records(route53, zone_id, name, [{"Action": "DELETE", "ResourceRecordSet": current}],
                                   "the viewers' name, CDN removed")
        if found is not None:
            step = f"remove the CloudFront distribution {found['Id']}"
            _remove_distribution(cloudfront, changes, found, wait_timeout)
        step = "find the ACM certificate"
        certificate = find_certificate(acm, module, name, domain)
        if certificate is not None:
            arn = certificate["CertificateArn"]
            step = f"remove the validation records of {arn}"
            described = acm.describe_certificate(CertificateArn=arn, aws_retry=True)["Certificate"]
            for record in validation_records(described) if zone_id else []:
                current = find_record(route53, zone_id, record["Name"], "CNAME")
                if current and [value["Value"] for value in current.get("ResourceRecords", [])] == [record["Value"]]:
                    changes.record(f"delete the validation record {record['Name'].rstrip('.')}",
                                   f"{record['Name'].rstrip('.')} CNAME", [record["Value"]], "absent")
                    if not changes.check_mode:
                        change_records(route53, zone_id, name, [{"Action": "DELETE", "ResourceRecordSet": current}],
                                       "the CDN certificate's validation record")
            step = f"delete the ACM certificate {arn}"
            changes.record(f"delete the ACM certificate of {domain}", f"certificate {domain}", arn, "absent")
            if not changes.check_mode:
                # a distribution just deleted still holds it for a while: retried (client)
                acm.delete_certificate(CertificateArn=arn, aws_retry=True)
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError, botocore.exceptions.WaiterError) as e:
        module.fail_json_aws(e, msg=f"Failed to {step} (stack {name!r})")


def _remove_distribution(cloudfront, changes, found, wait_timeout):
    """Disable the distribution, wait until CloudFront has deployed that, delete it."""
    distribution_id = found["Id"]
    answer = cloudfront.get_distribution_config(Id=distribution_id, aws_retry=True)
    if answer["DistributionConfig"]["Enabled"]:
        changes.record(f"disable CloudFront distribution {distribution_id}", f"distribution {distribution_id}",
                       "enabled", "disabled")
        if changes.check_mode:
            return
        answer = cloudfront.update_distribution(
            Id=distribution_id, IfMatch=answer["ETag"], aws_retry=True,
            DistributionConfig=dict(answer["DistributionConfig"], Enabled=False))
    changes.record(f"delete CloudFront distribution {distribution_id}", f"distribution {distribution_id}",
                   "disabled", "absent")
    if changes.check_mode:
        return
    wait_for(cloudfront, "distribution_deployed", delay=20, max_attempts=max(1, wait_timeout // 20), Id=distribution_id)
    etag = cloudfront.get_distribution(Id=distribution_id, aws_retry=True)["ETag"]
    cloudfront.delete_distribution(Id=distribution_id, IfMatch=etag, aws_retry=True)
