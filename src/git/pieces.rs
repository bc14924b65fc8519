//! A blob's bytes in pieces, compared where they lie instead of being copied
//! together first.
//!
//! The last version of a big file is usually a loose object of stored
//! deflate blocks (see [`super::fastblob`]): its bytes lie in the object
//! file as 64 KiB runs between 5-byte block headers. The diff of a journal
//! entry needs only where two 10 MB versions start and stop differing, so
//! mapping the object and pointing at its runs spares copying 10 MB into
//! fresh memory (on this project's test VM, fresh memory cost up to 10 ms
//! per 10 MB) on every commit.

use std::borrow::Cow;

/// (start in the backing, length) of each run of bytes, in order.
pub(crate) type Runs = Vec<(usize, usize)>;

/// A blob's bytes: one buffer, or runs of a mapped file.
pub struct Pieces {
    backing: Backing,
    /// None empty.
    runs: Runs,
    len: usize,
}

enum Backing {
    Flat(Vec<u8>),
    /// A loose object file. Objects are immutable (written to a temporary
    /// name, then renamed), so the mapping can't change under us; git and
    /// libgit2 map object files the same way.
    Mapped(memmap2::Mmap),
}

impl Pieces {
    /// Bytes held in one buffer.
    pub fn flat(content: Vec<u8>) -> Pieces {
        let len = content.len();
        Pieces {
            runs: if len == 0 { Vec::new() } else { vec![(0, len)] },
            backing: Backing::Flat(content),
            len,
        }
    }

    /// The `runs` of a mapped file; `None` when one lies outside it (a
    /// file shorter than its own headers say), rather than a panic later.
    pub(crate) fn mapped(map: memmap2::Mmap, runs: Runs) -> Option<Pieces> {
        let runs: Runs = runs.into_iter().filter(|&(_, n)| n > 0).collect();
        if runs
            .iter()
            .any(|&(s, n)| s.checked_add(n).is_none_or(|e| e > map.len()))
        {
            return None;
        }
        let len = runs.iter().map(|&(_, n)| n).sum();
        Some(Pieces {
            backing: Backing::Mapped(map),
            runs,
            len,
        })
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn backing(&self) -> &[u8] {
        match &self.backing {
            Backing::Flat(c) => c,
            Backing::Mapped(m) => m,
        }
    }

    /// The runs' bytes, in order.
    pub fn runs(&self) -> impl DoubleEndedIterator<Item = &[u8]> + '_ {
        let all = self.backing();
        self.runs.iter().map(move |&(s, n)| &all[s..s + n])
    }

