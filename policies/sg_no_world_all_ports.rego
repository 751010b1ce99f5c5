package holdfast.rules.sg_no_world_all_ports

import data.holdfast.lib.sg

metadata := {
	"id": "SG-07",
	"title": "No security group ingress from the internet on all ports",
	"description": "Every port open to the internet exposes every service on the host.",
	"severity": "critical",
	"resource_types": ["aws.ec2.security_group"],
	"remediation": "Replace the rule with rules for the ports the service needs, from the sources that need them.",
	"controls": {"cis-aws": ["5.3", "5.4"], "soc2": ["CC6.6"], "iso27001-2022": ["A.8.20", "A.8.21", "A.8.22"]},
}

deny contains msg if {
	some key, rule in input.attributes.ingress
	sg.world(rule)
	sg.all_ports(rule)
	msg := sprintf("ingress %s opens every port to the internet", [key])
}
