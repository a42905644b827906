//! Settings shared by every bench target: short runs, so that the whole suite takes a few
//! minutes on two shared cores.

#![allow(dead_code)]

use std::time::Duration;

use criterion::Criterion;

/// 1 s warm-up, 2 s measurement, 30 samples; no plots.
pub fn criterion() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
        .without_plots()
        .configure_from_args()
}
