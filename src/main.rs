fn main() {
    std::process::exit(threadlab::main_with_args(std::env::args_os()));
}
