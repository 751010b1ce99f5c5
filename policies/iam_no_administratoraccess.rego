package holdfast.rules.iam_no_administratoraccess

metadata := {
	"id": "IAM-02",
	"title": "AdministratorAccess is not attached to roles or users",
	"description": "The AWS-managed AdministratorAccess policy grants every action on every resource.",
	"severity": "high",
	"resource_types": ["aws.iam.role", "aws.iam.user"],
	"remediation": "Attach policies scoped to the job instead.",
	"controls": {"pci-dss-v4": ["7.2.1", "7.2.2", "7.2.5", "7.3.1", "7.3.2", "7.3.3", "8.2.7", "8.2.8", "8.3.4"]},
}

deny contains "AdministratorAccess is attached" if {
	input.attributes.attached_policies["arn:aws:iam::aws:policy/AdministratorAccess"]
}
