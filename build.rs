//! Build script of the `starling` package: compiles the Slint UI (`ui/app.slint`).
//!
//! Debug builds carry Slint's element debug info, which the headless UI tests need to find
//! elements by id and accessible label; release builds leave it out.

fn main() {
    let debug = std::env::var("PROFILE").as_deref() == Ok("debug");
    let config = slint_build::CompilerConfiguration::new()
        .with_style("fluent".into())
        .with_debug_info(debug);
    if let Err(e) = slint_build::compile_with_config("ui/app.slint", config) {
        // slint-build has already printed the diagnostics with file and line.
        panic!("ui/app.slint does not compile: {e}");
    }
}
