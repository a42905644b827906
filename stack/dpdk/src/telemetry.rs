//! Sluice's own commands in DPDK telemetry (`rte_telemetry_register_cmd`): a command
//! answers with a dictionary of numbers, strings and one level of nested dictionaries (the
//! depth DPDK's telemetry allows). `dpdk-telemetry.py`, `sluice-stat` or any client of the
//! telemetry socket (`/var/run/dpdk/PREFIX/dpdk_telemetry.v2`) reads it.
//!
//! DPDK calls a command's function on its telemetry thread, with no user data: one
//! trampoline looks the command up in a registry. Registering a command again (a second
//! engine in the same process) replaces its handler.

use std::collections::HashMap;
use std::ffi::{c_char, c_int, CStr, CString};
use std::sync::{Mutex, OnceLock};

use crate::DpdkError;

/// A value in a telemetry reply.
#[derive(Clone, Debug, PartialEq)]
pub enum TelValue {
    U64(u64),
    Str(String),
    /// A nested dictionary of numbers and strings (its own `Dict`s are left out).
    Dict(Vec<(String, TelValue)>),
}

/// What a command answers, given the text after its comma (empty when none).
pub type TelHandler = Box<dyn Fn(&str) -> Vec<(String, TelValue)> + Send + Sync>;

fn registry() -> &'static Mutex<HashMap<String, TelHandler>> {
    static R: OnceLock<Mutex<HashMap<String, TelHandler>>> = OnceLock::new();
    R.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Registers (or replaces the handler of) telemetry command `cmd`, e.g. `/sluice/stats`
/// (a slash, then letters, digits, `_` and `/`), with a line of help. Needs EAL running.
pub fn register(cmd: &str, help: &str, handler: TelHandler) -> Result<(), DpdkError> {
    let first = {
        let mut r = registry().lock().unwrap_or_else(|e| e.into_inner());
        r.insert(cmd.to_string(), handler).is_none()
    };
    if !first {
        return Ok(());
    }
    let (c, h) = (
        CString::new(cmd).map_err(|_| DpdkError::Telemetry(cmd.to_string()))?,
        CString::new(help).map_err(|_| DpdkError::Telemetry(cmd.to_string()))?,
    );
    // SAFETY: valid C strings (DPDK copies them), and a callback that lives forever.
    let rc = unsafe { dpdk_sys::rte_telemetry_register_cmd(c.as_ptr(), Some(trampoline), h.as_ptr()) };
    if rc != 0 {
        registry().lock().unwrap_or_else(|e| e.into_inner()).remove(cmd);
        return Err(DpdkError::Telemetry(cmd.to_string()));
    }
    Ok(())
}

/// Telemetry names and strings: at most 63 bytes, without NULs.
fn c_text(s: &str) -> CString {
    let mut t: String = s.chars().filter(|&c| c != '\0').collect();
    while t.len() > 63 {
        t.pop();
    }
    CString::new(t).unwrap_or_default()
}

/// Fills `d` (started as a dictionary) with `entries`; `nested` says whether dictionaries
/// may go one level down.
///
/// # Safety
/// `d` must be a valid `rte_tel_data` started with `rte_tel_data_start_dict`.
unsafe fn fill(d: *mut dpdk_sys::rte_tel_data, entries: &[(String, TelValue)], nested: bool) {
    for (name, v) in entries {
        let n = c_text(name);
        // SAFETY: `d` is valid (the caller's promise); the strings are copied.
        unsafe {
            match v {
                TelValue::U64(x) => {
                    dpdk_sys::rte_tel_data_add_dict_u64(d, n.as_ptr(), *x);
                }
                TelValue::Str(s) => {
                    let s = c_text(s);
                    dpdk_sys::rte_tel_data_add_dict_string(d, n.as_ptr(), s.as_ptr());
                }
                TelValue::Dict(inner) if nested => {
                    let c = dpdk_sys::rte_tel_data_alloc();
                    if c.is_null() {
                        continue;
                    }
                    dpdk_sys::rte_tel_data_start_dict(c);
                    fill(c, inner, false);
                    // keep = 0: telemetry frees the container with the reply.
                    if dpdk_sys::rte_tel_data_add_dict_container(d, n.as_ptr(), c, 0) != 0 {
                        dpdk_sys::rte_tel_data_free(c);
                    }
                }
                TelValue::Dict(_) => {}
            }
        }
    }
}

unsafe extern "C" fn trampoline(
    cmd: *const c_char,
    params: *const c_char,
    d: *mut dpdk_sys::rte_tel_data,
) -> c_int {
    let text = |p: *const c_char| {
        if p.is_null() {
            String::new()
        } else {
            // SAFETY: DPDK passes NUL-terminated strings.
            unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
        }
    };
    let (cmd, params) = (text(cmd), text(params));
    let reply = std::panic::catch_unwind(|| {
        let r = registry().lock().unwrap_or_else(|e| e.into_inner());
        r.get(&cmd).map(|h| h(&params))
    });
    let Ok(Some(entries)) = reply else {
        return -1;
    };
    // SAFETY: `d` is the reply DPDK gave us.
    unsafe {
        dpdk_sys::rte_tel_data_start_dict(d);
        fill(d, &entries, true);
    }
    0
}
