//! The hierarchy a store's keys spell, with each store's rules (see the
//! module docs of [`super`]): what a key names, the leaves below a prefix,
//! listings, and the bytes a group occupies.

use super::{Container, StoreKind, VLMETA_SUFFIX};
use crate::hierarchy::Member;

impl Container {
    /// Whether some key continues `key` (`/g` → `/g/a`).
    fn has_children(&self, key: &str) -> bool {
        let prefix = if key == "/" {
            "/".to_string()
        } else {
            format!("{key}/")
        };
        self.keys
            .range(prefix.clone()..)
            .next()
            .is_some_and(|k| k.starts_with(&prefix))
    }

    /// What `key` (`/g/a`) names, if anything.
    pub fn lookup(&self, key: &str) -> Option<Member<'_>> {
        match self.kind {
            StoreKind::Table => None,
            StoreKind::Dict => {
                if self.leaves.contains_key(key) {
                    Some(Member::Leaf)
                } else if key == "/" || self.has_children(key) {
                    Some(Member::Group)
                } else {
                    None
                }
            }
            StoreKind::Tree => {
                if key == "/" {
                    return Some(Member::Group);
                }
                if key.ends_with(VLMETA_SUFFIX) {
                    return None;
                }
                if let Some(kind) = self.objects.get(key) {
                    if kind == "ctable" || kind == "remote_store" {
                        return Some(Member::Object(kind));
                    }
                }
                if self.has_children(key) || self.marked.contains(key) {
                    Some(Member::Group)
                } else if self.leaves.contains_key(key) {
                    Some(Member::Leaf)
                } else {
                    None
                }
            }
        }
    }

    /// Full keys of the leaves below `prefix` (`/` for all), sorted.
    pub fn leaves(&self, prefix: &str) -> Vec<String> {
        let base = prefix.trim_end_matches('/');
        let start = format!("{base}/");
        let below = self
            .keys
            .range(start.clone()..)
            .take_while(|k| k.starts_with(&start));
        match self.kind {
            StoreKind::Table => Vec::new(),
            StoreKind::Dict => below.cloned().collect(),
            StoreKind::Tree => below
                .filter(|k| !self.has_children(k) && !self.marked.contains(*k))
                .cloned()
                .collect(),
        }
    }

    /// What `/api/list` shows for the store (`inner` = `None`) or a path in
    /// it: the leaves below, relative to it; a leaf lists as its own name.
    pub fn list(&self, inner: Option<&str>) -> Vec<String> {
        let prefix = inner.unwrap_or("/");
        let strip = prefix.trim_end_matches('/').len() + 1;
        let mut names: Vec<String> = self
            .leaves(prefix)
            .iter()
            .filter_map(|k| k.get(strip..))
            .map(str::to_string)
            .collect();
        names.sort_unstable();
        if names.is_empty() {
            if let Some(key) = inner {
                if matches!(self.lookup(key), Some(Member::Leaf | Member::Object(_))) {
                    names.push(key.rsplit('/').next().unwrap_or(key).to_string());
                }
            }
        }
        names
    }

    /// Bytes the members below `prefix` occupy in the archive (all of them,
    /// `embed.b2e` included, for the root).
    pub fn size(&self, prefix: &str) -> u64 {
        let rel = prefix.trim_matches('/');
        let rel = if rel.is_empty() {
            String::new()
        } else {
            format!("{rel}/")
        };
        self.members
            .iter()
            .filter(|m| m.name.starts_with(&rel))
            .map(|m| m.compressed_size)
            .sum()
    }
}
