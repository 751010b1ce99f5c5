package holdfast.rules.s3_default_encryption

metadata := {
	"id": "S3-01",
	"title": "S3 buckets have default encryption",
	"description": "Without default encryption, objects written without encryption headers are stored unencrypted.",
	"severity": "medium",
	"resource_types": ["aws.s3.bucket"],
	"remediation": "Set default encryption (SSE-S3, or SSE-KMS with a customer key).",
	"controls": {"pci-dss-v4": ["3.5.1", "8.3.2"], "hipaa": ["164.308(a)(1)(ii)(B)", "164.308(a)(4)(ii)(A)", "164.312(a)(2)(iv)", "164.312(c)(1)", "164.312(c)(2)", "164.312(e)(2)(ii)"], "nist-800-53-r5": ["AU-9", "AU-9(2)", "AU-9(7)", "CA-9(1)", "CM-3(6)", "SC-7(10)", "SC-13", "SC-28", "SC-28(1)", "SI-7(6)"], "soc2": ["PI1.4"], "iso27001-2022": ["A.8.24"], "gdpr": ["Art. 32"]},
}

deny contains "no default encryption is configured" if {
	input.attributes.encryption == "none"
}
