package holdfast.rules.sg_default_restricts_all

import data.holdfast.lib.sg

metadata := {
	"id": "SG-06",
	"title": "The default security group of a VPC restricts all traffic",
	"description": "Resources launched without a group get the default one; rules on it open them unintentionally.",
	"severity": "medium",
	"resource_types": ["aws.ec2.security_group"],
	"remediation": "Remove every ingress and egress rule from the default security group; use dedicated groups.",
	"controls": {"cis-aws": ["5.5"], "nist-800-53-r5": ["AC-4", "AC-4(21)", "SC-7", "SC-7(4)", "SC-7(5)", "SC-7(11)", "SC-7(16)", "SC-7(21)"], "iso27001-2022": ["A.8.20", "A.8.21", "A.8.22"]},
}

deny contains msg if {
	input.attributes.name == "default"
	n := count(input.attributes.ingress) + count(input.attributes.egress)
	n > 0
	msg := sprintf("the default security group has %d rule(s)", [n])
}
