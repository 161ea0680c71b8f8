//! The node store: compact records in fixed-size chunks, addressed by u32, and a hash index
//! from (parent, name) to record.
//!
//! A znode costs one 96-byte record plus one heap block holding its name and data, and 4
//! bytes in the index; its full path is never stored (lookups walk the path a component at a
//! time). Children are a doubly linked list through their records (newest first), so adding
//! or removing a child is O(1) however many siblings it has. Records live in chunks of
//! `CHUNK` that never move, and the index is split into `INDEX_SHARDS` tables, so growing
//! either never copies more than a sliver of the tree on the event loop. Freed records are
//! reused.

use hashbrown::hash_table::HashTable;
use std::hash::{BuildHasher, Hasher};

/// "No record": the end of a child list, the root's parent.
pub const NONE: u32 = u32::MAX;
/// The root's record.
pub const ROOT: u32 = 0;

const CHUNK_BITS: u32 = 12;
const CHUNK: usize = 1 << CHUNK_BITS;
const INDEX_SHARDS: usize = 64;

/// `Rec::bits`: the data is null (not just empty).
const NULL_DATA: u32 = 1 << 31;
/// `Rec::bits`: the node has a non-zero ephemeralOwner, kept in the tree's side table.
const HAS_OWNER: u32 = 1 << 30;
/// `Rec::bits`: the record is free.
const FREE: u32 = 1 << 29;
/// `Rec::bits`: the name's length.
const LEN_MASK: u32 = FREE - 1;

/// One znode. The stored cversion counts child creations only (see `NodeRef::stat`).
pub struct Rec {
    /// The name's bytes, then the data's.
    blob: Box<[u8]>,
    pub czxid: i64,
    pub mzxid: i64,
    pub pzxid: i64,
    pub ctime: i64,
    pub mtime: i64,
    pub version: i32,
    pub cversion: i32,
    pub aversion: i32,
    pub parent: u32,
    pub first_child: u32,
    pub next: u32,
    pub prev: u32,
    pub num_children: u32,
    /// Index into the tree's ACL table.
    pub acl: u32,
    /// Name length and the flags above.
    bits: u32,
}

/// A record's contents before it is placed: everything but the links.
pub struct NewRec<'a> {
    pub name: &'a str,
    pub data: Option<&'a [u8]>,
    pub acl: u32,
    pub czxid: i64,
    pub mzxid: i64,
    pub pzxid: i64,
    pub ctime: i64,
    pub mtime: i64,
    pub version: i32,
    pub cversion: i32,
    pub aversion: i32,
    pub has_owner: bool,
}

fn blob_of(name: &str, data: Option<&[u8]>) -> Box<[u8]> {
    let d = data.unwrap_or(&[]);
    let mut v = Vec::with_capacity(name.len() + d.len());
    v.extend_from_slice(name.as_bytes());
    v.extend_from_slice(d);
    v.into_boxed_slice()
}

impl Rec {
    fn name_len(&self) -> usize {
        (self.bits & LEN_MASK) as usize
    }

    pub fn name_bytes(&self) -> &[u8] {
        &self.blob[..self.name_len()]
    }

    pub fn name(&self) -> &str {
        // The name bytes were copied from a &str in `new`, and the blob's prefix never changes.
        std::str::from_utf8(&self.blob[..self.name_len()]).unwrap_or("")
    }

    pub fn data(&self) -> Option<&[u8]> {
        if self.bits & NULL_DATA != 0 {
            None
        } else {
            Some(&self.blob[self.name_len()..])
        }
    }

    pub fn data_len(&self) -> usize {
        self.blob.len() - self.name_len()
    }

    pub fn set_data(&mut self, data: Option<&[u8]>) {
        let blob = blob_of(self.name(), data);
        self.blob = blob;
        self.bits = match data {
            None => self.bits | NULL_DATA,
            Some(_) => self.bits & !NULL_DATA,
        };
    }

