//! `anquan-gateway run --config F` / `anquan-gateway check --config F`.

fn main() -> std::process::ExitCode {
    anquan_gateway::cli::main()
}
