"""The deployer's IAM policy (docs/iam/livestream-deployer.json) is enough and every action in
it is needed: provision, the inventory and teardown run as an IAM user holding only that
policy, with moto's IAM enforcement on; without one of its actions provisioning fails naming it.

moto evaluates a policy's actions, not its resources or conditions (it would refuse every
statement with a condition), so the user gets the policy's actions on every resource. What the
conditions ask of the calls is checked from the calls themselves: every create call tags what it
makes with the stack, and every later call names only resources tagged with it."""

from __future__ import annotations

import base64
import json
import re
import urllib.parse

import boto3
import pytest

from conftest import observer
from livestream_testing import ROOT
from provisioning import (CDN, COMPLETE, LAUNCHING_TASK, PROVISION, TEARDOWN, ZONE, Inventory, census, counts,
                          stack_vars)

POLICY = json.loads((ROOT / "docs" / "iam" / "livestream-deployer.json").read_text())

# Route 53's REST calls, by method and path, as the IAM actions they are
ROUTE53_ACTIONS = (
    ("GET", r"/2013-04-01/hostedzonesbyname", "route53:ListHostedZonesByName"),
    ("POST", r"/2013-04-01/hostedzone", "route53:CreateHostedZone"),
    ("GET", r"/2013-04-01/hostedzone/[^/]+", "route53:GetHostedZone"),
    ("DELETE", r"/2013-04-01/hostedzone/[^/]+", "route53:DeleteHostedZone"),
    ("GET", r"/2013-04-01/hostedzone/[^/]+/rrset/?", "route53:ListResourceRecordSets"),
    ("POST", r"/2013-04-01/hostedzone/[^/]+/rrset/?", "route53:ChangeResourceRecordSets"),
    ("GET", r"/2013-04-01/tags/hostedzone/[^/]+", "route53:ListTagsForResource"),
    ("POST", r"/2013-04-01/tags/hostedzone/[^/]+", "route53:ChangeTagsForResource"),
    ("GET", r"/2013-04-01/change/[^/]+", "route53:GetChange"),
)
# CloudFront's REST calls, likewise (the query string told apart where the path is the same)
CLOUDFRONT_ACTIONS = (
    ("GET", r"/2020-05-31/distribution", "", "cloudfront:ListDistributions"),
    ("POST", r"/2020-05-31/distribution", "WithTags", "cloudfront:CreateDistributionWithTags"),
    ("GET", r"/2020-05-31/distribution/[^/]+", "", "cloudfront:GetDistribution"),
    ("GET", r"/2020-05-31/distribution/[^/]+/config", "", "cloudfront:GetDistributionConfig"),
    ("PUT", r"/2020-05-31/distribution/[^/]+/config", "", "cloudfront:UpdateDistribution"),
    ("DELETE", r"/2020-05-31/distribution/[^/]+", "", "cloudfront:DeleteDistribution"),
    ("GET", r"/2020-05-31/tagging", "Resource", "cloudfront:ListTagsForResource"),
)
# in the policy for paths this run does not take: a zone given by the user (no change to wait
# for in moto, which applies changes at once), an instance found stopped, a NAT route to replace,
# an instance whose metadata options or groups drifted
OTHER_PATHS = {"ec2:DescribeAvailabilityZones", "ec2:StartInstances", "ec2:ReplaceRoute",
               "ec2:ModifyInstanceMetadataOptions", "route53:GetChange",
               # a frontend from before the origin group is put in it
               "ec2:ModifyNetworkInterfaceAttribute",
               # what AWS (not moto) also asks of a create call that tags: RequestCertificate with
               # Tags is AddTagsToCertificate too, CreateDistributionWithTags is CreateDistribution
               # and TagResource (the Service Authorization Reference)
               "acm:AddTagsToCertificate", "cloudfront:CreateDistribution", "cloudfront:TagResource"}
# what each create call makes, by TagSpecification resource type
MAKES = {
    "CreateVpc": {"vpc"}, "CreateSubnet": {"subnet"}, "CreateInternetGateway": {"internet-gateway"},
    "CreateRouteTable": {"route-table"}, "CreateSecurityGroup": {"security-group"},
    "AllocateAddress": {"elastic-ip"}, "ImportKeyPair": {"key-pair"},
    "RunInstances": {"instance", "volume", "network-interface"},
}
EC2_ID = re.compile(r"^(vpc|subnet|igw|rtb|sg|i|eipalloc|eni)-[0-9a-f]+$")


def policy_actions(policy):
    return {action for statement in policy["Statement"] for action in statement["Action"]}


def as_moto_evaluates(policy, without=None):
    """The policy's actions (less ``without``) on every resource, without its conditions."""
    return {"Version": policy["Version"], "Statement": [
        {"Effect": "Allow", "Action": sorted(policy_actions(policy) - {without}), "Resource": "*"}]}


@pytest.fixture
def deployer(aws, ansible, monkeypatch):
    """Makes an IAM user holding a policy, signs the playbooks' calls with its key and turns
    moto's IAM enforcement on; an administrator's clients read the account meanwhile."""
    iam = observer(aws, "iam")
    keys = {}

    def user(name, policy):
        iam.create_user(UserName=name)
        iam.put_user_policy(UserName=name, PolicyName="livestream", PolicyDocument=json.dumps(policy))
        keys[name] = iam.create_access_key(UserName=name)["AccessKey"]

    def holding(policy):
        user("lab-admin", {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})
        user("deployer", policy)
        for variable, field in (("AWS_ACCESS_KEY_ID", "AccessKeyId"), ("AWS_SECRET_ACCESS_KEY", "SecretAccessKey")):
            monkeypatch.setenv(variable, keys["deployer"][field])
            ansible.env[variable] = keys["deployer"][field]
        aws.enforce_iam()

    def admin(service):
        return boto3.client(service, endpoint_url=aws.url, aws_access_key_id=keys["lab-admin"]["AccessKeyId"],
                            aws_secret_access_key=keys["lab-admin"]["SecretAccessKey"])

    holding.admin = admin
    holding.access_key_id = lambda: keys["deployer"]["AccessKeyId"]
    try:
        yield holding
    finally:
        aws.enforce_iam(False)


