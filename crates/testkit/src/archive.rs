//! Hand-made `.tar.gz` archives whose headers may lie about what follows (sizes, kinds,
//! names), the way a crafted or damaged backup does: the tar crate's builder would refuse to
//! write them. For the backup reader's tests (unit and cross-process).

use std::io::Write;
use std::path::Path;

/// A tar stream written header by header into gzip, built by chaining.
pub struct RawTar {
    gz: flate2::write::GzEncoder<Vec<u8>>,
}

impl Default for RawTar {
    fn default() -> Self {
        Self::new()
    }
}

impl RawTar {
    pub fn new() -> Self {
        Self {
            gz: flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()),
        }
    }

    fn put(&mut self, bytes: &[u8]) {
        self.gz
            .write_all(bytes)
            .expect("writing to a buffer in memory cannot fail");
    }

    /// A GNU header: `name` (at most 100 bytes), `kind`, and the `size` it claims.
    pub fn header(mut self, name: &[u8], kind: tar::EntryType, size: u64) -> Self {
        let mut h = tar::Header::new_gnu();
        if let Some(gnu) = h.as_gnu_mut() {
            let n = name.len().min(gnu.name.len());
            gnu.name[..n].copy_from_slice(&name[..n]);
        }
        h.set_size(size);
        h.set_mode(0o600);
        h.set_entry_type(kind);
        h.set_cksum();
        self.put(h.as_bytes());
        self
    }

    /// `data`, padded to the next 512-byte block.
    pub fn bytes(mut self, data: &[u8]) -> Self {
        self.put(data);
        self.put(&vec![0; (512 - data.len() % 512) % 512]);
        self
    }

    /// `n` zero bytes (no padding): a body, or a bomb, that compresses to almost nothing.
    pub fn zeros(mut self, n: u64) -> Self {
        let chunk = vec![0u8; 1 << 20];
        let mut left = n;
        while left > 0 {
            let k = left.min(chunk.len() as u64) as usize;
            self.put(&chunk[..k]);
            left -= k as u64;
        }
        self
    }

    /// A regular file whose header tells the truth.
    pub fn file(self, name: &str, data: &[u8]) -> Self {
        self.header(name.as_bytes(), tar::EntryType::Regular, data.len() as u64)
            .bytes(data)
    }

    /// Ends the tar (two zero blocks) and the gzip stream.
    pub fn finish(mut self) -> Vec<u8> {
        self.put(&[0; 1024]);
        self.gz
            .finish()
            .expect("finishing a gzip stream in memory cannot fail")
    }

    /// [`RawTar::finish`], written to `path`.
    pub fn write(self, path: &Path) -> std::io::Result<()> {
        std::fs::write(path, self.finish())
    }
}
