package holdfast.rules.acct_password_policy_strong

import data.holdfast.lib.password

metadata := {
	"id": "ACCT-05",
	"title": "The account has a strong password policy (ACCT-01 to ACCT-04 together)",
	"description": "One verdict for the whole policy: length 14, reuse 24, all character classes, expiry within 90 days.",
	"severity": "medium",
	"resource_types": ["aws.iam.password_policy"],
	"remediation": "Apply all of ACCT-01 to ACCT-04 in one UpdateAccountPasswordPolicy call.",
	"controls": {"nist-800-53-r5": ["AC-2(1)", "AC-2(3)", "AC-3(15)", "IA-5(1)"]},
}

strong if {
	password.configured
	p := password.policy
	p.minimum_password_length >= 14
	p.password_reuse_prevention >= 24
	p.require_symbols
	p.require_numbers
	p.require_uppercase_characters
	p.require_lowercase_characters
	p.max_password_age > 0
	p.max_password_age <= 90
}

deny contains "the account password policy is weaker than ACCT-01 to ACCT-04 ask" if not strong
