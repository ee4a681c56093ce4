"""What teardown looks at before it removes anything (module_utils/teardown.py): the A records
that may point at the stack, and the stack's public addresses."""

from __future__ import annotations

from ansible_collections.livestream.aws.plugins.module_utils.teardown import records_of, stack_addresses


def address(public_ip, **tags):
    return {"PublicIp": public_ip, "AllocationId": "eipalloc-1", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}


def stack(addresses=(), instances=()):
    return {"addresses": list(addresses), "instances": list(instances)}


def test_the_record_given_and_those_noted_on_the_elastic_ips_each_once():
    found = stack([address("198.51.100.7", DnsRecord="Live.Example.com.", DnsZone="example.com"),
                   address("198.51.100.8", DnsRecord="tv.example.org", DnsZone="example.org"),
                   address("198.51.100.9", DnsRecord="half.example.org")])
    assert records_of(found, "live.example.com", "Example.com") == [
        ("live.example.com", "example.com"), ("tv.example.org", "example.org")]
    assert records_of(stack()) == []


def test_the_stacks_public_addresses_are_its_elastic_ips_and_its_instances_public_ips():
    found = stack([address("198.51.100.7")], [{"InstanceId": "i-1", "PublicIpAddress": "198.51.100.20"},
                                              {"InstanceId": "i-2"}])
    assert stack_addresses(found) == {"198.51.100.7", "198.51.100.20"}
