package holdfast.rules.sg_unrestricted_egress

import data.holdfast.lib.sg

metadata := {
	"id": "SG-09",
	"title": "Security groups do not allow all egress to the internet",
	"description": "Unrestricted egress lets a compromised host reach any destination, e.g. to exfiltrate data.",
	"severity": "low",
	"resource_types": ["aws.ec2.security_group"],
	"remediation": "Limit egress to the destinations and ports the workload needs.",
	"controls": {},
}

deny contains msg if {
	some key, rule in input.attributes.egress
	sg.world(rule)
	sg.all_ports(rule)
	msg := sprintf("egress %s allows all traffic to the internet", [key])
}
