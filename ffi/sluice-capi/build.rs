//! Generates `include/sluice.h` from the `#[no_mangle] extern "C"` functions of `src/capi.rs`
//! with cbindgen (settings in `cbindgen.toml`). The header is written only when its text
//! changes, so an unchanged header keeps its timestamp and C builds stay up to date.

use std::path::PathBuf;

fn main() {
    let dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    let config = cbindgen::Config::from_file(dir.join("cbindgen.toml")).expect("cbindgen.toml parses");
    let bindings = match cbindgen::Builder::new()
        .with_crate(&dir)
        .with_config(config)
        .generate()
    {
        Ok(b) => b,
        Err(e) => {
            // A syntax error in the crate is reported by rustc itself; do not mask it.
            println!("cargo:warning=cbindgen could not generate sluice.h: {e}");
            return;
        }
    };
    let mut text = Vec::new();
    bindings.write(&mut text);
    let path = dir.join("include").join("sluice.h");
    if std::fs::read(&path).ok().as_deref() != Some(&text[..]) {
        std::fs::create_dir_all(path.parent().expect("has a parent")).expect("include/ can be created");
        std::fs::write(&path, &text).expect("include/sluice.h can be written");
    }
}
