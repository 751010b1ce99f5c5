package holdfast.rules.iam_trust_no_public_principal

import data.holdfast.lib.iam

metadata := {
	"id": "IAM-09",
	"title": "IAM role trust policies are not open to everyone",
	"description": "A trust policy that allows Principal * without a condition lets any AWS account assume the role.",
	"severity": "critical",
	"resource_types": ["aws.iam.role"],
	"remediation": "Name the accounts, services or identity providers that may assume the role, or add a condition.",
	"controls": {},
}

deny contains msg if {
	some s in input.attributes.trust_policy.Statement
	s.Effect == "Allow"
	iam.public_principal(s)
	not s.Condition
	msg := sprintf("the trust policy lets anyone assume the role (%v)", [s.Action])
}
