package holdfast.rules.iam_one_active_access_key

metadata := {
	"id": "IAM-07",
	"title": "IAM users have at most one active access key",
	"description": "Two active keys double what can leak and make rotation harder to verify.",
	"severity": "low",
	"resource_types": ["aws.iam.user"],
	"remediation": "Deactivate and delete the older key.",
	"controls": {"cis-aws": ["1.13"]},
}

deny contains msg if {
	n := count([id | some id, key in input.attributes.access_keys; key.status == "Active"])
	n > 1
	msg := sprintf("the user has %d active access keys", [n])
}
