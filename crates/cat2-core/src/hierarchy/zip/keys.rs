//! The hierarchy a store's keys spell, with each store's rules (see the
//! module docs of [`super`]): what a key names, the leaves below a prefix,
//! listings, and the bytes a group occupies.

use std::sync::Arc;

use super::{Container, StoreKind, VLMETA_SUFFIX};
use crate::hierarchy::{Member, Tree};
use crate::storage::Blob;

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
}

impl Tree for Container {
    /// The archive, as it was when indexed.
    fn blob(&self) -> &Arc<dyn Blob> {
        &self.blob
    }

    /// What `key` (`/g/a`) names, if anything.
    fn lookup(&self, key: &str) -> Option<Member<'_>> {
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

    fn leaves(&self, prefix: &str) -> Vec<String> {
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

    /// Bytes the members below `prefix` occupy in the archive (all of them,
    /// `embed.b2e` included, for the root).
    fn size(&self, prefix: &str) -> u64 {
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
