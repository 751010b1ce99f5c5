//! Holdfast's wire protocol, generated from `holdfast/agent/v1/agent.proto`
//! and `holdfast/admin/v1/admin.proto`. Generated code is never edited; the
//! conversions between wire and domain types live in the crates that own the
//! domain types (`holdfast-controller::convert`, `holdfast-agent::convert`)
//! and in [`ext`] for the wire enums themselves.

pub mod agent {
    pub mod v1 {
        tonic::include_proto!("holdfast.agent.v1");
    }
}

pub mod admin {
    pub mod v1 {
        tonic::include_proto!("holdfast.admin.v1");
    }
}

pub mod ext;
