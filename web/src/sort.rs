//! The page's one sort. The standard library's sorts are generic, so every element type and comparison sorted
//! somewhere (percentiles, orders, positions, candles, …) got its own copy of the whole algorithm in the wasm.
//! Here only a permutation of indices is sorted, by one compiled sort whose comparison is a `dyn` call, and the
//! slice is then rearranged by swaps: what stays generic is a few lines per element type.
//!
//! The result is stable (equal elements keep their order), so it serves calls that want either kind. The
//! page's lists are small (at most a few thousand elements), where the indirect call costs nothing visible.

use std::cmp::Ordering;

/// Sorts `v` stably by `cmp`.
pub(crate) fn sort_by<T>(v: &mut [T], mut cmp: impl FnMut(&T, &T) -> Ordering) {
    let order = permutation(v.len(), &mut |a, b| cmp(&v[a], &v[b]));
    rearrange(order, &mut |a, b| v.swap(a, b));
}

/// Sorts `v` stably by the key `f` gives each element.
pub(crate) fn sort_by_key<T, K: Ord>(v: &mut [T], mut f: impl FnMut(&T) -> K) {
    sort_by(v, |a, b| f(a).cmp(&f(b)));
}

/// The indices `0..len` in the order `cmp` says; equal ones by index, which makes the sort stable.
fn permutation(len: usize, cmp: &mut dyn FnMut(usize, usize) -> Ordering) -> Vec<usize> {
    let mut order: Vec<usize> = (0..len).collect();
    order.sort_unstable_by(|&a, &b| cmp(a, b).then(a.cmp(&b)));
    order
}

/// Moves the element at `order[i]` to `i` for every `i`, following each cycle of the permutation with swaps.
fn rearrange(mut order: Vec<usize>, swap: &mut dyn FnMut(usize, usize)) {
    for start in 0..order.len() {
        let mut at = start;
        loop {
            // A visited position points at itself, so a cycle is followed once.
            let from = std::mem::replace(&mut order[at], at);
            if from == start {
                break;
            }
            swap(at, from);
            at = from;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test(unsupported = test)]
    fn sorts_like_the_standard_library_and_keeps_equal_elements_in_order() {
        let mut seed = 7u64;
        for len in [0, 1, 2, 3, 10, 31, 200] {
            let v: Vec<(u8, usize)> = (0..len)
                .map(|i| {
                    seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                    ((seed >> 60) as u8, i)
                })
                .collect();
            let mut expected = v.clone();
            expected.sort_by_key(|e| e.0);
            let mut ours = v.clone();
            sort_by_key(&mut ours, |e| e.0);
            assert_eq!(ours, expected, "stable by key, len {len}");
            let mut descending = v;
            sort_by(&mut descending, |a, b| b.cmp(a));
            expected.sort_by(|a, b| b.cmp(a));
            assert_eq!(descending, expected);
        }
    }
}
