// SPDX-License-Identifier: GPL-2.0

//! KUnit suite for the abstraction layer's own promises (what doctests
//! would check for a `kernel` crate module): per-CPU construction and
//! teardown, the work items' references, the interrupt-safe lock.

use super::kunit::{kexpect, kexpect_eq, kunit_suite, Test};
use crate::kernel_ext::{
    cpu::{possible_cpus, IrqOff, PerCpu},
    mm,
    sync::new_irqs_off_lock,
    workqueue::{WorkHandler, Worked, Workqueue},
};
use core::convert::Infallible;
use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering::Relaxed};
use kernel::{
    c_str,
    prelude::*,
    sync::{Arc, ArcBorrow},
};

/// Counts its drops in the static it is given.
struct Counted(&'static AtomicUsize);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Relaxed);
    }
}

/// Every possible CPU gets its own value, built by the initialiser with its
/// id, and every value is dropped once with the `PerCpu`.
fn percpu_builds_and_drops_every_cpu(t: &Test) {
    static DROPS: AtomicUsize = AtomicUsize::new(0);
    DROPS.store(0, Relaxed);
    let possible = possible_cpus().count();
    let p = PerCpu::<(u32, Counted)>::new::<_, Infallible, _>(|cpu| Ok((cpu, Counted(&DROPS))));
    let Ok(p) = p else {
        kexpect!(t, false, "PerCpu::new failed");
        return;
    };
    kexpect_eq!(t, p.iter().count(), possible);
    kexpect!(
        t,
        p.iter().all(|(cpu, v)| v.0 == cpu),
        "a CPU has another's value"
    );
    kexpect_eq!(t, DROPS.load(Relaxed), 0);
    drop(p);
    kexpect_eq!(t, DROPS.load(Relaxed), possible);
}

/// An initialiser that fails part way leaves nothing behind: the values
/// built so far are dropped, and the error comes back.
fn percpu_failure_drops_what_was_built(t: &Test) {
    static DROPS: AtomicUsize = AtomicUsize::new(0);
    DROPS.store(0, Relaxed);
    let Some(last) = possible_cpus().last() else {
        kexpect!(t, false, "no possible CPU");
        return;
    };
    let built = possible_cpus().count() - 1;
    let p = PerCpu::<Counted>::new::<_, Infallible, _>(|cpu| {
        if cpu == last {
            Err(ENOSPC)
        } else {
            Ok(Counted(&DROPS))
        }
    });
    kexpect!(
        t,
        matches!(p, Err(e) if e == ENOSPC),
        "the error did not come back"
    );
    kexpect_eq!(t, DROPS.load(Relaxed), built);
}

/// A test object for [`Worked`]: counts runs per item and its own drop.
struct Job {
    runs: [AtomicU32; 2],
    dropped: &'static AtomicUsize,
}

impl Drop for Job {
    fn drop(&mut self) {
        self.dropped.fetch_add(1, Relaxed);
    }
}

impl WorkHandler<2> for Job {
    fn run(this: ArcBorrow<'_, Worked<Self, 2>>, id: usize) {
        this.runs[id].fetch_add(1, Relaxed);
    }
}

