//! `tlao`: the TLÁO Codex command line (see the `tlao_cli` library).

fn main() -> std::process::ExitCode {
    tlao_cli::main()
}
