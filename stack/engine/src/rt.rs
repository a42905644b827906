//! An async/await front end that runs on the core itself: `AsyncApp` is an `App` whose
//! round polls the core's tasks. Socket futures (`accept`, `read`, `write_all`, `connect`)
//! try the operation, and when it would block they park until their socket is ready.
//! After each round of protocol processing the runtime wakes the tasks parked on the
//! sockets the interface recorded as changed (`Interface::ready_since`) and those whose
//! deadline passed, and polls only the woken tasks (real wakers, a run queue): a round
//! costs what changed, however many tasks wait.
//!
//! Tasks are `!Send` and never leave their core. The core's interface is reached through
//! a thread-local set for the duration of the round, so a future can only touch it while
//! it is being polled by its own core. The functions and socket methods of this module
//! (except `close` and dropping) panic when called outside a task of an `AsyncApp`.

use std::cell::{Cell, RefCell};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use hashbrown::HashMap;
use sluice_dev::{Frame, FrameMut};
use sluice_net::{Interface, Ready, ReadyCursor};
use sluice_wire::Instant;

use crate::api::{self, Cx, Error, Source};
use crate::core::App;
use crate::toeplitz::RssSteering;

struct CoreCtx {
    iface: Rc<RefCell<Interface>>,
    now: Cell<Instant>,
    core: u16,
    cores: u16,
    steering: RssSteering,
    stop: AtomicBool,
    /// The task waiting for each socket (most sockets have one at most).
    waiting: RefCell<HashMap<Source, Waker>>,
    /// Further tasks waiting for a socket that already has one in `waiting`.
    waiting_more: RefCell<Vec<(Source, Waker)>>,
    /// Tasks asleep, earliest deadline first.
    sleepers: RefCell<BinaryHeap<Sleeper>>,
    /// Numbers the sleepers so that equal deadlines keep their order.
    sleeps: Cell<u64>,
    spawned: RefCell<Vec<Pin<Box<dyn Future<Output = ()>>>>>,
}

/// A task asleep until `at`.
struct Sleeper {
    at: Reverse<(Instant, u64)>,
    waker: Waker,
}

impl PartialEq for Sleeper {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at
    }
}
impl Eq for Sleeper {}
impl PartialOrd for Sleeper {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Sleeper {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.at.cmp(&other.at)
    }
}