    /// Bytes `start..end` (clamped to the length): borrowed when they lie in
    /// one run, copied together otherwise.
    pub fn range(&self, start: usize, end: usize) -> Cow<'_, [u8]> {
        let end = end.min(self.len);
        let start = start.min(end);
        let mut at = 0;
        let mut out: Option<Vec<u8>> = None;
        for run in self.runs() {
            let (rs, re) = (at, at + run.len());
            at = re;
            if re <= start {
                continue;
            }
            if rs >= end {
                break;
            }
            let piece = &run[start.max(rs) - rs..end.min(re) - rs];
            match &mut out {
                None if rs <= start && end <= re => return Cow::Borrowed(piece),
                None => out = Some(piece.to_vec()),
                Some(v) => v.extend_from_slice(piece),
            }
        }
        Cow::Owned(out.unwrap_or_default())
    }

    /// All the bytes in one buffer.
    pub fn to_vec(&self) -> Vec<u8> {
        self.range(0, self.len).into_owned()
    }

    /// How many leading bytes equal `other`'s.
    pub fn common_prefix(&self, other: &Pieces) -> usize {
        let (mut mine, mut theirs) = (self.runs(), other.runs());
        let (mut a, mut b): (&[u8], &[u8]) = (&[], &[]);
        let mut at = 0;
        loop {
            if a.is_empty() {
                a = match mine.next() {
                    Some(r) => r,
                    None => return at,
                };
            }
            if b.is_empty() {
                b = match theirs.next() {
                    Some(r) => r,
                    None => return at,
                };
            }
            let n = a.len().min(b.len());
            let same = prefix_len(&a[..n], &b[..n]);
            at += same;
            if same < n {
                return at;
            }
            (a, b) = (&a[n..], &b[n..]);
        }
    }

    /// How many trailing bytes equal `other`'s, at most `max`.
    pub fn common_suffix(&self, other: &Pieces, max: usize) -> usize {
        let max = max.min(self.len).min(other.len);
        let (mut mine, mut theirs) = (self.runs().rev(), other.runs().rev());
        let (mut a, mut b): (&[u8], &[u8]) = (&[], &[]);
        let mut s = 0;
        while s < max {
            if a.is_empty() {
                a = match mine.next() {
                    Some(r) => r,
                    None => break,
                };
            }
            if b.is_empty() {
                b = match theirs.next() {
                    Some(r) => r,
                    None => break,
                };
            }
            let n = a.len().min(b.len()).min(max - s);
            let (x, y) = (&a[a.len() - n..], &b[b.len() - n..]);
            let same = suffix_len(x, y);
            s += same;
            if same < n {
                break;
            }
            (a, b) = (&a[..a.len() - n], &b[..b.len() - n]);
        }
        s
    }

    /// The offset of the last `byte` before `end`.
    pub fn rposition(&self, byte: u8, end: usize) -> Option<usize> {
        let mut run_end = self.len;
        for run in self.runs().rev() {
            let run_start = run_end - run.len();
            if run_start < end {
                let upto = end.min(run_end) - run_start;
                if let Some(i) = memchr::memrchr(byte, &run[..upto]) {
                    return Some(run_start + i);
                }
            }
            run_end = run_start;
        }
        None
    }

    /// The offset of the first `byte` at or after `from`.
    pub fn position(&self, byte: u8, from: usize) -> Option<usize> {
        let mut run_start = 0;
        for run in self.runs() {
            let run_end = run_start + run.len();
            if run_end > from {
                let skip = from.saturating_sub(run_start);
                if let Some(i) = memchr::memchr(byte, &run[skip..]) {
                    return Some(run_start + skip + i);
                }
            }
            run_start = run_end;
        }
        None
    }

    /// How many leading bytes of `bytes` equal this blob's from `at` on.
    pub fn prefix_at(&self, at: usize, bytes: &[u8]) -> usize {
        let mut done = 0;
        let mut run_start = 0;
        for run in self.runs() {
            let run_end = run_start + run.len();
            let pos = at + done;
            if done == bytes.len() {
                break;
            }
            // Runs are contiguous, so the first one reaching past `pos`
            // starts at or before it.
            if run_end > pos {
                let (piece, want) = (&run[pos - run_start..], &bytes[done..]);
                let n = prefix_len(piece, want);
                done += n;
                if n < piece.len().min(want.len()) {
                    break;
                }
            }
            run_start = run_end;
        }
        done
    }

    /// How many trailing bytes of `bytes` equal this blob's just before
    /// `end` (0 when `end` lies past its end).
    pub fn suffix_before(&self, end: usize, bytes: &[u8]) -> usize {
        if end > self.len {
            return 0;
        }
        let mut done = 0;
        let mut run_end = self.len;
        for run in self.runs().rev() {
            let run_start = run_end - run.len();
            let pos = end - done;
            if done == bytes.len() {
                break;
            }
            // The first run (from the end) starting before `pos` ends at or
            // after it.
            if run_start < pos {
                let (piece, want) = (&run[..pos - run_start], &bytes[..bytes.len() - done]);
                let n = suffix_len(piece, want);
                done += n;
                if n < piece.len().min(want.len()) {
                    break;
                }
            }
            run_end = run_start;
        }
        done
    }

    /// How many `byte`s lie before `end` (SIMD: a byte loop over a 10 MB
    /// journal took 2.9 ms).
    pub fn count(&self, byte: u8, end: usize) -> usize {
        let mut n = 0;
        let mut run_start = 0;
        for run in self.runs() {
            if run_start >= end {
                break;
            }
            let upto = (end - run_start).min(run.len());
            n += bytecount::count(&run[..upto], byte);
            run_start += run.len();
        }
        n
    }
}

impl std::fmt::Debug for Pieces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pieces({} bytes in {} runs)", self.len, self.runs.len())
    }
}

impl From<Vec<u8>> for Pieces {
    fn from(v: Vec<u8>) -> Pieces {
        Pieces::flat(v)
    }
}

/// Slice equality is a memcmp: blocks of this size are compared whole, and
/// only the block that differs byte by byte.
const BLOCK: usize = 4096;

/// Length of the common prefix of `a` and `b`.
fn prefix_len(a: &[u8], b: &[u8]) -> usize {
    let max = a.len().min(b.len());
    let mut p = 0;
    while p < max {
        let n = BLOCK.min(max - p);
        let (x, y) = (&a[p..p + n], &b[p..p + n]);
        if x != y {
            return p + x.iter().zip(y).take_while(|(x, y)| x == y).count();
        }
        p += n;
    }
    p
}

