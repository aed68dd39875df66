"""VPC across two AZs (public, private with NAT, isolated), flow logs, gateway and interface
endpoints, and the security groups of the Lustre file system, the Batch hosts and the Lambdas.

Both security groups live here, so the Lustre rules reference each other inside one stack and no
cross-stack cycle can arise between storage and compute.
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_ec2 as ec2
from constructs import Construct

from infra.config import InfraConfig
from infra.factories.secure import log_group

# Lustre: 988 for the LNet service, 1018-1023 for the client's reserved ports.
LUSTRE_PORTS = [ec2.Port.tcp(988), ec2.Port.tcp_range(1018, 1023)]
INTERFACE_ENDPOINTS = {
    "StepFunctions": ec2.InterfaceVpcEndpointAwsService.STEP_FUNCTIONS,
    "Sns": ec2.InterfaceVpcEndpointAwsService.SNS,
    "Sqs": ec2.InterfaceVpcEndpointAwsService.SQS,
    "Batch": ec2.InterfaceVpcEndpointAwsService.BATCH,
    "Logs": ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS,
    "Monitoring": ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_MONITORING,
    "EcrApi": ec2.InterfaceVpcEndpointAwsService.ECR,
    "EcrDocker": ec2.InterfaceVpcEndpointAwsService.ECR_DOCKER,
    "Xray": ec2.InterfaceVpcEndpointAwsService.XRAY,
}


class NetworkStack(Stack):
    def __init__(self, scope: Construct, id: str, *, config: InfraConfig, **kwargs) -> None:
        super().__init__(scope, id, **kwargs)
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            max_azs=2,
            nat_gateways=config.natGateways,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24),
                ec2.SubnetConfiguration(name="private", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS, cidr_mask=20),
                ec2.SubnetConfiguration(name="isolated", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=24),
            ],
            gateway_endpoints={
                # S3 and DynamoDB traffic of the Batch hosts stays off the NAT gateway (cost, throughput).
                "S3": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.S3),
                "DynamoDB": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.DYNAMODB),
            },
        )
        self.vpc.add_flow_log(
            "FlowLog",
            destination=ec2.FlowLogDestination.to_cloud_watch_logs(log_group(self, "FlowLogGroup", config)),
            traffic_type=ec2.FlowLogTrafficType.ALL,
        )

        # The Lambdas run in the private subnets; every service they and the Batch hosts call has an
        # endpoint in the VPC (S3 and DynamoDB as gateways above), so no control-plane call needs the NAT.
        self.endpoint_security_group = ec2.SecurityGroup(
            self, "EndpointSecurityGroup", vpc=self.vpc, description="Interface endpoints of AWS services",
            allow_all_outbound=False,
        )
        self.endpoint_security_group.add_ingress_rule(ec2.Peer.ipv4(self.vpc.vpc_cidr_block), ec2.Port.tcp(443),
                                                      "HTTPS from the VPC")
        for name, service in INTERFACE_ENDPOINTS.items():
            self.vpc.add_interface_endpoint(
                f"{name}Endpoint", service=service, private_dns_enabled=True,
                subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
                security_groups=[self.endpoint_security_group],
            )
        self.lambda_security_group = ec2.SecurityGroup(
            self, "LambdaSecurityGroup", vpc=self.vpc, description="Controller Lambdas",
            allow_all_outbound=True,  # the endpoints, S3 and DynamoDB gateways
        )

        self.batch_security_group = ec2.SecurityGroup(
            self,
            "BatchSecurityGroup",
            vpc=self.vpc,
            description="Batch hosts running regenie workers",
            allow_all_outbound=True,  # ECR, S3, DynamoDB, CloudWatch and the Lustre servers
        )
        self.fsx_security_group = ec2.SecurityGroup(
            self,
            "FsxSecurityGroup",
            vpc=self.vpc,
            description="FSx for Lustre file system",
            allow_all_outbound=False,
        )
        for port in LUSTRE_PORTS:
            self.fsx_security_group.add_ingress_rule(
                self.batch_security_group, port, "Lustre from Batch hosts"
            )
            # Lustre servers open connections back to their clients on these ports (AWS's documented
            # client rules): without them a client's mount hangs or drops under load
            self.batch_security_group.add_ingress_rule(self.fsx_security_group, port, "Lustre from the file system")
            self.batch_security_group.add_ingress_rule(self.batch_security_group, port, "Lustre between clients")
            # Lustre servers talk to each other through the file system's own ENIs.
            self.fsx_security_group.add_ingress_rule(self.fsx_security_group, port, "Lustre between servers")
            self.fsx_security_group.add_egress_rule(self.fsx_security_group, port, "Lustre between servers")
            self.fsx_security_group.add_egress_rule(self.batch_security_group, port, "Lustre to Batch hosts")
