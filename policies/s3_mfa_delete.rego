package holdfast.rules.s3_mfa_delete

metadata := {
	"id": "S3-07",
	"title": "S3 buckets require MFA to delete versions",
	"description": "MFA delete protects object versions and the versioning state against a stolen credential.",
	"severity": "low",
	"resource_types": ["aws.s3.bucket"],
	"remediation": "Enable MFA delete with the root user and its MFA device.",
	"controls": {"cis-aws": ["2.1.2"], "pci-dss-v4": ["3.5.1.3", "8.4.1", "8.4.2", "8.4.3", "10.3.2", "A1.1.2", "A3.4.1"]},
}

deny contains "MFA delete is off" if {
	input.attributes.versioning.mfa_delete == false
}
