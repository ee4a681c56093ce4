"""The security groups' ingress (module_utils/security_groups.py): what each role lets in, what
a group has, and what brings one to the other."""

from __future__ import annotations

from ansible_collections.livestream.aws.plugins.module_utils.security_groups import (
    current_rules, describe_rule, group_references, groups_of, rule_changes, to_permission, wanted_rules)

GROUPS = {"bastion": "sg-b", "frontend": "sg-f", "backend": "sg-k"}
PRIVATE = "10.0.2.0/24"


def wanted(admin_cidrs=("203.0.113.7/32",), ingest_cidrs=None, ingest_port=1936):
    access = {"admin_cidrs": list(admin_cidrs), "ingest_cidrs": ingest_cidrs, "ingest_port": ingest_port}
    return wanted_rules(access, PRIVATE, GROUPS)


def group(*permissions):
    return {"GroupId": "sg-f", "IpPermissions": list(permissions)}


def test_each_role_lets_in_only_what_it_serves():
    rules = wanted()
    assert set(rules["bastion"]) == {("tcp", 22, 22, "cidr", "203.0.113.7/32"), ("-1", None, None, "cidr", PRIVATE)}
    assert set(rules["frontend"]) == {
        ("tcp", 80, 80, "cidr", "0.0.0.0/0"), ("tcp", 443, 443, "cidr", "0.0.0.0/0"),
        ("tcp", 1935, 1935, "group", "sg-k"), ("tcp", 22, 22, "group", "sg-b"),
        ("tcp", 1936, 1936, "cidr", "203.0.113.7/32"),
        # the metrics the backend and the bastion push: they take no connection for them
        ("tcp", 9101, 9101, "group", "sg-k"), ("tcp", 9101, 9101, "group", "sg-b"),
    }
    assert set(rules["backend"]) == {("tcp", 22, 22, "group", "sg-b")}
    assert rules["frontend"][("tcp", 1935, 1935, "group", "sg-k")] == "RTMP from the backend"


def test_ssh_to_the_bastion_from_each_admin_cidr():
    rules = wanted(["203.0.113.7/32", "198.51.100.0/24"])["bastion"]
    assert {rule[4] for rule in rules if rule[1] == 22} == {"203.0.113.7/32", "198.51.100.0/24"}


def test_rtmps_from_the_ingest_cidrs_else_the_admin_cidrs():
    def ingest(rules):
        return {(rule[1], rule[4]) for rule, why in rules["frontend"].items() if why == "RTMPS from encoders"}
    assert ingest(wanted()) == {(1936, "203.0.113.7/32")}
    assert ingest(wanted(ingest_cidrs=["0.0.0.0/0"], ingest_port=443 + 1)) == {(444, "0.0.0.0/0")}
    # plain RTMP stays the backend's alone, whoever may publish over RTMPS
    assert {rule for rule in wanted(ingest_cidrs=["0.0.0.0/0"])["frontend"] if rule[1] == 1935} == {
        ("tcp", 1935, 1935, "group", "sg-k")}


def test_a_groups_rules_each_with_its_description():
    found = current_rules(group(
        {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "0.0.0.0/0", "Description": "HTTP"}],
         "Ipv6Ranges": [{"CidrIpv6": "::/0"}]},
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "UserIdGroupPairs": [{"GroupId": "sg-b", "UserId": "123"}]},
        {"IpProtocol": "-1", "FromPort": -1, "ToPort": -1, "PrefixListIds": [{"PrefixListId": "pl-1"}]},
    ))
    assert found == {
        ("tcp", 80, 80, "cidr", "0.0.0.0/0"): "HTTP",
        ("tcp", 80, 80, "cidr6", "::/0"): None,
        ("tcp", 22, 22, "group", "sg-b"): None,
        ("-1", None, None, "prefix", "pl-1"): None,
    }


def test_a_group_in_line_needs_nothing():
    rules = wanted()["backend"]
    current = current_rules(group({"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
                                   "UserIdGroupPairs": [{"GroupId": "sg-b", "Description": "SSH through the bastion"}]}))
    assert rule_changes(rules, current) == ([], [])


