package holdfast.rules.iam_trust_cross_account_external_id

metadata := {
	"id": "IAM-15",
	"title": "Roles trusted by other AWS accounts require an external id",
	"description": "A third party that assumes roles for many customers can be tricked into using its access on your role (the confused deputy) unless the trust policy requires an sts:ExternalId.",
	"severity": "medium",
	"resource_types": ["aws.iam.role"],
	"remediation": "Add a condition StringEquals sts:ExternalId with the id agreed with the third party.",
	"controls": {},
}

other_account(p, account) if {
	regex.match(`^[0-9]{12}$`, p)
	p != account
}

other_account(p, account) if {
	some a in regex.find_all_string_submatch_n(`^arn:aws[a-z-]*:iam::([0-9]{12}):`, p, 1)
	a[1] != account
}

deny contains msg if {
	some s in input.attributes.trust_policy.Statement
	s.Effect == "Allow"
	some p in s.Principal.AWS
	other_account(p, input.account)
	not s.Condition.StringEquals["sts:ExternalId"]
	msg := sprintf("account principal %s may assume the role without an external id", [p])
}
