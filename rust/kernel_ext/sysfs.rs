// SPDX-License-Identifier: GPL-2.0

//! sysfs attributes and module parameters, which 6.12's `kernel` crate does
//! not have: a directory under `/sys/kernel/mm/` with groups of
//! `kobj_attribute`s in statics, whose callbacks reach a context object the
//! directory owns, and `kernel_param`s in the `__param` section that the
//! module loader parses before `init`.
//!
//! The attributes of a group dispatch to one [`Attrs`] implementation by
//! index, through a monomorphised trampoline per (type, index).

use crate::kernel_ext::slot::ArcSlot;
use core::{
    cell::UnsafeCell,
    ffi::CStr,
    fmt::{self, Write},
    marker::PhantomData,
    mem::MaybeUninit,
    ptr::{self, NonNull},
};
use kernel::{
    bindings,
    ffi::{c_char, c_int},
    prelude::*,
    sync::{Arc, ArcBorrow},
};

/// What a sysfs `show` writes into: one page, truncated if longer (no
/// value shown here comes close).
pub(crate) struct ShowBuf<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl<'a> ShowBuf<'a> {
    /// A buffer over `buf`.
    pub(crate) fn new(buf: &'a mut [u8]) -> Self {
        ShowBuf { buf, len: 0 }
    }

    /// Bytes written.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// What was written, up to the last whole character.
    pub(crate) fn as_str(&self) -> &str {
        let b = &self.buf[..self.len];
        match core::str::from_utf8(b) {
            Ok(s) => s,
            Err(e) => core::str::from_utf8(&b[..e.valid_up_to()]).unwrap_or(""),
        }
    }
}

impl Write for ShowBuf<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let n = s.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

/// Where the context of a directory's attributes is while the directory
/// exists: put one in a `static` and name it in [`Attrs::SLOT`].
///
/// # Invariants
///
/// `slot` is claimed only by a live [`Dir<C>`], with its `Arc<C>`.
pub(crate) struct CtxSlot<C> {
    slot: ArcSlot,
    _c: PhantomData<C>,
}

impl<C> CtxSlot<C> {
    /// An empty slot.
    pub(crate) const fn new() -> Self {
        CtxSlot {
            slot: ArcSlot::new(),
            _c: PhantomData,
        }
    }

    /// The context, from an attribute callback.
    ///
    /// # Safety
    ///
    /// Only a show or store callback of the directory's attributes may call
    /// it, and only use the reference while it runs: the directory waits
    /// for running callbacks before it drops the context.
    unsafe fn get(&self) -> Option<ArcBorrow<'_, C>> {
        // SAFETY: claimed only with the `Arc<C>` of a live `Dir` (type
        // invariant), which clears it only after the callbacks ended (the
        // caller's contract).
        unsafe { self.slot.get::<C>() }
    }
}

/// The attributes of one group: shows and stores by index, with the
/// directory's context.
pub(crate) trait Attrs: 'static {
    /// The context the directory holds.
    type Ctx: Send + Sync + 'static;
    /// Where the directory keeps it.
    const SLOT: &'static CtxSlot<Self::Ctx>;
    /// Writes attribute `idx`'s value (with its newline).
    fn show(ctx: &Self::Ctx, idx: usize, out: &mut ShowBuf<'_>) -> Result;
    /// Takes a write of `input` to attribute `idx`.
    fn store(ctx: &Self::Ctx, idx: usize, input: &[u8]) -> Result;
}

/// Converts a result to what sysfs wants: a length or a negative errno.
fn ret(r: Result<usize>) -> isize {
    match r {
        Ok(n) => n as isize,
        Err(e) => e.to_errno() as isize,
    }
}

