//! The `wshub` binary: `wshub` serves, `wshub token` mints an API token, `wshub import` copies a
//! single node's systems into a cluster.

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
        Some(Command::Import(args)) => import(args),
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

/// `wshub import`: one line per system, then a count; fails (nothing written) when the store
/// cannot be read, or stops at the first Redis error (what was written stays: running it again
/// skips those).
#[actix_web::main]
async fn import(args: wshub::config::ImportArgs) -> ExitCode {
    use wshub::cluster::{import_systems, Imported};
    let path = args.data_dir.join(wshub::store::STORE_FILE);
    if !path.exists() {
        eprintln!("error: {} does not exist: no systems to import (is --data-dir the single node's data directory?)", path.display());
        return ExitCode::FAILURE;
    }
    let systems = match wshub::store::SystemStore::open(&args.data_dir).and_then(|s| s.load()) {
        Ok(systems) => systems,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::FAILURE;
        }
    };
    match import_systems(&args.redis_url, &args.redis_prefix, &systems).await {
        Ok(outcome) => {
            let mut added = 0;
            for ((system_id, _), imported) in systems.iter().zip(&outcome) {
                match imported {
                    Imported::Added => {
                        added += 1;
                        println!("imported {system_id}");
                    }
                    Imported::AlreadyThere => println!(
                        "skipped {system_id}: the cluster has it already (its settings are kept)"
                    ),
                }
            }
            println!(
                "{added} imported, {} skipped, into {} (prefix {})",
                systems.len() - added,
                args.redis_url,
                args.redis_prefix
            );
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!(
                "error: cannot import into Redis at {}: {err}",
                args.redis_url
            );
            ExitCode::FAILURE
        }
    }
}

#[actix_web::main]
async fn serve(config: wshub::Config) -> std::io::Result<()> {
    let app = wshub::Application::build(config).await?;
    app.run_until_stopped().await
}
