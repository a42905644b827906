//! Readiness by events: the sockets whose state changed, in the order they changed.
//!
//! A connection is recorded when a segment, a timer or an ICMP error moved what an
//! application waits for (data or the peer's FIN arrived, the peer acknowledged data so
//! the send buffer has room, the state changed, an error), a listener when a connection
//! joined its accept queue, a UDP socket when a datagram or an error arrived or its queue
//! was sent. Consumers (the engine's `Poller`, its async runtime, an application's loop)
//! each keep a `ReadyCursor` and read what was recorded since their last look, so the work
//! of a round follows the sockets that changed, not the sockets that exist.
//!
//! The list is trimmed at each `Interface::poll` to what the furthest consumer has not
//! read. A consumer that fell behind the trim (it skipped rounds, or another consumer read
//! further) is told so (`Ready::Missed`) and looks at all its sockets once. A socket
//! already recorded and not yet read is not recorded again, so the list holds at most one
//! unread entry per socket; without any consumer it is cleared at `MAX_UNREAD`.

use crate::slab::Key;

/// A TCP connection of an `Interface`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TcpHandle(pub(crate) Key);

impl TcpHandle {
    /// The connection's slot in its interface: a small integer, dense from 0 and reused
    /// once the connection is removed, so that an application can keep state per
    /// connection in a `Vec` indexed by it instead of a hash map. Two connections alive at
    /// once never share a slot; compare whole handles to tell a connection from a later
    /// one in the same slot.
    #[inline]
    pub fn slot(self) -> usize {
        self.0.index as usize
    }
}

/// A listening TCP port of an `Interface`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ListenerHandle(pub(crate) Key);

/// A UDP socket of an `Interface`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UdpHandle(pub(crate) Key);

/// Entries kept for consumers that do not read (then they are told they missed some).
const MAX_UNREAD: usize = 1 << 16;

/// A socket whose readiness may have changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReadySocket {
    /// A connection: data, the peer's FIN, room to send, a new state, or an error.
    Tcp(TcpHandle),
    /// A listener: a connection to accept.
    Listener(ListenerHandle),
    /// A UDP socket: a datagram or an error arrived, or its send queue drained.
    Udp(UdpHandle),
}

/// What a consumer reads: the sockets recorded since its last read, or word that some
/// were lost to it (then every socket it watches must be looked at).
#[derive(Debug)]
pub enum Ready<'a> {
    Changed(&'a [ReadySocket]),
    Missed,
}

/// A consumer's place in the list. A new cursor has missed everything before it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReadyCursor {
    next: Option<u64>,
}

/// The recorded sockets, with sequence numbers `base..base + entries.len()`.
#[derive(Debug, Default)]
pub(crate) struct ReadyList {
    base: u64,
    entries: Vec<ReadySocket>,
    /// The furthest any consumer has read to.
    read_mark: u64,
}

impl ReadyList {
    /// Records `socket` unless its last entry (`*logged`, a sequence number) is still
    /// there and unread by every consumer.
    pub(crate) fn push(&mut self, socket: ReadySocket, logged: &mut Option<u64>) {
        if logged.is_some_and(|at| at >= self.read_mark && at >= self.base) {
            return;
        }
        if self.entries.len() >= MAX_UNREAD {
            // Nobody reads: whoever comes back has missed these.
            self.base += self.entries.len() as u64;
            self.entries.clear();
        }
        *logged = Some(self.end());
        self.entries.push(socket);
    }

    fn end(&self) -> u64 {
        self.base + self.entries.len() as u64
    }

    /// What `cursor` has not read yet; moves it to the end.
    pub(crate) fn read(&mut self, cursor: &mut ReadyCursor) -> Ready<'_> {
        let end = self.end();
        let from = cursor.next.replace(end);
        self.read_mark = self.read_mark.max(end);
        match from {
            Some(n) if n >= self.base => Ready::Changed(&self.entries[(n - self.base) as usize..]),
            _ => Ready::Missed,
        }
    }

    /// Forgets what the furthest consumer has read (a consumer behind it will be told it
    /// missed some). Called at the start of each `Interface::poll`.
    pub(crate) fn trim(&mut self) {
        let n = self.read_mark.saturating_sub(self.base) as usize;
        if n == 0 {
            return;
        }
        if n >= self.entries.len() {
            self.entries.clear();
        } else {
            self.entries.drain(..n);
        }
        self.base += n as u64;
    }

    /// Entries not yet trimmed.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slab::Key;

    fn tcp(i: u32) -> ReadySocket {
        ReadySocket::Tcp(TcpHandle(Key {
            index: i,
            generation: 0,
        }))
    }

    fn changed(r: Ready<'_>) -> Vec<ReadySocket> {
        match r {
            Ready::Changed(s) => s.to_vec(),
            Ready::Missed => panic!("missed"),
        }
    }

    #[test]
    fn a_new_cursor_has_missed_then_reads_what_changed_once() {
        let mut l = ReadyList::default();
        let (mut a, mut b) = (None, None);
        l.push(tcp(1), &mut a);
        let mut c = ReadyCursor::default();
        assert!(matches!(l.read(&mut c), Ready::Missed));
        l.push(tcp(1), &mut a);
        l.push(tcp(2), &mut b);
        // tcp(1)'s first entry was read: it is recorded again.
        assert_eq!(changed(l.read(&mut c)), vec![tcp(1), tcp(2)]);
        assert!(changed(l.read(&mut c)).is_empty());
    }

    #[test]
    fn an_unread_socket_is_recorded_once() {
        let mut l = ReadyList::default();
        let mut c = ReadyCursor::default();
        let _ = l.read(&mut c);
        let mut a = None;
        for _ in 0..5 {
            l.push(tcp(1), &mut a);
        }
        assert_eq!(l.len(), 1);
        assert_eq!(changed(l.read(&mut c)), vec![tcp(1)]);
        l.push(tcp(1), &mut a);
        assert_eq!(changed(l.read(&mut c)), vec![tcp(1)]);
    }

    #[test]
    fn trim_keeps_what_nobody_read_and_a_lagging_consumer_is_told() {
        let mut l = ReadyList::default();
        let (mut fast, mut slow) = (ReadyCursor::default(), ReadyCursor::default());
        let _ = l.read(&mut fast);
        let _ = l.read(&mut slow);
        let (mut a, mut b) = (None, None);
        l.push(tcp(1), &mut a);
        assert_eq!(changed(l.read(&mut fast)), vec![tcp(1)]);
        l.push(tcp(2), &mut b);
        l.trim();
        assert_eq!(l.len(), 1, "tcp(2) is unread");
        assert!(matches!(l.read(&mut slow), Ready::Missed));
        assert_eq!(changed(l.read(&mut fast)), vec![tcp(2)]);
        l.trim();
        assert_eq!(l.len(), 0);
    }

    #[test]
    fn without_readers_the_list_stays_bounded() {
        let mut l = ReadyList::default();
        let mut c = ReadyCursor::default();
        let _ = l.read(&mut c);
        // Each push from a distinct socket (fresh `logged`).
        for i in 0..(MAX_UNREAD as u32 + 10) {
            l.push(tcp(i), &mut None);
        }
        assert!(l.len() <= MAX_UNREAD);
        assert!(matches!(l.read(&mut c), Ready::Missed));
    }
}
