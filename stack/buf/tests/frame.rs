//! `Frame` and `FrameMut` through the public API, the way a device crate uses it: foreign
//! frames over buffers of a counting vtable of the tests' own, which records every
//! reference taken and dropped, the order in which buffers are released, and poisons a
//! released buffer's bytes. Also run under Miri (`cargo +nightly miri test -p sluice-buf`,
//! scripts/test.sh), which sees a use after release, a double release or a leak directly.
//!
//! The records live in each test's own `Buf`s (no statics), so tests may run in parallel.

use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::NonNull;
use std::rc::Rc;
use std::sync::Once;

use proptest::prelude::*;
use sluice_buf::{Frame, FrameMut, FrameVtable};

/// What a released buffer's bytes become: a frame read after its buffer's release shows
/// it even without Miri (the counting vtable never frees bytes before the test's end).
const POISON: u8 = 0xDD;

/// The ids of a test's buffers, in the order they were released.
type Log = Rc<RefCell<Vec<u32>>>;

fn new_log() -> Log {
    Rc::new(RefCell::new(Vec::new()))
}

fn released(log: &Log) -> Vec<u32> {
    log.borrow().clone()
}

/// A device buffer the way a device keeps one (bytes and a reference count), with a
/// record of what the vtables did to it. The test holds one `Rc<Buf>` and the frames'
/// references another, so the record outlives the release.
struct Buf {
    id: u32,
    bytes: NonNull<[u8]>,
    refs: Cell<usize>,
    clones: Cell<usize>,
    drops: Cell<usize>,
    releases: Cell<usize>,
    /// Drops of a reference when none was left.
    underflows: Cell<usize>,
    /// `PER_REF` only: the serial number of the next reference, and those dropped.
    next_serial: Cell<u32>,
    dropped_serials: RefCell<Vec<u32>>,
    log: Log,
}

impl Buf {
    /// A buffer of a copy of `bytes`, with one reference (the first frame's).
    fn new(log: &Log, id: u32, bytes: &[u8]) -> Rc<Buf> {
        let bytes = NonNull::from(Box::leak(bytes.to_vec().into_boxed_slice()));
        Rc::new(Buf {
            id,
            bytes,
            refs: Cell::new(1),
            clones: Cell::new(0),
            drops: Cell::new(0),
            releases: Cell::new(0),
            underflows: Cell::new(0),
            next_serial: Cell::new(1),
            dropped_serials: RefCell::new(Vec::new()),
            log: log.clone(),
        })
    }

    fn ptr(&self) -> NonNull<u8> {
        self.bytes.cast()
    }

    fn len(&self) -> usize {
        self.bytes.len()
    }

    /// The buffer's bytes (the device's own view, whatever the frames narrowed to).
    fn bytes(&self) -> Vec<u8> {
        // SAFETY: the boxed bytes live until `Buf` drops; nothing writes them meanwhile
        // (no `spare_mut` borrow is alive while a test calls this).
        unsafe { core::slice::from_raw_parts(self.ptr().as_ptr(), self.len()) }.to_vec()
    }

    fn add_ref(&self) {
        self.clones.set(self.clones.get() + 1);
        self.refs.set(self.refs.get() + 1);
    }

    /// Drops one reference; true if it was the last (the buffer is then released).
    fn drop_ref(&self) -> bool {
        self.drops.set(self.drops.get() + 1);
        match self.refs.get() {
            0 => {
                self.underflows.set(self.underflows.get() + 1);
                false
            }
            1 => {
                self.refs.set(0);
                self.releases.set(self.releases.get() + 1);
                // SAFETY: no reference is left, so no frame reads the bytes any more.
                unsafe { core::ptr::write_bytes(self.ptr().as_ptr(), POISON, self.len()) };
                self.log.borrow_mut().push(self.id);
                true
            }
            n => {
                self.refs.set(n - 1);
                false
            }
        }
    }

