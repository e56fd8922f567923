"""Create a minimal AWS Batch estate (compute environments and queues) for development
against moto's server or a sandbox account. Production estates come from infrastructure
code; the backend itself never creates queues."""

from __future__ import annotations

import boto3


def ensure_dev_queues(region: str = "us-east-1", prefix: str = "lens",
                      endpoint_url: str | None = None) -> dict[str, str]:
    """Create on-demand and spot compute environments and queues; return the ``queues``
    setting for BatchBackend ({'*:on-demand': ..., '*:spot': ...})."""
    kw = {"region_name": region, **({"endpoint_url": endpoint_url} if endpoint_url else {})}
    ec2, iam, batch = (boto3.client(s, **kw) for s in ("ec2", "iam", "batch"))
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.0.0/24")["Subnet"]["SubnetId"]
    sg = ec2.create_security_group(GroupName=f"{prefix}-batch-{vpc}", Description="lens batch",
                                   VpcId=vpc)["GroupId"]
    role = f"{prefix}-batch-service"
    try:
        role_arn = iam.get_role(RoleName=role)["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        role_arn = iam.create_role(RoleName=role, AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    try:
        profile_arn = iam.get_instance_profile(
            InstanceProfileName=f"{prefix}-ecs")["InstanceProfile"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        profile_arn = iam.create_instance_profile(
            InstanceProfileName=f"{prefix}-ecs")["InstanceProfile"]["Arn"]
    queues = {}
    existing = {q["jobQueueName"] for q in batch.describe_job_queues()["jobQueues"]}
    for pricing, kind in (("on-demand", "EC2"), ("spot", "SPOT")):
        name = f"{prefix}-{pricing.replace('-', '')}"
        queues[f"*:{pricing}"] = name
        if name in existing:
            continue
        ce = batch.create_compute_environment(
            computeEnvironmentName=f"{name}-ce", type="MANAGED", state="ENABLED",
            serviceRole=role_arn,
            computeResources={
                "type": kind, "minvCpus": 0, "maxvCpus": 256, "desiredvCpus": 0,
                "instanceTypes": ["optimal"], "subnets": [subnet], "securityGroupIds": [sg],
                "instanceRole": profile_arn,
                **({"bidPercentage": 60} if kind == "SPOT" else {}),
            })["computeEnvironmentArn"]
        batch.create_job_queue(jobQueueName=name, state="ENABLED", priority=1,
                               computeEnvironmentOrder=[{"order": 1, "computeEnvironment": ce}])
    return queues
