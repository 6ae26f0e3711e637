//! `openclaw-node`: serves this device's capabilities to paired gateways.
//!
//! `openclaw-node pair` shows a 6-digit code and serves; `openclaw-node run` serves paired
//! gateways only; `openclaw-node run --gateway HOST:PORT` dials its paired gateway instead of
//! listening (a node that cannot be reached keeps a link open from its side).

use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(name = "openclaw-node", version, about = "OpenClaw device node")]
struct Cli {
    /// Where the node keeps its key, certificate and paired gateways
    #[arg(
        long,
        global = true,
        value_name = "DIR",
        env = "OPENCLAW_NODE_STATE_DIR"
    )]
    state_dir: Option<PathBuf>,
    /// Address to listen on; the default, 0.0.0.0, is every interface (the node prints which
    /// addresses that is): pass this host's Tailscale IP to listen on the tailnet only
    #[arg(long, global = true, default_value = "0.0.0.0")]
    bind: String,
    #[arg(long, global = true, default_value_t = openclaw_protocol::node::NODE_PORT)]
    port: u16,
    /// Name shown to gateways [default: this host's name]
    #[arg(long, global = true)]
    name: Option<String>,
    /// tailscaled's LocalAPI socket: when present, peers are identified with `whois`
    #[arg(long, global = true, default_value = openclaw_node::tailnet::DEFAULT_SOCKET)]
    tailscale_socket: PathBuf,
    /// Only let these tailnet users (login names) connect; repeat for several
    #[arg(long = "allow-tailnet-user", global = true, value_name = "LOGIN")]
    allowed_users: Vec<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Show a pairing code and serve (pair from the gateway with `openclaw nodes pair`), or,
    /// with --gateway and --code, pair with a gateway that shows the code
    /// (`openclaw nodes pair --listen`) and exit
    Pair {
        /// How long the code stays valid
        #[arg(long, default_value_t = 300)]
        code_expiry_seconds: u64,
        /// Pair with this gateway (`HOST:PORT`) by the code it shows, instead of showing one
        #[arg(long, value_name = "HOST:PORT", requires = "code")]
        gateway: Option<String>,
        /// The 6-digit code the gateway shows
        #[arg(long, value_name = "NNNNNN", requires = "gateway")]
        code: Option<String>,
    },
    /// Serve paired gateways
    Run {
        /// Dial this paired gateway (its node route) and keep the link, reconnecting with
        /// backoff, instead of listening
        #[arg(long, value_name = "HOST:PORT")]
        gateway: Option<String>,
    },
}

fn default_state_dir() -> Option<PathBuf> {
    std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .map(|d| d.join("openclaw-node"))
}

fn host_name() -> String {
    openclaw_node::host_name().unwrap_or_else(|| "openclaw-node".into())
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 64 } else { 0 });
        }
    };
    // The library logs through `tracing`; the binary shows warnings and above on stderr, as
    // `openclaw-node: …` lines did before (stdout is the banner scripts read).
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(tracing::Level::WARN)
        .with_target(false)
        .without_time()
        .init();
    let Some(state_dir) = cli.state_dir.clone().or_else(default_state_dir) else {
        eprintln!("openclaw-node: no home directory for the state dir: pass --state-dir DIR");
        return ExitCode::from(1);
    };
    let name = cli.name.clone().unwrap_or_else(host_name);
    let capabilities = openclaw_node::desktop::detect();
    let node = match openclaw_node::Node::open(state_dir.clone(), name, capabilities) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("openclaw-node: {e}");
            return ExitCode::from(1);
        }
    };
    let addr: SocketAddr = match format!("{}:{}", cli.bind, cli.port).parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!(
                "openclaw-node: `{}:{}` is not an address to listen on ({e})",
                cli.bind, cli.port
            );
            return ExitCode::from(64);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("openclaw-node: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    if let Command::Pair {
        gateway: Some(gateway),
        code: Some(code),
        ..
    } = &cli.command
    {
        let result = runtime.block_on(openclaw_node::pair_with_gateway(&node, gateway, code));
        return match result {
            Ok(paired) => {
                println!(
                    "paired with the gateway {} ({}) at {gateway}",
                    paired.name,
                    &paired.device_id[..12.min(paired.device_id.len())]
                );
                println!("keep a link to it with: openclaw-node run --gateway {gateway}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("openclaw-node: {e}");
                ExitCode::from(1)
            }
        };
    }
    if let Command::Run {
        gateway: Some(gateway),
    } = &cli.command
    {
        let gateway = gateway.clone();
        runtime.block_on(async move {
            println!(
                "openclaw-node {} dialing the gateway at {gateway}",
                node.identity().device_id()
            );
            println!(
                "capabilities: {}",
                node.capabilities().advertised().join(", ")
            );
            if node.paired_gateways().is_empty() {
                eprintln!(
                    "openclaw-node: warning: this node is paired with no gateway yet; the gateway will refuse it until it is"
                );
            }
            let shutdown = async {
                let _ = tokio::signal::ctrl_c().await;
            };
            openclaw_node::run_dial_out(node, openclaw_node::DialOut::new(gateway), shutdown)
                .await;
        });
        return ExitCode::SUCCESS;
    }
    let result = runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        let local = listener.local_addr().map_err(|e| e.to_string())?;
        let guard = openclaw_node::PeerGuard::new(&cli.tailscale_socket, cli.allowed_users.clone());
        println!(
            "openclaw-node {} listening on {local}",
            node.identity().device_id()
        );
        // On a wildcard (the default) say which addresses that is, and what it exposes.
        let interfaces = openclaw_node::bind::host_addresses();
        for line in openclaw_node::bind::banner(local, interfaces.as_deref(), guard.checks_peers())
        {
            println!("{line}");
        }
        println!(
            "certificate fingerprint {}",
            node.identity().cert_fingerprint()
        );
        println!(
            "capabilities: {}",
            node.capabilities().advertised().join(", ")
        );
        for (method, reason) in node.capabilities().unavailable() {
            println!("not available: {method}: {reason}");
        }
        println!("{}", guard.describe());
        if let Command::Pair {
            code_expiry_seconds,
            ..
        } = cli.command
        {
            let code = node.new_pairing_code(Duration::from_secs(code_expiry_seconds));
            println!("pairing code: {code} (valid {code_expiry_seconds} s, single use)");
            println!(
                "on the gateway: openclaw nodes pair <this host>:{} --code {code}",
                local.port()
            );
        }
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        openclaw_node::serve_guarded(listener, node, guard, shutdown)
            .await
            .map_err(|e| e.to_string())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("openclaw-node: {e}");
            ExitCode::from(1)
        }
    }
}
