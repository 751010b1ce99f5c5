package holdfast.rules.acct_password_min_length

import data.holdfast.lib.password

metadata := {
	"id": "ACCT-01",
	"title": "The account password policy requires at least 14 characters",
	"description": "Short passwords fall to guessing and cracking; CIS asks for 14 or more.",
	"severity": "medium",
	"resource_types": ["aws.iam.password_policy"],
	"remediation": "Set the minimum password length to 14 or more (UpdateAccountPasswordPolicy).",
	"controls": {"cis-aws": ["1.8"], "hipaa": ["164.308(a)(5)(ii)(D)"], "iso27001-2022": ["A.5.15"], "gdpr": ["Art. 25"]},
}

deny contains "no password policy is set (AWS's default minimum is 8 characters)" if not password.configured

deny contains msg if {
	password.configured
	password.policy.minimum_password_length < 14
	msg := sprintf("the minimum password length is %d, fewer than 14", [password.policy.minimum_password_length])
}
