package holdfast.rules.sg_no_world_ssh_ipv6

import data.holdfast.lib.sg

metadata := {
	"id": "SG-02",
	"title": "No security group ingress from ::/0 to TCP 22",
	"description": "SSH open to the whole IPv6 internet invites brute force and exploits against the host.",
	"severity": "high",
	"resource_types": ["aws.ec2.security_group"],
	"remediation": "Remove the rule, or narrow its source to known networks or a bastion's security group.",
	"controls": {"cis-aws": ["5.4"], "pci-dss-v4": ["1.2.8", "1.3.1", "1.3.2", "1.4.2", "1.5.1", "A1.1.3"], "hipaa": ["164.308(a)(1)(ii)(B)", "164.312(e)(1)"], "nist-800-53-r5": ["AC-4", "AC-4(21)", "CM-7", "SC-7", "SC-7(4)", "SC-7(5)", "SC-7(11)", "SC-7(16)", "SC-7(21)"], "soc2": ["CC6.6", "CC7.2"], "iso27001-2022": ["A.8.20", "A.8.21", "A.8.22"]},
}

deny contains msg if {
	some key, rule in input.attributes.ingress
	sg.world_v6(rule)
	sg.reaches_tcp(rule, 22)
	msg := sprintf("ingress %s lets the whole IPv6 internet reach SSH (22)", [key])
}
