package holdfast.rules.s3_versioning

metadata := {
	"id": "S3-06",
	"title": "S3 buckets have versioning enabled",
	"description": "Versioning keeps earlier versions of objects, so a deletion or overwrite can be undone.",
	"severity": "medium",
	"resource_types": ["aws.s3.bucket"],
	"remediation": "Enable versioning on the bucket.",
	"controls": {"pci-dss-v4": ["10.3.4"], "hipaa": ["164.308(a)(1)(ii)(B)", "164.308(a)(7)(i)", "164.308(a)(7)(ii)(A)", "164.308(a)(7)(ii)(B)", "164.308(a)(7)(ii)(C)", "164.312(a)(2)(ii)", "164.312(c)(1)", "164.312(c)(2)"], "nist-800-53-r5": ["AU-9(2)", "CP-6", "CP-6(1)", "CP-6(2)", "CP-9", "CP-10", "SC-5(2)", "SI-12", "SI-13(5)"], "soc2": ["CC7.4", "A1.2", "C1.2", "PI1.5"], "iso27001-2022": ["A.8.3", "A.8.10"]},
}

deny contains msg if {
	input.attributes.versioning.status != "enabled"
	msg := sprintf("versioning is %s", [input.attributes.versioning.status])
}
