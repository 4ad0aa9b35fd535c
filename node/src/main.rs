//! The `gsp` binary: one executable for a Party node, the Secretariat directory
//! and the operator tools. All logic lives in the `gsp_node` library; this file
//! only hands the process arguments to the CLI.

fn main() -> std::process::ExitCode {
    gsp_node::cli::main()
}
