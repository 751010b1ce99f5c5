package holdfast.rules.iam_access_keys_rotated

metadata := {
	"id": "IAM-05",
	"title": "Active IAM access keys are rotated within 90 days",
	"description": "A long-lived key has had more time to leak, and a leaked key keeps working until it is rotated.",
	"severity": "medium",
	"resource_types": ["aws.iam.user"],
	"remediation": "Create a new key, move its users to it, then deactivate and delete the old one; prefer roles and short-lived credentials.",
	"controls": {"cis-aws": ["1.14"], "pci-dss-v4": ["8.3.5", "8.3.7", "8.3.9", "8.3.10.1", "8.6.3"], "hipaa": ["164.308(a)(3)(ii)(C)", "164.308(a)(4)(ii)(C)", "164.308(a)(5)(ii)(D)"], "nist-800-53-r5": ["AC-2(1)", "AC-2(3)", "AC-3(15)"], "iso27001-2022": ["A.5.15"], "gdpr": ["Art. 25"]},
}

max_age_ns := ((90 * 24) * 3600) * 1000000000

deny contains msg if {
	some id, key in input.attributes.access_keys
	key.status == "Active"
	age := time.now_ns() - time.parse_rfc3339_ns(key.created)
	age > max_age_ns
	msg := sprintf("active access key %s was created %s, %d days ago (more than 90)", [id, key.created, floor(age / (86400 * 1000000000))])
}
