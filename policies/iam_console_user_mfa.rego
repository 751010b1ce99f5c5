package holdfast.rules.iam_console_user_mfa

metadata := {
	"id": "IAM-04",
	"title": "IAM users with a console password have MFA",
	"description": "A console password alone can be phished or guessed; MFA stops most account takeovers.",
	"severity": "high",
	"resource_types": ["aws.iam.user"],
	"remediation": "Enrol an MFA device for the user, or remove the console password.",
	"controls": {"cis-aws": ["1.10"], "pci-dss-v4": ["8.4.1", "8.4.2", "8.4.3"], "hipaa": ["164.308(a)(3)(ii)(A)", "164.312(a)(1)", "164.312(d)"], "nist-800-53-r5": ["AC-2(1)", "AC-3(15)", "IA-2(1)", "IA-2(2)", "IA-2(6)", "IA-2(8)"], "iso27001-2022": ["A.5.15", "A.5.17", "A.8.5"], "gdpr": ["Art. 25"]},
}

deny contains "the user can sign in to the console without MFA" if {
	input.attributes.console_login == true
	count(input.attributes.mfa_devices) == 0
}
