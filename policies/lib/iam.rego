# Helpers over normalized IAM policy documents (Statement is an array;
# Action, Resource and principal values are arrays).
package holdfast.lib.iam

# A statement allows every action on every resource.
admin_star(doc) if {
	some s in doc.Statement
	s.Effect == "Allow"
	"*" in s.Action
	"*" in s.Resource
}

# Every document of a resource: a managed policy's, or its inline ones.
documents contains doc if {
	doc := input.attributes.document
}

documents contains doc if {
	some doc in input.attributes.inline_policies
}

public_principal(s) if s.Principal == "*"

public_principal(s) if "*" in s.Principal.AWS
