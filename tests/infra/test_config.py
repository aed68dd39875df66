"""InfraConfig: context values as the CLI passes them (strings), and clear errors naming the option."""

from __future__ import annotations

import pytest

from infra.config import InfraConfig, InfraConfigError


def test_defaults_match_cdk_json():
    from infra.app import cdk_json_context

    config = InfraConfig.from_mapping(cdk_json_context())
    assert (config.stackPrefix, config.jobVcpus, config.jobMemoryMiB) == ("Gwas", 4, 16384)
    assert config.step2MaxConcurrency == 40 and config.spot is False
    assert config.lambda_python_version == "3.12"
    assert config.state_machine_name("workflow") == "Gwas-workflow"


def test_cli_strings_are_converted():
    config = InfraConfig.from_mapping(
        {
            "jobVcpus": "8",
            "jobMemoryMiB": "32768",
            "spot": "true",
            "allowedBuckets": "lab-a, lab-b",
            "notificationEmail": "team@example.org",
            "fsxCapacityGiB": "4800",
            "@aws-cdk/core:checkSecretUsage": True,  # CDK's own keys are ignored
        }
    )
    assert config.jobVcpus == 8 and config.jobMemoryMiB == 32768 and config.spot is True
    assert config.allowedBuckets == ["lab-a", "lab-b"]
    assert config.fsxCapacityGiB == 4800


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"jobVcpus": "eight"}, "jobVcpus"),
        ({"fsxCapacityGiB": 2000}, "fsxCapacityGiB"),
        ({"notificationEmail": "not-an-address"}, "notificationEmail"),
        ({"allowedBuckets": "Bad_Bucket"}, "allowedBuckets"),
        ({"jobVcpus": 64, "maxVcpus": 16}, "maxVcpus"),
        ({"lambdaRuntime": "python3.9"}, "lambdaRuntime"),
        ({"cleanupSchedule": "hourly"}, "cleanupSchedule"),
        ({"stackPrefix": "gwas-dev"}, "stackPrefix"),
    ],
)
def test_bad_values_name_the_option(values, named):
    with pytest.raises(InfraConfigError, match=named):
        InfraConfig.from_mapping(values)


def test_empty_email_means_no_subscription():
    assert InfraConfig.from_mapping({"notificationEmail": ""}).notificationEmail is None