impl CoreCtx {
    /// Wakes the tasks waiting for `src`.
    fn wake_waiting(&self, src: Source) {
        if let Some(w) = self.waiting.borrow_mut().remove(&src) {
            w.wake();
        }
        let mut more = self.waiting_more.borrow_mut();
        if !more.is_empty() {
            more.retain(|(s, w)| {
                if *s == src {
                    w.wake_by_ref();
                }
                *s != src
            });
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Wait {
    Readable(Source),
    Writable(Source),
    Until(Instant),
}

thread_local! {
    static CURRENT: RefCell<Option<Rc<CoreCtx>>> = const { RefCell::new(None) };
}

fn current() -> Rc<CoreCtx> {
    CURRENT
        .with(|c| c.borrow().clone())
        .expect("sluice::rt used outside a core running an AsyncApp")
}

/// Runs `f` with the core's context (only inside a task of an `AsyncApp`).
pub fn with_cx<R>(f: impl FnOnce(&Cx) -> R) -> R {
    let c = current();
    let cx = Cx::new(&c.iface, c.now.get(), c.core, c.cores, &c.steering, &c.stop);
    f(&cx)
}

/// Runs `f` with the core's context when there is one and its interface is free: handles
/// dropped outside a task (the engine stopping, a task dropped inside a call) do nothing.
fn try_with_cx(f: impl FnOnce(&Cx)) {
    let Some(c) = CURRENT.with(|c| c.borrow().clone()) else {
        return;
    };
    if c.iface.try_borrow_mut().is_err() {
        return;
    }
    let cx = Cx::new(&c.iface, c.now.get(), c.core, c.cores, &c.steering, &c.stop);
    f(&cx)
}

/// The time of the current round.
pub fn now() -> Instant {
    current().now.get()
}

/// This core's index.
pub fn core() -> u16 {
    current().core
}

/// Asks the engine to stop.
pub fn request_stop() {
    current().stop.store(true, Ordering::SeqCst);
}

/// Starts another task on this core.
pub fn spawn(f: impl Future<Output = ()> + 'static) {
    current().spawned.borrow_mut().push(Box::pin(f));
}

fn park(w: Wait, waker: &Waker) {
    let c = current();
    match w {
        Wait::Until(at) => {
            let n = c.sleeps.get();
            c.sleeps.set(n + 1);
            c.sleepers.borrow_mut().push(Sleeper {
                at: Reverse((at, n)),
                waker: waker.clone(),
            });
        }
        Wait::Readable(src) | Wait::Writable(src) => {
            let mut waiting = c.waiting.borrow_mut();
            match waiting.get(&src) {
                None => {
                    waiting.insert(src, waker.clone());
                }
                Some(w) if w.will_wake(waker) => {}
                Some(_) => {
                    let mut more = c.waiting_more.borrow_mut();
                    if !more.iter().any(|(s, w)| *s == src && w.will_wake(waker)) {
                        more.push((src, waker.clone()));
                    }
                }
            }
        }
    }
}

/// Forgets the waiters of a socket being closed (waking them: they will find it closed).
fn forget(src: Source) {
    if let Some(c) = CURRENT.with(|c| c.borrow().clone()) {
        c.wake_waiting(src);
    }
}

/// Retries `op` until it stops saying `WouldBlock`, parking on `wait` in between.
fn retry<T>(
    wait: Wait,
    mut op: impl FnMut(&Cx) -> Result<T, Error>,
) -> impl Future<Output = Result<T, Error>> {
    std::future::poll_fn(move |task| match with_cx(&mut op) {
        Err(Error::WouldBlock) => {
            park(wait, task.waker());
            Poll::Pending
        }
        r => Poll::Ready(r),
    })
}

/// Zero-copy send: a buffer of the core's pool to fill (`Cx::alloc_frame`).
pub fn alloc_frame() -> Option<FrameMut> {
    with_cx(|cx| cx.alloc_frame())
}

/// Sleeps until `d` after the current round's time.
pub async fn sleep(d: Duration) {
    let until = now() + d;
    std::future::poll_fn(move |task| {
        if now() >= until {
            Poll::Ready(())
        } else {
            park(Wait::Until(until), task.waker());
            Poll::Pending
        }
    })
    .await
}

/// An async listener. Dropping it stops listening (connections already accepted stay).
#[derive(Debug)]
pub struct TcpListener(api::TcpListener);

impl Drop for TcpListener {
    fn drop(&mut self) {
        let l = self.0;
        forget(Source::Listener(l));
        try_with_cx(|cx| l.close(cx));
    }
}

impl TcpListener {
    /// Listens on `port` of this core, as `api::TcpListener::bind` (at most `backlog`
    /// connections half-open and as many waiting); every core that should serve the port
    /// binds it. `AddrInUse` if the port is taken on this core, `InvalidAddress` for 0.
    pub fn bind(port: u16, backlog: usize) -> Result<TcpListener, Error> {
        with_cx(|cx| api::TcpListener::bind(cx, port, backlog)).map(TcpListener)
    }
    /// Waits for the next established connection.
    pub async fn accept(&self) -> Result<TcpStream, Error> {
        let l = self.0;
        retry(Wait::Readable(Source::Listener(l)), move |cx| l.accept(cx))
            .await
            .map(TcpStream)
    }
    /// Stops listening (as dropping it does).
    pub fn close(self) {}
    /// The handle of the socket API, for calls this type does not offer (through
    /// `with_cx`). This listener still owns the socket: dropping it stops listening.
    pub fn inner(&self) -> api::TcpListener {
        self.0
    }
}

/// An async TCP connection. Dropping it closes it (as `close`: unread data is discarded,
/// what was written is still delivered, then FIN); `abort` resets it instead. The handle is
/// not `Copy`: share it between tasks with an `Rc`.
#[derive(Debug)]
pub struct TcpStream(api::TcpStream);

impl Drop for TcpStream {
    fn drop(&mut self) {
        let s = self.0;
        forget(Source::Stream(s));
        try_with_cx(|cx| {
            s.close(cx);
        });
    }
}

impl TcpStream {
    /// Connects and waits until the connection is established (or fails).
    pub async fn connect(addr: impl Into<sluice_wire::IpAddress>, port: u16) -> Result<TcpStream, Error> {
        Self::connect_to(sluice_net::Endpoint::new(addr, port)).await
    }

    /// `connect` to an IPv4 or IPv6 endpoint, e.g. a `std::net::SocketAddr`.
    pub async fn connect_to(to: impl Into<sluice_net::Endpoint>) -> Result<TcpStream, Error> {
        let to = to.into();
        let s = with_cx(|cx| api::TcpStream::connect_to(cx, to))?;
        retry(Wait::Writable(Source::Stream(s)), move |cx| {
            if let Some(e) = s.error(cx) {
                return Err(e);
            }
            match s.state(cx) {
                sluice_net::TcpState::SynSent | sluice_net::TcpState::SynReceived => Err(Error::WouldBlock),
                sluice_net::TcpState::Closed => Err(Error::Refused),
                _ => Ok(()),
            }
        })
        .await?;
        Ok(TcpStream(s))
    }
    /// Reads some bytes: `Ok(0)` at end of stream.
    pub async fn read(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let s = self.0;
        retry(Wait::Readable(Source::Stream(s)), move |cx| s.read(cx, buf)).await
    }
    /// Writes some bytes (as many as fit, at least one).
    pub async fn write(&self, data: &[u8]) -> Result<usize, Error> {
        let s = self.0;
        retry(Wait::Writable(Source::Stream(s)), move |cx| s.write(cx, data)).await
    }
    /// Writes all of `data`.
    pub async fn write_all(&self, mut data: &[u8]) -> Result<(), Error> {
        while !data.is_empty() {
            let n = self.write(data).await?;
            data = &data[n..];
        }
        Ok(())
    }
    /// Zero-copy read: the next received bytes as a `Frame` (a full-sized payload is the
    /// received mbuf itself); `Ok(None)` at end of stream.
    pub async fn read_frame(&self, max: usize) -> Result<Option<Frame>, Error> {
        let s = self.0;
        retry(Wait::Readable(Source::Stream(s)), move |cx| s.read_frame(cx, max)).await
    }
    /// Zero-copy send: queues all of `frame` by reference (a received frame, or one filled
    /// from `alloc_frame`), waiting for room as needed.
    pub async fn write_frame(&self, frame: Frame) -> Result<(), Error> {
        let s = self.0;
        let mut pending = Some(frame);
        retry(Wait::Writable(Source::Stream(s)), move |cx| {
            let Some(f) = pending.take() else {
                return Ok(());
            };
            match s.write_frame(cx, f)? {
                None => Ok(()),
                Some(rest) => {
                    pending = Some(rest);
                    Err(Error::WouldBlock)
                }
            }
        })
        .await
    }
    /// Sends FIN after the queued data (half-close); reading continues.
    pub fn shutdown(&self) {
        with_cx(|cx| self.0.shutdown(cx))
    }
    /// Closes the connection (as dropping it does).
    pub fn close(self) {}
    /// Resets the connection (RST) and forgets it.
    pub fn abort(self) {
        let s = self.0;
        std::mem::forget(self);
        forget(Source::Stream(s));
        with_cx(|cx| {
            s.abort(cx);
        });
    }
    /// The handle of the socket API, for calls this type does not offer (through
    /// `with_cx`: `set_nodelay`, `peer`, `state`...). This stream still owns the
    /// connection: dropping it closes it.
    pub fn inner(&self) -> api::TcpStream {
        self.0
    }
}

/// A task's waker: puts the task on its core's run queue, once until it is polled.
struct TaskWaker {
    id: usize,
    woken: AtomicBool,
    queue: Arc<Mutex<Vec<usize>>>,
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        if !self.woken.swap(true, Ordering::AcqRel) {
            self.queue.lock().unwrap_or_else(|e| e.into_inner()).push(self.id);
        }
    }
}

struct Task {
    fut: Pin<Box<dyn Future<Output = ()>>>,
    waker: Arc<TaskWaker>,
}

/// An `App` that runs async tasks on its core: `make()` gives the core its first task,
/// which may `spawn` others. `Engine::run`'s `make_app(core)` makes one per core.
pub struct AsyncApp<F> {
    make: Option<F>,
    ctx: Option<Rc<CoreCtx>>,
    tasks: Vec<Option<Task>>,
    /// Free slots of `tasks`.
    free: Vec<usize>,
    /// Woken tasks (by id); `run` is the batch being polled.
    queue: Arc<Mutex<Vec<usize>>>,
    run: Vec<usize>,
    /// Where this runtime is in the interface's ready list.
    cursor: ReadyCursor,
    /// Tasks polled in the last round.
    polled: usize,
}

impl<F, Fut> AsyncApp<F>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = ()> + 'static,
{
    /// An application whose first task is `make()`, created in `App::start` on the core.
    pub fn new(make: F) -> Self {
        AsyncApp {
            make: Some(make),
            ctx: None,
            tasks: Vec::new(),
            free: Vec::new(),
            queue: Arc::new(Mutex::new(Vec::new())),
            run: Vec::new(),
            cursor: ReadyCursor::default(),
            polled: 0,
        }
    }

    /// Tasks still running.
    pub fn tasks(&self) -> usize {
        self.tasks.len() - self.free.len()
    }

    /// Tasks polled in the last round (the woken ones).
    pub fn polled(&self) -> usize {
        self.polled
    }

    fn add(&mut self, fut: Pin<Box<dyn Future<Output = ()>>>) {
        let id = self.free.pop().unwrap_or(self.tasks.len());
        let waker = Arc::new(TaskWaker {
            id,
            woken: AtomicBool::new(false),
            queue: self.queue.clone(),
        });
        waker.wake_by_ref();
        let t = Some(Task { fut, waker });
        if id == self.tasks.len() {
            self.tasks.push(t);
        } else {
            self.tasks[id] = t;
        }
    }

    /// Wakes the tasks whose deadline passed or whose socket changed.
    fn wake_ready(&mut self, c: &CoreCtx, cx: &Cx) {
        let now = cx.now();
        loop {
            let mut sleepers = c.sleepers.borrow_mut();
            match sleepers.peek() {
                Some(s) if s.at.0 .0 <= now => {
                    let s = sleepers.pop().expect("peeked");
                    drop(sleepers);
                    s.waker.wake();
                }
                _ => break,
            }
        }
        if c.waiting.borrow().is_empty() && c.waiting_more.borrow().is_empty() {
            // Nobody waits: only move the cursor on.
            let _ = cx.iface().ready_since(&mut self.cursor);
            return;
        }
        let mut iface = cx.iface();
        match iface.ready_since(&mut self.cursor) {
            Ready::Changed(changed) => {
                for &r in changed {
                    c.wake_waiting(Source::of(r));
                }
            }
            Ready::Missed => {
                for (_, w) in c.waiting.borrow_mut().drain() {
                    w.wake();
                }
                for (_, w) in c.waiting_more.borrow_mut().drain(..) {
                    w.wake();
                }
            }
        }
    }
}

impl<F, Fut> App for AsyncApp<F>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = ()> + 'static,
{
    fn start(&mut self, cx: &Cx) -> Result<(), crate::core::AppError> {
        self.ctx = Some(Rc::new(CoreCtx {
            iface: cx.iface_rc().clone(),
            now: Cell::new(cx.now()),
            core: cx.core(),
            cores: cx.cores(),
            steering: cx.steering().clone(),
            stop: AtomicBool::new(false),
            waiting: RefCell::new(HashMap::new()),
            waiting_more: RefCell::new(Vec::new()),
            sleepers: RefCell::new(BinaryHeap::new()),
            sleeps: Cell::new(0),
            spawned: RefCell::new(Vec::new()),
        }));
        let c = self.ctx.clone().expect("just set");
        CURRENT.with(|cur| *cur.borrow_mut() = Some(c));
        if let Some(make) = self.make.take() {
            let fut = make();
            self.add(Box::pin(fut));
        }
        CURRENT.with(|cur| *cur.borrow_mut() = None);
        Ok(())
    }

    /// The engine stops: the tasks are dropped with the core's context set, so the
    /// streams and listeners they hold close (FINs leave in the engine's last rounds).
    fn finish(&mut self, cx: &Cx) {
        let Some(c) = self.ctx.clone() else { return };
        c.now.set(cx.now());
        CURRENT.with(|cur| *cur.borrow_mut() = Some(c.clone()));
        self.tasks.clear();
        self.free.clear();
        c.spawned.borrow_mut().clear();
        c.waiting.borrow_mut().clear();
        c.waiting_more.borrow_mut().clear();
        c.sleepers.borrow_mut().clear();
        CURRENT.with(|cur| *cur.borrow_mut() = None);
    }

    fn poll(&mut self, cx: &Cx) -> bool {
        let Some(c) = self.ctx.clone() else { return false };
        c.now.set(cx.now());
        self.wake_ready(&c, cx);
        CURRENT.with(|cur| *cur.borrow_mut() = Some(c.clone()));
        self.polled = 0;
        let mut run = std::mem::take(&mut self.run);
        loop {
            let spawned: Vec<_> = if c.spawned.borrow().is_empty() {
                Vec::new()
            } else {
                c.spawned.borrow_mut().drain(..).collect()
            };
            for f in spawned {
                self.add(f);
            }
            run.clear();
            std::mem::swap(
                &mut run,
                &mut *self.queue.lock().unwrap_or_else(|e| e.into_inner()),
            );
            if run.is_empty() {
                break;
            }
            for &id in &run {
                let Some(Some(t)) = self.tasks.get_mut(id) else {
                    continue; // finished since it was woken
                };
                t.waker.woken.store(false, Ordering::Release);
                self.polled += 1;
                let waker = Waker::from(t.waker.clone());
                if t.fut.as_mut().poll(&mut Context::from_waker(&waker)).is_ready() {
                    self.tasks[id] = None;
                    self.free.push(id);
                }
            }
        }
        self.run = run;
        CURRENT.with(|cur| *cur.borrow_mut() = None);
        if c.stop.load(Ordering::Relaxed) {
            cx.request_stop();
        }
        self.polled > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_wire::Ipv4Address;

    #[test]
    fn a_task_that_sleeps_wakes_at_its_deadline() {
        use sluice_net::{InterfaceConfig, IsnKey};
        use sluice_wire::{EthernetAddress, Ipv4Cidr};
        let cfg = InterfaceConfig::new(
            Ipv4Cidr::new(Ipv4Address([198, 18, 0, 2]), 24),
            IsnKey::fixed([7; 16]),
        );
        let iface = Rc::new(RefCell::new(Interface::new(
            cfg,
            EthernetAddress([2, 0, 0, 0, 0, 1]),
        )));
        let steering = RssSteering::round_robin(&crate::SYMMETRIC_KEY, 128, 1);
        let stop = AtomicBool::new(false);
        let done = Rc::new(Cell::new(None));
        let d2 = done.clone();
        let mut app = AsyncApp::new(move || async move {
            sleep(Duration::from_millis(10)).await;
            d2.set(Some(now()));
            request_stop();
        });
        let mut t = Instant::from_millis(1);
        app.start(&Cx::new(&iface, t, 0, 1, &steering, &stop)).unwrap();
        while !stop.load(Ordering::SeqCst) && t < Instant::from_secs(1) {
            app.poll(&Cx::new(&iface, t, 0, 1, &steering, &stop));
            t += Duration::from_millis(1);
        }
        assert_eq!(done.get(), Some(Instant::from_millis(11)));
        assert_eq!(app.tasks(), 0);
    }

    /// A server task that returns without closing its stream or its listener: dropping
    /// them closes both (the peer gets a FIN, a new connection a RST).
    #[test]
    fn handles_close_themselves_when_dropped() {
        use sluice_dev::{Device, Impairments, MemLink};
        use sluice_net::{InterfaceConfig, IsnKey, TcpState};
        use sluice_wire::{EthernetAddress, Ipv4Cidr};
        let (da, db, _link) = MemLink::pair(Impairments::default(), Impairments::default(), 1, 512);
        let (mut da, mut db) = (da, db);
        let (ip_s, ip_c) = (Ipv4Address([198, 18, 0, 1]), Ipv4Address([198, 18, 0, 2]));
        let (mac_s, mac_c) = (EthernetAddress(da.mac()), EthernetAddress(db.mac()));
        let cfg = |ip, peer, mac| {
            let mut c = InterfaceConfig::new(Ipv4Cidr::new(ip, 24), IsnKey::fixed([7; 16]));
            c.static_arp.push((peer, mac));
            c
        };
        let server = Rc::new(RefCell::new(Interface::new(cfg(ip_s, ip_c, mac_c), mac_s)));
        let mut client = Interface::new(cfg(ip_c, ip_s, mac_s), mac_c);
        let steering = RssSteering::round_robin(&crate::SYMMETRIC_KEY, 128, 1);
        let stop = AtomicBool::new(false);
        let got = Rc::new(Cell::new(0usize));
        let g2 = got.clone();
        let mut app = AsyncApp::new(move || async move {
            let listener = TcpListener::bind(7, 8).unwrap();
            let stream = listener.accept().await.unwrap();
            let mut buf = [0u8; 16];
            g2.set(stream.read(&mut buf).await.unwrap());
            // Neither is closed: both are dropped here.
        });
        let mut t = Instant::from_millis(1);
        app.start(&Cx::new(&server, t, 0, 1, &steering, &stop)).unwrap();
        // The task binds its listener in its first poll.
        app.poll(&Cx::new(&server, t, 0, 1, &steering, &stop));
        let h = client.tcp_connect(ip_s, 7).unwrap();
        let mut sent = false;
        for _ in 0..2000 {
            client.poll(t, &mut db);
            server.borrow_mut().poll(t, &mut da);
            app.poll(&Cx::new(&server, t, 0, 1, &steering, &stop));
            server.borrow_mut().transmit(t, &mut da);
            if !sent
                && client
                    .tcp_status(h)
                    .map_or(sluice_net::TcpState::Closed, |t| t.state())
                    == TcpState::Established
            {
                sent = client
                    .tcp(h)
                    .ok_or(sluice_net::TcpSendError::InvalidHandle)
                    .and_then(|mut sk| sk.send(b"hi"))
                    .unwrap()
                    == 2;
            }
            if client
                .tcp_status(h)
                .map_or(sluice_net::TcpState::Closed, |t| t.state())
                == TcpState::CloseWait
            {
                break;
            }
            t += Duration::from_millis(1);
        }
        assert_eq!(got.get(), 2, "the server read the request");
        assert_eq!(app.tasks(), 0);
        assert_eq!(
            client
                .tcp_status(h)
                .map_or(sluice_net::TcpState::Closed, |t| t.state()),
            TcpState::CloseWait,
            "the server's FIN arrived"
        );
        // The listener is gone too: a new connection is refused.
        let h2 = client.tcp_connect(ip_s, 7).unwrap();
        for _ in 0..50 {
            client.poll(t, &mut db);
            server.borrow_mut().poll(t, &mut da);
            t += Duration::from_millis(1);
        }
        assert_eq!(
            client
                .tcp_status(h2)
                .map_or(sluice_net::TcpState::Closed, |t| t.state()),
            TcpState::Closed,
            "refused"
        );
    }

    /// The async API over IPv6: a task connects to a `std::net::SocketAddr` (IPv6), writes
    /// and reads back what a plain interface's server echoes; its peer address is IPv6.
    #[test]
    fn an_async_client_connects_to_an_ipv6_socket_addr() {
        use sluice_dev::{Device, Impairments, MemLink};
        use sluice_net::{InterfaceConfig, IsnKey};
        use sluice_wire::ipv6::{Ipv6Address, Ipv6Cidr};
        use sluice_wire::{EthernetAddress, Ipv4Cidr};
        let (mut da, mut db, _link) = MemLink::pair(Impairments::default(), Impairments::default(), 1, 512);
        let (mac_s, mac_c) = (EthernetAddress(da.mac()), EthernetAddress(db.mac()));
        let (s6, c6) = (
            Ipv6Address::new([0x2001, 2, 0, 0, 0, 0, 0, 1]),
            Ipv6Address::new([0x2001, 2, 0, 0, 0, 0, 0, 2]),
        );
        let cfg = |ip: [u8; 4], ip6, peer6, mac| {
            let mut c = InterfaceConfig::new(Ipv4Cidr::new(Ipv4Address(ip), 24), IsnKey::fixed([7; 16]));
            c.ipv6 = vec![Ipv6Cidr::new(ip6, 64)];
            c.static_nd.push((peer6, mac));
            c.dad = false;
            c
        };
        let mut server = Interface::new(cfg([198, 18, 0, 1], s6, c6, mac_c), mac_s);
        let client = Rc::new(RefCell::new(Interface::new(
            cfg([198, 18, 0, 2], c6, s6, mac_s),
            mac_c,
        )));
        let l = server.tcp_listen(7, 8).unwrap();
        let steering = RssSteering::round_robin(&crate::SYMMETRIC_KEY, 128, 1);
        let stop = AtomicBool::new(false);
        let got = Rc::new(RefCell::new(Vec::new()));
        let g2 = got.clone();
        let to: std::net::SocketAddr = "[2001:2::1]:7".parse().unwrap();
        let mut app = AsyncApp::new(move || async move {
            let s = TcpStream::connect_to(to).await.unwrap();
            s.write(b"over six").await.unwrap();
            let mut buf = [0u8; 16];
            let n = s.read(&mut buf).await.unwrap();
            g2.borrow_mut().extend_from_slice(&buf[..n]);
            request_stop();
        });
        let mut t = Instant::from_millis(1);
        app.start(&Cx::new(&client, t, 0, 1, &steering, &stop)).unwrap();
        let mut conn = None;
        for _ in 0..2000 {
            app.poll(&Cx::new(&client, t, 0, 1, &steering, &stop));
            client.borrow_mut().poll(t, &mut db);
            server.poll(t, &mut da);
            conn = conn.or_else(|| server.tcp_accept(l));
            if let Some(h) = conn {
                let mut buf = [0u8; 16];
                if let Ok(n) = server
                    .tcp(h)
                    .ok_or(sluice_net::TcpRecvError::InvalidHandle)
                    .and_then(|mut sk| sk.recv(&mut buf))
                {
                    if n > 0 {
                        server
                            .tcp(h)
                            .ok_or(sluice_net::TcpSendError::InvalidHandle)
                            .and_then(|mut sk| sk.send(&buf[..n]))
                            .unwrap();
                    }
                }
            }
            server.transmit(t, &mut da);
            if stop.load(Ordering::SeqCst) {
                break;
            }
            t += Duration::from_millis(1);
        }
        assert_eq!(&got.borrow()[..], b"over six");
        let h = conn.expect("accepted");
        assert_eq!(
            server.tcp_status(h).map(|t| t.remote()).map(|e| e.addr),
            Some(c6.into()),
            "the peer is the client's IPv6 address"
        );
    }
}
