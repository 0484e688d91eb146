//! One pass over a workspace archive's tar stream as it arrives: counts the entries and
//! the bytes of file content extracting it would create, and refuses it as soon as it
//! passes a limit ([`Guardrails::max_archive_entries`],
//! [`Guardrails::max_unpacked_bytes`], and the cap on the decompressed stream itself,
//! [`Guardrails::archive_stream_cap`]) — before the rest of it arrives.
//!
//! It reads the stream as the worker's extractor (the `tar` crate) does, so what it
//! counts is what the worker would extract: a block of zeros or the end of the stream at
//! a header ends the archive and nothing after it is read; a header's checksum must
//! match; GNU long names and links and pax extended headers (in ustar or GNU headers)
//! describe the next entry and are not entries themselves, and a pax `size` record
//! overrides that entry's size; every other header is an entry, and the content of a
//! regular file counts towards the unpacked size. A GNU sparse file, which the worker
//! refuses, is refused here as well, since its layout is not followed.
//!
//! Pure: bytes in, a verdict out. Decompressing is the caller's business.

use crate::guardrails::Guardrails;

/// The size of a tar block (headers, and the unit content is padded to).
const BLOCK: usize = 512;
/// The most bytes a long name, long link or pax extended header may hold.
const MAX_META_BYTES: u64 = 1 << 20;

/// The limits an archive is scanned against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TarLimits {
    /// The most entries (files, directories, links).
    pub max_entries: u64,
    /// The most bytes of file content.
    pub max_unpacked_bytes: u64,
    /// The most bytes of the tar stream before its end (headers, padding and long
    /// names included).
    pub max_stream_bytes: u64,
}

impl From<&Guardrails> for TarLimits {
    fn from(guardrails: &Guardrails) -> Self {
        TarLimits {
            max_entries: guardrails.max_archive_entries,
            max_unpacked_bytes: guardrails.max_unpacked_bytes,
            max_stream_bytes: guardrails.archive_stream_cap(),
        }
    }
}

/// What a scanned archive holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TarSummary {
    /// Its entries.
    pub entries: u64,
    /// Bytes of file content.
    pub unpacked_bytes: u64,
}

/// Why an archive was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TarScanError {
    /// More entries than allowed.
    #[error("the archive has more than {max} entries")]
    TooManyEntries {
        /// The limit.
        max: u64,
    },
    /// More bytes of content (or of tar stream) than allowed.
    #[error("the archive unpacks to more than {max} bytes")]
    TooLarge {
        /// The limit on unpacked bytes.
        max: u64,
    },
    /// The stream is not a tar archive the worker could read.
    #[error("the archive is not a readable tar stream: {0}")]
    Corrupt(String),
}

/// Where the scan is in the stream.
#[derive(Debug)]
enum State {
    /// Reading a header block (`header` holds what arrived of it).
    Header,
    /// Passing over an entry's content and padding.
    Content {
        /// Content bytes still to come.
        remaining: u64,
        /// Padding bytes after them.
        padding: u64,
        /// What the content is, when it describes the next entry.
        meta: Option<Meta>,
    },
    /// The archive ended (a zero block); the rest of the stream is not read.
    Ended,
}

/// An extension header whose content describes the next entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Meta {
    /// A GNU long name (`L`).
    LongName,
    /// A GNU long link name (`K`).
    LongLink,
    /// A pax extended header (`x`): its content is kept for its `size` record.
    Pax,
}

/// A scan in progress: feed it the decompressed tar stream in pieces of any size.
#[derive(Debug)]
pub struct TarScan {
    limits: TarLimits,
    state: State,
    header: Vec<u8>,
    pax: Vec<u8>,
    pending: Vec<Meta>,
    consumed: u64,
    summary: TarSummary,
}

