package holdfast.rules.sg_no_world_remote_admin

import data.holdfast.lib.sg

metadata := {
	"id": "SG-05",
	"title": "No security group ingress from the internet to remote administration ports",
	"description": "SSH (22) and RDP (3389) reachable from 0.0.0.0/0 or ::/0, also through port ranges or protocol all (CIS 'remote server administration ports').",
	"severity": "high",
	"resource_types": ["aws.ec2.security_group"],
	"remediation": "Remove the rule, or narrow its source to known networks, a VPN or a bastion's security group.",
	"controls": {"cis-aws": ["5.3", "5.4"], "pci-dss-v4": ["1.2.8", "1.3.1", "1.3.2", "1.4.2", "1.5.1", "A1.1.3"], "hipaa": ["164.308(a)(1)(ii)(B)", "164.312(e)(1)"], "nist-800-53-r5": ["AC-4", "AC-4(21)", "CM-7", "SC-7", "SC-7(4)", "SC-7(5)", "SC-7(11)", "SC-7(16)", "SC-7(21)"], "soc2": ["CC6.6", "CC7.2"], "iso27001-2022": ["A.8.20", "A.8.21", "A.8.22"]},
}

deny contains msg if {
	some key, rule in input.attributes.ingress
	sg.world(rule)
	some port in {22, 3389}
	sg.reaches_tcp(rule, port)
	msg := sprintf("ingress %s lets the internet reach remote administration port %d", [key, port])
}