    pub fn has_owner(&self) -> bool {
        self.bits & HAS_OWNER != 0
    }

    fn new(r: &NewRec, parent: u32) -> Rec {
        assert!(r.name.len() <= LEN_MASK as usize, "znode name too long");
        let mut bits = r.name.len() as u32;
        if r.data.is_none() {
            bits |= NULL_DATA;
        }
        if r.has_owner {
            bits |= HAS_OWNER;
        }
        Rec {
            blob: blob_of(r.name, r.data),
            czxid: r.czxid,
            mzxid: r.mzxid,
            pzxid: r.pzxid,
            ctime: r.ctime,
            mtime: r.mtime,
            version: r.version,
            cversion: r.cversion,
            aversion: r.aversion,
            parent,
            first_child: NONE,
            next: NONE,
            prev: NONE,
            num_children: 0,
            acl: r.acl,
            bits,
        }
    }

    fn free() -> Rec {
        Rec {
            blob: Box::new([]),
            czxid: 0,
            mzxid: 0,
            pzxid: 0,
            ctime: 0,
            mtime: 0,
            version: 0,
            cversion: 0,
            aversion: 0,
            parent: NONE,
            first_child: NONE,
            next: NONE,
            prev: NONE,
            num_children: 0,
            acl: 0,
            bits: FREE,
        }
    }
}

pub struct Arena {
    chunks: Vec<Vec<Rec>>,
    free: Vec<u32>,
    live: usize,
    index: Vec<HashTable<u32>>,
    hasher: hashbrown::DefaultHashBuilder,
}

impl Arena {
    /// A store holding only the root, `root`.
    pub fn new(root: &NewRec) -> Arena {
        let mut a = Arena {
            chunks: Vec::new(),
            free: Vec::new(),
            live: 0,
            index: (0..INDEX_SHARDS).map(|_| HashTable::new()).collect(),
            hasher: Default::default(),
        };
        let id = a.alloc(Rec::new(root, NONE));
        debug_assert_eq!(id, ROOT);
        a
    }

    /// Live records, the root included.
    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Makes room for `additional` more records and index entries.
    pub fn reserve(&mut self, additional: usize) {
        let each = additional.div_ceil(INDEX_SHARDS);
        let hasher = &self.hasher;
        let chunks = &self.chunks;
        for t in &mut self.index {
            t.reserve(each, |&id| hash_rec(hasher, rec_in(chunks, id)));
        }
    }

    pub fn rec(&self, id: u32) -> &Rec {
        rec_in(&self.chunks, id)
    }

    pub fn rec_mut(&mut self, id: u32) -> &mut Rec {
        &mut self.chunks[(id >> CHUNK_BITS) as usize][id as usize & (CHUNK - 1)]
    }

    fn alloc(&mut self, rec: Rec) -> u32 {
        self.live += 1;
        if let Some(id) = self.free.pop() {
            *self.rec_mut(id) = rec;
            return id;
        }
        if self.chunks.last().map_or(true, |c| c.len() == CHUNK) {
            self.chunks.push(Vec::with_capacity(CHUNK));
        }
        let c = self.chunks.len() - 1;
        let chunk = &mut self.chunks[c];
        chunk.push(rec);
        ((c << CHUNK_BITS) | (chunk.len() - 1)) as u32
    }

    fn shard(hash: u64) -> usize {
        // Bits hashbrown uses for neither the bucket nor the tag.
        (hash >> 32) as usize % INDEX_SHARDS
    }

    /// The child of `parent` called `name`.
    pub fn find(&self, parent: u32, name: &str) -> Option<u32> {
        self.find_hashed(
            hash_key(&self.hasher, parent, name.as_bytes()),
            parent,
            name,
        )
    }

    fn find_hashed(&self, h: u64, parent: u32, name: &str) -> Option<u32> {
        let chunks = &self.chunks;
        self.index[Self::shard(h)]
            .find(h, |&id| {
                let r = rec_in(chunks, id);
                r.parent == parent && r.name_bytes() == name.as_bytes()
            })
            .copied()
    }