/// # Safety
///
/// Only sysfs calls it, as the `show` of an [`Attr`] of a live [`Dir`],
/// with a page-sized buffer.
unsafe extern "C" fn show_tramp<T: Attrs, const I: usize>(
    _kobj: *mut bindings::kobject,
    _attr: *mut bindings::kobj_attribute,
    buf: *mut c_char,
) -> isize {
    // SAFETY: a callback of the directory's attributes (the caller).
    let Some(ctx) = (unsafe { T::SLOT.get() }) else {
        return ENODEV.to_errno() as isize;
    };
    // SAFETY: sysfs hands `show` a zeroed buffer of PAGE_SIZE bytes that is
    // ours until we return.
    let page =
        unsafe { core::slice::from_raw_parts_mut(buf.cast::<u8>(), kernel::page::PAGE_SIZE) };
    let mut out = ShowBuf { buf: page, len: 0 };
    ret(T::show(&ctx, I, &mut out).map(|()| out.len()))
}

/// # Safety
///
/// Only sysfs calls it, as the `store` of an [`Attr`] of a live [`Dir`],
/// with `count` valid bytes at `buf`.
unsafe extern "C" fn store_tramp<T: Attrs, const I: usize>(
    _kobj: *mut bindings::kobject,
    _attr: *mut bindings::kobj_attribute,
    buf: *const c_char,
    count: usize,
) -> isize {
    // SAFETY: a callback of the directory's attributes (the caller).
    let Some(ctx) = (unsafe { T::SLOT.get() }) else {
        return ENODEV.to_errno() as isize;
    };
    // SAFETY: sysfs hands `store` the `count` bytes written, valid until we
    // return.
    let input = unsafe { core::slice::from_raw_parts(buf.cast::<u8>(), count) };
    ret(T::store(&ctx, I, input).map(|()| count))
}

/// A sysfs attribute in a static.
///
/// # Invariants
///
/// `attr.name` points to a `'static` NUL-terminated name; `show` and `store`
/// are trampolines into one [`Attrs`] type.
#[repr(transparent)]
pub(crate) struct Attr(UnsafeCell<bindings::kobj_attribute>);

// SAFETY: sysfs only reads the attribute, and Rust never touches it after
// construction.
unsafe impl Sync for Attr {}

impl Attr {
    /// Attribute `I` of `T`: read-only (0444) if `writable` is false, else
    /// 0644 (only root writes).
    pub(crate) const fn new<T: Attrs, const I: usize>(
        name: &'static kernel::str::CStr,
        writable: bool,
    ) -> Self {
        // SAFETY: all-zero is a valid `kobj_attribute` (null pointers, no
        // callbacks, and with lockdep no key: sysfs then uses the
        // attribute's own static key).
        let mut a: bindings::kobj_attribute = unsafe { MaybeUninit::zeroed().assume_init() };
        a.attr.name = name.as_char_ptr();
        a.attr.mode = if writable { 0o644 } else { 0o444 };
        a.show = Some(show_tramp::<T, I>);
        if writable {
            a.store = Some(store_tramp::<T, I>);
        }
        // INVARIANT: a static name and `T`'s trampolines.
        Attr(UnsafeCell::new(a))
    }
}

/// The null-terminated pointer array of a group's attributes.
///
/// # Invariants
///
/// `ptrs[..N]` point to `'static` [`Attr`]s, `ptrs[N]` is null.
pub(crate) struct AttrList<const M: usize> {
    ptrs: UnsafeCell<[*mut bindings::attribute; M]>,
}

// SAFETY: the array is only read (by sysfs).
unsafe impl<const M: usize> Sync for AttrList<M> {}

impl<const M: usize> AttrList<M> {
    /// The list of `attrs`, which must hold `M - 1` attributes.
    pub(crate) const fn new(attrs: &'static [Attr]) -> Self {
        assert!(attrs.len() + 1 == M);
        let mut ptrs = [ptr::null_mut(); M];
        let mut i = 0;
        while i < attrs.len() {
            // `struct attribute` is the first field of `kobj_attribute`.
            ptrs[i] = attrs[i].0.get().cast::<bindings::attribute>();
            i += 1;
        }
        // INVARIANT: `M - 1` static attributes and a null terminator.
        AttrList {
            ptrs: UnsafeCell::new(ptrs),
        }
    }
}