impl TarScan {
    /// A scan against `limits`, at the start of a stream.
    pub fn new(limits: TarLimits) -> Self {
        TarScan {
            limits,
            state: State::Header,
            header: Vec::with_capacity(BLOCK),
            pax: Vec::new(),
            pending: Vec::new(),
            consumed: 0,
            summary: TarSummary::default(),
        }
    }

    /// Whether the archive's end was seen: the rest of the stream need not be fed.
    pub fn is_ended(&self) -> bool {
        matches!(self.state, State::Ended)
    }

    /// What was counted so far.
    pub fn summary(&self) -> TarSummary {
        self.summary
    }

    /// Reads the next piece of the tar stream; `Err` as soon as the archive is refused
    /// (feeding it again after that is a caller's bug and reports the same refusal
    /// only if the same bytes cause it).
    pub fn feed(&mut self, mut data: &[u8]) -> Result<(), TarScanError> {
        while !data.is_empty() {
            match &mut self.state {
                State::Ended => return Ok(()),
                State::Header => {
                    let take = (BLOCK - self.header.len()).min(data.len());
                    self.consume(take as u64)?;
                    self.header.extend_from_slice(&data[..take]);
                    data = &data[take..];
                    if self.header.len() == BLOCK {
                        let block = std::mem::take(&mut self.header);
                        self.state = self.read_header(&block)?;
                        self.header = block;
                        self.header.clear();
                    }
                }
                State::Content {
                    remaining,
                    padding,
                    meta,
                } => {
                    let (take, kept) = if *remaining > 0 {
                        let take = (*remaining).min(data.len() as u64);
                        *remaining -= take;
                        (take, *meta == Some(Meta::Pax))
                    } else {
                        let take = (*padding).min(data.len() as u64);
                        *padding -= take;
                        (take, false)
                    };
                    let done = *remaining == 0 && *padding == 0;
                    let (taken, rest) = data.split_at(take as usize);
                    if kept {
                        self.pax.extend_from_slice(taken);
                    }
                    data = rest;
                    if done {
                        self.state = State::Header;
                    }
                    self.consume(take)?;
                }
            }
        }
        Ok(())
    }

    /// Ends the scan at the end of the stream: what the archive holds, or why it is not
    /// complete (the stream may end at a header, as the worker's reader allows, or
    /// inside the padding of the last entry, but not inside a header or content, nor
    /// after a header that describes an entry that never came).
    pub fn finish(&self) -> Result<TarSummary, TarScanError> {
        match &self.state {
            State::Ended => Ok(self.summary),
            State::Header if self.header.is_empty() => {
                if self.pending.is_empty() {
                    Ok(self.summary)
                } else {
                    Err(no_member_after_extensions())
                }
            }
            State::Header => Err(TarScanError::Corrupt(
                "the stream ends inside a header".into(),
            )),
            State::Content {
                remaining: 0, meta, ..
            } if meta.is_none() => Ok(self.summary),
            State::Content { .. } => Err(TarScanError::Corrupt(
                "the stream ends inside an entry's content".into(),
            )),
        }
    }

    /// Counts `bytes` more of the stream against its cap.
    fn consume(&mut self, bytes: u64) -> Result<(), TarScanError> {
        self.consumed = self.consumed.saturating_add(bytes);
        if self.consumed > self.limits.max_stream_bytes {
            return Err(TarScanError::TooLarge {
                max: self.limits.max_unpacked_bytes,
            });
        }
        Ok(())
    }

