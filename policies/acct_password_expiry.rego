package holdfast.rules.acct_password_expiry

import data.holdfast.lib.password

metadata := {
	"id": "ACCT-04",
	"title": "The account password policy expires passwords within 90 days",
	"description": "PCI DSS asks that passwords used as the only factor change at least every 90 days.",
	"severity": "low",
	"resource_types": ["aws.iam.password_policy"],
	"remediation": "Set the maximum password age to 90 days or fewer (UpdateAccountPasswordPolicy).",
	"controls": {"pci-dss-v4": ["8.3.6", "8.6.3"], "iso27001-2022": ["A.5.15"]},
}

deny contains "no password policy is set: passwords never expire" if not password.configured

deny contains "passwords never expire" if {
	password.configured
	password.policy.max_password_age == 0
}

deny contains msg if {
	password.configured
	password.policy.max_password_age > 90
	msg := sprintf("passwords last %d days, more than 90", [password.policy.max_password_age])
}
