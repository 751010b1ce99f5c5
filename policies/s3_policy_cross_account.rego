package holdfast.rules.s3_policy_cross_account

metadata := {
	"id": "S3-12",
	"title": "S3 bucket policies grant nothing to other AWS accounts",
	"description": "Access from accounts other than the bucket's own should be deliberate and reviewed; it is easily left behind.",
	"severity": "medium",
	"resource_types": ["aws.s3.bucket"],
	"remediation": "Remove the other accounts from the policy, or record the exception as a waiver.",
	"controls": {"nist-800-53-r5": ["CA-9(1)", "CM-2"]},
}

account_of(arn) := parts[4] if {
	parts := split(arn, ":")
	count(parts) >= 5
}

deny contains msg if {
	is_object(input.attributes.policy)
	some s in input.attributes.policy.Statement
	s.Effect == "Allow"
	some principal in s.Principal.AWS
	principal != "*"
	account := account_of(principal)
	account != ""
	account != input.account
	msg := sprintf("the bucket policy grants access to account %s", [account])
}