    /// The child of `parent` called `new.name`, added from `new` if there is none (then the
    /// bool is true), hashing the name once for both.
    pub fn find_or_add(&mut self, parent: u32, new: &NewRec) -> (u32, bool) {
        let h = hash_key(&self.hasher, parent, new.name.as_bytes());
        match self.find_hashed(h, parent, new.name) {
            Some(id) => (id, false),
            None => (self.add_child_hashed(parent, new, h), true),
        }
    }

    /// The record at an absolute path ("" is the root too).
    pub fn resolve(&self, path: &str) -> Option<u32> {
        let rest = match path {
            "" | "/" => return Some(ROOT),
            p => p.strip_prefix('/')?,
        };
        let mut id = ROOT;
        for name in rest.split('/') {
            if name.is_empty() {
                return None;
            }
            id = self.find(id, name)?;
        }
        Some(id)
    }

    /// Adds `rec` as a child of `parent` (which must not have a child of that name yet), at
    /// the head of its child list.
    pub fn add_child(&mut self, parent: u32, new: &NewRec) -> u32 {
        let h = hash_key(&self.hasher, parent, new.name.as_bytes());
        self.add_child_hashed(parent, new, h)
    }

    fn add_child_hashed(&mut self, parent: u32, new: &NewRec, h: u64) -> u32 {
        let id = self.alloc(Rec::new(new, parent));
        let (hasher, chunks) = (&self.hasher, &self.chunks);
        self.index[Self::shard(h)].insert_unique(h, id, |&i| hash_rec(hasher, rec_in(chunks, i)));
        let head = self.rec(parent).first_child;
        self.rec_mut(id).next = head;
        if head != NONE {
            self.rec_mut(head).prev = id;
        }
        let p = self.rec_mut(parent);
        p.first_child = id;
        p.num_children += 1;
        id
    }

    /// Replaces a record's contents in place, keeping its name, links and children.
    pub fn overwrite(&mut self, id: u32, new: &NewRec) {
        let r = self.rec_mut(id);
        let (parent, first, next, prev, n) =
            (r.parent, r.first_child, r.next, r.prev, r.num_children);
        *r = Rec::new(new, parent);
        r.first_child = first;
        r.next = next;
        r.prev = prev;
        r.num_children = n;
    }

    /// Unlinks and frees a record with no children; returns its old contents.
    pub fn remove(&mut self, id: u32) -> Rec {
        assert!(id != ROOT, "the root is never removed");
        let (parent, next, prev) = {
            let r = self.rec(id);
            debug_assert_eq!(r.num_children, 0);
            (r.parent, r.next, r.prev)
        };
        let h = hash_rec(&self.hasher, self.rec(id));
        if let Ok(e) = self.index[Self::shard(h)].find_entry(h, |&i| i == id) {
            e.remove();
        }
        if prev != NONE {
            self.rec_mut(prev).next = next;
        } else {
            self.rec_mut(parent).first_child = next;
        }
        if next != NONE {
            self.rec_mut(next).prev = prev;
        }
        self.rec_mut(parent).num_children -= 1;
        self.live -= 1;
        self.free.push(id);
        std::mem::replace(self.rec_mut(id), Rec::free())
    }

    /// The children of `id`, newest first.
    pub fn children(&self, id: u32) -> Children<'_> {
        Children {
            arena: self,
            next: self.rec(id).first_child,
        }
    }

    /// Index-table entries (for the memory figures in tests).
    #[cfg(test)]
    pub fn index_len(&self) -> usize {
        self.index.iter().map(|t| t.len()).sum()
    }
}

fn rec_in(chunks: &[Vec<Rec>], id: u32) -> &Rec {
    &chunks[(id >> CHUNK_BITS) as usize][id as usize & (CHUNK - 1)]
}

