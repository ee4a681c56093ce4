# -*- coding: utf-8 -*-
# Copyright: livestream.aws contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""How every livestream.aws module calls AWS: its clients and their retries (throttling, an
ID not known yet, a failed connection), listings, waiters, and the one resource of a kind."""

from __future__ import annotations

import functools
import random
import time

try:
    import botocore.config
    import botocore.exceptions
    import botocore.loaders
    import botocore.waiter
except ImportError:
    pass  # handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

NO_REGION = "no region: set region (livestream_region), AWS_REGION, AWS_DEFAULT_REGION or the profile's region"

# AWS is eventually consistent: for a while after a create call returns, other calls may
# not know the new ID yet (EC2 documents it). Every call and waiter retries these, as it
# retries throttling.
EVENTUALLY_CONSISTENT = [
    "InvalidVpcID.NotFound",
    "InvalidSubnetID.NotFound",
    "InvalidInternetGatewayID.NotFound",
    "InvalidRouteTableID.NotFound",
    "InvalidAssociationID.NotFound",
    "InvalidGroup.NotFound",
    "InvalidAllocationID.NotFound",
    "InvalidInstanceID.NotFound",
    "InvalidNetworkInterfaceID.NotFound",
    "InvalidKeyPair.NotFound",
    "NoSuchHostedZone",
]
THROTTLED = ["RequestLimitExceeded", "Throttling", "ThrottlingException", "PriorRequestNotComplete"]

CONNECTION_RETRIES = 4


def retry_connection_errors(call):
    """``call``, tried again (up to CONNECTION_RETRIES times, from a quarter second up, with
    jitter) when the connection fails or times out, as botocore would have: the collection's
    clients have botocore's own retries off (``client``), so every way they call AWS (the
    client's calls, paginators, waiters) goes through this."""
    @functools.wraps(call)
    def retried(*args, **kwargs):
        for attempt in range(CONNECTION_RETRIES):
            try:
                return call(*args, **kwargs)
            except (botocore.exceptions.ConnectionError, botocore.exceptions.HTTPClientError):
                time.sleep(random.uniform(0, 0.25 * 2 ** attempt))
        return call(*args, **kwargs)
    return retried


def client(module, service, region=None, **retry):
    """A client for ``service`` (in ``region``, else the module's) whose calls made with
    ``aws_retry=True`` back off and retry on throttling and on an ID that is not known yet
    (``retry`` goes to AWSRetry.jittered_backoff, e.g. catch_extra_error_codes)."""
    if not module.region and not region:
        module.fail_json(msg=NO_REGION)
    codes = EVENTUALLY_CONSISTENT + THROTTLED + list(retry.pop("catch_extra_error_codes", []))
    # From a quarter second up: a new ID is usually known within a second or two. botocore's
    # own retries (legacy mode: up to 4, from a random second up) would come first and
    # double every throttled call's wait: they are off, and a connection error is retried
    # here instead. Waiters wait through throttling themselves (``waiter``). A user's
    # aws_config still overrides this.
    throttled_or_unknown = AWSRetry.jittered_backoff(
        retries=12, delay=0.25, max_delay=15, catch_extra_error_codes=codes, **retry)
    return module.client(
        service,
        retry_decorator=lambda call: retry_connection_errors(throttled_or_unknown(call)),
        config=botocore.config.Config(retries={"total_max_attempts": 1}),
        **({"region": region} if region else {}),
    )


@retry_connection_errors
@AWSRetry.jittered_backoff(catch_extra_error_codes=THROTTLED)
def paginate(client, operation, key, **params):
    """Every page of ``operation``'s answer, its ``key`` list joined (a dotted path for a list
    inside a structure, e.g. ``DistributionList.Items``: empty when the answer has none). A
    paginator bypasses the client's retry decorator: the whole listing is retried instead, on
    every service's throttling code (ACM's ThrottlingException is not among AWSRetry's own)."""
    paginator = client.get_paginator(operation)
    result = paginator.paginate(**params).build_full_result()
    *outer, last = key.split(".")
    for part in outer:
        result = result.get(part) or {}
    return result[last] if not outer else result.get(last, [])


def waiter(client, waiter_name, delay, max_attempts, spec=None):
    """botocore's own waiter ``waiter_name`` for the client's service (or one of the
    collection's, ``spec``: a waiter model botocore does not ship), which also waits through
    a new ID not known yet and through throttling, instead of failing at once
    (``vpc_available`` fails on the InvalidVpcID.NotFound a new VPC may give)."""
    camel = "".join(word.capitalize() for word in waiter_name.split("_"))
    if spec is None:
        service = client.meta.service_model
        loader = botocore.loaders.create_loader()
        spec = loader.load_service_model(service.service_name, "waiters-2", service.api_version)["waiters"][camel]
    spec = dict(spec, delay=delay, maxAttempts=max_attempts)
    known = {(a.get("matcher"), a.get("expected")) for a in spec["acceptors"]}
    spec["acceptors"] = spec["acceptors"] + [
        {"matcher": "error", "expected": code, "state": "retry"}
        for code in EVENTUALLY_CONSISTENT + THROTTLED if ("error", code) not in known
    ]
    model = botocore.waiter.WaiterModel({"version": 2, "waiters": {camel: spec}})
    return botocore.waiter.create_waiter_with_client(camel, model, client)


def wait_for(client, waiter_name, delay=5, max_attempts=120, spec=None, **params):
    """Wait with botocore's waiter (see ``waiter``), checking at once, then after 0.25 s and
    twice as long each time up to ``delay``: a resource that is there at once costs one call,
    one there after a moment (a new ID known a second after its create call) a moment, and
    one that takes minutes is asked every ``delay`` seconds, for delay × max_attempts at most."""
    check = waiter(client, waiter_name, 1, 1, spec)  # one check per call: the pauses are ours
    deadline = time.monotonic() + delay * max_attempts
    pause = 0.25
    while True:
        try:
            retry_connection_errors(check.wait)(**params)
            return
        except botocore.exceptions.WaiterError as e:
            # a failure state ends the wait at once; "not yet" waits on, until the deadline
            if "Max attempts exceeded" not in str(e) or time.monotonic() + pause > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, delay)


def only_one(module, found, key, what, fix=None):
    """The one resource in ``found``, or None when there is none. The modules find what they
    made by its tags, so two that claim to be the same thing (a run interrupted and repeated
    by hand, a copy made outside the collection) leave no way to tell which one is meant:
    that fails the module, naming ``what`` (plural), each one's ``key``, and ``fix`` if given."""
    if len(found) > 1:
        msg = f"there are {len(found)} {what}: {[item[key] for item in found]}"
        module.fail_json(msg=f"{msg}; {fix}" if fix else msg)
    return found[0] if found else None
