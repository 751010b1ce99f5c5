package holdfast.rules.iam_role_no_inline_policies

metadata := {
	"id": "IAM-14",
	"title": "IAM roles have no inline policies",
	"description": "Inline policies are invisible to policy-level review and reuse; permissions belong in managed policies that can be audited and versioned.",
	"severity": "low",
	"resource_types": ["aws.iam.role"],
	"remediation": "Move the statements into a customer-managed policy and attach it.",
	"controls": {"pci-dss-v4": ["7.2.1", "7.2.2", "7.2.5", "7.3.1", "7.3.2", "7.3.3", "8.2.7", "8.2.8", "8.3.4"], "soc2": ["CC1.3", "CC6.1", "CC6.2", "CC6.3"]},
}

deny contains msg if {
	some name, _ in input.attributes.inline_policies
	msg := sprintf("the role has the inline policy %s", [name])
}