fn hash_key(hasher: &hashbrown::DefaultHashBuilder, parent: u32, name: &[u8]) -> u64 {
    let mut h = hasher.build_hasher();
    h.write_u32(parent);
    h.write(name);
    h.finish()
}

fn hash_rec(hasher: &hashbrown::DefaultHashBuilder, r: &Rec) -> u64 {
    hash_key(hasher, r.parent, &r.blob[..r.name_len()])
}

/// Iterator over a record's children.
pub struct Children<'a> {
    arena: &'a Arena,
    next: u32,
}

impl<'a> Iterator for Children<'a> {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        if self.next == NONE {
            return None;
        }
        let id = self.next;
        self.next = self.arena.rec(id).next;
        Some(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(name: &str) -> NewRec<'_> {
        NewRec {
            name,
            data: Some(b"x"),
            acl: 0,
            czxid: 1,
            mzxid: 1,
            pzxid: 1,
            ctime: 0,
            mtime: 0,
            version: 0,
            cversion: 0,
            aversion: 0,
            has_owner: false,
        }
    }

    #[test]
    fn record_is_compact() {
        assert!(
            std::mem::size_of::<Rec>() <= 96,
            "{}",
            std::mem::size_of::<Rec>()
        );
    }

    #[test]
    fn add_find_remove_reuse() {
        let mut a = Arena::new(&new(""));
        let x = a.add_child(ROOT, &new("x"));
        let y = a.add_child(x, &new("y"));
        let z = a.add_child(x, &new("z"));
        assert_eq!(a.resolve("/x/y"), Some(y));
        assert_eq!(a.resolve("/x/z"), Some(z));
        assert_eq!(a.resolve("/x/q"), None);
        assert_eq!(a.resolve("/x/"), None);
        assert_eq!(a.resolve("x"), None);
        assert_eq!(a.children(x).collect::<Vec<_>>(), vec![z, y]);
        assert_eq!(a.rec(x).num_children, 2);
        let old = a.remove(y);
        assert_eq!(old.name(), "y");
        assert_eq!(a.resolve("/x/y"), None);
        assert_eq!(a.children(x).collect::<Vec<_>>(), vec![z]);
        let w = a.add_child(ROOT, &new("w"));
        assert_eq!(w, y, "a freed record is reused");
        assert_eq!(a.resolve("/w"), Some(w));
        assert_eq!(a.len(), 4);
        assert_eq!(a.index_len(), 3);
    }

    #[test]
    fn many_siblings_across_chunks() {
        let mut a = Arena::new(&new(""));
        let names: Vec<String> = (0..3 * CHUNK).map(|i| format!("n{i}")).collect();
        let ids: Vec<u32> = names.iter().map(|n| a.add_child(ROOT, &new(n))).collect();
        for (n, id) in names.iter().zip(&ids) {
            assert_eq!(a.find(ROOT, n), Some(*id));
        }
        // Remove every other one, from the middle of the list.
        for id in ids.iter().step_by(2) {
            a.remove(*id);
        }
        assert_eq!(a.rec(ROOT).num_children as usize, ids.len() / 2);
        assert_eq!(a.children(ROOT).count(), ids.len() / 2);
        assert_eq!(a.len(), ids.len() / 2 + 1);
    }

    #[test]
    fn data_null_empty_and_replaced() {
        let mut a = Arena::new(&new(""));
        let mut n = new("k");
        n.data = None;
        let k = a.add_child(ROOT, &n);
        assert_eq!(a.rec(k).data(), None);
        a.rec_mut(k).set_data(Some(b""));
        assert_eq!(a.rec(k).data(), Some(&b""[..]));
        a.rec_mut(k).set_data(Some(b"hello"));
        assert_eq!(a.rec(k).data(), Some(&b"hello"[..]));
        assert_eq!(a.rec(k).name(), "k");
        assert_eq!(a.rec(k).data_len(), 5);
    }
}
