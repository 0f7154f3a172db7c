// SPDX-License-Identifier: MIT OR Apache-2.0
//! Tiny `ip mptcp`-like tool over mptcp-genl: show | limits | monitor | probe.
//! Run inside a namespace with `ip netns exec NS cargo run --example mptcp-pm -- show`.

use futures::StreamExt;
use mptcp_genl::{Cmd, PmHandle};

fn main() {
    let cmd = std::env::args().nth(1).unwrap_or_else(|| "show".into());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    if let Err(e) = rt.block_on(run(&cmd)) {
        eprintln!("mptcp-pm {cmd}: {e}");
        std::process::exit(1);
    }
}

async fn run(cmd: &str) -> mptcp_genl::Result<()> {
    match cmd {
        "show" => {
            let pm = PmHandle::connect().await?;
            for ep in pm.endpoints().await? {
                let mut line = format!("{} ", ep.addr);
                if let Some(port) = ep.port {
                    line += &format!("port {port} ");
                }
                line += &format!("id {} {}", ep.id, ep.flags.names().join(" "));
                if let Some(ifindex) = ep.ifindex {
                    line += &format!(" ifindex {ifindex}");
                }
                println!("{}", line.trim_end());
            }
        }
        "limits" => {
            let l = PmHandle::connect().await?.limits().await?;
            println!(
                "add_addr_accepted {} subflows {}",
                l.add_addr_accepted.unwrap_or(0),
                l.subflows.unwrap_or(0)
            );
        }
        "monitor" => {
            let mut events = mptcp_genl::subscribe_events().await?;
            println!("listening for MPTCP path-manager events (Ctrl-C to stop)");
            while let Some(ev) = events.next().await {
                match ev {
                    Ok(ev) => println!("{ev}"),
                    Err(e) => eprintln!("{e}"),
                }
            }
        }
        "probe" => {
            let pm = PmHandle::connect().await?;
            let c = pm.capabilities();
            println!(
                "family mptcp_pm id {} version {} maxattr {}",
                c.family_id, c.version, c.max_attr
            );
            let cmds: Vec<String> = c.commands().iter().map(|c| c.to_string()).collect();
            println!("commands: {}", cmds.join(" "));
            println!("set_flags: {}", c.supports(Cmd::SetFlags));
            for (name, id) in &c.mcast_groups {
                println!("group {name} id {id}");
            }
            let sysctls: Vec<&str> = c.sysctls.iter().map(String::as_str).collect();
            println!("sysctls: {}", sysctls.join(" "));
            println!("generation: {}", c.generation());
        }
        other => {
            eprintln!("usage: mptcp-pm show|limits|monitor|probe (got {other:?})");
            std::process::exit(2);
        }
    }
    Ok(())
}
