//! Workspace archives for the tests: ordinary ones, hostile ones (a `..` entry), and a
//! gzip bomb built in a few milliseconds without holding its content in memory.

use std::io::Write;
use std::path::Path;

use flate2::Compression;
use flate2::write::{DeflateEncoder, GzEncoder};

/// A `tar.gz` of `files` (`path`, content), as `tar czf` would make it.
pub fn tar_gz(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::default()));
    for (path, content) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(1_700_000_000);
        header.set_entry_type(tar::EntryType::Regular);
        builder
            .append_data(&mut header, path, *content)
            .expect("a tar entry is written");
    }
    builder
        .into_inner()
        .expect("the tar stream ends")
        .finish()
        .expect("the gzip stream ends")
}

/// A `tar.gz` holding a harmless `README.md`, then an entry whose path is written
/// verbatim (e.g. `../escape.txt`), bypassing the checks `tar::Builder` makes.
pub fn tar_gz_with_raw_path(raw_path: &str, content: &[u8]) -> Vec<u8> {
    let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::default()));
    let readme = b"# Harmless\n";
    let mut header = tar::Header::new_gnu();
    header.set_size(readme.len() as u64);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    builder
        .append_data(&mut header, "README.md", &readme[..])
        .expect("a tar entry is written");

    let mut header = tar::Header::new_gnu();
    let name = &mut header.as_old_mut().name;
    assert!(
        raw_path.len() < name.len(),
        "the raw path fits a tar header"
    );
    name[..raw_path.len()].copy_from_slice(raw_path.as_bytes());
    header.set_size(content.len() as u64);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    builder
        .append(&header, content)
        .expect("a tar entry is written");
    builder
        .into_inner()
        .expect("the tar stream ends")
        .finish()
        .expect("the gzip stream ends")
}

/// How much content one repeated deflate segment of the bomb stands for.
const BOMB_CHUNK: usize = 1 << 20;

/// Writes to `path` a valid `tar.gz` with one file, `zeros.bin`, of `entry_mib` MiB of
/// zeros, and returns the compressed size.
///
/// Compressing a gigabyte through a debug-build deflate would take most of a minute, so
/// the stream is assembled instead: one MiB of zeros is compressed once, by a fresh
/// compressor ending with a sync flush. That segment is byte-aligned, not final, and
/// refers to nothing before it, so repeating it N times is a valid deflate stream of
/// N MiB of zeros. The gzip trailer's CRC-32 is combined from the chunk's CRC, so even
/// a reader that gets to the end finds a correct file (`gzip -t` accepts it).
pub fn write_gzip_bomb(path: &Path, entry_mib: u64) -> u64 {
    let entry_bytes = entry_mib * BOMB_CHUNK as u64;
    let mut header = tar::Header::new_gnu();
    header.set_path("zeros.bin").expect("a valid path");
    header.set_size(entry_bytes);
    header.set_mode(0o644);
    header.set_mtime(1_700_000_000);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    // The content is a whole number of 512-byte blocks, so no padding; then the two
    // zero blocks that end a tar stream.
    let end_of_archive = [0u8; 1024];
    let zeros = vec![0u8; BOMB_CHUNK];

    let mut out = std::io::BufWriter::new(std::fs::File::create(path).expect("the bomb file"));
    // gzip header: magic, deflate, no flags, no mtime, no extra flags, unknown OS.
    out.write_all(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff])
        .expect("written");
    out.write_all(&deflate_segment(header.as_bytes(), false))
        .expect("written");
    let chunk = deflate_segment(&zeros, false);
    for _ in 0..entry_mib {
        out.write_all(&chunk).expect("written");
    }
    out.write_all(&deflate_segment(&end_of_archive, true))
        .expect("written");

    let mut crc = flate2::Crc::new();
    crc.update(header.as_bytes());
    let mut chunk_crc = flate2::Crc::new();
    chunk_crc.update(&zeros);
    for _ in 0..entry_mib {
        crc.combine(&chunk_crc);
    }
    let mut tail_crc = flate2::Crc::new();
    tail_crc.update(&end_of_archive);
    crc.combine(&tail_crc);
    let total = 512 + entry_bytes + end_of_archive.len() as u64;
    out.write_all(&crc.sum().to_le_bytes()).expect("written");
    // ISIZE is the length modulo 2^32.
    out.write_all(&((total & 0xffff_ffff) as u32).to_le_bytes())
        .expect("written");
    out.flush().expect("written");
    std::fs::metadata(path).expect("the bomb file").len()
}

/// `data` as raw deflate from a fresh compressor: ending with a sync flush (aligned,
/// not final) so another segment may follow, or finished (`last`).
fn deflate_segment(data: &[u8], last: bool) -> Vec<u8> {
    let mut encoder = DeflateEncoder::new(Vec::new(), Compression::best());
    encoder.write_all(data).expect("compressed");
    if last {
        encoder.finish().expect("compressed")
    } else {
        encoder.flush().expect("compressed");
        encoder.get_ref().clone()
    }
}
