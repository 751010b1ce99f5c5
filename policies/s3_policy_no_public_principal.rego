package holdfast.rules.s3_policy_no_public_principal

import data.holdfast.lib.iam

metadata := {
	"id": "S3-10",
	"title": "S3 bucket policies allow nothing to everyone",
	"description": "An Allow to Principal * without a condition makes the bucket readable or writable by anyone.",
	"severity": "critical",
	"resource_types": ["aws.s3.bucket"],
	"remediation": "Name the principals that need access, or add a restricting condition.",
	"controls": {"pci-dss-v4": ["1.2.8", "1.3.1", "1.3.2", "1.4.2", "1.5.1", "3.5.1.3", "10.3.2", "10.3.3", "10.3.4", "A1.1.2", "A1.1.3", "A1.2.1", "A3.4.1"], "hipaa": ["164.308(a)(1)(ii)(B)", "164.308(a)(3)(i)", "164.312(a)(1)", "164.312(a)(2)(i)"], "nist-800-53-r5": ["AC-3", "AC-3(7)", "AC-4", "AC-4(21)", "AC-6", "AC-21", "SC-7", "SC-7(3)", "SC-7(4)", "SC-7(9)", "SC-7(11)", "SC-7(16)", "SC-7(20)", "SC-7(21)"], "soc2": ["CC6.1"]},
}

deny contains msg if {
	is_object(input.attributes.policy)
	some s in input.attributes.policy.Statement
	s.Effect == "Allow"
	iam.public_principal(s)
	not s.Condition
	msg := sprintf("the bucket policy allows %v to everyone", [s.Action])
}
