//! The gateway program, built inside the test crate (see
//! `anquan_e2e::gateway::binary`). Identical to `anquan-gateway`.

fn main() -> std::process::ExitCode {
    anquan_gateway::cli::main()
}
