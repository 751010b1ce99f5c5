package holdfast.rules.sg_no_world_rdp_ipv6

import data.holdfast.lib.sg

metadata := {
	"id": "SG-04",
	"title": "No security group ingress from ::/0 to TCP 3389",
	"description": "RDP open to the whole IPv6 internet is a common ransomware entry point.",
	"severity": "high",
	"resource_types": ["aws.ec2.security_group"],
	"remediation": "Remove the rule, or narrow its source to known networks or a VPN.",
	"controls": {"cis-aws": ["5.4"], "soc2": ["CC6.6"], "iso27001-2022": ["A.8.20", "A.8.21", "A.8.22"]},
}

deny contains msg if {
	some key, rule in input.attributes.ingress
	sg.world_v6(rule)
	sg.reaches_tcp(rule, 3389)
	msg := sprintf("ingress %s lets the whole IPv6 internet reach RDP (3389)", [key])
}
