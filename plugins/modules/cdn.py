#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: livestream.aws contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: cdn
version_added: 0.3.0
short_description: A CloudFront distribution in front of a livestream stack's frontend
description:
  - With O(state=present), makes and keeps in line the viewers' CDN of the stack O(name) - an ACM
    certificate for O(domain) in us-east-1 (the only region CloudFront takes certificates from),
    validated through its DNS record in the hosted zone O(hosted_zone); a CloudFront distribution
    whose origin is the frontend by its own name, C(origin.<domain>), over HTTPS; and O(domain) as
    an alias of the distribution.
  - "The distribution's cache behaviours - playlists (C(*.m3u8)): the origin's Cache-Control
    honoured up to half a fragment (whole seconds: 0 for fragments under 2 s, each request
    revalidated, simultaneous requests collapsed into one); fragments (C(*.ts)): as the origin
    says, up to a day; the player page and the rest: up to a minute; error answers cached 1 s
    instead of CloudFront's 10 s, so that a playlist missing for a moment (a publisher's
    restart) does not stay missing."
  - Every request to the origin carries the header C(X-Livestream-Origin) with O(origin_secret); the
    frontend (the role's C(frontend_cdn_origin_secret)) answers HLS and page requests only with it.
    The secret is never shown in a diff or a result.
  - ACM validates through public DNS - the hosted zone must be delegated by its parent before the
    certificate is issued; the module waits up to O(wait_timeout) for that, then for CloudFront to
    deploy the distribution.
  - With O(state=absent), removes the alias (only while it points at the stack's distribution),
    the distribution (disabled, then deleted once CloudFront has deployed that), the certificate and
    its validation records. The plain A record of O(domain) and C(origin.<domain>) belong to
    M(livestream.aws.stack_provision).
  - Found by the stack's tag C(Stack=<name>) (and the distribution's comment), as every resource of the
    stack is.
options:
  state:
    description:
      - Whether the CDN should exist.
    type: str
    choices: [present, absent]
    default: present
  origin_secret:
    description:
      - The value of the C(X-Livestream-Origin) header that the distribution sends to the origin.
      - At least 32 characters. Required with O(state=present).
    type: str
  fragment_seconds:
    description:
      - The HLS fragment length in seconds (at least 0.5); playlists are cached for half of it at
        most (CloudFront counts whole seconds, so below 2 s never, every request revalidated and
        simultaneous ones collapsed into one).
    type: float
    default: 0.5
  origin_shield_region:
    description:
      - The region of CloudFront's Origin Shield (a cache layer between the edges and the origin), best
        the stack's own region. Empty - no Origin Shield.
    type: str
    default: ""
  wait_timeout:
    description:
      - How long to wait, in seconds, for ACM to validate the certificate and then for CloudFront to
        deploy the distribution (each).
    type: int
    default: 1800
author:
  - livestream.aws maintainers (@livestream-aws)
extends_documentation_fragment:
  - livestream.aws.stack.name
  - livestream.aws.stack.dns
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Viewers reach live.example.com through CloudFront
  livestream.aws.cdn:
    name: live
    domain: live.example.com
    hosted_zone: example.com
    origin_secret: "{{ lookup('ansible.builtin.password', '~/.livestream.aws/live/cdn-origin-secret', length=40) }}"
    origin_shield_region: eu-west-1

- name: The CDN removed
  livestream.aws.cdn:
    name: live
    domain: live.example.com
    hosted_zone: example.com
    state: absent
"""

RETURN = r"""
distribution:
  description: The distribution (C(id), C(domain_name), C(status)); null in check mode for a new one, or when absent.
  returned: success
  type: dict
  sample: {"id": "E2QWRUHAPOMQZL", "domain_name": "d111111abcdef8.cloudfront.net", "status": "Deployed"}
certificate_arn:
  description: The ACM certificate of the viewers' name; null in check mode for a new one, or when absent.
  returned: success
  type: str
  sample: arn:aws:acm:us-east-1:123456789012:certificate/12345678-1234-1234-1234-123456789012
origin:
  description: The name the distribution reaches the frontend by.
  returned: success
  type: str
  sample: origin.live.example.com
actions:
  description: What was changed (in check mode, what would be), one line each, in order.
  returned: always
  type: list
  elements: str
  sample: ["request an ACM certificate for live.example.com in us-east-1", "create CloudFront distribution for live.example.com"]
"""

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.livestream.aws.plugins.module_utils import options
from ansible_collections.livestream.aws.plugins.module_utils.aws import client
from ansible_collections.livestream.aws.plugins.module_utils.cdn import CERTIFICATE_REGION
from ansible_collections.livestream.aws.plugins.module_utils.cdn import distribution_config
from ansible_collections.livestream.aws.plugins.module_utils.cdn import ensure_alias
from ansible_collections.livestream.aws.plugins.module_utils.cdn import ensure_certificate
from ansible_collections.livestream.aws.plugins.module_utils.cdn import ensure_distribution
from ansible_collections.livestream.aws.plugins.module_utils.cdn import origin_name
from ansible_collections.livestream.aws.plugins.module_utils.cdn import remove_cdn
from ansible_collections.livestream.aws.plugins.module_utils.changes import Changes
from ansible_collections.livestream.aws.plugins.module_utils.publishing import find_hosted_zone
from ansible_collections.livestream.aws.plugins.module_utils.teardown import TEARDOWN_LEFT
from ansible_collections.livestream.aws.plugins.module_utils.validation import cdn_errors
from ansible_collections.livestream.aws.plugins.module_utils.validation import normalize_dns_name


def main():
    module = AnsibleAWSModule(
        argument_spec=options.argument_spec(
            options.NAME, options.DNS,
            state=dict(type="str", choices=["present", "absent"], default="present"),
            origin_secret=dict(type="str", no_log=True),
            fragment_seconds=dict(type="float", default=0.5),
            origin_shield_region=dict(type="str", default=""),
            wait_timeout=dict(type="int", default=1800),
        ),
        required_if=[("state", "present", ["origin_secret"])],
        supports_check_mode=True,
    )
    params = module.params
    name = params["name"]
    domain = normalize_dns_name(params["domain"])
    zone_name = normalize_dns_name(params["hosted_zone"])
    errors = cdn_errors(params)
    if errors:
        module.fail_json(msg="; ".join(errors))

    # CloudFront and Route 53 are global; CloudFront's certificates live in us-east-1
    cloudfront = client(module, "cloudfront")
    acm = client(module, "acm", region=CERTIFICATE_REGION, catch_extra_error_codes=["ResourceInUseException"])
    route53 = client(module, "route53")
    zone_id = find_hosted_zone(module, route53, zone_name)

    if params["state"] == "absent":
        changes = Changes(module, left=TEARDOWN_LEFT)
        remove_cdn(cloudfront, acm, route53, changes, name, domain=domain, zone_id=zone_id,
                   wait_timeout=params["wait_timeout"])
        changes.exit_json(distribution=None, certificate_arn=None, origin=origin_name(domain))

    if zone_id is None:
        module.fail_json(msg=f"hosted zone {zone_name!r} for {domain!r} (stack {name!r}) not found: "
                             "provision the stack first (livestream.aws.stack_provision makes it when asked)")
    changes = Changes(module)
    certificate = ensure_certificate(acm, route53, changes, name, domain=domain, zone_id=zone_id,
                                     wait_timeout=params["wait_timeout"])
    arn = certificate.get("CertificateArn")
    config = distribution_config(
        name, domain=domain, certificate_arn=arn or "", origin_secret=params["origin_secret"],
        fragment_seconds=params["fragment_seconds"], origin_shield_region=params["origin_shield_region"] or None)
    distribution = ensure_distribution(cloudfront, changes, name, config=config, wait_timeout=params["wait_timeout"])
    ensure_alias(route53, changes, name, zone_id=zone_id, domain=domain,
                 target=(distribution or {}).get("DomainName"))
    changes.exit_json(
        distribution={"id": distribution["Id"], "domain_name": distribution["DomainName"],
                      "status": distribution["Status"]} if distribution else None,
        certificate_arn=arn,
        origin=origin_name(domain),
    )


if __name__ == "__main__":
    main()
