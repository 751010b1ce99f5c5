use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let config = holdfast_agent::Config::parse();
    holdfast_telemetry::init_telemetry("holdfast-agent");
    match holdfast_agent::main_with(config).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("holdfast-agent: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
