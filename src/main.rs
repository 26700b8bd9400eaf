fn main() -> std::process::ExitCode {
    tenantctl::cli::main()
}