    /// Every reference taken was dropped exactly once and the buffer released once.
    #[track_caller]
    fn assert_released_once(&self) {
        assert_eq!(self.refs.get(), 0, "references left");
        assert_eq!(self.releases.get(), 1, "releases");
        assert_eq!(self.underflows.get(), 0, "drops past zero");
        assert_eq!(
            self.drops.get(),
            self.clones.get() + 1,
            "drops against references taken"
        );
        assert_eq!(self.bytes(), vec![POISON; self.len()]);
    }

    /// Alive, with exactly `refs` references, after `clones` clones.
    #[track_caller]
    fn assert_live(&self, refs: usize, clones: usize) {
        assert_eq!(self.refs.get(), refs, "references");
        assert_eq!(self.clones.get(), clones, "clones");
        assert_eq!(self.drops.get(), clones + 1 - refs, "drops");
        assert_eq!(self.releases.get(), 0, "released while referenced");
        assert_eq!(self.underflows.get(), 0, "drops past zero");
    }
}

impl Drop for Buf {
    fn drop(&mut self) {
        // SAFETY: from `Box::leak` in `Buf::new`, freed only here.
        drop(unsafe { Box::from_raw(self.bytes.as_ptr()) });
    }
}

// ---- SHARED: one token for every reference (an `rte_mbuf *` and its refcnt) ----

unsafe fn shared_clone(token: *mut ()) -> *mut () {
    // SAFETY: `token` is the `Rc<Buf>` the references hold (alive while any is).
    unsafe { &*token.cast_const().cast::<Buf>() }.add_ref();
    token
}

unsafe fn shared_drop(token: *mut ()) {
    let buf = token.cast_const().cast::<Buf>();
    // SAFETY: as in `shared_clone`; the test's own `Rc` keeps it alive past an underflow.
    if unsafe { &*buf }.drop_ref() {
        // SAFETY: the references' strong count, given up with the last reference.
        drop(unsafe { Rc::from_raw(buf) });
    }
}

static SHARED: FrameVtable = FrameVtable {
    clone: shared_clone,
    drop: shared_drop,
};

/// A frame over all of a new foreign buffer of a copy of `bytes`.
fn foreign(log: &Log, id: u32, bytes: &[u8]) -> (Rc<Buf>, Frame) {
    let buf = Buf::new(log, id, bytes);
    let token = Rc::into_raw(buf.clone()).cast_mut().cast::<()>();
    // SAFETY: the bytes live while `buf` does, and change only on release; SHARED
    // manages `buf`'s count and the references' `Rc`.
    let frame = unsafe { Frame::from_raw_parts(buf.ptr(), buf.len(), token, &SHARED) };
    (buf, frame)
}

// ---- PER_REF: a distinct token for every reference (like an indirect mbuf) ----

struct Ref {
    buf: Rc<Buf>,
    serial: u32,
}

fn new_ref(buf: Rc<Buf>) -> *mut () {
    let serial = buf.next_serial.get();
    buf.next_serial.set(serial + 1);
    Box::into_raw(Box::new(Ref { buf, serial })).cast::<()>()
}

unsafe fn per_ref_clone(token: *mut ()) -> *mut () {
    // SAFETY: `token` is a live `Box<Ref>` from `new_ref`.
    let buf = unsafe { &*token.cast_const().cast::<Ref>() }.buf.clone();
    buf.add_ref();
    new_ref(buf)
}

unsafe fn per_ref_drop(token: *mut ()) {
    // SAFETY: `token` is one reference's `Box<Ref>`, dropped once.
    let r = unsafe { Box::from_raw(token.cast::<Ref>()) };
    r.buf.dropped_serials.borrow_mut().push(r.serial);
    r.buf.drop_ref();
}

static PER_REF: FrameVtable = FrameVtable {
    clone: per_ref_clone,
    drop: per_ref_drop,
};