/// A group of attributes; a named group is a subdirectory.
#[repr(transparent)]
pub(crate) struct Group(UnsafeCell<bindings::attribute_group>);

// SAFETY: the group is only read (by sysfs).
unsafe impl Sync for Group {}

impl Group {
    /// The group of `list`, in a subdirectory `name` if given.
    pub(crate) const fn new<const M: usize>(
        name: Option<&'static kernel::str::CStr>,
        list: &'static AttrList<M>,
    ) -> Self {
        // SAFETY: all-zero is a valid group (no name, no callbacks).
        let mut g: bindings::attribute_group = unsafe { MaybeUninit::zeroed().assume_init() };
        if let Some(n) = name {
            g.name = n.as_char_ptr();
        }
        g.attrs = list.ptrs.get().cast::<*mut bindings::attribute>();
        Group(UnsafeCell::new(g))
    }
}

/// A directory under `/sys/kernel/mm/` holding attribute groups whose
/// callbacks see `ctx`; removed on drop, which waits for running callbacks
/// before it lets go of the context.
///
/// # Invariants
///
/// `kobj` is a kobject we hold a reference to, with every group of
/// `groups` created on it; `slot` is claimed with `ctx`.
pub(crate) struct Dir<C: Send + Sync + 'static> {
    kobj: NonNull<bindings::kobject>,
    groups: &'static [&'static Group],
    slot: &'static CtxSlot<C>,
    ctx: Arc<C>,
}

// SAFETY: the kobject is only used through the thread-safe sysfs API; the
// context is `Send + Sync`.
unsafe impl<C: Send + Sync> Send for Dir<C> {}
// SAFETY: as above.
unsafe impl<C: Send + Sync> Sync for Dir<C> {}

impl<C: Send + Sync + 'static> Dir<C> {
    /// Creates `/sys/kernel/mm/<name>/` with `groups`, whose attributes
    /// find `ctx` in `slot` (every [`Attrs`] of the groups must name that
    /// slot). `EBUSY` if the slot is taken.
    pub(crate) fn new(
        name: &'static kernel::str::CStr,
        groups: &'static [&'static Group],
        slot: &'static CtxSlot<C>,
        ctx: Arc<C>,
    ) -> Result<Self> {
        // INVARIANT: claimed by this `Dir`, which keeps `ctx`.
        slot.slot.claim(&ctx)?;
        let undo = |e: Error| {
            slot.slot.clear();
            e
        };
        // SAFETY: `mm_kobj` is set up at boot and exported by the series;
        // `name` is NUL-terminated.
        let kobj =
            unsafe { bindings::kobject_create_and_add(name.as_char_ptr(), bindings::mm_kobj) };
        let kobj = NonNull::new(kobj).ok_or(ENOMEM).map_err(undo)?;
        for (i, g) in groups.iter().enumerate() {
            // SAFETY: `kobj` is live; the group is static.
            let r = unsafe { bindings::sysfs_create_group(kobj.as_ptr(), g.0.get()) };
            if r != 0 {
                for g in &groups[..i] {
                    // SAFETY: created above on this kobject.
                    unsafe { bindings::sysfs_remove_group(kobj.as_ptr(), g.0.get()) };
                }
                // SAFETY: drops the reference `kobject_create_and_add` gave.
                unsafe { bindings::kobject_put(kobj.as_ptr()) };
                return Err(undo(Error::from_errno(r)));
            }
        }
        // INVARIANT: created, every group added, the slot set.
        Ok(Dir {
            kobj,
            groups,
            slot,
            ctx,
        })
    }
}

