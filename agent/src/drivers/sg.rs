//! EC2 security groups: DescribeSecurityGroups (paged) to collect and read,
//! Authorize/Revoke/UpdateRuleDescriptions and Create/DeleteTags to apply.

use async_trait::async_trait;
use aws_sdk_ec2::types::{
    IpPermission, IpRange, Ipv6Range, PrefixListId, SecurityGroup as SdkGroup, Tag, UserIdGroupPair,
};
use holdfast_core::sg::{RawPermission, RawSecurityGroup, Rule, SecurityGroup, SgAction, Source};
use serde_json::Value;

use super::{call_failed, error_code, CloudError, Driver};
use crate::aws::Cloud;

pub struct SecurityGroups {
    cloud: Cloud,
}

impl SecurityGroups {
    pub fn new(cloud: Cloud) -> Self {
        SecurityGroups { cloud }
    }
}

/// SDK group → raw group (the normalizer's input).
pub fn to_raw(g: &SdkGroup) -> RawSecurityGroup {
    RawSecurityGroup {
        group_id: g.group_id().unwrap_or_default().to_string(),
        name: g.group_name().unwrap_or_default().to_string(),
        description: g.description().unwrap_or_default().to_string(),
        vpc_id: g.vpc_id().map(String::from),
        owner_account: g.owner_id().unwrap_or_default().to_string(),
        tags: g
            .tags()
            .iter()
            .map(|t| {
                (
                    t.key().unwrap_or_default().to_string(),
                    t.value().unwrap_or_default().to_string(),
                )
            })
            .collect(),
        ingress: g.ip_permissions().iter().map(to_raw_permission).collect(),
        egress: g
            .ip_permissions_egress()
            .iter()
            .map(to_raw_permission)
            .collect(),
    }
}

fn to_raw_permission(p: &IpPermission) -> RawPermission {
    RawPermission {
        protocol: p.ip_protocol().unwrap_or_default().to_string(),
        from_port: p.from_port(),
        to_port: p.to_port(),
        ipv4: p
            .ip_ranges()
            .iter()
            .map(|r| {
                (
                    r.cidr_ip().unwrap_or_default().to_string(),
                    r.description().map(String::from),
                )
            })
            .collect(),
        ipv6: p
            .ipv6_ranges()
            .iter()
            .map(|r| {
                (
                    r.cidr_ipv6().unwrap_or_default().to_string(),
                    r.description().map(String::from),
                )
            })
            .collect(),
        prefix_lists: p
            .prefix_list_ids()
            .iter()
            .map(|r| {
                (
                    r.prefix_list_id().unwrap_or_default().to_string(),
                    r.description().map(String::from),
                )
            })
            .collect(),
        groups: p
            .user_id_group_pairs()
            .iter()
            .map(|r| {
                (
                    r.group_id().unwrap_or_default().to_string(),
                    r.user_id().map(String::from),
                    r.description().map(String::from),
                )
            })
            .collect(),
    }
}

/// Canonical rule → SDK permission. Revocations leave the description out:
/// a rule is identified by protocol, ports and source.
pub fn to_permission(rule: &Rule, with_description: bool) -> IpPermission {
    let description = if with_description {
        rule.description.clone()
    } else {
        None
    };
    let mut b = IpPermission::builder().ip_protocol(rule.api_protocol());
    if let Some(p) = rule.from_port {
        b = b.from_port(p);
    }
    if let Some(p) = rule.to_port {
        b = b.to_port(p);
    }
    b = match &rule.source {
        Source::Ipv4 { cidr } => b.ip_ranges(
            IpRange::builder()
                .cidr_ip(cidr)
                .set_description(description)
                .build(),
        ),
        Source::Ipv6 { cidr } => b.ipv6_ranges(
            Ipv6Range::builder()
                .cidr_ipv6(cidr)
                .set_description(description)
                .build(),
        ),
        Source::PrefixList { prefix_list_id } => b.prefix_list_ids(
            PrefixListId::builder()
                .prefix_list_id(prefix_list_id)
                .set_description(description)
                .build(),
        ),
        Source::Group { group_id, account } => b.user_id_group_pairs(
            UserIdGroupPair::builder()
                .group_id(group_id)
                .set_user_id(account.clone())
                .set_description(description)
                .build(),
        ),
    };
    b.build()
}

fn canonical(g: &SdkGroup) -> Result<(String, Value), CloudError> {
    let sg = SecurityGroup::from_raw(to_raw(g))
        .map_err(|e| CloudError(format!("unexpected API response: {e}")))?;
    Ok((sg.group_id.clone(), sg.to_value()))
}

