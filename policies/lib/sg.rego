# Helpers for rules over aws.ec2.security_group (canonical form: ingress
# and egress are objects of rules keyed by "protocol:ports:source").
package holdfast.lib.sg

world_v4(rule) if {
	rule.source.kind == "ipv4"
	rule.source.cidr == "0.0.0.0/0"
}

world_v6(rule) if {
	rule.source.kind == "ipv6"
	rule.source.cidr == "::/0"
}

world(rule) if world_v4(rule)

world(rule) if world_v6(rule)

# The rule lets TCP traffic reach the port.
reaches_tcp(rule, port) if rule.protocol == "all"

reaches_tcp(rule, port) if {
	rule.protocol == "tcp"
	rule.from_port <= port
	port <= rule.to_port
}

# The rule opens every port.
all_ports(rule) if rule.protocol == "all"

all_ports(rule) if {
	rule.protocol in {"tcp", "udp"}
	rule.from_port <= 0
	rule.to_port >= 65535
}
