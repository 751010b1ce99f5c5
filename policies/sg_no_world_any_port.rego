package holdfast.rules.sg_no_world_any_port

import data.holdfast.lib.sg

metadata := {
	"id": "SG-10",
	"title": "No security group ingress from the internet to any port",
	"description": "Any port reachable from the whole internet widens the attack surface; public services belong behind a load balancer.",
	"severity": "medium",
	"resource_types": ["aws.ec2.security_group"],
	"remediation": "Narrow the source to known networks, or put the service behind a load balancer.",
	"controls": {"pci-dss-v4": ["1.2.5", "1.2.8", "1.3.1", "1.3.2", "1.4.2", "1.5.1", "2.2.5", "A1.1.3"], "soc2": ["CC6.6"], "iso27001-2022": ["A.8.20", "A.8.21", "A.8.22"]},
}

deny contains msg if {
	some key, rule in input.attributes.ingress
	sg.world(rule)
	msg := sprintf("ingress %s is open to the internet", [key])
}