impl<C: Send + Sync + 'static> Drop for Dir<C> {
    fn drop(&mut self) {
        for g in self.groups {
            // SAFETY: created in `new` on this kobject. Removal waits for
            // every running show/store, so none runs after this.
            unsafe { bindings::sysfs_remove_group(self.kobj.as_ptr(), g.0.get()) };
        }
        // SAFETY: our reference from `new`; this removes the directory.
        unsafe { bindings::kobject_put(self.kobj.as_ptr()) };
        // No callback runs any more: the context may go.
        self.slot.slot.clear();
        let _ = &self.ctx;
    }
}

/// How a module parameter's value is taken at load.
pub(crate) trait ParamSet: 'static {
    /// Parses and stores the value given at `insmod` or on the kernel
    /// command line; an error fails the load.
    fn set(input: &[u8]) -> Result;
}

/// A module parameter shown in `/sys/module/<module>/parameters/`.
pub(crate) trait ParamShow: ParamSet {
    /// Writes the value (with its newline).
    fn show(out: &mut ShowBuf<'_>) -> Result;
}

/// # Safety
///
/// Only the module parameter code calls it, as the `get` of a [`ParamOps`]
/// (`param_attr_show()`), with the page-sized sysfs buffer.
unsafe extern "C" fn param_get_tramp<T: ParamShow>(
    buf: *mut c_char,
    _kp: *const bindings::kernel_param,
) -> c_int {
    // SAFETY: `param_attr_show()` passes the PAGE_SIZE buffer sysfs handed
    // to its `show`, ours until we return.
    let page =
        unsafe { core::slice::from_raw_parts_mut(buf.cast::<u8>(), kernel::page::PAGE_SIZE) };
    let mut out = ShowBuf { buf: page, len: 0 };
    match T::show(&mut out) {
        // At most PAGE_SIZE: fits.
        Ok(()) => out.len() as c_int,
        Err(e) => e.to_errno(),
    }
}

/// # Safety
///
/// Only the module loader's parser calls it, as the `set` of a [`ParamOps`],
/// with a NUL-terminated value or null.
unsafe extern "C" fn param_set_tramp<T: ParamSet>(
    val: *const c_char,
    _kp: *const bindings::kernel_param,
) -> c_int {
    if val.is_null() {
        // `name` without `=value`.
        return EINVAL.to_errno();
    }
    // SAFETY: the parser hands us a NUL-terminated string valid for the
    // call.
    let input = unsafe { CStr::from_ptr(val.cast()) }.to_bytes();
    match T::set(input) {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// The ops of a parameter parsed by `T`.
pub(crate) struct ParamOps(bindings::kernel_param_ops);

// SAFETY: read-only after construction.
unsafe impl Sync for ParamOps {}

impl ParamOps {
    /// Ops that parse with `T`, with no `get` (the test switches).
    #[cfg(ph_tests)]
    pub(crate) const fn new<T: ParamSet>() -> Self {
        ParamOps(bindings::kernel_param_ops {
            flags: 0,
            set: Some(param_set_tramp::<T>),
            get: None,
            free: None,
        })
    }

    /// Ops that parse and show with `T`.
    pub(crate) const fn new_shown<T: ParamShow>() -> Self {
        ParamOps(bindings::kernel_param_ops {
            flags: 0,
            set: Some(param_set_tramp::<T>),
            get: Some(param_get_tramp::<T>),
            free: None,
        })
    }
}

/// A module parameter: put it in a `#[link_section = "__param"] #[used]`
/// static, which the module loader walks before `init`.
///
/// # Invariants
///
/// `name` is a `'static` NUL-terminated string and `ops` a static
/// [`ParamOps`].
#[repr(transparent)]
pub(crate) struct Param(bindings::kernel_param);

// SAFETY: the loader reads it; its pointers are to statics.
unsafe impl Sync for Param {}

// `struct module` holds an empty arch struct on x86; only its address is
// taken here, as `module!` does.
#[allow(improper_ctypes)]
extern "C" {
    /// This module, defined by modpost in the `.mod.c` file.
    static __this_module: kernel::types::Opaque<bindings::module>;
}

impl Param {
    /// The parameter `name` parsed by `ops`; permission 0 (no file in
    /// `/sys/module/<module>/parameters`).
    pub(crate) const fn new(name: &'static CStr, ops: &'static ParamOps) -> Self {
        // SAFETY: all-zero is a valid `kernel_param` (null pointers, level
        // and flags 0).
        let mut p: bindings::kernel_param = unsafe { MaybeUninit::zeroed().assume_init() };
        p.name = name.as_ptr().cast();
        // Only the address of the module's own `struct module` is taken, as
        // C's THIS_MODULE does.
        p.mod_ = (&raw const __this_module).cast_mut().cast();
        p.ops = &ops.0;
        p.perm = 0;
        // INVARIANT: static name and ops.
        Param(p)
    }

    /// As [`Param::new`], but readable by all in
    /// `/sys/module/<module>/parameters/<name>` (mode 0444); `ops` must have
    /// a `get` ([`ParamOps::new_shown`]).
    pub(crate) const fn new_shown(name: &'static CStr, ops: &'static ParamOps) -> Self {
        let mut p = Self::new(name, ops);
        p.0.perm = 0o444;
        p
    }

    /// As [`Param::new`], but root may write it at run time
    /// (`/sys/module/<module>/parameters/<name>`, mode 0200). Test builds.
    #[cfg(ph_tests)]
    pub(crate) const fn new_writable(name: &'static CStr, ops: &'static ParamOps) -> Self {
        let mut p = Self::new(name, ops);
        p.0.perm = 0o200;
        p
    }
}

/// `N` bytes of `s`, for a `.modinfo` entry built with `concat!`.
pub(crate) const fn modinfo_bytes<const N: usize>(s: &str) -> [u8; N] {
    let b = s.as_bytes();
    let mut out = [0u8; N];
    let mut i = 0;
    while i < N {
        out[i] = b[i];
        i += 1;
    }
    out
}

/// One `.modinfo` entry, `KEY=VALUE` (what `modinfo` shows), placed as
/// `module!` places its own.
macro_rules! modinfo {
    ($entry:expr) => {
        const _: () = {
            const ENTRY: &str = concat!($entry, "\0");
            // `used(compiler)`, as `module!` has it: a plain `#[used]`
            // marks the section SHF_GNU_RETAIN, so it becomes a second
            // `.modinfo` section, which modpost does not read.
            #[allow(unsafe_code)]
            #[link_section = ".modinfo"]
            #[used(compiler)]
            static INFO: [u8; ENTRY.len()] =
                $crate::kernel_ext::sysfs::modinfo_bytes::<{ ENTRY.len() }>(ENTRY);
        };
    };
}
pub(crate) use modinfo;

/// Describes a module parameter in the module's `.modinfo` section, as C's
/// `MODULE_PARM_DESC()` and `module_param()` do: `parm=NAME:DESC` and
/// `parmtype=NAME:TYPE`, which `modinfo -p` lists.
macro_rules! param_info {
    ($name:literal, $ty:literal, $desc:literal) => {
        $crate::kernel_ext::sysfs::modinfo!(concat!("parm=", $name, ":", $desc));
        $crate::kernel_ext::sysfs::modinfo!(concat!("parmtype=", $name, ":", $ty));
    };
}
pub(crate) use param_info;

/// A module parameter `$name` in the `__param` section, parsed (and shown,
/// for `new_shown`) by the ops `$ops`: `$ctor` is a [`Param`] constructor.
macro_rules! module_param {
    ($static:ident, $name:literal, $ops:expr, $ctor:ident) => {
        #[allow(unsafe_code)]
        #[link_section = "__param"]
        #[used]
        static $static: $crate::kernel_ext::sysfs::Param =
            $crate::kernel_ext::sysfs::Param::$ctor($name, $ops);
    };
}
pub(crate) use module_param;
