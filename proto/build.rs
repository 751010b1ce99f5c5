fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `build_transport(false)`: the agent service's RPC is named `Connect`,
    // which would collide with the generated client's `connect` constructor.
    // Clients are built with `::new(channel)` instead.
    tonic_prost_build::configure()
        .build_transport(false)
        .compile_protos(
            &[
                "holdfast/agent/v1/agent.proto",
                "holdfast/admin/v1/admin.proto",
            ],
            &["."],
        )?;
    Ok(())
}
