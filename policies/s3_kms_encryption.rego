package holdfast.rules.s3_kms_encryption

metadata := {
	"id": "S3-02",
	"title": "S3 buckets encrypt with KMS keys",
	"description": "SSE-KMS adds key-level access control and an audit trail of key use to encryption at rest.",
	"severity": "low",
	"resource_types": ["aws.s3.bucket"],
	"remediation": "Set default encryption to aws:kms (or aws:kms:dsse) with a customer-managed key.",
	"controls": {"pci-dss-v4": ["3.5.1", "8.3.2"], "soc2": ["PI1.4"], "iso27001-2022": ["A.8.24"]},
}

algorithm := input.attributes.encryption.algorithm if is_object(input.attributes.encryption)

algorithm := "none" if input.attributes.encryption == "none"

deny contains msg if {
	not startswith(algorithm, "aws:kms")
	msg := sprintf("default encryption is %s, not SSE-KMS", [algorithm])
}
