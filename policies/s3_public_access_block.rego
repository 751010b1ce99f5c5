package holdfast.rules.s3_public_access_block

metadata := {
	"id": "S3-03",
	"title": "S3 buckets block public access (all four settings)",
	"description": "The public access block is the guard against a policy or ACL that makes the bucket public by mistake.",
	"severity": "high",
	"resource_types": ["aws.s3.bucket"],
	"remediation": "Turn on BlockPublicAcls, IgnorePublicAcls, BlockPublicPolicy and RestrictPublicBuckets.",
	"controls": {"cis-aws": ["2.1.4"], "nist-800-53-r5": ["AC-3", "AC-3(7)", "AC-4", "AC-4(21)", "AC-6", "AC-21", "SC-7", "SC-7(3)", "SC-7(4)", "SC-7(9)", "SC-7(11)", "SC-7(16)", "SC-7(20)", "SC-7(21)"]},
}

deny contains "no public access block is configured" if {
	input.attributes.public_access_block == "none"
}

deny contains msg if {
	is_object(input.attributes.public_access_block)
	some flag, on in input.attributes.public_access_block
	on == false
	msg := sprintf("public access block setting %s is off", [flag])
}
