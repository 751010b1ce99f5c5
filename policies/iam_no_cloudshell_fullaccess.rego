package holdfast.rules.iam_no_cloudshell_fullaccess

metadata := {
	"id": "IAM-13",
	"title": "AWSCloudShellFullAccess is not attached",
	"description": "CloudShell full access allows moving files in and out of the account from a browser shell.",
	"severity": "medium",
	"resource_types": ["aws.iam.role", "aws.iam.user"],
	"remediation": "Detach AWSCloudShellFullAccess; grant narrower CloudShell permissions if needed.",
	"controls": {"cis-aws": ["1.22"], "pci-dss-v4": ["7.2.1", "7.2.2", "7.2.3", "7.2.5", "7.3.1", "7.3.2", "7.3.3", "8.2.7", "8.2.8", "8.3.4"]},
}

deny contains "AWSCloudShellFullAccess is attached" if {
	input.attributes.attached_policies["arn:aws:iam::aws:policy/AWSCloudShellFullAccess"]
}
