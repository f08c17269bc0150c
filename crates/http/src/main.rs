//! The `tickets` binary: `serve` (the default), `migrate`, `create-superuser`, `openapi`.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use domain::values::{Email, Password, Username};
use http_adapter::auth::BcryptHasher;
use http_adapter::settings::Settings;
use http_adapter::shutdown;
use http_adapter::startup::{connect_and_migrate, error_chain, services, Application};
use http_adapter::telemetry;

#[derive(Parser)]
#[command(name = "tickets", version, about = "The tickets customer-support API")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Apply pending migrations, then serve the API (the default).
    Serve,
    /// Apply pending migrations and exit.
    Migrate,
    /// Create a superuser, or promote an existing account; reads the password from stdin.
    CreateSuperuser {
        #[arg(long)]
        email: String,
        #[arg(long)]
        username: String,
    },
    /// Print the OpenAPI document (the source of docs/openapi.json).
    Openapi,
}

/// jemalloc instead of the system's allocator: 7% more throughput on the mixed workload
/// than with glibc's, with or without event streams open (bench/README.md, "The
/// allocator"). Only the binary has it: tests that start the server in their
/// own process run on the system's allocator; those that run the binary, on jemalloc.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[actix_web::main]
async fn main() -> ExitCode {
    // Before logging starts, so that RUST_LOG and RUST_LOG_FORMAT in .env apply. A
    // missing .env is normal.
    let _ = dotenvy::dotenv();
    telemetry::init();
    let cli = Cli::parse();
    let settings = match Settings::load() {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("tickets: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(settings).await,
        Command::Migrate => connect_and_migrate(&settings.database)
            .await
            .map(|_| tracing::info!("migrations are up to date"))
            .map_err(|e| error_chain(&e)),
        Command::CreateSuperuser { email, username } => {
            create_superuser(settings, &email, &username).await
        }
        Command::Openapi => {
            print!("{}", http_adapter::openapi::pretty_json());
            Ok(())
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("tickets: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(settings: Settings) -> Result<(), String> {
    // First, so that a signal while migrations run or PostgreSQL is awaited is not the
    // default action's (exit at once) but ours.
    let mut stop_requests =
        shutdown::stop_signals().map_err(|e| format!("cannot handle signals: {e}"))?;
    let app = tokio::select! {
        built = Application::build(settings) => built.map_err(|e| e.to_string())?,
        Some(_) = stop_requests.recv() => {
            tracing::info!("stopped before serving");
            return Ok(());
        }
    };
    app.run_until(stop_requests)
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!("stopped");
    Ok(())
}

async fn create_superuser(settings: Settings, email: &str, username: &str) -> Result<(), String> {
    let email = Email::parse(email).map_err(|e| e.to_string())?;
    let username = Username::parse(username).map_err(|e| e.to_string())?;
    // One line, so that `echo "$PASSWORD" | tickets create-superuser …` and typing at a
    // terminal both work.
    let mut input = String::new();
    std::io::stdin()
        .read_line(&mut input)
        .map_err(|e| format!("cannot read the password from stdin: {e}"))?;
    let password =
        Password::parse(input.trim_end_matches(['\r', '\n'])).map_err(|e| e.to_string())?;
    let pool = connect_and_migrate(&settings.database)
        .await
        .map_err(|e| e.to_string())?;
    let hasher = BcryptHasher::new(
        settings.auth.bcrypt_cost,
        1,
        Duration::from_millis(settings.auth.hash_wait_timeout_ms),
    )
    .await
    .map_err(|e| e.to_string())?;
    let (users, _) = services(&pool, Arc::new(hasher));
    let user = users
        .create_superuser(email, username, password)
        .await
        .map_err(|e| e.to_string())?;
    println!("superuser {} (id {}) is ready", user.email, user.id);
    Ok(())
}
