package holdfast.rules.s3_no_public_acl

metadata := {
	"id": "S3-09",
	"title": "S3 bucket ACLs grant nothing to everyone",
	"description": "A grant to AllUsers or AuthenticatedUsers makes the bucket readable or writable by anyone.",
	"severity": "critical",
	"resource_types": ["aws.s3.bucket"],
	"remediation": "Remove the grant; disable ACLs with BucketOwnerEnforced ownership.",
	"controls": {"pci-dss-v4": ["1.2.8", "1.3.1", "1.3.2", "1.4.2", "1.5.1", "3.5.1.3", "10.3.2", "10.3.3", "10.3.4", "A1.1.2", "A1.1.3", "A1.2.1", "A3.4.1"], "hipaa": ["164.308(a)(1)(ii)(B)", "164.308(a)(3)(i)", "164.312(a)(1)", "164.312(a)(2)(i)"], "nist-800-53-r5": ["AC-3", "AC-3(7)", "AC-4", "AC-4(21)", "AC-6", "AC-21", "SC-7", "SC-7(3)", "SC-7(4)", "SC-7(9)", "SC-7(11)", "SC-7(16)", "SC-7(20)", "SC-7(21)"], "soc2": ["CC6.1"]},
}

public_groups := {
	"http://acs.amazonaws.com/groups/global/AllUsers",
	"http://acs.amazonaws.com/groups/global/AuthenticatedUsers",
}

deny contains msg if {
	some key, grant in input.attributes.acl.grants
	grant.grantee_type == "group"
	grant.grantee in public_groups
	msg := sprintf("ACL grant %s is public", [key])
}
