# Helpers over aws.iam.password_policy ("policy" is "none" when the
# account has none: AWS's defaults, 8 characters and nothing else, apply).
package holdfast.lib.password

policy := input.attributes.policy

configured if is_object(policy)
