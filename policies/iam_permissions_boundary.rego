package holdfast.rules.iam_permissions_boundary

metadata := {
	"id": "IAM-11",
	"title": "IAM roles and users have a permissions boundary",
	"description": "A boundary caps what a principal can ever be granted, even by a mistaken policy.",
	"severity": "low",
	"resource_types": ["aws.iam.role", "aws.iam.user"],
	"remediation": "Set a permissions boundary policy.",
	"controls": {},
}

deny contains "no permissions boundary is set" if {
	input.attributes.permissions_boundary == "none"
}
