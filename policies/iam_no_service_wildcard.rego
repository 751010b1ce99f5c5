package holdfast.rules.iam_no_service_wildcard

metadata := {
	"id": "IAM-12",
	"title": "Customer-managed policies do not allow every action of a service",
	"description": "service:* grants every present and future action of the service, far beyond most needs.",
	"severity": "medium",
	"resource_types": ["aws.iam.policy"],
	"remediation": "List the actions the principal needs.",
	"controls": {"nist-800-53-r5": ["AC-2", "AC-2(1)", "AC-3", "AC-3(7)", "AC-3(15)", "AC-5", "AC-6", "AC-6(2)", "AC-6(3)", "AC-6(10)"]},
}

deny contains msg if {
	some s in input.attributes.document.Statement
	s.Effect == "Allow"
	some action in s.Action
	endswith(action, ":*")
	msg := sprintf("the policy allows %s", [action])
}
