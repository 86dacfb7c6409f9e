//! Build script of the `starling` package. The desktop UI issue makes it compile
//! `ui/app.slint` with slint-build; until then there is nothing to generate.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
}