fn foreign_per_ref(log: &Log, id: u32, bytes: &[u8]) -> (Rc<Buf>, Frame) {
    let buf = Buf::new(log, id, bytes);
    let token = new_ref(buf.clone());
    // SAFETY: the bytes live while `buf` does; each `Ref` holds the `Buf`.
    let frame = unsafe { Frame::from_raw_parts(buf.ptr(), buf.len(), token, &PER_REF) };
    (buf, frame)
}

fn bytes(n: u8) -> Vec<u8> {
    (0..n).collect()
}

/// Whether `f` panics, without the panic's message (other threads' panics still print).
fn panics(f: impl FnOnce()) -> bool {
    thread_local!(static QUIET: Cell<bool> = const { Cell::new(false) });
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.with(Cell::get) {
                prev(info)
            }
        }));
    });
    QUIET.with(|q| q.set(true));
    let r = catch_unwind(AssertUnwindSafe(f)).is_err();
    QUIET.with(|q| q.set(false));
    r
}

// ---- Reference counts ----

#[test]
fn clone_adds_one_reference_and_drop_removes_one() {
    let log = new_log();
    let (buf, f) = foreign(&log, 1, b"abcdef");
    buf.assert_live(1, 0);
    assert_eq!(f.token(), Rc::as_ptr(&buf).cast_mut().cast::<()>());
    assert!(core::ptr::eq(f.vtable(), &SHARED));

    let g = f.clone();
    buf.assert_live(2, 1);
    let h = g.clone();
    buf.assert_live(3, 2);
    assert_eq!(h.token(), f.token());
    assert!(core::ptr::eq(h.vtable(), &SHARED));
    assert_eq!(h.as_ptr(), f.as_ptr());
    assert_eq!(&h[..], b"abcdef");

    drop(f);
    buf.assert_live(2, 2);
    drop(h);
    buf.assert_live(1, 2);
    assert_eq!(&g[..], b"abcdef");
    assert!(released(&log).is_empty());

    drop(g);
    buf.assert_released_once();
    assert_eq!(released(&log), [1]);
    // The references' `Rc` went with the release: only the test's is left.
    assert_eq!(Rc::strong_count(&buf), 1);
}

#[test]
fn narrowing_takes_no_reference_and_slicing_takes_one() {
    let log = new_log();
    let (buf, mut f) = foreign(&log, 1, &bytes(32));
    f.narrow(2..30);
    f.advance(3);
    f.narrow(1..20);
    buf.assert_live(1, 0);

    let s = f.slice(4..8);
    buf.assert_live(2, 1);
    let head = f.split_to(5);
    buf.assert_live(3, 2);
    assert_eq!(&s[..], &[10, 11, 12, 13]);
    assert_eq!(&head[..], &[6, 7, 8, 9, 10]);
    assert_eq!(&f[..], &bytes(25)[11..]);

    drop((f, s, head));
    buf.assert_released_once();
}

#[test]
fn the_last_of_many_clones_releases_the_buffer_once() {
    const N: usize = 32;
    let log = new_log();
    let data = bytes(40);
    let (buf, f) = foreign(&log, 7, &data);
    // Clones of clones and slices of them, each over its own part of the buffer.
    let mut frames: Vec<Option<(Frame, usize)>> = Vec::new();
    frames.push(Some((f, 0)));
    for i in 1..N {
        let (prev, start) = frames[i - 1].as_ref().unwrap();
        let frame = if i % 2 == 0 {
            prev.clone()
        } else {
            prev.slice(1..prev.len())
        };
        let start = start + usize::from(i % 2 == 1);
        frames.push(Some((frame, start)));
    }
    buf.assert_live(N, N - 1);

    // Drop them in a scrambled order (7 and N are coprime: each index once).
    for k in 0..N {
        let (gone, _) = frames[(k * 7) % N].take().unwrap();
        drop(gone);
        if k < N - 1 {
            buf.assert_live(N - 1 - k, N - 1);
            for (frame, start) in frames.iter().flatten() {
                assert_eq!(&frame[..], &data[*start..], "a survivor's bytes");
            }
        }
    }
    buf.assert_released_once();
    assert_eq!(released(&log), [7]);
}

