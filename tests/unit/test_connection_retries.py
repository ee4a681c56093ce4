"""The collection's AWS clients leave botocore's own retries off (they would double every
throttled call's wait) and retry connection errors themselves, as botocore did."""

from __future__ import annotations

import botocore.exceptions
import pytest

from ansible_collections.livestream.aws.plugins.module_utils import aws
from ansible_collections.livestream.aws.plugins.module_utils.aws import CONNECTION_RETRIES, retry_connection_errors


@pytest.fixture(autouse=True)
def no_pauses(monkeypatch):
    pauses = []
    monkeypatch.setattr(aws.time, "sleep", pauses.append)
    return pauses


def flaky(failures, error):
    calls = []

    def call():
        calls.append(1)
        if len(calls) <= failures:
            raise error
        return "answer"
    return call, calls


@pytest.mark.parametrize("error", [
    botocore.exceptions.EndpointConnectionError(endpoint_url="https://ec2.us-east-1.amazonaws.com/"),
    botocore.exceptions.ConnectionClosedError(endpoint_url="https://ec2.us-east-1.amazonaws.com/"),
    botocore.exceptions.ReadTimeoutError(endpoint_url="https://ec2.us-east-1.amazonaws.com/"),
])
def test_a_connection_that_fails_a_few_times_is_tried_again(error, no_pauses):
    call, calls = flaky(2, error)

    assert retry_connection_errors(call)() == "answer"
    assert len(calls) == 3
    assert len(no_pauses) == 2 and all(0 <= pause <= 0.5 for pause in no_pauses)


def test_a_connection_that_keeps_failing_fails_after_the_last_retry():
    call, calls = flaky(100, botocore.exceptions.EndpointConnectionError(endpoint_url="https://ec2.example/"))

    with pytest.raises(botocore.exceptions.EndpointConnectionError):
        retry_connection_errors(call)()
    assert len(calls) == CONNECTION_RETRIES + 1


def test_an_answer_from_aws_is_not_this_layers_to_retry():
    error = botocore.exceptions.ClientError({"Error": {"Code": "RequestLimitExceeded"}}, "DescribeVpcs")
    call, calls = flaky(1, error)

    with pytest.raises(botocore.exceptions.ClientError):
        retry_connection_errors(call)()
    assert len(calls) == 1
