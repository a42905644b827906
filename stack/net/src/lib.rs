//! IPv4 layer.
