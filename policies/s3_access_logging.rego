package holdfast.rules.s3_access_logging

metadata := {
	"id": "S3-08",
	"title": "S3 buckets log server access",
	"description": "Access logs are the record of who read or changed what, needed to investigate an incident.",
	"severity": "low",
	"resource_types": ["aws.s3.bucket"],
	"remediation": "Enable server access logging to a dedicated log bucket.",
	"controls": {"pci-dss-v4": ["5.3.4", "10.2.1", "10.2.1.1", "10.2.1.2", "10.2.1.3", "10.2.1.4", "10.2.1.5", "10.2.1.6", "10.2.1.7", "10.2.2", "10.3.1", "A1.2.1"], "hipaa": ["164.308(a)(1)(ii)(D)", "164.308(a)(3)(ii)(A)", "164.308(a)(6)(ii)", "164.312(b)", "164.312(e)(2)(i)"], "nist-800-53-r5": ["AC-2(4)", "AC-4(26)", "AC-6(9)", "AU-2", "AU-3", "AU-6(3)", "AU-6(4)", "AU-10", "AU-12", "CA-7", "SC-7(9)", "SI-3(8)", "SI-4(20)", "SI-7(8)"], "soc2": ["CC7.2", "CC7.3", "A1.2"], "iso27001-2022": ["A.8.15"]},
}

deny contains "server access logging is off" if {
	input.attributes.logging == "none"
}
