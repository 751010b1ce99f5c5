package holdfast.rules.acct_password_complexity

import data.holdfast.lib.password

metadata := {
	"id": "ACCT-03",
	"title": "The account password policy requires upper case, lower case, numbers and symbols",
	"description": "Each character class required multiplies the space an attacker must search.",
	"severity": "medium",
	"resource_types": ["aws.iam.password_policy"],
	"remediation": "Require symbols, numbers, upper- and lower-case letters (UpdateAccountPasswordPolicy).",
	"controls": {"hipaa": ["164.308(a)(5)(ii)(D)"], "iso27001-2022": ["A.5.15"], "gdpr": ["Art. 25"]},
}

classes := ["require_symbols", "require_numbers", "require_uppercase_characters", "require_lowercase_characters"]

deny contains "no password policy is set: no character class is required" if not password.configured

deny contains msg if {
	password.configured
	some c in classes
	password.policy[c] != true
	msg := sprintf("%s is off", [c])
}
