use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let config = holdfast_controller::Config::parse();
    holdfast_telemetry::init_telemetry("holdfast-controller");
    match holdfast_controller::main_with(config).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("holdfast-controller: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