    /// Reads one header block and says what follows it.
    fn read_header(&mut self, block: &[u8]) -> Result<State, TarScanError> {
        if block.iter().all(|b| *b == 0) {
            if !self.pending.is_empty() {
                return Err(no_member_after_extensions());
            }
            return Ok(State::Ended);
        }
        let stored = octal(&block[148..156])
            .map_err(|e| TarScanError::Corrupt(format!("{e} in a header's checksum")))?;
        let sum: u64 = block[..148]
            .iter()
            .chain(&block[156..])
            .map(|b| u64::from(*b))
            .sum::<u64>()
            + 8 * 32;
        if sum != stored {
            return Err(TarScanError::Corrupt(
                "a header's checksum does not match".into(),
            ));
        }
        let kind = block[156];
        let recognized = matches!(
            (&block[257..263], &block[263..265]),
            (b"ustar\0", b"00") | (b"ustar ", b" \0")
        );
        let extension_kind = matches!(kind, b'L' | b'K' | b'x' | b'g');
        let mut size = number(&block[124..136])
            .map_err(|e| TarScanError::Corrupt(format!("{e} in the size of {}", name(block))))?;
        if !extension_kind
            && self.pending.contains(&Meta::Pax)
            && let Some(pax_size) = pax_size(&self.pax)
        {
            size = pax_size;
        }
        let meta = match kind {
            b'L' if recognized => Some(Meta::LongName),
            b'K' if recognized => Some(Meta::LongLink),
            b'x' if recognized => Some(Meta::Pax),
            _ => None,
        };
        if let Some(meta) = meta {
            if self.pending.contains(&meta) {
                return Err(TarScanError::Corrupt(
                    "two extension headers of one kind describe the same member".into(),
                ));
            }
            if size > MAX_META_BYTES {
                return Err(TarScanError::Corrupt(format!(
                    "an extension header of {size} bytes is larger than {MAX_META_BYTES}"
                )));
            }
            self.pending.push(meta);
        } else {
            self.pending.clear();
            self.pax.clear();
            self.summary.entries += 1;
            if self.summary.entries > self.limits.max_entries {
                return Err(TarScanError::TooManyEntries {
                    max: self.limits.max_entries,
                });
            }
            match kind {
                // Regular files (also the old NUL type) and contiguous files.
                b'0' | b'\0' | b'7' => {
                    let left = self.limits.max_unpacked_bytes - self.summary.unpacked_bytes;
                    if size > left {
                        return Err(TarScanError::TooLarge {
                            max: self.limits.max_unpacked_bytes,
                        });
                    }
                    self.summary.unpacked_bytes += size;
                }
                b'S' => {
                    return Err(TarScanError::Corrupt(format!(
                        "entry {} is a GNU sparse file, which a workspace archive may not contain",
                        name(block)
                    )));
                }
                _ => {}
            }
        }
        let padded = size
            .checked_add(BLOCK as u64 - 1)
            .map(|n| n & !(BLOCK as u64 - 1))
            .ok_or_else(|| TarScanError::Corrupt("an entry's size overflows".into()))?;
        Ok(if padded == 0 {
            State::Header
        } else {
            State::Content {
                remaining: size,
                padding: padded - size,
                meta,
            }
        })
    }
}

fn no_member_after_extensions() -> TarScanError {
    TarScanError::Corrupt("extension headers describe a member that never comes".into())
}

/// The entry name of a header (its first 100 bytes), quoted for messages.
fn name(block: &[u8]) -> String {
    format!("{:?}", String::from_utf8_lossy(until_nul(&block[..100])))
}

fn until_nul(field: &[u8]) -> &[u8] {
    match field.iter().position(|b| *b == 0) {
        Some(end) => &field[..end],
        None => field,
    }
}

