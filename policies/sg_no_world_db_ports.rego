package holdfast.rules.sg_no_world_db_ports

import data.holdfast.lib.sg

metadata := {
	"id": "SG-08",
	"title": "No security group ingress from the internet to database ports",
	"description": "Databases (MySQL, PostgreSQL, SQL Server, Oracle, MongoDB, Redis) reachable from the internet are a direct path to data.",
	"severity": "high",
	"resource_types": ["aws.ec2.security_group"],
	"remediation": "Remove the rule; reach databases from application security groups or a private network.",
	"controls": {"soc2": ["CC6.6"], "iso27001-2022": ["A.8.20", "A.8.21", "A.8.22"]},
}

db_ports := {3306, 5432, 1433, 1521, 27017, 6379}

deny contains msg if {
	some key, rule in input.attributes.ingress
	sg.world(rule)
	some port in db_ports
	sg.reaches_tcp(rule, port)
	msg := sprintf("ingress %s lets the internet reach database port %d", [key, port])
}
