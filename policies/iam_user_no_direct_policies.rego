package holdfast.rules.iam_user_no_direct_policies

metadata := {
	"id": "IAM-03",
	"title": "IAM users get permissions only through groups or roles",
	"description": "Policies attached to individual users are hard to review and to revoke consistently.",
	"severity": "low",
	"resource_types": ["aws.iam.user"],
	"remediation": "Move the user's policies to a group and add the user to it.",
	"controls": {"cis-aws": ["1.15"], "pci-dss-v4": ["7.2.1", "7.2.2", "7.2.5", "7.3.1", "7.3.2", "7.3.3", "8.2.1", "8.2.2", "8.2.4", "8.2.5", "8.2.7", "8.2.8", "8.3.4", "8.3.11"], "nist-800-53-r5": ["AC-2", "AC-2(1)", "AC-3", "AC-3(7)", "AC-3(15)", "AC-6", "AC-6(3)"], "soc2": ["CC1.3"], "iso27001-2022": ["A.5.15"]},
}

deny contains msg if {
	n := count(input.attributes.inline_policies)
	n > 0
	msg := sprintf("the user has %d inline polic(ies)", [n])
}

deny contains msg if {
	n := count(input.attributes.attached_policies)
	n > 0
	msg := sprintf("the user has %d directly attached polic(ies)", [n])
}