def _calls(recording, access_key_id):
    """(action, parameters) of each recorded call signed with ``access_key_id``."""
    for entry in recording:
        if f"Credential={access_key_id}/" not in entry["headers"].get("Authorization", ""):
            continue
        body = entry.get("body") or ""
        if entry.get("body_encoded"):
            body = base64.b64decode(body).decode()
        params = urllib.parse.parse_qs(body) if isinstance(body, str) and "Action=" in body else {}
        if params:
            yield "ec2:" + params.pop("Action")[0], {k: v[0] for k, v in params.items()}
            continue
        target = entry["headers"].get("X-Amz-Target", "")
        if target.startswith("CertificateManager."):
            yield "acm:" + target.split(".", 1)[1], {}
            continue
        url = urllib.parse.urlparse(entry["url"])
        path = url.path
        action = next((a for method, pattern, a in ROUTE53_ACTIONS
                       if method == entry["method"] and re.fullmatch(pattern, path)), None)
        action = action or next((a for method, pattern, query, a in CLOUDFRONT_ACTIONS
                                 if method == entry["method"] and re.fullmatch(pattern, path)
                                 and query == url.query.split("=")[0]), None)
        assert action, f"a call the test cannot name: {entry['method']} {path}"
        yield action, {}


def _tagged_on_create(params):
    """The TagSpecification resource types of a create call that carry a Stack tag."""
    types = {key: value for key, value in params.items() if re.fullmatch(r"TagSpecification\.\d+\.ResourceType", key)}
    return {kind for key, kind in types.items()
            if "Stack" in {v for k, v in params.items() if k.startswith(key.rsplit(".", 1)[0] + ".Tag.") and k.endswith(".Key")}}


def test_the_deployer_policy_is_enough_and_every_action_in_it_is_needed(
        aws, deployer, ansible, tmp_path, cloudfront_deploys):
    # with the CDN: its security group rule, certificate and distribution are made and removed too
    stack = stack_vars(tmp_path, livestream_cdn="cloudfront")
    deployer(as_moto_evaluates(POLICY))
    admin_ec2 = deployer.admin("ec2")
    aws.start_recording()

    created = ansible.playbook(PROVISION, extra_vars=stack)
    assert created.returncode == 0, created.stdout[-3000:]
    assert counts(admin_ec2, "live") == COMPLETE
    groups = Inventory(tmp_path).list({"stack_name": "live"})
    assert [len(groups[role]["hosts"]) for role in ("bastion", "frontend", "backend")] == [1, 1, 1]
    # the other CPU credit option: the running instances changed in place
    changed = ansible.playbook(PROVISION, extra_vars={**stack, "livestream_cpu_credits": "standard"})
    assert changed.returncode == 0 and changed.changed() == 1, changed.stdout[-3000:]
    # the zone delegated, as its registrar would: ACM validates the CDN's certificate through it
    zone_id = created.task(LAUNCHING_TASK[PROVISION])["dns"]["hosted_zone_id"]
    aws.delegate({ZONE: deployer.admin("route53").get_hosted_zone(Id=zone_id)["DelegationSet"]["NameServers"]})
    cdn = ansible.playbook(CDN, extra_vars=stack)
    assert cdn.returncode == 0 and cdn.changed() == 1, cdn.stdout[-3000:]
    tagged = {t["ResourceId"] for t in admin_ec2.describe_tags(Filters=[{"Name": "key", "Values": ["Stack"]}])["Tags"]}
    removed = ansible.playbook(TEARDOWN, extra_vars=stack)
    assert removed.returncode == 0, removed.stdout[-3000:]
    assert {kind: ids for kind, ids in census(admin_ec2, "live").items() if ids} == {}

    calls = list(_calls(aws.stop_recording(), deployer.access_key_id()))
    made = {call[0] for call in calls}
    # every action the run made is in the policy (or it would have been refused), and every
    # action of the policy is made, here or on a path named in OTHER_PATHS
    assert made <= policy_actions(POLICY)
    assert policy_actions(POLICY) - made == OTHER_PATHS
    for action, params in calls:
        name = action.split(":")[1]
        if name in MAKES:  # CreateOnlyTaggedWithAStack: aws:RequestTag/Stack on each new resource
            assert _tagged_on_create(params) == MAKES[name], (action, params)
        elif not name.startswith("Describe"):  # ...ResourceTag/Stack: only the stack's resources named
            named = {value for value in params.values() if EC2_ID.match(value)}
            assert named <= tagged, (action, named - tagged)


def test_without_one_action_of_the_policy_provisioning_fails_naming_it(aws, deployer, ansible, tmp_path):
    deployer(as_moto_evaluates(POLICY, without="ec2:AuthorizeSecurityGroupIngress"))
    failed = ansible.playbook(PROVISION, extra_vars=stack_vars(tmp_path))
    assert failed.returncode != 0
    (message,) = failed.failure_messages()
    assert "not authorized to perform: ec2:AuthorizeSecurityGroupIngress" in message
    # and it says what the run made before it stopped, and how to go on
    assert "create VPC live-vpc" in message and "run teardown" in message, message