#[test]
fn clone_keeps_the_token_the_vtable_returns() {
    let log = new_log();
    let (buf, f) = foreign_per_ref(&log, 1, b"xyz");
    let g = f.clone();
    let h = g.slice(1..3);
    buf.assert_live(3, 2);
    // Three references, three distinct tokens.
    assert_ne!(f.token(), g.token());
    assert_ne!(g.token(), h.token());
    assert_ne!(f.token(), h.token());
    assert_eq!(&h[..], b"yz");

    // Each frame drops its own token, once.
    drop(g);
    assert_eq!(*buf.dropped_serials.borrow(), [2]);
    drop(f);
    assert_eq!(*buf.dropped_serials.borrow(), [2, 1]);
    buf.assert_live(1, 2);
    drop(h);
    assert_eq!(*buf.dropped_serials.borrow(), [2, 1, 3]);
    buf.assert_released_once();
    assert_eq!(released(&log), [1]);
}

#[test]
fn a_panicking_slice_or_split_gives_its_reference_back() {
    let log = new_log();
    let (buf, mut f) = foreign(&log, 1, &bytes(8));
    assert!(panics(|| drop(f.slice(3..9))));
    buf.assert_live(1, 1);
    assert!(panics(|| drop(f.split_to(9))));
    buf.assert_live(1, 2);
    // `f` is unchanged.
    assert_eq!(&f[..], &bytes(8)[..]);
    drop(f);
    buf.assert_released_once();
}

// ---- Drop order ----

#[test]
fn each_buffer_is_released_with_its_last_reference() {
    let log = new_log();
    let (a, a1) = foreign(&log, 1, b"aaaa");
    let (b, b1) = foreign(&log, 2, b"bbbb");
    let (c, c1) = foreign(&log, 3, b"cccc");
    let a2 = a1.clone();
    let b2 = b1.slice(1..3);

    drop(a1);
    assert!(released(&log).is_empty());
    drop(c1);
    assert_eq!(released(&log), [3]);
    drop(b2);
    assert_eq!(released(&log), [3]);
    assert_eq!(&a2[..], b"aaaa");
    assert_eq!(&b1[..], b"bbbb");
    drop(a2);
    assert_eq!(released(&log), [3, 1]);
    drop(b1);
    assert_eq!(released(&log), [3, 1, 2]);
    for buf in [a, b, c] {
        buf.assert_released_once();
    }
}

#[test]
fn a_vec_of_frames_releases_in_the_order_of_last_references() {
    let log = new_log();
    let (a, fa) = foreign(&log, 1, b"a");
    let (b, fb) = foreign(&log, 2, b"b");
    let (c, fc) = foreign(&log, 3, b"c");
    // Elements drop front to back: a's last reference is at 2, c's at 3, b's at 4.
    let frames = vec![fa.clone(), fb.clone(), fa, fc, fb];
    assert!(released(&log).is_empty());
    drop(frames);
    assert_eq!(released(&log), [1, 3, 2]);
    for buf in [a, b, c] {
        buf.assert_released_once();
    }
}

// ---- Narrowing ----

#[test]
fn narrow_keeps_the_chosen_bytes_relative_to_the_current_view() {
    let log = new_log();
    let data = bytes(20);
    let (buf, mut f) = foreign(&log, 1, &data);
    f.narrow(0..20);
    assert_eq!(&f[..], &data[..]);
    f.narrow(5..15);
    assert_eq!(&f[..], &data[5..15]);
    f.narrow(2..7); // of the view: 7..12 of the buffer
    assert_eq!(&f[..], &data[7..12]);
    assert_eq!(f.as_ptr(), buf.ptr().as_ptr().wrapping_add(7).cast_const());
    f.advance(1);
    assert_eq!(&f[..], &data[8..12]);
    f.advance(0);
    assert_eq!(f.len(), 4);
    f.narrow(4..4); // empty, at the end
    assert!(f.is_empty());
    assert_eq!(f.len(), 0);
    assert_eq!(&f[..], &[] as &[u8]);
    f.narrow(0..0);
    assert!(f.is_empty());
    buf.assert_live(1, 0);
    drop(f);
    buf.assert_released_once();
}

