package holdfast.rules.iam_no_admin_star

import data.holdfast.lib.iam

metadata := {
	"id": "IAM-01",
	"title": "No IAM policy allows every action on every resource",
	"description": "Action * on Resource * is full administrator access; least privilege needs narrower policies.",
	"severity": "critical",
	"resource_types": ["aws.iam.role", "aws.iam.user", "aws.iam.policy"],
	"remediation": "Replace the statement with the actions and resources the principal needs.",
	"controls": {"cis-aws": ["1.16"], "hipaa": ["164.308(a)(1)(ii)(B)", "164.308(a)(3)(i)", "164.308(a)(3)(ii)(B)", "164.308(a)(4)(i)", "164.308(a)(4)(ii)(B)", "164.308(a)(4)(ii)(C)", "164.312(a)(1)"], "nist-800-53-r5": ["AC-2", "AC-2(1)", "AC-3", "AC-3(7)", "AC-3(15)", "AC-5", "AC-6", "AC-6(2)", "AC-6(3)", "AC-6(10)"], "soc2": ["CC1.3", "CC6.3"], "iso27001-2022": ["A.5.18", "A.8.2"], "gdpr": ["Art. 25"]},
}

deny contains "a policy document allows * on *" if {
	some doc in iam.documents
	iam.admin_star(doc)
}
