//! A slab of sockets addressed by generation-checked keys.
//!
//! A handle is an index plus the generation of the slot when it was handed out, so a
//! handle kept after its socket was removed never reaches the socket that reuses the slot.

/// An index into a `Slab` with the generation it was issued for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Key {
    pub(crate) index: u32,
    pub(crate) generation: u32,
}

/// `#[repr(C)]`, the generation first: a lookup checks it, then reads the front of the
/// value, in the same cache line. Aligned to a line: the front of every value then spans
/// as few lines as its length allows, whatever the slot's index.
#[repr(C, align(64))]
struct Slot<T> {
    generation: u32,
    value: Option<T>,
}

/// Where a `T` lies in its slot: what `Slab::value_at` learns at the first insert (for
/// layout tests, which have no value to insert).
#[cfg(test)]
pub(crate) fn value_offset<T>() -> usize {
    // With a niche, `Some(t)` is `t`'s own bytes: the value starts where the option does.
    assert_eq!(
        size_of::<Option<T>>(),
        size_of::<T>(),
        "no niche: the value moved"
    );
    core::mem::offset_of!(Slot<T>, value)
}

pub(crate) struct Slab<T> {
    slots: Vec<Slot<T>>,
    free: Vec<u32>,
    len: usize,
    /// Where a value lies in its slot (in bytes; the same for every slot), learned from
    /// the first insert: `prefetch` reaches parts of a value without a reference to it.
    value_at: usize,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Slab {
            slots: Vec::new(),
            free: Vec::new(),
            len: 0,
            value_at: 0,
        }
    }
}

impl<T> Slab<T> {
    pub(crate) fn insert(&mut self, value: T) -> Key {
        self.len += 1;
        let key = if let Some(index) = self.free.pop() {
            let slot = &mut self.slots[index as usize];
            slot.value = Some(value);
            Key {
                index,
                generation: slot.generation,
            }
        } else {
            let index = self.slots.len() as u32;
            self.slots.push(Slot {
                generation: 0,
                value: Some(value),
            });
            Key { index, generation: 0 }
        };
        let slot = &self.slots[key.index as usize];
        if let Some(v) = &slot.value {
            self.value_at = (v as *const T as usize) - (slot as *const Slot<T> as usize);
        }
        key
    }

    /// The key the next `insert` will return.
    pub(crate) fn next_key(&self) -> Key {
        match self.free.last() {
            Some(&index) => Key {
                index,
                generation: self.slots[index as usize].generation,
            },
            None => Key {
                index: self.slots.len() as u32,
                generation: 0,
            },
        }
    }

    pub(crate) fn get(&self, key: Key) -> Option<&T> {
        let slot = self.slots.get(key.index as usize)?;
        if slot.generation == key.generation {
            slot.value.as_ref()
        } else {
            None
        }
    }

    /// Starts fetching the first `front` bytes of `key`'s value into the caches
    /// (`sluice_buf::prefetch`), such as the lines one use of it touches, with the
    /// generation a lookup checks before them: each line once. Reads nothing: the slot
    /// may be empty.
    #[inline]
    pub(crate) fn prefetch(&self, key: Key, front: usize) {
        if self.len > 0 && (key.index as usize) < self.slots.len() {
            let slot = self.slots.as_ptr().wrapping_add(key.index as usize).cast::<u8>();
            sluice_buf::prefetch(slot, self.value_at + front);
        }
    }

    pub(crate) fn get_mut(&mut self, key: Key) -> Option<&mut T> {
        let slot = self.slots.get_mut(key.index as usize)?;
        if slot.generation == key.generation {
            slot.value.as_mut()
        } else {
            None
        }
    }

    pub(crate) fn remove(&mut self, key: Key) -> Option<T> {
        let slot = self.slots.get_mut(key.index as usize)?;
        if slot.generation != key.generation {
            return None;
        }
        let value = slot.value.take()?;
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(key.index);
        self.len -= 1;
        Some(value)
    }

    /// Removes the value at `key` where it lies, after `f` read what it needs from it: a
    /// large value (a connection, 2 KiB) is dropped in place instead of copied out first.
    pub(crate) fn remove_with<R>(&mut self, key: Key, f: impl FnOnce(&mut T) -> R) -> Option<R> {
        let slot = self.slots.get_mut(key.index as usize)?;
        if slot.generation != key.generation {
            return None;
        }
        let r = f(slot.value.as_mut()?);
        slot.value = None;
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(key.index);
        self.len -= 1;
        Some(r)
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The key of the value in slot `index`, if one is there.
    pub(crate) fn key_at(&self, index: usize) -> Option<Key> {
        let s = self.slots.get(index)?;
        s.value.as_ref().map(|_| Key {
            index: index as u32,
            generation: s.generation,
        })
    }

    /// One past the highest slot index ever used.
    pub(crate) fn capacity_index(&self) -> usize {
        self.slots.len()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (Key, &T)> + '_ {
        self.slots.iter().enumerate().filter_map(|(i, s)| {
            s.value.as_ref().map(|v| {
                (
                    Key {
                        index: i as u32,
                        generation: s.generation,
                    },
                    v,
                )
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefetch_reaches_the_front_of_the_value_and_takes_any_key() {
        let mut s: Slab<(u64, [u8; 100])> = Slab::default();
        let part = 108;
        s.prefetch(
            Key {
                index: 0,
                generation: 0,
            },
            part,
        ); // nothing inserted yet
        let k = s.insert((7, [1; 100]));
        let slot = &s.slots[k.index as usize];
        let value = slot.value.as_ref().unwrap() as *const _ as usize;
        assert_eq!(slot as *const Slot<_> as usize + s.value_at, value);
        // Every slot starts a cache line, so a value's front spans the fewest lines.
        assert_eq!(slot as *const Slot<_> as usize % 64, 0);
        assert_eq!(core::mem::size_of::<Slot<(u64, [u8; 100])>>() % 64, 0);
        s.prefetch(k, part);
        s.remove(k);
        s.prefetch(k, part); // a vacant slot
        s.prefetch(
            Key {
                index: 9,
                generation: 0,
            },
            part,
        ); // past the end
        assert_eq!(s.insert((8, [2; 100])).index, k.index);
    }

    #[test]
    fn stale_keys_miss() {
        let mut s = Slab::default();
        let a = s.insert(1);
        let b = s.insert(2);
        assert_eq!(s.remove(a), Some(1));
        assert_eq!(s.get(a), None);
        let next = s.next_key();
        let c = s.insert(3);
        assert_eq!(next, c);
        assert_eq!(c.index, a.index);
        assert_eq!(s.get(a), None, "old handle must not reach the new socket");
        assert_eq!(s.get(c), Some(&3));
        assert_eq!(s.get(b), Some(&2));
        assert_eq!(s.len(), 2);
        assert_eq!(s.iter().count(), 2);
        assert_eq!(s.remove(a), None);
    }
}
