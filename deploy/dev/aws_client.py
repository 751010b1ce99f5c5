#!/usr/bin/env python3
"""An independent AWS client for the demo (boto3, not holdfast).

Usage: aws_client.py ENDPOINT create-web | break GROUP | show GROUP
  create-web   create a VPC and a "web" security group with 443 open; print its id
  break        open SSH (22) to the world and close HTTPS (443)
  show         print the group's ingress rules, one per line
"""
import sys

import boto3


def main() -> int:
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    endpoint, cmd, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    ec2 = boto3.client(
        "ec2",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )

    def rule(port):
        return {"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}

    if cmd == "create-web":
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        gid = ec2.create_security_group(GroupName="web", Description="web tier", VpcId=vpc)["GroupId"]
        ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[rule(443)])
        print(gid)
    elif cmd == "break":
        ec2.authorize_security_group_ingress(GroupId=args[0], IpPermissions=[rule(22)])
        ec2.revoke_security_group_ingress(GroupId=args[0], IpPermissions=[rule(443)])
    elif cmd == "show":
        group = ec2.describe_security_groups(GroupIds=[args[0]])["SecurityGroups"][0]
        for p in group["IpPermissions"]:
            for r in p.get("IpRanges", []):
                print(f"{p['IpProtocol']} {p.get('FromPort')}-{p.get('ToPort')} from {r['CidrIp']}")
    else:
        print(f"unknown command {cmd!r}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
