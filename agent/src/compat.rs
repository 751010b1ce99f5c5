//! The emulator compatibility layer: every known difference between the AWS
//! emulator used by the tests and the demo (moto 5.2.x) and real AWS that
//! holdfast must work around, in one place.
//!
//! It is on only with `--emulator-compat` (the tests and the demo set it).
//! Against real AWS it stays off, and each difference below then surfaces
//! as the ordinary error it would be.
//!
//! | # | operation | moto | AWS | workaround |
//! |---|---|---|---|---|
//! | 1 | S3 GetBucketVersioning | replies with root element `GetBucketVersioningResponse`, which aws-sdk-rust rejects as an XML decode error | root element `VersioningConfiguration` | read `Status` and `MfaDelete` from the rejected reply's raw body ([`versioning_from_rejected`]) |
//! | 2 | IAM GetAccountAuthorizationDetails | `Policies` entries carry no `PolicyName` | every entry names its policy | take the name from the ARN's last segment ([`policy_name_from_arn`]) |
//!
//! Differences that need no workaround, because holdfast treats them as
//! values and not as errors:
//! - a new bucket has no default encryption, public access block or
//!   ownership controls in moto (pre-2023 defaults), where AWS reports
//!   SSE-S3, all four blocks and `BucketOwnerEnforced`: "not configured" is
//!   a value in the canonical model, so both are faithfully recorded;
//! - moto ignores paging for DescribeSecurityGroups (all groups in one
//!   page): the paginator handles both.

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::SdkError;

/// The raw body of a reply the SDK rejected, when it was read into memory.
fn raw_body<E>(e: &SdkError<E, HttpResponse>) -> Option<&[u8]> {
    match e {
        SdkError::ServiceError(s) => s.raw().body().bytes(),
        SdkError::ResponseError(r) => r.raw().body().bytes(),
        _ => None,
    }
}

/// Difference 1: the versioning status and MFA-delete status from a
/// GetBucketVersioning reply the SDK rejected because of moto's root
/// element. `None` when the reply is not that (a real error stays one).
pub fn versioning_from_rejected<E>(
    e: &SdkError<E, HttpResponse>,
) -> Option<(Option<String>, Option<String>)> {
    let body = std::str::from_utf8(raw_body(e)?).ok()?;
    parse_moto_versioning(body)
}

/// Parses moto's GetBucketVersioning body.
pub fn parse_moto_versioning(body: &str) -> Option<(Option<String>, Option<String>)> {
    if !body.contains("<GetBucketVersioningResponse") && !body.contains("<VersioningConfiguration")
    {
        return None;
    }
    let element = |name: &str| {
        let open = format!("<{name}>");
        let close = format!("</{name}>");
        let start = body.find(&open)? + open.len();
        let end = body[start..].find(&close)? + start;
        Some(body[start..end].trim().to_string()).filter(|s| !s.is_empty())
    };
    Some((element("Status"), element("MfaDelete")))
}

/// Difference 2: a customer-managed policy's name from its ARN
/// (`arn:aws:iam::ACCOUNT:policy/PATH/NAME`).
pub fn policy_name_from_arn(arn: &str) -> Option<String> {
    arn.rsplit_once('/')
        .map(|(_, name)| name.to_string())
        .filter(|n| !n.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moto_versioning_bodies_parse() {
        let enabled = r#"<?xml version="1.0" encoding="UTF-8"?>
<GetBucketVersioningResponse xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Status>Enabled</Status>
</GetBucketVersioningResponse>"#;
        assert_eq!(
            parse_moto_versioning(enabled),
            Some((Some("Enabled".into()), None))
        );
        let never = r#"<?xml version="1.0" encoding="UTF-8"?><GetBucketVersioningResponse xmlns="http://s3.amazonaws.com/doc/2006-03-01/"/>"#;
        assert_eq!(parse_moto_versioning(never), Some((None, None)));
        let mfa = "<GetBucketVersioningResponse><Status>Suspended</Status><MfaDelete>Disabled</MfaDelete></GetBucketVersioningResponse>";
        assert_eq!(
            parse_moto_versioning(mfa),
            Some((Some("Suspended".into()), Some("Disabled".into())))
        );
        assert_eq!(
            parse_moto_versioning("<Error><Code>AccessDenied</Code></Error>"),
            None
        );
    }

    #[test]
    fn policy_names_come_from_arns() {
        assert_eq!(
            policy_name_from_arn("arn:aws:iam::123456789012:policy/team/deploy").as_deref(),
            Some("deploy")
        );
        assert_eq!(
            policy_name_from_arn("arn:aws:iam::123456789012:policy/"),
            None
        );
    }
}
