//! Sans-I/O TCP core.