#[test]
fn empty_views_at_either_end_and_whole_frame_splits() {
    let data = bytes(6);
    let f = Frame::copy_from_slice(&data);
    assert!(f.slice(0..0).is_empty());
    assert!(f.slice(6..6).is_empty());
    assert_eq!(&f.slice(0..6)[..], &data[..]);

    let mut g = f.clone();
    let none = g.split_to(0);
    assert!(none.is_empty());
    assert_eq!(&g[..], &data[..]);
    let all = g.split_to(6);
    assert_eq!(&all[..], &data[..]);
    assert!(g.is_empty());

    let mut h = f.clone();
    h.advance(6);
    assert!(h.is_empty());
}

#[test]
#[should_panic(expected = "range out of frame")]
fn narrow_past_the_end_panics() {
    let mut f = Frame::copy_from_slice(&bytes(4));
    f.narrow(0..5);
}

#[test]
#[should_panic(expected = "range out of frame")]
#[allow(clippy::reversed_empty_ranges)]
fn narrow_with_start_after_end_panics() {
    let mut f = Frame::copy_from_slice(&bytes(4));
    f.narrow(3..2);
}

#[test]
#[should_panic(expected = "range out of frame")]
fn narrow_checks_against_the_narrowed_length() {
    // In the buffer, but past the end of the narrowed view.
    let mut f = Frame::copy_from_slice(&bytes(10));
    f.narrow(2..6);
    f.narrow(0..5);
}

#[test]
#[should_panic(expected = "range out of frame")]
fn advance_past_the_end_panics() {
    let mut f = Frame::copy_from_slice(&bytes(4));
    f.advance(5);
}

#[test]
#[should_panic(expected = "range out of frame")]
fn split_to_past_the_end_panics() {
    let mut f = Frame::copy_from_slice(&bytes(4));
    f.narrow(1..4);
    let _ = f.split_to(4);
}

#[test]
#[should_panic(expected = "range out of frame")]
fn slice_of_an_empty_frame_panics() {
    let f = Frame::from_vec(Vec::new());
    let _ = f.slice(0..1);
}

