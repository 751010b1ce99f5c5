package holdfast.rules.acct_password_reuse

import data.holdfast.lib.password

metadata := {
	"id": "ACCT-02",
	"title": "The account password policy prevents reusing the last 24 passwords",
	"description": "Reused passwords undo rotation and bring back credentials that may have leaked.",
	"severity": "medium",
	"resource_types": ["aws.iam.password_policy"],
	"remediation": "Set password reuse prevention to 24 (UpdateAccountPasswordPolicy).",
	"controls": {"cis-aws": ["1.9"], "hipaa": ["164.308(a)(4)(ii)(C)", "164.308(a)(5)(ii)(D)", "164.312(d)"], "iso27001-2022": ["A.5.15"], "gdpr": ["Art. 25"]},
}

deny contains "no password policy is set: any password may be reused" if not password.configured

deny contains msg if {
	password.configured
	password.policy.password_reuse_prevention < 24
	msg := sprintf("only the last %d password(s) are remembered, fewer than 24", [password.policy.password_reuse_prevention])
}