def test_what_is_missing_is_added_and_what_is_extra_revoked():
    rules = wanted()["backend"]
    current = current_rules(group(
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
        {"IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]},
    ))
    missing, extra = rule_changes(rules, current)
    assert missing == [("tcp", 22, 22, "group", "sg-b")]
    assert extra == [("tcp", 22, 22, "cidr", "0.0.0.0/0"), ("tcp", 8080, 8080, "cidr", "10.0.0.0/8")]


def test_a_new_group_has_every_rule_to_add():
    missing, extra = rule_changes(wanted()["frontend"], current_rules({"GroupId": None, "IpPermissions": []}))
    assert len(missing) == 7 and extra == []


def test_a_rule_as_the_api_takes_it():
    assert to_permission(("tcp", 22, 22, "cidr", "203.0.113.7/32"), "SSH") == {
        "IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "203.0.113.7/32", "Description": "SSH"}]}
    assert to_permission(("-1", None, None, "group", "sg-b")) == {"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": "sg-b"}]}
    assert to_permission(("tcp", 1, 2, "cidr6", "::/0"))["Ipv6Ranges"] == [{"CidrIpv6": "::/0"}]
    assert to_permission(("tcp", 1, 2, "prefix", "pl-1"))["PrefixListIds"] == [{"PrefixListId": "pl-1"}]


def test_a_rule_read_back_is_the_rule():
    for rule, description in wanted()["frontend"].items():
        assert current_rules(group(to_permission(rule, description))) == {rule: description}


def test_only_the_rules_that_name_groups_must_go_before_the_groups():
    references = group_references(group(
        {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
        {"IpProtocol": "tcp", "FromPort": 1935, "ToPort": 1935,
         "UserIdGroupPairs": [{"GroupId": "sg-k", "UserId": "123", "Description": "RTMP from the backend"}]},
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "UserIdGroupPairs": [{"GroupId": "sg-b"}],
         "IpRanges": [{"CidrIp": "198.51.100.0/24"}]},
    ))
    assert references == [
        {"IpProtocol": "tcp", "FromPort": 1935, "ToPort": 1935,
         "UserIdGroupPairs": [{"GroupId": "sg-k", "Description": "RTMP from the backend"}]},
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "UserIdGroupPairs": [{"GroupId": "sg-b"}]},
    ]


def test_a_rule_in_words_names_the_group_it_lets_in():
    names = {"sg-b": "live-bastion"}
    assert describe_rule(("tcp", 22, 22, "group", "sg-b"), names) == "tcp 22 from live-bastion"
    assert describe_rule(("tcp", 22, 22, "group", None), names) == "tcp 22 from a group to be created"
    assert describe_rule(("-1", None, None, "cidr", PRIVATE), names) == f"all traffic from {PRIVATE}"


def test_behind_a_cdn_https_comes_from_its_prefix_list_alone_in_a_group_of_its_own():
    access = {"admin_cidrs": ["203.0.113.7/32"], "ingest_cidrs": None, "ingest_port": 1936}
    plain = wanted_rules(access, PRIVATE, {**GROUPS, "origin": "sg-o"})
    assert plain["origin"] == {} and ("tcp", 443, 443, "cidr", "0.0.0.0/0") in plain["frontend"]
    behind = wanted_rules(access, PRIVATE, {**GROUPS, "origin": "sg-o"}, cdn_prefix_list="pl-cf")
    assert behind["origin"] == {("tcp", 443, 443, "prefix", "pl-cf"): "HTTPS from the CDN"}
    # the frontend's own group: no HTTPS from anywhere; HTTP stays, for Let's Encrypt
    assert not [rule for rule in behind["frontend"] if rule[1] == 443]
    assert ("tcp", 80, 80, "cidr", "0.0.0.0/0") in behind["frontend"]


def test_the_frontend_is_in_its_group_and_the_origin_group_the_others_in_theirs():
    ids = {**GROUPS, "origin": "sg-o"}
    assert groups_of("frontend", ids) == ["sg-f", "sg-o"]
    assert groups_of("backend", ids) == ["sg-k"]
    # the origin group not made yet (check mode): the frontend's own
    assert groups_of("frontend", {**GROUPS, "origin": None}) == ["sg-f"]
