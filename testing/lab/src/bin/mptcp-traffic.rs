// SPDX-License-Identifier: MIT OR Apache-2.0
//! `mptcp-traffic`: MPTCP traffic that works on every kernel (5.10 included), with per-second
//! JSON lines, end-to-end verification and stall detection. See `mptcp_lab::traffic`.
//!
//! Exit codes: 0 transfer complete and intact; 1 failed (connect, corruption, truncation,
//! timeout); 2 usage; 3 intact but the receiver saw a second without data (unless
//! `--allow-stalls`).

use std::{
    io::Write,
    net::SocketAddr,
    process::ExitCode,
    sync::{atomic::AtomicBool, Arc},
    time::Duration,
};

use clap::{Args, Parser, Subcommand};
use mptcp_lab::traffic::{
    interval_json, run_client, Amount, ClientConfig, Direction, Limits, Proto, Server,
    ServerConfig, ServerEvent, Transfer,
};

#[derive(Parser)]
#[command(
    name = "mptcp-traffic",
    version,
    about = "MPTCP traffic generator with verification and stall detection"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Accept transfers (each connection in its own thread) and print their JSON lines.
    Server {
        /// Address to listen on, e.g. 10.9.0.2:5000 or [2001:db8:9::2]:5000 (repeatable).
        #[arg(long, required = true)]
        listen: Vec<SocketAddr>,
        /// Exit after the first transfer, with its exit code.
        #[arg(long)]
        once: bool,
        #[command(flatten)]
        common: Common,
    },
    /// Run one transfer against a server.
    Client {
        /// Server address, e.g. 10.9.0.2:5000.
        #[arg(long)]
        connect: SocketAddr,
        /// Server sends, client receives (default: client sends).
        #[arg(long)]
        download: bool,
        /// Send for this many seconds.
        #[arg(long, conflicts_with = "bytes")]
        seconds: Option<f64>,
        /// Send exactly this many bytes.
        #[arg(long)]
        bytes: Option<u64>,
        /// Seed of the data pattern.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Args)]
struct Common {
    /// Plain TCP instead of MPTCP.
    #[arg(long)]
    tcp: bool,
    /// Bound for a whole transfer, seconds (default: 60 + the transfer's duration).
    #[arg(long)]
    timeout: Option<f64>,
    /// Give up after this many seconds without progress.
    #[arg(long, default_value_t = 30.0)]
    stall_abort: f64,
    /// A second without data does not make the exit code non-zero.
    #[arg(long)]
    allow_stalls: bool,
    /// Only print the result lines, not the per-second ones.
    #[arg(long)]
    quiet: bool,
}

fn secs(s: f64) -> Result<Duration, String> {
    Duration::try_from_secs_f64(s).map_err(|e| format!("bad duration {s}: {e}"))
}

fn print_line(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn exit_code(t: &Transfer, allow_stalls: bool) -> u8 {
    if !t.ok() {
        1
    } else if t.stalled() && !allow_stalls {
        3
    } else {
        0
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("mptcp-traffic: {e}");
            print_line(&serde_json::json!({"event": "error", "error": e}).to_string());
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> Result<u8, String> {
    match cli.cmd {
        Cmd::Server {
            listen,
            once,
            common,
        } => {
            let limits = Limits {
                timeout: secs(common.timeout.unwrap_or(3600.0))?,
                stall_abort: secs(common.stall_abort)?,
            };
            let proto = if common.tcp { Proto::Tcp } else { Proto::Mptcp };
            let server = Server::bind(ServerConfig {
                listen,
                proto,
                limits,
            })
            .map_err(|e| format!("listen ({}): {e}", proto.as_str()))?;
            let quiet = common.quiet;
            let allow = common.allow_stalls;
            let worst = Arc::new(std::sync::atomic::AtomicU8::new(0));
            let worst2 = Arc::clone(&worst);
            let sink: Arc<dyn Fn(ServerEvent) + Send + Sync> = Arc::new(move |ev| {
                match ev {
                ServerEvent::Listening(a) => print_line(
                    &serde_json::json!({"event": "listening", "addr": a.to_string(), "proto": proto.as_str()}).to_string(),
                ),
                ServerEvent::Interval { conn, role, interval } => {
                    if !quiet {
                        print_line(&interval_json(conn, role, &interval));
                    }
                }
                ServerEvent::Finished { conn, transfer } => {
                    worst2.fetch_max(exit_code(&transfer, allow), std::sync::atomic::Ordering::Relaxed);
                    print_line(&transfer.to_json(conn));
                }
            }
            });
            let stop = AtomicBool::new(false);
            server
                .serve(&stop, once.then_some(1), sink)
                .map_err(|e| format!("accept: {e}"))?;
            Ok(worst.load(std::sync::atomic::Ordering::Relaxed))
        }
        Cmd::Client {
            connect,
            download,
            seconds,
            bytes,
            seed,
            common,
        } => {
            let amount = match (seconds, bytes) {
                (_, Some(b)) => Amount::Bytes(b),
                (Some(s), None) => Amount::Duration(secs(s)?),
                (None, None) => Amount::Duration(Duration::from_secs(10)),
            };
            let base = match amount {
                Amount::Duration(d) => d.as_secs_f64(),
                Amount::Bytes(_) => 0.0,
            };
            let cfg = ClientConfig {
                server: connect,
                proto: if common.tcp { Proto::Tcp } else { Proto::Mptcp },
                direction: if download {
                    Direction::Download
                } else {
                    Direction::Upload
                },
                amount,
                seed,
                limits: Limits {
                    timeout: secs(common.timeout.unwrap_or(base + 60.0))?,
                    stall_abort: secs(common.stall_abort)?,
                },
            };
            let role = if download {
                mptcp_lab::traffic::Role::Receiver
            } else {
                mptcp_lab::traffic::Role::Sender
            };
            let quiet = common.quiet;
            let t = run_client(&cfg, None, &mut |iv| {
                if !quiet {
                    print_line(&interval_json(0, role, iv));
                }
            });
            print_line(&t.to_json(0));
            Ok(exit_code(&t, common.allow_stalls))
        }
    }
}
