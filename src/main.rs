//! The `wshub` binary: `wshub` serves, `wshub token` mints an API token.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use wshub::config::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Token(args)) => {
            let Some(secret) = args.jwt_secret.filter(|s| !s.is_empty()) else {
                eprintln!(
                    "error: no secret configured: pass --jwt-secret or set WSHUB_JWT_SECRET to \
                     the secret the server runs with"
                );
                return ExitCode::FAILURE;
            };
            let token = wshub::auth::mint_with_secret(
                secret.as_bytes(),
                args.system.as_deref(),
                Duration::from_secs(args.ttl),
            );
            println!("{token}");
            ExitCode::SUCCESS
        }
        None => {
            wshub::logging::init(cli.log_format);
            match serve(cli.serve) {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => {
                    log::error!("{err}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

#[actix_web::main]
async fn serve(config: wshub::Config) -> std::io::Result<()> {
    let app = wshub::Application::build(config).await?;
    app.run_until_stopped().await
}
