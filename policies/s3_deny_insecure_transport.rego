package holdfast.rules.s3_deny_insecure_transport

metadata := {
	"id": "S3-05",
	"title": "S3 bucket policies deny requests without TLS",
	"description": "Without a deny on aws:SecureTransport false, data can be read or written over plain HTTP.",
	"severity": "medium",
	"resource_types": ["aws.s3.bucket"],
	"remediation": "Add a bucket policy statement that denies s3:* when aws:SecureTransport is false.",
	"controls": {"cis-aws": ["2.1.1"], "pci-dss-v4": ["1.2.5", "2.2.5", "2.2.7", "4.2.1", "4.2.1.1", "8.3.2"], "hipaa": ["164.308(a)(1)(ii)(B)", "164.312(a)(2)(iv)", "164.312(c)(1)", "164.312(c)(2)", "164.312(e)(1)", "164.312(e)(2)(i)", "164.312(e)(2)(ii)"], "nist-800-53-r5": ["AC-4", "AC-17(2)", "IA-5(1)", "SC-7(4)", "SC-8", "SC-8(1)", "SC-8(2)", "SC-12(3)", "SC-13", "SC-23", "SC-23(3)", "SI-7(6)"], "gdpr": ["Art. 32"]},
}

denies_plain_http if {
	some s in input.attributes.policy.Statement
	s.Effect == "Deny"
	"false" in s.Condition.Bool["aws:SecureTransport"]
}

deny contains "the bucket policy does not deny requests without TLS" if {
	not denies_plain_http
}
