// SPDX-License-Identifier: GPL-2.0

//! Benchmark of the page-hinting core pipeline (sort + merge + cut) against
//! a naive baseline, and of several sort choices, on realistic batches.
//!
//! Run with `tools/core-bench.sh` (release mode). It prints tables and makes
//! no pass/fail assertion. Options: `--quick` (fewer, shorter trials).

use std::hint::black_box;
use std::time::{Duration, Instant};

use page_hinting_core::capture::Entry;
use page_hinting_core::ranges::{cut, merge, radix_sort, sort, PfnRange};

/// Reports are made of aligned blocks of at least this order.
const MIN_ORDER: u32 = 9;
const SIZES: [usize; 4] = [32, 1024, 4096, 65536];
/// The sort table adds sizes around `RADIX_MAX`.
const SORT_SIZES: [usize; 7] = [32, 256, 1024, 2048, 4096, 8192, 65536];

/// xorshift64*, enough for test data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Pattern {
    Random,
    MostlySorted,
}

impl Pattern {
    fn name(self) -> &'static str {
        match self {
            Pattern::Random => "random",
            Pattern::MostlySorted => "mostly-sorted",
        }
    }
}

/// A batch as the free path of a guest with memory from 1 GiB to 64 GiB
/// would capture it: 90 % single pages anywhere, 10 % order-9 blocks.
fn batch(rng: &mut Rng, n: usize, pattern: Pattern) -> Vec<Entry> {
    const LO: u64 = 1 << 18; // 1 GiB in 4 KiB pages
    const HI: u64 = 1 << 24; // 64 GiB
    let mut v: Vec<Entry> = (0..n)
        .map(|_| {
            if rng.below(10) == 0 {
                let pfn = (LO + rng.below(HI - LO - 512)) & !511;
                Entry::new(pfn, 9).unwrap()
            } else {
                Entry::new(LO + rng.below(HI - LO), 0).unwrap()
            }
        })
        .collect();
    if pattern == Pattern::MostlySorted {
        v.sort_unstable();
        for _ in 0..n * 5 / 100 {
            let a = rng.below(n as u64) as usize;
            let b = rng.below(n as u64) as usize;
            v.swap(a, b);
        }
    }
    v
}

/// Batches to cycle through, so small sizes do not replay one input.
fn pool(n: usize, pattern: Pattern) -> Vec<Vec<Entry>> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ n as u64);
    let count = (1 << 20) / n;
    (0..count.clamp(4, 1024))
        .map(|_| batch(&mut rng, n, pattern))
        .collect()
}

/// A function under test: takes a batch, returns something to keep alive.
type Case<'a> = Box<dyn FnMut(&[Entry]) -> u64 + 'a>;

/// Best entries/s of each case over `trials` rounds of about `trial` each.
/// Rounds alternate between the cases, so load from elsewhere on a shared
/// machine hits them alike, and the best round is the least disturbed one.
fn measure(
    pool: &[Vec<Entry>],
    trial: Duration,
    trials: usize,
    cases: &mut [Case<'_>],
) -> Vec<f64> {
    let n = pool[0].len();
    // Warm up and find, per case, an iteration count that takes `trial`.
    let iters: Vec<usize> = cases
        .iter_mut()
        .map(|f| {
            let mut iters = 1usize;
            loop {
                let t = Instant::now();
                for i in 0..iters {
                    black_box(f(&pool[i % pool.len()]));
                }
                if t.elapsed() >= trial / 4 || iters >= 1 << 30 {
                    let per = t.elapsed().as_secs_f64() / iters as f64;
                    break ((trial.as_secs_f64() / per) as usize).max(1);
                }
                iters *= 2;
            }
        })
        .collect();
    let mut best = vec![0f64; cases.len()];
    for _ in 0..trials {
        for ((f, &iters), best) in cases.iter_mut().zip(&iters).zip(best.iter_mut()) {
            let t = Instant::now();
            for i in 0..iters {
                black_box(f(&pool[i % pool.len()]));
            }
            let rate = (iters * n) as f64 / t.elapsed().as_secs_f64();
            *best = best.max(rate);
        }
    }
    best
}

/// Sum of pages of the ranges: consumes the pipeline's output.
fn consume(ranges: impl Iterator<Item = PfnRange>) -> u64 {
    ranges.fold(0, |acc, r| acc.wrapping_add(r.pages()))
}

/// The core pipeline, on a reused buffer (as the capture buffer is).
fn ours(buf: &mut Vec<Entry>, input: &[Entry]) -> u64 {
    buf.clear();
    buf.extend_from_slice(input);
    sort(buf);
    consume(cut(merge(buf), MIN_ORDER))
}

/// What one would write without thinking: collect, std sort, fold into a
/// Vec of ranges, filter the aligned pieces into another Vec.
fn naive(input: &[Entry]) -> u64 {
    let mut v: Vec<(u64, u64)> = input.iter().map(|e| (e.pfn(), e.end())).collect();
    v.sort();
    let merged = v
        .into_iter()
        .fold(Vec::<(u64, u64)>::new(), |mut acc, (s, e)| {
            match acc.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => acc.push((s, e)),
            }
            acc
        });
    let size = 1u64 << MIN_ORDER;
    let cuts: Vec<PfnRange> = merged
        .into_iter()
        .map(|(s, e)| PfnRange::new(s.div_ceil(size) * size, e / size * size))
        .filter(|r| r.start < r.end)
        .collect();
    consume(cuts.into_iter())
}

