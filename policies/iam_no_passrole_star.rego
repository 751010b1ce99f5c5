package holdfast.rules.iam_no_passrole_star

metadata := {
	"id": "IAM-16",
	"title": "Policies do not allow iam:PassRole on every role",
	"description": "iam:PassRole on Resource * lets the holder hand any role, including administrative ones, to a service it controls: a privilege escalation path.",
	"severity": "high",
	"resource_types": ["aws.iam.policy", "aws.iam.role", "aws.iam.user"],
	"remediation": "Limit iam:PassRole to the ARNs of the roles the principal must pass, ideally with an iam:PassedToService condition.",
	"controls": {},
}

passrole(action) if lower(action) in {"iam:passrole", "iam:*", "*", "iam:pass*"}

documents contains doc if {
	doc := input.attributes.document
}

documents contains doc if {
	some doc in input.attributes.inline_policies
}

deny contains msg if {
	some doc in documents
	some s in doc.Statement
	s.Effect == "Allow"
	some action in s.Action
	passrole(action)
	"*" in s.Resource
	msg := sprintf("%s on Resource * allows passing any role", [action])
}