#[async_trait]
impl Driver for SecurityGroups {
    fn resource_type(&self) -> &'static str {
        holdfast_core::sg::TYPE
    }

    async fn collect(&self, region: &str) -> Result<Vec<(String, Value)>, CloudError> {
        let client = self.cloud.ec2(region);
        let mut pages = client
            .describe_security_groups()
            .max_results(1000)
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| call_failed("DescribeSecurityGroups", "", e))?;
            for g in page.security_groups() {
                out.push(canonical(g)?);
            }
        }
        Ok(out)
    }

    async fn read(&self, region: &str, id: &str) -> Result<Option<Value>, CloudError> {
        let client = self.cloud.ec2(region);
        match client.describe_security_groups().group_ids(id).send().await {
            Ok(out) => match out
                .security_groups()
                .iter()
                .find(|g| g.group_id() == Some(id))
            {
                Some(g) => Ok(Some(canonical(g)?.1)),
                None => Ok(None),
            },
            Err(e) if error_code(&e) == Some("InvalidGroup.NotFound") => Ok(None),
            Err(e) => Err(call_failed("DescribeSecurityGroups", "", e)),
        }
    }

    async fn delete(
        &self,
        region: &str,
        id: &str,
        _current: &Value,
    ) -> Result<Vec<String>, (Vec<String>, CloudError)> {
        self.cloud
            .ec2(region)
            .delete_security_group()
            .group_id(id)
            .send()
            .await
            .map_err(|e| (vec![], call_failed("DeleteSecurityGroup", id, e)))?;
        Ok(vec![format!("DeleteSecurityGroup {id}")])
    }

    async fn apply(
        &self,
        region: &str,
        id: &str,
        desired: &Value,
        current: &Value,
    ) -> Result<Vec<String>, (Vec<String>, CloudError)> {
        let desired = SecurityGroup::from_value(desired).map_err(|e| (vec![], CloudError(e)))?;
        let current = SecurityGroup::from_value(current).map_err(|e| (vec![], CloudError(e)))?;
        let actions = holdfast_core::sg::plan(&desired, &current)
            .map_err(|e| (vec![], CloudError(e.to_string())))?;
        let client = self.cloud.ec2(region);
        let mut done = Vec::new();
        for action in actions {
            let line = action.to_string();
            let result = match &action {
                SgAction::AuthorizeIngress { rule } => client
                    .authorize_security_group_ingress()
                    .group_id(id)
                    .ip_permissions(to_permission(rule, true))
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| call_failed("AuthorizeSecurityGroupIngress", "", e)),
                SgAction::AuthorizeEgress { rule } => client
                    .authorize_security_group_egress()
                    .group_id(id)
                    .ip_permissions(to_permission(rule, true))
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| call_failed("AuthorizeSecurityGroupEgress", "", e)),
                SgAction::UpdateIngressDescription { rule } => client
                    .update_security_group_rule_descriptions_ingress()
                    .group_id(id)
                    .ip_permissions(to_permission(rule, true))
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| call_failed("UpdateSecurityGroupRuleDescriptionsIngress", "", e)),
                SgAction::UpdateEgressDescription { rule } => client
                    .update_security_group_rule_descriptions_egress()
                    .group_id(id)
                    .ip_permissions(to_permission(rule, true))
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| call_failed("UpdateSecurityGroupRuleDescriptionsEgress", "", e)),
                SgAction::RevokeIngress { rule } => client
                    .revoke_security_group_ingress()
                    .group_id(id)
                    .ip_permissions(to_permission(rule, false))
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| call_failed("RevokeSecurityGroupIngress", "", e)),
                SgAction::RevokeEgress { rule } => client
                    .revoke_security_group_egress()
                    .group_id(id)
                    .ip_permissions(to_permission(rule, false))
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| call_failed("RevokeSecurityGroupEgress", "", e)),
                SgAction::CreateTags { tags } => {
                    let mut req = client.create_tags().resources(id);
                    for (k, v) in tags {
                        req = req.tags(Tag::builder().key(k).value(v).build());
                    }
                    req.send()
                        .await
                        .map(|_| ())
                        .map_err(|e| call_failed("CreateTags", "", e))
                }
                SgAction::DeleteTags { keys } => {
                    let mut req = client.delete_tags().resources(id);
                    for k in keys {
                        req = req.tags(Tag::builder().key(k).build());
                    }
                    req.send()
                        .await
                        .map(|_| ())
                        .map_err(|e| call_failed("DeleteTags", "", e))
                }
            };
            match result {
                Ok(()) => done.push(line),
                Err(e) => return Err((done, e)),
            }
        }
        Ok(done)
    }
}