/// A numeric header field: octal text, or base-256 when its first byte's high bit is
/// set (only the last eight bytes count).
fn number(field: &[u8]) -> Result<u64, String> {
    if field[0] & 0x80 != 0 {
        let skip = field.len().saturating_sub(8);
        Ok(field[skip..]
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    } else {
        octal(field)
    }
}

/// Octal text up to the first NUL, surrounding white space ignored.
fn octal(field: &[u8]) -> Result<u64, String> {
    let text = std::str::from_utf8(until_nul(field))
        .map_err(|_| "a numeric field that is not text".to_owned())?;
    u64::from_str_radix(text.trim(), 8).map_err(|_| format!("the numeric field {text:?}"))
}

/// The `size` record of a pax extended header's content (`"<len> size=<n>\n"`), as the
/// worker's reader finds it: the first `size` record, read until a malformed record.
fn pax_size(content: &[u8]) -> Option<u64> {
    for line in content.split(|b| *b == b'\n') {
        if line.is_empty() {
            return None;
        }
        let space = line.iter().position(|b| *b == b' ')?;
        let reported: usize = std::str::from_utf8(&line[..space]).ok()?.parse().ok()?;
        if line.len() + 1 != reported {
            return None;
        }
        let record = &line[space + 1..];
        let equals = record.iter().position(|b| *b == b'=')?;
        if &record[..equals] == b"size" {
            return std::str::from_utf8(&record[equals + 1..])
                .ok()?
                .parse()
                .ok();
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max_entries: u64, max_unpacked_bytes: u64) -> TarLimits {
        TarLimits {
            max_entries,
            max_unpacked_bytes,
            max_stream_bytes: crate::guardrails::archive_stream_cap(
                max_unpacked_bytes,
                max_entries,
            ),
        }
    }

    /// A ustar header for `name` of `kind` declaring `size` bytes.
    fn header(name: &str, kind: u8, size: u64) -> Vec<u8> {
        let mut block = vec![0u8; BLOCK];
        block[..name.len()].copy_from_slice(name.as_bytes());
        block[100..108].copy_from_slice(b"0000644\0");
        block[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
        block[136..148].copy_from_slice(b"00000000000\0");
        block[156] = kind;
        block[257..263].copy_from_slice(b"ustar\0");
        block[263..265].copy_from_slice(b"00");
        block[148..156].copy_from_slice(b"        ");
        let sum: u64 = block.iter().map(|b| u64::from(*b)).sum();
        block[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        block
    }

    fn file(name: &str, content: &[u8]) -> Vec<u8> {
        let mut out = header(name, b'0', content.len() as u64);
        out.extend_from_slice(content);
        out.resize(out.len().div_ceil(BLOCK) * BLOCK, 0);
        out
    }

    fn end() -> Vec<u8> {
        vec![0u8; 2 * BLOCK]
    }

    fn scan(stream: &[u8], limits: TarLimits, piece: usize) -> Result<TarSummary, TarScanError> {
        let mut scan = TarScan::new(limits);
        for chunk in stream.chunks(piece) {
            scan.feed(chunk)?;
        }
        scan.finish()
    }

    #[test]
    fn files_and_directories_are_counted_in_pieces_of_any_size() {
        let mut stream = header("src/", b'5', 0);
        stream.extend(file("src/a.txt", b"hello"));
        stream.extend(file("src/b.txt", &[7u8; 1000]));
        stream.extend(end());
        for piece in [1, 7, 512, 4096] {
            assert_eq!(
                scan(&stream, limits(10, 10_000), piece),
                Ok(TarSummary {
                    entries: 3,
                    unpacked_bytes: 1005
                })
            );
        }
    }

    #[test]
    fn one_entry_past_the_limit_is_refused_as_it_arrives() {
        let mut stream = Vec::new();
        for index in 0..4 {
            stream.extend(file(&format!("f{index}"), b""));
        }
        let mut scan = TarScan::new(limits(3, 10_000));
        let refused = stream
            .chunks(BLOCK)
            .position(|block| scan.feed(block).is_err());
        assert_eq!(refused, Some(3), "the fourth header is refused");
    }

    #[test]
    fn a_file_declared_larger_than_what_is_left_is_refused_at_its_header() {
        let mut scan = TarScan::new(limits(10, 1000));
        scan.feed(&file("small", &[1u8; 600])).unwrap();
        assert_eq!(
            scan.feed(&header("big", b'0', 401)),
            Err(TarScanError::TooLarge { max: 1000 })
        );
    }

    #[test]
    fn nothing_after_the_end_of_the_archive_is_read() {
        let mut stream = file("a", b"x");
        stream.extend(end());
        stream.extend(vec![0xffu8; 10_000]);
        assert_eq!(scan(&stream, limits(1, 1), 100).unwrap().entries, 1);
    }

    #[test]
    fn a_stream_that_ends_at_a_header_is_complete_and_one_that_ends_inside_is_not() {
        let stream = file("a", b"x");
        assert_eq!(scan(&stream, limits(5, 5), 512).unwrap().entries, 1);
        assert!(matches!(
            scan(&stream[..300], limits(5, 5), 512),
            Err(TarScanError::Corrupt(_))
        ));
        let mut cut = header("b", b'0', 2000);
        cut.extend(vec![1u8; 100]);
        assert!(matches!(
            scan(&cut, limits(5, 5000), 512),
            Err(TarScanError::Corrupt(_))
        ));
    }

    #[test]
    fn a_bad_checksum_or_garbage_is_corrupt() {
        let mut stream = file("a", b"x");
        stream[0] = b'b';
        assert!(matches!(
            scan(&stream, limits(5, 5), 512),
            Err(TarScanError::Corrupt(message)) if message.contains("checksum")
        ));
        assert!(matches!(
            scan(&[0x41u8; 512], limits(5, 5), 512),
            Err(TarScanError::Corrupt(_))
        ));
    }

    #[test]
    fn long_names_and_pax_headers_are_not_entries_and_a_pax_size_overrides() {
        let long_name = "d/".repeat(100) + "file";
        let mut stream = header("././@LongLink", b'L', long_name.len() as u64 + 1);
        let mut name = long_name.into_bytes();
        name.push(0);
        name.resize(name.len().div_ceil(BLOCK) * BLOCK, 0);
        stream.extend(name);
        stream.extend(file("short", b"12345"));
        let record = "13 size=2000\n";
        stream.extend(header("PaxHeaders/x", b'x', record.len() as u64));
        let mut pax = record.as_bytes().to_vec();
        pax.resize(BLOCK, 0);
        stream.extend(pax);
        // The header says 0 bytes; the pax record says 2000, which is what follows.
        stream.extend(header("sized", b'0', 0));
        stream.extend(vec![9u8; 2048]);
        stream.extend(end());
        assert_eq!(
            scan(&stream, limits(2, 5000), 333),
            Ok(TarSummary {
                entries: 2,
                unpacked_bytes: 2005
            })
        );
    }

    #[test]
    fn an_extension_header_followed_by_the_end_is_corrupt() {
        let mut stream = header("PaxHeaders/x", b'x', 0);
        stream.extend(end());
        assert!(matches!(
            scan(&stream, limits(5, 5), 512),
            Err(TarScanError::Corrupt(_))
        ));
    }

    #[test]
    fn a_stream_of_padding_is_stopped_by_the_stream_cap() {
        // Directories declaring content the worker would skip: no entry or content
        // limit is passed, but the stream is.
        let mut scan = TarScan::new(TarLimits {
            max_entries: 1000,
            max_unpacked_bytes: 1000,
            max_stream_bytes: 100_000,
        });
        let mut refused = None;
        for index in 0..100 {
            let mut block = header(&format!("d{index}/"), b'5', 4096);
            block.extend(vec![0u8; 4096]);
            if let Err(error) = scan.feed(&block) {
                refused = Some(error);
                break;
            }
        }
        assert_eq!(refused, Some(TarScanError::TooLarge { max: 1000 }));
    }

    #[test]
    fn base_256_sizes_are_read() {
        let mut field = [0u8; 12];
        field[0] = 0x80;
        field[4..].copy_from_slice(&(5u64 << 32).to_be_bytes());
        assert_eq!(number(&field), Ok(5u64 << 32));
    }

    #[test]
    fn a_sparse_file_is_refused() {
        let stream = header("holes", b'S', 0);
        assert!(matches!(
            scan(&stream, limits(5, 5), 512),
            Err(TarScanError::Corrupt(message)) if message.contains("sparse")
        ));
    }
}