/// Queued items run; an item queued while pending runs once; `disable`
/// cancels a pending item and gives its reference back, so the object goes
/// when its last owner drops it, and nothing can be queued afterwards.
fn work_items_own_their_object(t: &Test) {
    static DROPPED: AtomicUsize = AtomicUsize::new(0);
    DROPPED.store(0, Relaxed);
    let Ok(wq) = Workqueue::new_ordered_freezable(c_str!("page_hinting_test")) else {
        kexpect!(t, false, "no workqueue");
        return;
    };
    let job = Job {
        runs: [AtomicU32::new(0), AtomicU32::new(0)],
        dropped: &DROPPED,
    };
    let Ok(w) = Arc::pin_init(Worked::new(wq, job), GFP_KERNEL) else {
        kexpect!(t, false, "no memory");
        return;
    };
    let b = w.as_arc_borrow();
    kexpect!(t, Worked::queue(b, 0, 0), "item 0 was not queued");
    w.flush_queue();
    kexpect_eq!(t, w.runs[0].load(Relaxed), 1);
    // Pending for a second: a second queue is a no-op.
    kexpect!(t, Worked::queue(b, 1, 1000));
    kexpect!(t, !Worked::queue(b, 1, 1000), "queued twice");
    // Moved to now: it runs once.
    Worked::queue_within(b, 1, 0);
    let mut waited = 0;
    while w.runs[1].load(Relaxed) == 0 && waited < 5000 {
        mm::msleep(10);
        waited += 10;
    }
    kexpect_eq!(t, w.runs[1].load(Relaxed), 1);
    // Pending again, then disabled: the pending reference goes back.
    kexpect!(t, Worked::queue(b, 0, 1000));
    Worked::disable(b);
    kexpect!(t, !Worked::queue(b, 0, 0), "queued after disable");
    kexpect_eq!(t, w.runs[0].load(Relaxed), 1);
    kexpect_eq!(t, DROPPED.load(Relaxed), 0);
    drop(w);
    kexpect_eq!(t, DROPPED.load(Relaxed), 1);
}

/// The interrupt-safe lock serialises its holders and hands out its data.
fn irq_spinlock_guards_data(t: &Test) {
    let Ok(l) = KBox::pin_init(new_irqs_off_lock!(0u64, "page_hinting_test"), GFP_KERNEL) else {
        kexpect!(t, false, "no memory");
        return;
    };
    for _ in 0..1000 {
        *l.lock(&IrqOff::new()) += 1;
    }
    let irq = IrqOff::new();
    kexpect_eq!(t, *l.lock(&irq), 1000);
}

/// A window read with `task_runtime_ns` holds the time the task ran inside
/// it, not time it ran before: the worker's `worker_cpu_us` stays within
/// its busy time.
fn runtime_counts_only_its_window(t: &Test) {
    const SPIN_NS: u64 = 20_000_000;
    if !mm::TASK_RUNTIME_EXACT {
        // The kernel takes interrupt or steal time out of the task clock:
        // the reading is the scheduler's lagging figure (documented).
        return;
    }
    let before;
    {
        // Interrupts off: no tick updates the scheduler's figure while the
        // task spins, so a reading that is only that figure lags by the
        // whole spin.
        let _irq = IrqOff::new();
        let start = mm::ktime_ns();
        while mm::ktime_ns() - start < SPIN_NS {
            core::hint::spin_loop();
        }
        before = mm::task_runtime_ns();
    }
    // Sleeping: a context switch, where the scheduler brings its figure up
    // to date.
    mm::msleep(10);
    let window = mm::task_runtime_ns() - before;
    kexpect!(
        t,
        window < SPIN_NS / 2,
        "{} ns charged to a window that slept, after a {} ns spin before it",
        window,
        SPIN_NS
    );
    // And it counts the time run inside the window, up to the reading
    // (again with no tick to bring the scheduler's figure up to date).
    let start = mm::ktime_ns();
    let before = mm::task_runtime_ns();
    let (window, wall) = {
        let _irq = IrqOff::new();
        while mm::ktime_ns() - start < SPIN_NS {
            core::hint::spin_loop();
        }
        (mm::task_runtime_ns() - before, mm::ktime_ns() - start)
    };
    kexpect!(
        t,
        window > SPIN_NS / 2 && window <= wall + 1_000_000,
        "{} ns charged to a {} ns spin",
        window,
        wall
    );
}

kunit_suite!(
    page_hinting_kernel_ext,
    "page_hinting_kernel_ext",
    [
        percpu_builds_and_drops_every_cpu,
        percpu_failure_drops_what_was_built,
        work_items_own_their_object,
        irq_spinlock_guards_data,
        runtime_counts_only_its_window
    ]
);
