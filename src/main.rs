//! The `waypost` command: `serve`, `check`, `lookup`, `demo` and `dnssec`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use waypost::config::Overrides;

#[derive(Parser)]
#[command(name = "waypost", version, about = "Geo-aware, health-checked authoritative DNS server")]
struct Cli {
    /// Log level when RUST_LOG is not set (error, warn, info, debug, trace); default
    /// info for `serve` and `demo`, warn for the commands that print a result.
    #[arg(long, global = true)]
    log_level: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve DNS and the HTTP API.
    Serve {
        #[command(flatten)]
        source: Source,
        /// DNS listen address (UDP and TCP); repeat for several. Port 0 picks a free port.
        #[arg(long = "dns-listen", value_name = "ADDR:PORT")]
        dns_listen: Vec<SocketAddr>,
        /// HTTP API listen address.
        #[arg(long = "http-listen", value_name = "ADDR:PORT")]
        http_listen: Option<SocketAddr>,
        /// UDP worker threads (0 = one per core).
        #[arg(long, env = "WAYPOST_UDP_WORKERS")]
        udp_workers: Option<usize>,
        /// TCP threads (0 = one per CPU, at most 4); overrides `server.tcp-threads`.
        #[arg(long, env = "WAYPOST_TCP_THREADS", value_parser = clap::value_parser!(u16).range(0..=waypost::config::defaults::MAX_TCP_THREADS as i64))]
        tcp_threads: Option<u16>,
    },
    /// Load and check the config and every zone exactly as a reload would; exit 0 or 1.
    Check {
        #[command(flatten)]
        source: Source,
    },
    /// Run the example config with three local HTTP sites it health-checks, to watch failover.
    Demo {
        /// The example config to start from.
        #[arg(long, value_name = "FILE", default_value = "waypost.toml")]
        config: PathBuf,
    },
    /// Explain the answer a client gets: location, rule, data-centre order, records, TTL, ECS scope.
    Lookup {
        #[command(flatten)]
        source: Source,
        /// The client: IP or IP/PREFIX (as a resolver would send it in ECS).
        #[arg(long, value_name = "IP[/PREFIX]")]
        client: String,
        /// The name to look up.
        name: String,
        /// The query type.
        #[arg(default_value = "A")]
        qtype: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// DNSSEC keys for the zones Waypost signs (`[dnssec] key-dir`).
    Dnssec {
        #[command(subcommand)]
        action: DnssecAction,
    },
}

#[derive(Subcommand)]
enum DnssecAction {
    /// Write a new CSK (flags 257) for ZONE into key-dir, in BIND's format.
    Keygen {
        #[command(flatten)]
        keys: KeyDir,
        zone: String,
        /// ecdsap256sha256 (13, the default) or ed25519 (15).
        #[arg(long, default_value = "ecdsap256sha256")]
        algorithm: String,
    },
    /// Print the DS records (SHA-256) and DNSKEYs of ZONE's KSK/CSK, for the parent zone.
    Ds {
        #[command(flatten)]
        keys: KeyDir,
        zone: String,
    },
}

#[derive(clap::Args)]
struct KeyDir {
    /// Config file whose `[dnssec] key-dir` to use (default: ./waypost.toml).
    #[arg(long, value_name = "FILE", default_value = "waypost.toml")]
    config: PathBuf,
    /// The key folder itself, instead of the config's.
    #[arg(long, value_name = "DIR")]
    key_dir: Option<PathBuf>,
}

impl KeyDir {
    fn resolve(&self) -> anyhow::Result<PathBuf> {
        if let Some(d) = &self.key_dir {
            return Ok(d.clone());
        }
        let cfg = waypost::config::Config::load(Some(&self.config), &Overrides::default())
            .map_err(|ps| anyhow::anyhow!(ps.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")))?;
        cfg.signing.map(|s| s.key_dir).with_context(|| format!("{}: no [dnssec] key-dir (or give --key-dir)", self.config.display()))
    }
}

fn dnssec(action: DnssecAction) -> anyhow::Result<()> {
    let zone_name = |z: &str| waypost::wire::Name::from_text(z).with_context(|| format!("{z:?} is not a domain name"));
    match action {
        DnssecAction::Keygen { keys, zone, algorithm } => {
            let alg = match algorithm.to_ascii_lowercase().as_str() {
                "ecdsap256sha256" | "13" => waypost::signer::keys::ECDSAP256SHA256,
                "ed25519" | "15" => waypost::signer::keys::ED25519,
                other => anyhow::bail!("algorithm {other:?}: ecdsap256sha256 (13) or ed25519 (15)"),
            };
            let dir = keys.resolve()?;
            let path = waypost::signer::keygen(&dir, &zone_name(&zone)?, alg).map_err(|e| anyhow::anyhow!(e))?;
            println!("{}", path.display());
        }
        DnssecAction::Ds { keys, zone } => {
            let dir = keys.resolve()?;
            for line in waypost::signer::ds_records(&dir, &zone_name(&zone)?).map_err(|e| anyhow::anyhow!(e))? {
                println!("{line}");
            }
        }
    }
    Ok(())
}

#[derive(clap::Args)]
struct Source {
    /// Config file (default: ./waypost.toml, unless --zones is given).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Zones directory; without --config, serves it with default settings.
    #[arg(long, value_name = "DIR")]
    zones: Option<PathBuf>,
}

impl Source {
    fn config_path(&self) -> Option<PathBuf> {
        match (&self.config, &self.zones) {
            (Some(c), _) => Some(c.clone()),
            (None, Some(_)) => None,
            (None, None) => Some(PathBuf::from("waypost.toml")),
        }
    }
}

fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let quiet = matches!(cli.command, Command::Check { .. } | Command::Dnssec { .. } | Command::Lookup { .. });
    init_logging(cli.log_level.as_deref().unwrap_or(if quiet { "warn" } else { "info" }));
    if matches!(cli.command, Command::Check { .. } | Command::Dnssec { .. } | Command::Lookup { .. }) {
        // A command whose output goes into `head` ends quietly when the pipe closes, as
        // other Unix tools do, instead of panicking on the write (Rust ignores SIGPIPE).
        // SAFETY: called before any other thread exists; SIG_DFL is a valid disposition.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    match cli.command {
        Command::Check { source } => check(&source),
        Command::Dnssec { action } => match dnssec(action) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Lookup { source, client, name, qtype, json } => lookup(&source, &client, &name, &qtype, json),
        Command::Demo { config } => match demo(config) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("waypost: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Serve { source, dns_listen, http_listen, udp_workers, tcp_threads } => {
            let overrides = Overrides { zones_dir: source.zones.clone(), dns_listen, http_listen, extra_toml: None };
            match serve(source.config_path(), overrides, udp_workers, tcp_threads) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("waypost: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn check(source: &Source) -> ExitCode {
    let overrides = Overrides { zones_dir: source.zones.clone(), ..Overrides::default() };
    match waypost::control::load_all(source.config_path().as_deref(), &overrides, None, None) {
        Ok((config, snapshot, report)) => {
            for w in &report.warnings {
                println!("warning: {w}");
            }
            for z in &report.zones {
                println!("ok: {} serial {} ({} records) from {}", z.zone, z.serial, z.records, z.file);
            }
            // The process ends here: freeing a million-record zone piece by piece took a
            // tenth of `check`'s time, and the kernel takes the memory back at once.
            std::mem::forget((config, snapshot));
            ExitCode::SUCCESS
        }
        Err(problems) => {
            for p in &problems {
                println!("{p}");
            }
            ExitCode::FAILURE
        }
    }
}

fn lookup(source: &Source, client: &str, name: &str, qtype: &str, json: bool) -> ExitCode {
    let overrides = Overrides { zones_dir: source.zones.clone(), ..Overrides::default() };
    let snapshot = match waypost::app::prepare(source.config_path(), overrides) {
        Ok(p) => p.snapshot,
        Err(problems) => {
            for p in &problems {
                eprintln!("{p}");
            }
            return ExitCode::FAILURE;
        }
    };
    match waypost::lookup::lookup(&snapshot, client, name, qtype) {
        Ok(r) if json => {
            println!("{}", serde_json::to_string_pretty(&r).unwrap_or_default());
            ExitCode::SUCCESS
        }
        Ok(r) => {
            print!("{r}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("waypost: {e}");
            ExitCode::FAILURE
        }
    }
}

fn demo(config: PathBuf) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().context("starting the async runtime")?;
    // The demo's state file goes when the demo ends, however it ends (short of SIGKILL).
    let state = std::env::temp_dir().join(format!("waypost-demo-state-{}.json", std::process::id()));
    let result = runtime.block_on(async {
        let signals = waypost::app::Signals::install().context("installing signal handlers")?;
        waypost::demo::start_sites().await?;
        let overrides = Overrides { extra_toml: Some(waypost::demo::extra_config(&state)), ..Overrides::default() };
        let prepared = waypost::app::prepare(Some(config.clone()), overrides).map_err(|problems| {
            let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
            anyhow::anyhow!("cannot start the demo:\n{}", text.join("\n"))
        })?;
        let running = waypost::app::start(prepared).await?;
        println!("{}", waypost::demo::instructions(running.udp[0], running.http));
        running.run_until_signal(signals).await;
        Ok(())
    });
    let _ = std::fs::remove_file(&state);
    result
}

fn serve(config_path: Option<PathBuf>, overrides: Overrides, udp_workers: Option<usize>, tcp_threads: Option<u16>) -> anyhow::Result<()> {
    let shown = config_path.as_deref().unwrap_or(Path::new("(no config file)")).display().to_string();
    let mut prepared = waypost::app::prepare(config_path, overrides)
        .map_err(|problems| {
            let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
            anyhow::anyhow!("cannot start:\n{}", text.join("\n"))
        })
        .with_context(|| format!("loading {shown}"))?;
    if let Some(n) = udp_workers {
        prepared.config.udp_workers = n;
    }
    if let Some(n) = tcp_threads {
        prepared.config.tcp.threads = n.into();
    }
    let report = prepared.report.clone();
    for w in &report.warnings {
        tracing::warn!(warning = %w, "zone warning");
    }
    for z in &report.zones {
        tracing::info!(zone = %z.zone, serial = z.serial, records = z.records, "zone loaded");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let signals = waypost::app::Signals::install().context("installing signal handlers")?;
        let running = waypost::app::start(prepared).await?;
        running.run_until_signal(signals).await;
        Ok(())
    })
}
