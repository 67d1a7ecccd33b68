//! The `hamster-relay` binary: parse configuration, set up logging, serve.

use clap::Parser;
use hamster_relay::config::{Config, LogFormat};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let config = Config::parse();
    // One process-wide TLS crypto backend for upstream wss:// and https:// connections.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,tower_http=warn"));
    // These crates trace request URLs verbatim, and provider keys travel in query strings (`?apikey=`,
    // `?token=`): whatever RUST_LOG asks for, they never log below info.
    for directive in ["tungstenite=info", "tokio_tungstenite=info", "reqwest=info", "hyper_util=info", "hyper=info"] {
        if let Ok(directive) = directive.parse() {
            filter = filter.add_directive(directive);
        }
    }
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match config.log_format {
        LogFormat::Human => logs.init(),
        LogFormat::Json => logs.json().flatten_event(true).init(),
    }
    open_files::raise_soft_limit();
    match hamster_relay::app::serve(config).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("hamster-relay: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Every client is a socket, and a common default soft limit of 1024 open files would refuse clients long before
/// the relay runs out of anything else: raise the soft limit to the hard limit at startup.
///
/// Declared here by hand (the C library is linked into every Rust binary on Linux) for the 64-bit targets where
/// `rlim_t` is a `u64` and `RLIMIT_NOFILE` is 7; elsewhere this does nothing.
mod open_files {
    #[cfg(all(
        target_os = "linux",
        target_pointer_width = "64",
        not(any(target_arch = "mips64", target_arch = "sparc64"))
    ))]
    pub fn raise_soft_limit() {
        #[repr(C)]
        struct Rlimit {
            cur: u64,
            max: u64,
        }
        extern "C" {
            fn getrlimit(resource: i32, rlim: *mut Rlimit) -> i32;
            fn setrlimit(resource: i32, rlim: *const Rlimit) -> i32;
        }
        const RLIMIT_NOFILE: i32 = 7;
        let mut limit = Rlimit { cur: 0, max: 0 };
        // SAFETY: getrlimit and setrlimit only read or write the struct they are given, which has the C layout.
        let got = unsafe { getrlimit(RLIMIT_NOFILE, &mut limit) };
        if got != 0 {
            tracing::debug!(error = %std::io::Error::last_os_error(), "cannot read the open-files limit");
            return;
        }
        if limit.cur >= limit.max {
            tracing::debug!(limit = limit.cur, "open-files limit already at its hard limit");
            return;
        }
        let from = limit.cur;
        limit.cur = limit.max;
        // SAFETY: as above.
        if unsafe { setrlimit(RLIMIT_NOFILE, &limit) } == 0 {
            tracing::debug!(from, to = limit.cur, "raised the open-files limit");
        } else {
            tracing::debug!(error = %std::io::Error::last_os_error(), "cannot raise the open-files limit");
        }
    }

    #[cfg(not(all(
        target_os = "linux",
        target_pointer_width = "64",
        not(any(target_arch = "mips64", target_arch = "sparc64"))
    )))]
    pub fn raise_soft_limit() {}
}