#[test]
fn narrow_accepts_exactly_the_ranges_within_the_frame() {
    let data = bytes(6);
    for len in 0..=data.len() {
        for start in 0..=len + 2 {
            for end in 0..=len + 2 {
                let mut f = Frame::copy_from_slice(&data[..len]);
                let ok = start <= end && end <= len;
                assert_eq!(panics(|| f.narrow(start..end)), !ok, "{start}..{end} of {len}");
                if ok {
                    assert_eq!(&f[..], &data[start..end]);
                } else {
                    assert_eq!(&f[..], &data[..len], "unchanged after a refused narrow");
                }
            }
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    Narrow(usize, usize),
    Advance(usize),
    Slice(usize, usize),
    SplitTo(usize),
    Clone,
    Drop,
}

fn op() -> impl Strategy<Value = Op> {
    // Bounds up to a few past the longest buffer, so some operations are out of range.
    let i = 0usize..72;
    prop_oneof![
        (i.clone(), i.clone()).prop_map(|(a, b)| Op::Narrow(a, b)),
        i.clone().prop_map(Op::Advance),
        (i.clone(), i.clone()).prop_map(|(a, b)| Op::Slice(a, b)),
        i.prop_map(Op::SplitTo),
        Just(Op::Clone),
        Just(Op::Drop),
    ]
}

fn config() -> ProptestConfig {
    ProptestConfig {
        // Miri is some thousand times slower, and may not touch the regressions file.
        cases: if cfg!(miri) { 16 } else { 1024 },
        failure_persistence: if cfg!(miri) {
            None
        } else {
            ProptestConfig::default().failure_persistence
        },
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    /// Frames over one foreign buffer under random narrowing, slicing, splitting,
    /// cloning and dropping, against a model of (start, end) in the buffer: the bytes
    /// follow the model, out-of-range requests panic and change nothing, the reference
    /// count is the number of frames, and the buffer is released once, at the end.
    #[test]
    fn frames_follow_a_model_of_ranges(
        data in prop::collection::vec(any::<u8>(), 0..64),
        ops in prop::collection::vec((any::<prop::sample::Index>(), op()), 1..40),
    ) {
        let log = new_log();
        let (buf, f) = foreign(&log, 1, &data);
        let mut frames: Vec<(Frame, usize, usize)> = vec![(f, 0, data.len())];
        for (which, op) in ops {
            if frames.is_empty() {
                break;
            }
            let k = which.index(frames.len());
            let (frame, start, end) = &mut frames[k];
            let len = *end - *start;
            match op {
                Op::Narrow(a, b) => {
                    let ok = a <= b && b <= len;
                    prop_assert_eq!(panics(|| frame.narrow(a..b)), !ok);
                    if ok {
                        (*start, *end) = (*start + a, *start + b);
                    }
                }
                Op::Advance(n) => {
                    prop_assert_eq!(panics(|| frame.advance(n)), n > len);
                    if n <= len {
                        *start += n;
                    }
                }
                Op::Slice(a, b) => {
                    let ok = a <= b && b <= len;
                    let mut new = None;
                    prop_assert_eq!(panics(|| new = Some(frame.slice(a..b))), !ok);
                    if let Some(s) = new {
                        let s_start = *start + a;
                        frames.push((s, s_start, s_start + (b - a)));
                    }
                }
                Op::SplitTo(n) => {
                    let mut new = None;
                    prop_assert_eq!(panics(|| new = Some(frame.split_to(n))), n > len);
                    if let Some(head) = new {
                        let head_start = *start;
                        *start += n;
                        frames.push((head, head_start, head_start + n));
                    }
                }
                Op::Clone => {
                    let c = frame.clone();
                    let (s, e) = (*start, *end);
                    frames.push((c, s, e));
                }
                Op::Drop => {
                    frames.swap_remove(k);
                }
            }
            prop_assert_eq!(buf.refs.get(), frames.len());
            prop_assert_eq!(buf.underflows.get(), 0);
            prop_assert_eq!(buf.releases.get(), usize::from(frames.is_empty()));
            for (frame, start, end) in &frames {
                prop_assert_eq!(&frame[..], &data[*start..*end]);
                prop_assert_eq!(frame.len(), end - start);
                prop_assert_eq!(frame.as_ptr(), buf.ptr().as_ptr().wrapping_add(*start).cast_const());
            }
        }
        drop(frames);
        buf.assert_released_once();
        prop_assert_eq!(released(&log), [1]);
    }
}

// ---- FrameMut over a foreign buffer ----

/// A writable foreign buffer of `capacity` bytes, behind `headroom` bytes, as a device
/// hands one out for zero-copy send (the mbuf's data room after its headroom).
fn foreign_mut(log: &Log, id: u32, headroom: usize, capacity: usize) -> (Rc<Buf>, FrameMut) {
    let (buf, mut f) = foreign(log, id, &vec![0xAA; headroom + capacity]);
    f.advance(headroom);
    // SAFETY: the frame is the buffer's only reference, and the buffer is writable.
    (buf, unsafe { FrameMut::from_unique(f) })
}

#[test]
fn frame_mut_writes_into_the_buffer_and_freeze_hands_over_its_reference() {
    let log = new_log();
    let (buf, mut m) = foreign_mut(&log, 1, 4, 8);
    assert_eq!((m.len(), m.remaining()), (0, 8));
    assert!(m.is_empty());
    assert_eq!(m.spare_mut().len(), 8);
    assert_eq!(format!("{m:?}"), "FrameMut(0/8 bytes)");

    m.spare_mut()[..3].copy_from_slice(b"abc");
    m.commit(3);
    assert_eq!(m.filled(), b"abc");
    assert_eq!((m.len(), m.remaining()), (3, 5));
    assert!(!m.is_empty());
    assert_eq!(m.spare_mut().len(), 5);
    m.commit(0);
    assert_eq!(m.put(b""), 0);
    assert_eq!(m.put(b"defgh"), 5);
    assert_eq!(m.put(b"i"), 0);
    assert_eq!(m.remaining(), 0);
    assert!(m.spare_mut().is_empty());
    assert_eq!(format!("{m:?}"), "FrameMut(8/8 bytes)");
    // Written in place, after the headroom.
    assert_eq!(buf.bytes(), b"\xAA\xAA\xAA\xAAabcdefgh");
    buf.assert_live(1, 0);

    let f = m.freeze();
    buf.assert_live(1, 0);
    assert_eq!(&f[..], b"abcdefgh");
    assert_eq!(f.as_ptr(), buf.ptr().as_ptr().wrapping_add(4).cast_const());
    assert!(core::ptr::eq(f.vtable(), &SHARED));
    drop(f);
    buf.assert_released_once();
    assert_eq!(released(&log), [1]);
}

#[test]
fn freeze_keeps_only_the_written_bytes() {
    let log = new_log();
    let (buf, mut m) = foreign_mut(&log, 1, 2, 10);
    assert_eq!(m.put(b"hey"), 3);
    let f = m.freeze();
    assert_eq!(&f[..], b"hey");
    let g = f.slice(1..3);
    buf.assert_live(2, 1);
    drop(f);
    assert_eq!(&g[..], b"ey");
    drop(g);
    buf.assert_released_once();

    let (buf, m) = foreign_mut(&log, 2, 0, 10);
    let f = m.freeze();
    assert!(f.is_empty());
    drop(f);
    buf.assert_released_once();
    assert_eq!(released(&log), [1, 2]);
}

#[test]
fn a_dropped_frame_mut_releases_its_buffer() {
    let log = new_log();
    let (buf, mut m) = foreign_mut(&log, 5, 0, 4);
    m.put(b"ab");
    buf.assert_live(1, 0);
    drop(m);
    buf.assert_released_once();
    assert_eq!(released(&log), [5]);
}

#[test]
#[should_panic(expected = "commit past the buffer")]
fn commit_past_the_room_panics() {
    let mut m = FrameMut::with_capacity(4);
    m.commit(3);
    m.commit(2);
}

#[test]
fn a_refused_commit_changes_nothing() {
    let log = new_log();
    let (buf, mut m) = foreign_mut(&log, 1, 0, 4);
    m.put(b"ab");
    assert!(panics(|| m.commit(3)));
    assert_eq!((m.len(), m.remaining()), (2, 2));
    assert_eq!(m.filled(), b"ab");
    drop(m);
    buf.assert_released_once();
}

// ---- Heap frames through the public API ----

#[test]
fn heap_frames_hold_their_bytes() {
    let v: Vec<u8> = bytes(50);
    let at = v.as_ptr();
    let f = Frame::from_vec(v);
    // No copy: the frame is the Vec's own bytes.
    assert_eq!(f.as_ptr(), at);
    assert_eq!(f.len(), 50);
    assert_eq!(&f[..], &bytes(50)[..]);
    assert_eq!(f.as_ref(), f.as_slice());

    let mut src = bytes(5);
    let g = Frame::copy_from_slice(&src);
    src[0] = 99;
    assert_eq!(&g[..], &[0, 1, 2, 3, 4]);
    assert_ne!(g.as_ptr(), src.as_ptr());

    let h: Frame = vec![7u8; 3].into();
    assert_eq!(&h[..], &[7, 7, 7]);

    // Heap frames are of one kind, not the foreign one.
    assert!(core::ptr::eq(f.vtable(), g.vtable()));
    assert!(!core::ptr::eq(f.vtable(), &SHARED));
}

#[test]
fn empty_heap_frames() {
    for f in [
        Frame::from_vec(Vec::new()),
        Frame::from_vec(Vec::with_capacity(16)),
        Frame::copy_from_slice(&[]),
    ] {
        assert!(f.is_empty());
        assert_eq!(f.len(), 0);
        assert_eq!(f.as_slice(), &[] as &[u8]);
        let mut g = f.slice(0..0);
        assert!(g.split_to(0).is_empty());
        g.advance(0);
        assert!(g.is_empty());
    }
}

#[test]
fn frames_compare_by_bytes_whatever_their_kind() {
    let log = new_log();
    let (_buf, foreign) = foreign(&log, 1, b"hello world");
    let heap = Frame::copy_from_slice(b"hello world");
    assert_eq!(foreign, heap);
    assert_eq!(foreign.slice(0..5), Frame::copy_from_slice(b"hello"));
    assert_ne!(foreign.slice(0..5), heap.slice(6..11));
    assert_ne!(foreign.slice(0..5), heap.slice(0..4));
    assert_eq!(format!("{foreign:?}"), "Frame(11 bytes)");
    assert_eq!(format!("{:?}", heap.slice(1..1)), "Frame(0 bytes)");
}

#[test]
fn heap_frame_mut_fills_in_place() {
    let mut m = FrameMut::with_capacity(6);
    assert_eq!(m.remaining(), 6);
    assert_eq!(m.spare_mut(), &[0; 6]);
    let at = m.spare_mut().as_ptr();
    m.spare_mut()[0] = b'x';
    m.commit(1);
    assert_eq!(m.spare_mut().as_ptr(), at.wrapping_add(1));
    assert_eq!(m.put(b"yz"), 2);
    let f = m.freeze();
    assert_eq!(&f[..], b"xyz");
    assert_eq!(f.as_ptr(), at);

    let f = FrameMut::with_capacity(0).freeze();
    assert!(f.is_empty());
}

// ---- Threads ----

/// `Frame` and `FrameMut` are per core (`!Send`, `!Sync`, as the crate documents: the
/// in-memory link's buffers are not thread-safe). This does not compile if either becomes
/// `Send` or `Sync`: then two impls apply and the `_` below is ambiguous.
trait AmbiguousIfSendOrSync<A> {
    fn some_item() {}
}
impl<T: ?Sized> AmbiguousIfSendOrSync<()> for T {}
struct IsSend;
struct IsSync;
impl<T: ?Sized + Send> AmbiguousIfSendOrSync<IsSend> for T {}
impl<T: ?Sized + Sync> AmbiguousIfSendOrSync<IsSync> for T {}
const _: fn() = || {
    let _ = <Frame as AmbiguousIfSendOrSync<_>>::some_item;
    let _ = <FrameMut as AmbiguousIfSendOrSync<_>>::some_item;
};

#[test]
fn frames_work_on_any_one_thread() {
    // Per core: each thread makes, shares and drops its own frames.
    let handles: Vec<_> = (0..2u8)
        .map(|t| {
            std::thread::spawn(move || {
                let log = new_log();
                let (buf, f) = foreign(&log, u32::from(t), &[t; 16]);
                let parts: Vec<Frame> = (0..4).map(|i| f.slice(i * 4..i * 4 + 4)).collect();
                drop(f);
                let sum: u32 = parts.iter().flat_map(|p| p.iter()).map(|&b| u32::from(b)).sum();
                drop(parts);
                buf.assert_released_once();
                sum
            })
        })
        .collect();
    let sums: Vec<u32> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(sums, [0, 16]);
}
