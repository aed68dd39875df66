"""Pure parts of the local Batch runner: failure-injection selectors and Batch's evaluateOnExit rules."""

from __future__ import annotations

import pytest

from local.batch_jobs import FailureInjection, FailureInjectionError, evaluate_on_exit

RULES = [
    {"onStatusReason": "Host EC2*", "action": "RETRY"},
    {"onExitCode": "75", "action": "RETRY"},
    {"onExitCode": "71", "action": "RETRY"},
    {"onExitCode": "137", "action": "RETRY"},
    {"onExitCode": "*", "action": "EXIT"},
]


@pytest.mark.parametrize(
    ("code", "status_reason", "expected"),
    [
        (75, "Essential container in task exited", "RETRY"),
        (71, "Essential container in task exited", "RETRY"),
        (137, "Essential container in task exited", "RETRY"),
        (70, "Essential container in task exited", "EXIT"),
        (64, "Essential container in task exited", "EXIT"),
        (None, "Host EC2 (instance i-0abc) terminated.", "RETRY"),
    ],
)
def test_evaluate_on_exit_follows_the_first_matching_rule(code, status_reason, expected):
    assert evaluate_on_exit(RULES, code, status_reason, "") == expected


def test_evaluate_on_exit_retries_when_no_rule_matches():
    assert evaluate_on_exit([{"onExitCode": "1", "action": "EXIT"}], 2, "", "") == "RETRY"
    assert evaluate_on_exit([], 2, "", "") == "RETRY"


def test_failure_injection_selectors():
    sel = FailureInjection.parse("step2:chr=2")
    assert sel == FailureInjection(step=2, chromosome="2")
    assert sel.matches({"step": 2, "chromosome": "chr2", "jobId": "step2-chr2"})
    assert not sel.matches({"step": 2, "chromosome": "12"})
    assert not sel.matches({"step": 1})
    assert FailureInjection.parse("step1").matches({"step": 1, "jobId": "step1"})
    assert FailureInjection.parse("merge").matches({"step": 0, "jobId": "merge", "kind": "merge"})
    job = FailureInjection.parse("step2:job=step2-chr2-c0001")
    assert job.matches({"step": 2, "jobId": "step2-chr2-c0001", "chromosome": "2"})
    assert not job.matches({"step": 2, "jobId": "step2-chr2-c0002", "chromosome": "2"})


@pytest.mark.parametrize("text", ["step3", "step2:chrom=2", "chr2", "", "step2:chr="])
def test_bad_failure_injection_is_named(text):
    with pytest.raises(FailureInjectionError, match="--inject-failure"):
        FailureInjection.parse(text)
