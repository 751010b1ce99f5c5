package holdfast.rules.sg_no_world_high_risk_ports

import data.holdfast.lib.sg

metadata := {
	"id": "SG-11",
	"title": "No security group ingress from the internet to high-risk ports",
	"description": "Ports such as FTP, Telnet, SMTP, SMB, RPC and admin consoles (Security Hub EC2.19 list) are frequent attack targets.",
	"severity": "high",
	"resource_types": ["aws.ec2.security_group"],
	"remediation": "Remove the rule, or narrow its source to known networks.",
	"controls": {"nist-800-53-r5": ["AC-4", "AC-4(21)", "CA-9(1)", "CM-2", "CM-2(2)", "CM-7", "SC-7", "SC-7(4)", "SC-7(5)", "SC-7(11)", "SC-7(16)", "SC-7(21)"], "soc2": ["CC6.6"], "iso27001-2022": ["A.8.20", "A.8.21", "A.8.22"]},
}

high_risk := {20, 21, 22, 23, 25, 110, 135, 143, 445, 1433, 1434, 3000, 3306, 3389, 4333, 5000, 5432, 5500, 5601, 8080, 8088, 8888, 9200, 9300}

deny contains msg if {
	some key, rule in input.attributes.ingress
	sg.world(rule)
	some port in high_risk
	sg.reaches_tcp(rule, port)
	msg := sprintf("ingress %s lets the internet reach high-risk port %d", [key, port])
}
