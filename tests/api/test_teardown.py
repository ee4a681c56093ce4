"""playbooks/teardown.yml against a real moto server: everything of the stack goes, in
dependency order, and nothing else does."""

from __future__ import annotations

from collections import Counter

from provisioning import COMPLETE, PROVISION, TEARDOWN, ZONE, a_records, census, counts, route53, stack_vars


# what a whole stack is, as teardown reports it (the rules by which groups refer to each
# other go first: AWS refuses to delete a group another group's rule names)
EVERYTHING = {
    "dns_record": 1, "hosted_zone": 1, "elastic_ip": 1, "instance": 3, "route_table": 2,
    "security_group_rules": 2, "security_group": 4, "internet_gateway": 1, "subnet": 2, "vpc": 1, "key_pair": 1,
}


def removed_of(result):
    return result.task("Remove every resource of the stack")["removed"]


def tagged_with(ec2, name):
    """Every EC2 resource that still exists and carries Stack=<name>, by kind.

    (Read kind by kind: moto's describe_tags still lists the tags of deleted resources.)"""
    tagged = [{"Name": "tag:Stack", "Values": [name]}]
    left = {kind: ids for kind, ids in census(ec2, name).items() if ids}
    volumes = [v["VolumeId"] for v in ec2.describe_volumes(Filters=tagged)["Volumes"]]
    if volumes:
        left["volume"] = volumes
    return left


def test_removes_everything_of_the_stack_in_dependency_order(ec2, aws, ansible, tmp_path):
    stack = stack_vars(tmp_path)
    assert ansible.playbook(PROVISION, extra_vars=stack).returncode == 0

    result = ansible.playbook(TEARDOWN, extra_vars=stack)

    assert result.returncode == 0, result.stdout[-3000:]
    assert tagged_with(ec2, "live") == {}
    assert route53(aws).list_hosted_zones()["HostedZones"] == [], "the zone the stack created goes with it"
    removed = removed_of(result)
    assert Counter(r["kind"] for r in removed) == EVERYTHING
    order = [r["kind"] for r in removed]
    first = {kind: order.index(kind) for kind in order}
    last = {kind: len(order) - 1 - order[::-1].index(kind) for kind in order}
    assert last["dns_record"] < first["elastic_ip"]
    assert last["elastic_ip"] < first["instance"]
    assert last["instance"] < first["route_table"] and last["instance"] < first["security_group"]
    assert last["security_group_rules"] < first["security_group"]
    assert last["internet_gateway"] < first["vpc"] and last["subnet"] < first["vpc"]


def test_check_mode_lists_what_would_go_and_removes_nothing(ec2, ansible, tmp_path):
    stack = stack_vars(tmp_path)
    assert ansible.playbook(PROVISION, extra_vars=stack).returncode == 0

    result = ansible.playbook(TEARDOWN, check=True, extra_vars=stack)

    assert result.returncode == 0, result.stdout[-3000:]
    assert result.changed() == 1
    assert Counter(r["kind"] for r in removed_of(result)) == EVERYTHING
    assert counts(ec2, "live") == COMPLETE


def test_a_stack_that_is_gone_changes_nothing(ec2, ansible, tmp_path):
    result = ansible.playbook(TEARDOWN, extra_vars=stack_vars(tmp_path))

    assert result.returncode == 0, result.stdout[-3000:]
    assert result.changed() == 0
    assert removed_of(result) == []


def test_a_zone_the_stack_did_not_create_stays(ec2, aws, ansible, tmp_path):
    r53 = route53(aws)
    zone_id = r53.create_hosted_zone(Name=ZONE, CallerReference="the-user-s-own-zone")["HostedZone"]["Id"]
    stack = stack_vars(tmp_path, livestream_create_hosted_zone=False)
    assert ansible.playbook(PROVISION, extra_vars=stack).returncode == 0
    assert list(a_records(r53, "live.example.test")) == [ZONE]

    result = ansible.playbook(TEARDOWN, extra_vars=stack)

    assert result.returncode == 0, result.stdout[-3000:]
    assert [z["Id"] for z in r53.list_hosted_zones()["HostedZones"]] == [zone_id]
    assert a_records(r53, "live.example.test") == {}, "the record that pointed at the stack goes"


def test_teardown_without_domain_or_zone_removes_the_record_the_stack_made(ec2, aws, ansible, tmp_path):
    # provisioned under the user's own zone; torn down as the README shows it, with only the stack
    # named (the playbook's defaults then name another domain and zone)
    stack = stack_vars(tmp_path, livestream_hosted_zone="example.org", livestream_domain="tv.example.org")
    assert ansible.playbook(PROVISION, extra_vars=stack).returncode == 0
    r53 = route53(aws)
    assert list(a_records(r53, "tv.example.org")) == ["example.org"]
    address = ec2.describe_addresses(Filters=[{"Name": "tag:Stack", "Values": ["live"]}])["Addresses"][0]
    assert {t["Key"]: t["Value"] for t in address["Tags"]}["DnsRecord"] == "tv.example.org"
    only_the_name = {"livestream_stack_name": "live"}

    checked = ansible.playbook(TEARDOWN, check=True, extra_vars=only_the_name)
    assert checked.returncode == 0, checked.stdout[-3000:]
    assert {"kind": "dns_record", "id": "tv.example.org", "name": None} in removed_of(checked)

    result = ansible.playbook(TEARDOWN, extra_vars=only_the_name)

    assert result.returncode == 0, result.stdout[-3000:]
    assert a_records(r53, "tv.example.org") == {}
    kinds = [r["kind"] for r in removed_of(result)]
    assert kinds.index("dns_record") < kinds.index("elastic_ip")
    assert tagged_with(ec2, "live") == {}


def test_an_elastic_ip_a_record_still_points_at_is_not_released(ec2, aws, ansible, tmp_path):
    stack = stack_vars(tmp_path)
    assert ansible.playbook(PROVISION, extra_vars=stack).returncode == 0
    r53 = route53(aws)
    zone_id = r53.list_hosted_zones()["HostedZones"][0]["Id"]
    (public_ip,) = a_records(r53, "live.example.test")[ZONE]
    # someone else made the record point at another address too: it is not the stack's alone
    r53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": [{"Action": "UPSERT", "ResourceRecordSet": {
        "Name": "live.example.test", "Type": "A", "TTL": 300,
        "ResourceRecords": [{"Value": public_ip}, {"Value": "192.0.2.10"}]}}]})

    result = ansible.playbook(TEARDOWN, extra_vars=stack)

    assert result.returncode == 0, result.stdout[-3000:]
    kept = result.task("Remove every resource of the stack")["kept"]
    assert any(public_ip in note and "still points at it" in note for note in kept), kept
    assert [a["PublicIp"] for a in ec2.describe_addresses()["Addresses"]] == [public_ip]
