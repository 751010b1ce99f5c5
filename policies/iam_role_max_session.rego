package holdfast.rules.iam_role_max_session

metadata := {
	"id": "IAM-10",
	"title": "IAM role sessions last at most four hours",
	"description": "Long sessions keep stolen temporary credentials useful for longer.",
	"severity": "low",
	"resource_types": ["aws.iam.role"],
	"remediation": "Set the role's maximum session duration to 4 hours or less.",
	"controls": {},
}

deny contains msg if {
	input.attributes.max_session_duration > 14400
	msg := sprintf("the maximum session duration is %d seconds", [input.attributes.max_session_duration])
}
