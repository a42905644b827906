//! `--pcap FILE`: every frame a core receives and sends, written in pcapng (readable by
//! tcpdump, Wireshark, tshark), with its direction, up to a size cap. For ports where
//! `dpdk-dumpcap` cannot attach (secondary processes need hugepage files; the default
//! `tap:` setup has none). One file per core: FILE for core 0, FILE.coreN for the others.
//! The writes are buffered; a debugging aid, not for line rate.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use sluice_net::CaptureSink;

/// Frames are cut to this many bytes (a TSO frame of 64 KiB fits whole).
const SNAPLEN: usize = 65535;

/// A pcapng file being written.
pub struct PcapWriter {
    out: BufWriter<File>,
    written: u64,
    limit: u64,
    /// Frames not written because the cap was reached.
    pub skipped: u64,
    path: PathBuf,
}

impl std::fmt::Debug for PcapWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PcapWriter")
            .field("path", &self.path)
            .field("written", &self.written)
            .finish()
    }
}

/// The file of core `core` for `--pcap path`.
pub fn core_path(path: &Path, core: u16) -> PathBuf {
    if core == 0 {
        path.to_path_buf()
    } else {
        let mut p = path.as_os_str().to_owned();
        p.push(format!(".core{core}"));
        PathBuf::from(p)
    }
}

impl PcapWriter {
    /// Creates (truncates) `path` and writes the section and interface headers; frames
    /// stop being written once the file holds `limit` bytes.
    pub fn create(path: &Path, limit: u64) -> std::io::Result<PcapWriter> {
        let mut out = BufWriter::with_capacity(1 << 20, File::create(path)?);
        // Section Header Block: byte-order magic, version 1.0, section length unknown.
        let mut shb = Vec::with_capacity(28);
        shb.extend(0x0A0D_0D0Au32.to_le_bytes());
        shb.extend(28u32.to_le_bytes());
        shb.extend(0x1A2B_3C4Du32.to_le_bytes());
        shb.extend(1u16.to_le_bytes());
        shb.extend(0u16.to_le_bytes());
        shb.extend(u64::MAX.to_le_bytes());
        shb.extend(28u32.to_le_bytes());
        // Interface Description Block: Ethernet, microsecond timestamps (the default).
        let mut idb = Vec::with_capacity(20);
        idb.extend(1u32.to_le_bytes());
        idb.extend(20u32.to_le_bytes());
        idb.extend(1u16.to_le_bytes()); // LINKTYPE_ETHERNET
        idb.extend(0u16.to_le_bytes());
        idb.extend((SNAPLEN as u32).to_le_bytes());
        idb.extend(20u32.to_le_bytes());
        out.write_all(&shb)?;
        out.write_all(&idb)?;
        Ok(PcapWriter {
            out,
            written: 48,
            limit,
            skipped: 0,
            path: path.to_path_buf(),
        })
    }

    fn write(&mut self, sent: bool, data: &[u8]) -> std::io::Result<()> {
        let cap = data.len().min(SNAPLEN);
        let pad = (4 - cap % 4) % 4;
        // Enhanced Packet Block with an epb_flags option (direction).
        let total = 32 + cap + pad + 12;
        if self.written + total as u64 > self.limit {
            self.skipped += 1;
            return Ok(());
        }
        let us = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        let mut h = [0u8; 28];
        h[0..4].copy_from_slice(&6u32.to_le_bytes());
        h[4..8].copy_from_slice(&(total as u32).to_le_bytes());
        h[8..12].copy_from_slice(&0u32.to_le_bytes());
        h[12..16].copy_from_slice(&((us >> 32) as u32).to_le_bytes());
        h[16..20].copy_from_slice(&(us as u32).to_le_bytes());
        h[20..24].copy_from_slice(&(cap as u32).to_le_bytes());
        h[24..28].copy_from_slice(&(data.len() as u32).to_le_bytes());
        self.out.write_all(&h)?;
        self.out.write_all(&data[..cap])?;
        self.out.write_all(&[0u8; 3][..pad])?;
        // epb_flags (code 2, 4 bytes): direction 1 inbound, 2 outbound; then opt_endofopt.
        let dir: u32 = if sent { 2 } else { 1 };
        let mut opt = [0u8; 12];
        opt[0..2].copy_from_slice(&2u16.to_le_bytes());
        opt[2..4].copy_from_slice(&4u16.to_le_bytes());
        opt[4..8].copy_from_slice(&dir.to_le_bytes());
        self.out.write_all(&opt)?;
        self.out.write_all(&(total as u32).to_le_bytes())?;
        self.written += total as u64;
        Ok(())
    }

    /// Writes what is buffered to the file.
    pub fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

impl CaptureSink for PcapWriter {
    fn frame(&mut self, sent: bool, data: &[u8]) {
        if self.write(sent, data).is_err() {
            // A full disk: stop trying.
            self.limit = 0;
        }
    }
}

impl Drop for PcapWriter {
    fn drop(&mut self) {
        let _ = self.out.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_well_formed_and_the_cap_holds() {
        let path = std::env::temp_dir().join(format!("sluice-pcap-{}.pcapng", std::process::id()));
        let mut w = PcapWriter::create(&path, 48 + 2 * (32 + 64 + 12)).unwrap();
        w.frame(false, &[0xab; 62]); // padded to 64
        w.frame(true, &[0xcd; 64]);
        w.frame(true, &[0xef; 64]); // over the cap
        assert_eq!(w.skipped, 1);
        drop(w);
        let b = std::fs::read(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(b.len(), 48 + 2 * 108);
        let u32at = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().unwrap());
        assert_eq!((u32at(0), u32at(4), u32at(24)), (0x0A0D_0D0A, 28, 28));
        assert_eq!((u32at(28), u32at(32), u32at(44)), (1, 20, 20));
        // Each block: type 6, its length at both ends, lengths and direction.
        let mut at = 48;
        for (orig, dir) in [(62u32, 1u32), (64, 2)] {
            assert_eq!((u32at(at), u32at(at + 4)), (6, 108));
            assert_eq!((u32at(at + 20), u32at(at + 24)), (orig, orig));
            assert_eq!(u32at(at + 28 + 64 + 4), dir);
            assert_eq!(u32at(at + 104), 108);
            at += 108;
        }
    }
}
