use clap::Parser;

use latchkey::cli::run_user_command;
use latchkey::config::{Cli, Command};
use latchkey::startup::Application;
use latchkey::telemetry;

/// mimalloc instead of glibc's malloc: under load the request log allocates on the
/// blocking pool's threads and glibc's per-thread arenas kept that memory (resident
/// memory after the verification benchmark: see BENCHMARKS.md). Built with `no_thp`
/// (Cargo.toml): its arena in transparent huge pages was half the server's memory.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    telemetry::init(cli.settings.log_format);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(cli.settings),
        Command::User(cmd) => match run_user_command(&cli.settings, cmd) {
            Ok(msg) => {
                println!("{msg}");
                std::process::ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                std::process::ExitCode::FAILURE
            }
        },
    }
}

fn serve(settings: latchkey::config::Settings) -> std::process::ExitCode {
    // A bad setting is a usage error (like clap's): a message and exit code 2.
    if let Err(e) = settings.validate() {
        eprintln!("error: {e}");
        return std::process::ExitCode::from(2);
    }
    let result = actix_web::rt::System::new().block_on(async move {
        let app = Application::build(settings)
            .await
            .map_err(|e| e.to_string())?;
        println!("Latchkey listening on http://{}", app.addr());
        tracing::info!(addr = %app.addr(), "listening");
        app.run_until_stopped().await.map_err(|e| e.to_string())
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