fn insertion_sort(v: &mut [Entry]) {
    for i in 1..v.len() {
        let x = v[i];
        let mut j = i;
        while j > 0 && v[j - 1] > x {
            v[j] = v[j - 1];
            j -= 1;
        }
        v[j] = x;
    }
}

/// LSD radix sort, 8-bit digits over the bits that differ, with a
/// caller-provided scratch buffer of the same length.
fn lsd_radix(v: &mut [Entry], scratch: &mut [Entry]) {
    let (mut or, mut and) = (0u64, u64::MAX);
    for e in v.iter() {
        or |= e.to_raw();
        and &= e.to_raw();
    }
    let bits = 64 - (or ^ and).leading_zeros();
    let passes = bits.div_ceil(8);
    let (mut src, mut dst) = (&mut *v, &mut *scratch);
    for p in 0..passes {
        let shift = p * 8;
        let mut count = [0usize; 256];
        for e in src.iter() {
            count[(e.to_raw() >> shift) as u8 as usize] += 1;
        }
        let mut sum = 0;
        for c in count.iter_mut() {
            let n = *c;
            *c = sum;
            sum += n;
        }
        for e in src.iter() {
            let d = (e.to_raw() >> shift) as u8 as usize;
            dst[count[d]] = *e;
            count[d] += 1;
        }
        std::mem::swap(&mut src, &mut dst);
    }
    if passes % 2 == 1 {
        dst.copy_from_slice(src);
    }
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (trial, trials) = if quick {
        (Duration::from_millis(10), 3)
    } else {
        (Duration::from_millis(30), 15)
    };
    let patterns = [Pattern::Random, Pattern::MostlySorted];

    println!("Pipeline: sort + merge + cut(min_order {MIN_ORDER}), best of {trials} trials");
    println!("(ours copies each batch into a reused buffer first; naive collects into a Vec)");
    println!();
    println!(
        "| {:>6} | {:<13} | {:>14} | {:>15} | {:>5} |",
        "size", "pattern", "ours M entr/s", "naive M entr/s", "ratio"
    );
    println!("|-------:|:--------------|---------------:|----------------:|------:|");
    for &n in &SIZES {
        for &pat in &patterns {
            let pool = pool(n, pat);
            let mut buf = Vec::with_capacity(n);
            let r = measure(
                &pool,
                trial,
                trials,
                &mut [Box::new(|b| ours(&mut buf, b)), Box::new(naive)],
            );
            let (a, b) = (r[0], r[1]);
            println!(
                "| {:>6} | {:<13} | {:>14.1} | {:>15.1} | {:>5.1} |",
                n,
                pat.name(),
                a / 1e6,
                b / 1e6,
                a / b
            );
        }
    }

    println!();
    println!("Sort only (in place, M entries/s; each includes copying the batch in).");
    println!("sort = radix_sort for 513..=8192 entries, sort_unstable otherwise.");
    println!();
    println!(
        "| {:>6} | {:<13} | {:>6} | {:>10} | {:>13} | {:>9} | {:>11} | {:>8} |",
        "size",
        "pattern",
        "sort",
        "radix_sort",
        "sort_unstable",
        "insertion",
        "lsd+scratch",
        "std sort"
    );
    println!("|-------:|:--------------|-------:|-----------:|--------------:|----------:|------------:|---------:|");
    for &n in &SORT_SIZES {
        for &pat in &patterns {
            let pool = pool(n, pat);
            let mut scratch = vec![Entry::default(); n];
            // Each case copies the batch into its own reused buffer first.
            fn copy_then(f: impl Fn(&mut [Entry]) + 'static) -> Case<'static> {
                let mut buf: Vec<Entry> = Vec::new();
                Box::new(move |b| {
                    buf.clear();
                    buf.extend_from_slice(b);
                    f(&mut buf);
                    buf[buf.len() / 2].to_raw()
                })
            }
            let mut cases: Vec<Case<'_>> = vec![
                copy_then(sort),
                copy_then(radix_sort),
                copy_then(|v| v.sort_unstable()),
                {
                    let mut buf: Vec<Entry> = Vec::new();
                    Box::new(move |b| {
                        buf.clear();
                        buf.extend_from_slice(b);
                        lsd_radix(&mut buf, &mut scratch);
                        buf[buf.len() / 2].to_raw()
                    })
                },
                copy_then(|v| v.sort()),
            ];
            if n <= 2048 {
                cases.push(copy_then(insertion_sort));
            }
            let r = measure(&pool, trial, trials, &mut cases);
            let (ours, radix, unstable, lsd, stable) = (r[0], r[1], r[2], r[3], r[4]);
            let insertion = r.get(5).copied().unwrap_or(f64::NAN);
            let fmt = |x: f64| {
                if x.is_nan() {
                    "-".to_string()
                } else {
                    format!("{:.1}", x / 1e6)
                }
            };
            println!(
                "| {:>6} | {:<13} | {:>6} | {:>10} | {:>13} | {:>9} | {:>11} | {:>8} |",
                n,
                pat.name(),
                fmt(ours),
                fmt(radix),
                fmt(unstable),
                fmt(insertion),
                fmt(lsd),
                fmt(stable)
            );
        }
    }
}
