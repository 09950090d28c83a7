//! A global allocator that counts, per thread: the bytes live at the peak and the
//! allocations made, so memory and work can be measured and bounds asserted without
//! timing anything.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// Forwards to the system allocator, counting on the calling thread as it goes.
pub struct Peak;

thread_local! {
    // Signed: a thread may free what another allocated.
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

// `try_with` throughout: the allocator may run while thread locals are torn down.
fn grew(by: usize) {
    let live = LIVE.try_with(|l| {
        let live = l.get().saturating_add_unsigned(by);
        l.set(live);
        live
    });
    if let Ok(live) = live {
        let _ = PEAK.try_with(|p| p.set(p.get().max(live)));
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
    }
}

fn shrank(by: usize) {
    let _ = LIVE.try_with(|l| l.set(l.get().saturating_sub_unsigned(by)));
}

// SAFETY: every call is forwarded unchanged to the system allocator; only counters change.
unsafe impl GlobalAlloc for Peak {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        shrank(layout.size());
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        shrank(layout.size());
        grew(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// What running something cost in memory.
#[derive(Clone, Copy, Debug)]
pub struct Cost {
    /// The most bytes live at once above those live before it started (on this thread).
    pub peak_bytes: usize,
    /// Allocations and reallocations it made (on this thread).
    pub allocations: usize,
}

/// Run `f` on this thread and measure it.
pub fn measure<T>(f: impl FnOnce() -> T) -> (T, Cost) {
    let before = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(before));
    let allocations = ALLOCATIONS.with(Cell::get);
    let out = f();
    let cost = Cost {
        peak_bytes: PEAK.with(Cell::get).saturating_sub(before).unsigned_abs(),
        allocations: ALLOCATIONS.with(Cell::get) - allocations,
    };
    (out, cost)
}