/// Length of the common suffix of `a` and `b`.
fn suffix_len(a: &[u8], b: &[u8]) -> usize {
    let max = a.len().min(b.len());
    let (la, lb) = (a.len(), b.len());
    let mut s = 0;
    while s < max {
        let n = BLOCK.min(max - s);
        let (x, y) = (&a[la - s - n..la - s], &b[lb - s - n..lb - s]);
        if x != y {
            return s + x
                .iter()
                .rev()
                .zip(y.iter().rev())
                .take_while(|(x, y)| x == y)
                .count();
        }
        s += n;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same bytes as one buffer and as runs of a mapped file with junk
    /// between the runs (as block headers lie between stored blocks).
    fn both(bytes: &[u8], cuts: &[usize]) -> (Pieces, Pieces) {
        let mut file = Vec::new();
        let mut runs = Vec::new();
        let mut from = 0;
        for &c in cuts.iter().chain([bytes.len()].iter()) {
            file.extend_from_slice(b"#####");
            runs.push((file.len(), c - from));
            file.extend_from_slice(&bytes[from..c]);
            from = c;
        }
        let mut f = tempfile::tempfile().unwrap();
        std::io::Write::write_all(&mut f, &file).unwrap();
        // SAFETY: a private temporary file nobody else has.
        let map = unsafe { memmap2::Mmap::map(&f) }.unwrap();
        (
            Pieces::from(bytes.to_vec()),
            Pieces::mapped(map, runs).unwrap(),
        )
    }

    #[test]
    fn runs_outside_the_file_are_refused() {
        let mut f = tempfile::tempfile().unwrap();
        std::io::Write::write_all(&mut f, b"0123456789").unwrap();
        // SAFETY: a private temporary file nobody else has.
        let map = || unsafe { memmap2::Mmap::map(&f) }.unwrap();
        assert!(Pieces::mapped(map(), vec![(2, 8)]).is_some());
        assert!(Pieces::mapped(map(), vec![(2, 9)]).is_none());
        assert!(Pieces::mapped(map(), vec![(usize::MAX, 2)]).is_none());
    }

    #[test]
    fn runs_compare_like_one_buffer() {
        let old: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
        let mut new = old.clone();
        new.splice(9_000..9_000, b"an inserted entry\n".iter().copied());
        let cuts: [&[usize]; 5] = [&[], &[1], &[4096, 8999], &[9000, 9001, 19_999], &[5000]];
        for (i, c) in cuts.iter().enumerate() {
            let (flat, runs) = both(&old, c);
            // The new side cut elsewhere, so runs never line up.
            let (nflat, nruns) = both(&new, cuts[(i + 2) % cuts.len()]);
            let (same_flat, same_runs) = both(&old, cuts[(i + 1) % cuts.len()]);
            for p in [&flat, &runs] {
                assert_eq!(p.len(), old.len());
                assert_eq!(p.to_vec(), old);
                for n in [&nflat, &nruns] {
                    assert_eq!(p.common_prefix(n), 9_000, "cuts {c:?}");
                    assert_eq!(p.common_suffix(n, usize::MAX), 11_000, "cuts {c:?}");
                    assert_eq!(p.common_suffix(n, 300), 300);
                }
                for o in [&same_flat, &same_runs] {
                    assert_eq!(p.common_prefix(o), old.len());
                    assert_eq!(p.common_suffix(o, usize::MAX), old.len());
                }
                let short = Pieces::from(old[..10].to_vec());
                assert_eq!(p.common_prefix(&short), 10);
                let tail = Pieces::from(old[5..].to_vec());
                assert_eq!(p.common_suffix(&tail, usize::MAX), old.len() - 5);
                assert_eq!(&p.range(8_990, 9_010)[..], &old[8_990..9_010]);
                assert_eq!(&p.range(19_990, 30_000)[..], &old[19_990..]);
                assert!(p.range(7, 7).is_empty());
                // Bytes compared in place, as staging compares a step.
                for (at, n) in [
                    (0, 20_000),
                    (0, 5),
                    (8_990, 30),
                    (9_000, 11_000),
                    (19_990, 10),
                ] {
                    for other in [&old, &new] {
                        let bytes = &other[at..(at + n).min(other.len())];
                        let want = old[at..]
                            .iter()
                            .zip(bytes)
                            .take_while(|(a, b)| a == b)
                            .count();
                        assert_eq!(p.prefix_at(at, bytes), want, "prefix at {at}");
                        let end = (at + n).min(old.len());
                        let want = old[..end]
                            .iter()
                            .rev()
                            .zip(bytes.iter().rev())
                            .take_while(|(a, b)| a == b)
                            .count();
                        assert_eq!(p.suffix_before(end, bytes), want, "suffix before {end}");
                    }
                }
                assert_eq!(p.suffix_before(old.len() + 1, &old[..3]), 0);
                assert_eq!(p.prefix_at(old.len(), b"x"), 0);
                for at in [0, 1, 250, 251, 252, 4096, 9000, 19_999, 20_000] {
                    let want_r = old[..at].iter().rposition(|&b| b == 0);
                    assert_eq!(p.rposition(0, at), want_r, "rposition before {at}");
                    let want_p = old[at..].iter().position(|&b| b == 0).map(|i| i + at);
                    assert_eq!(p.position(0, at), want_p, "position from {at}");
                    let want_c = old[..at].iter().filter(|&&b| b == 0).count();
                    assert_eq!(p.count(0, at), want_c, "count before {at}");
                }
            }
        }
    }
}
