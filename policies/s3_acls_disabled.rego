package holdfast.rules.s3_acls_disabled

metadata := {
	"id": "S3-11",
	"title": "S3 buckets disable ACLs (bucket owner enforced)",
	"description": "With ACLs disabled, access is governed by policies alone, which are easier to review.",
	"severity": "medium",
	"resource_types": ["aws.s3.bucket"],
	"remediation": "Set object ownership to BucketOwnerEnforced.",
	"controls": {"pci-dss-v4": ["7.2.1", "7.2.2", "7.2.5", "7.3.1", "7.3.2", "7.3.3", "8.2.7", "8.2.8", "8.3.4"], "nist-800-53-r5": ["AC-2(1)", "AC-3", "AC-3(7)", "AC-3(15)", "AC-6"]},
}

deny contains msg if {
	input.attributes.ownership_controls != "BucketOwnerEnforced"
	msg := sprintf("object ownership is %v", [input.attributes.ownership_controls])
}
