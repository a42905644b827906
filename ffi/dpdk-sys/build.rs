//! Finds the system's DPDK with pkg-config, generates bindings with bindgen over
//! `shim/shim.h`, and compiles `shim/shim.c` (wrappers for DPDK's static inline functions).

use std::env;
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=shim/shim.h");
    println!("cargo:rerun-if-changed=shim/shim.c");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");

    let dpdk = match pkg_config::Config::new()
        .atleast_version("21.11")
        .probe("libdpdk")
    {
        Ok(lib) => lib,
        Err(e) => {
            eprintln!("error: libdpdk not found by pkg-config ({e}); run `scripts/setup.sh` (as root) to install DPDK");
            std::process::exit(1);
        }
    };

    // pkg-config's cflags: `-include rte_config.h -march=corei7` and the include dirs.
    let cflags = std::process::Command::new("pkg-config")
        .args(["--cflags", "libdpdk"])
        .output()
        .expect("pkg-config runs");
    let cflags: Vec<String> = String::from_utf8_lossy(&cflags.stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect();

    let mut build = cc::Build::new();
    build.file("shim/shim.c").include("shim").warnings(false);
    for f in &cflags {
        build.flag(f);
    }
    build.compile("sluice_dpdk_shim");

    let mut bindings = bindgen::Builder::default()
        .header("shim/shim.h")
        .clang_args(&cflags)
        .allowlist_function("sluice_.*|rte_eal_.*|rte_eth_.*|rte_pktmbuf_.*|rte_mempool_.*|rte_lcore_.*|rte_get_tsc_hz|rte_get_main_lcore|rte_strerror|rte_socket_id|rte_softrss.*|rte_thash_.*|rte_version|rte_delay_us_sleep|rte_get_next_lcore|rte_thread_register|rte_thread_unregister|rte_mbuf_.*|rte_tel_.*|rte_telemetry_.*|rte_pdump_.*")
        .allowlist_type("rte_.*")
        .allowlist_var("SLUICE_.*|RTE_.*")
        .opaque_type("rte_arp_ipv4|rte_arp_hdr|rte_l2tpv2_combined_msg_hdr")
        .no_debug("rte_gtp_psc_generic_hdr")
        .derive_default(true)
        .layout_tests(false)
        .generate_comments(false)
        .prepend_enum_name(false)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()));
    for p in &dpdk.include_paths {
        bindings = bindings.clang_arg(format!("-I{}", p.display()));
    }
    let bindings = bindings.generate().unwrap_or_else(|e| {
        eprintln!("error: bindgen over DPDK's headers failed ({e}); is libclang-dev installed? run `scripts/setup.sh`");
        std::process::exit(1);
    });
    let out = PathBuf::from(env::var("OUT_DIR").unwrap()).join("bindings.rs");
    bindings.write_to_file(out).expect("write bindings");
}
