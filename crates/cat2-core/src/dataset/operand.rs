//! Operands of expressions ([`Operand`]), opened as a graph, not a tree.
//!
//! Lazy expressions name other datasets, which may be lazy expressions
//! naming others: `d2 = a + b` where `a` and `b` are both `d1`, `d1 = a + b`
//! over `d0`, and so on. Opened as a tree, such a *diamond* chain opens
//! `2^depth` files and evaluates `d0` as many times for every box. One
//! [`Opening`] is shared by everything one request opens for an expression:
//! each dataset path is opened once ([`SharedOperand`]), and a box read by
//! several users of the same operand is computed once (the last box read is
//! kept while it is shared). The number of distinct datasets one opening
//! reaches is bounded ([`MAX_OPERANDS`]), which bounds the files it holds
//! open.
//!
//! An opening lives on one thread (the one that opens and evaluates an
//! expression; parallel workers make openings of their own), so sharing is
//! `Rc` and `Cell`, without locks.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use crate::budget::Budget;
use crate::error::{Error, Result};
use crate::path::DsPath;

/// Most distinct datasets one expression (with the expressions it reads)
/// may reach; each is a file held open while it computes.
pub(crate) const MAX_OPERANDS: usize = 64;

/// An array an expression reads: native-endian items of any box.
///
/// Not `Send`: an operand serves the thread that opened it (workers open
/// their own), which lets an expression graph share operands without locks
/// ([`Opening`]).
pub trait Operand {
    /// The items' type, as the expression engine knows types.
    fn dtype(&self) -> Result<cat2_expr::DType>;

    fn shape(&self) -> Vec<usize>;

    /// The chunk and block shapes a result of the same shape may take.
    fn geometry(&self) -> Option<(Vec<i64>, Vec<i64>)>;

    /// The items of the box `start..stop`, native-endian, in C order.
    fn read(&self, start: &[usize], stop: &[usize]) -> Result<Vec<u8>>;

    /// The stored array, when the operand is one whose decompressed chunks
    /// are its items in native byte order (results can then be computed chunk
    /// by chunk in Blosc2's own layout).
    fn native_array(&self) -> Option<&cat2_blosc2::NdArray> {
        None
    }
}

/// The operands one request has opened for an expression, by path, and the
/// budget their computations run within.
pub struct Opening {
    budget: Budget,
    opened: HashMap<DsPath, Rc<SharedOperand>>,
}

impl Opening {
    pub(crate) fn new(budget: &Budget) -> Opening {
        Opening {
            budget: budget.clone(),
            opened: HashMap::new(),
        }
    }

    pub(crate) fn budget(&self) -> &Budget {
        &self.budget
    }

    /// The operand at `path`, opened by `open` the first time it is asked
    /// for; refused once the opening would reach more than [`MAX_OPERANDS`].
    pub(crate) fn operand(
        &mut self,
        path: &DsPath,
        open: impl FnOnce(&mut Opening) -> Result<Box<dyn Operand>>,
    ) -> Result<Rc<SharedOperand>> {
        if let Some(shared) = self.opened.get(path) {
            shared.users.set(shared.users.get() + 1);
            return Ok(shared.clone());
        }
        if self.opened.len() >= MAX_OPERANDS {
            return Err(Error::BadRequest(format!(
                "Invalid name or expression: the expression reads more than {MAX_OPERANDS} distinct datasets (counting those of the expressions it reads); {path} is one too many"
            )));
        }
        let operand = open(self)?;
        let shared = Rc::new(SharedOperand {
            operand,
            users: Cell::new(1),
            last: RefCell::new(None),
        });
        self.opened.insert(path.clone(), shared.clone());
        Ok(shared)
    }
}

/// An operand opened once for all its users in an expression graph.
pub struct SharedOperand {
    operand: Box<dyn Operand>,
    /// How many places of the graph read it.
    users: Cell<usize>,
    /// The last box read, kept when it has several users: they ask for the
    /// same box one after the other.
    last: RefCell<Option<LastBox>>,
}

/// A box read (`start`, `stop`) and its items.
type LastBox = (Vec<usize>, Vec<usize>, Vec<u8>);

impl Operand for SharedOperand {
    fn dtype(&self) -> Result<cat2_expr::DType> {
        self.operand.dtype()
    }

    fn shape(&self) -> Vec<usize> {
        self.operand.shape()
    }

    fn geometry(&self) -> Option<(Vec<i64>, Vec<i64>)> {
        self.operand.geometry()
    }

    fn read(&self, start: &[usize], stop: &[usize]) -> Result<Vec<u8>> {
        if self.users.get() < 2 {
            return self.operand.read(start, stop);
        }
        if let Some((a, b, data)) = &*self.last.borrow() {
            if a == start && b == stop {
                return Ok(data.clone());
            }
        }
        let data = self.operand.read(start, stop)?;
        *self.last.borrow_mut() = Some((start.to_vec(), stop.to_vec(), data.clone()));
        Ok(data)
    }

    fn native_array(&self) -> Option<&cat2_blosc2::NdArray> {
        self.operand.native_array()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts its reads.
    struct Counting(Rc<Cell<usize>>);

    impl Operand for Counting {
        fn dtype(&self) -> Result<cat2_expr::DType> {
            Ok(cat2_expr::DType::U8)
        }
        fn shape(&self) -> Vec<usize> {
            vec![4]
        }
        fn geometry(&self) -> Option<(Vec<i64>, Vec<i64>)> {
            None
        }
        fn read(&self, start: &[usize], stop: &[usize]) -> Result<Vec<u8>> {
            self.0.set(self.0.get() + 1);
            Ok((start[0]..stop[0]).map(|i| i as u8).collect())
        }
    }

    #[test]
    fn a_path_is_opened_once_and_a_shared_box_read_once() {
        let reads = Rc::new(Cell::new(0));
        let mut opening = Opening::new(&Budget::unlimited());
        let path = DsPath::parse("@public/a.b2nd").unwrap();
        let mut opens = 0;
        let mut open = |_: &mut Opening| -> Result<Box<dyn Operand>> {
            opens += 1;
            Ok(Box::new(Counting(reads.clone())))
        };
        let a = opening.operand(&path, &mut open).unwrap();
        let b = opening.operand(&path, &mut open).unwrap();
        assert_eq!(opens, 1);
        assert_eq!(a.read(&[1], &[3]).unwrap(), [1, 2]);
        assert_eq!(b.read(&[1], &[3]).unwrap(), [1, 2]);
        assert_eq!(reads.get(), 1);
        assert_eq!(b.read(&[0], &[1]).unwrap(), [0]);
        assert_eq!(reads.get(), 2);
    }

    #[test]
    fn distinct_operands_are_bounded() {
        let mut opening = Opening::new(&Budget::unlimited());
        let reads = Rc::new(Cell::new(0));
        for i in 0..MAX_OPERANDS {
            let p = DsPath::parse(&format!("@public/a{i}.b2nd")).unwrap();
            opening
                .operand(&p, |_| Ok(Box::new(Counting(reads.clone()))))
                .unwrap();
        }
        let p = DsPath::parse("@public/one-more.b2nd").unwrap();
        let err = opening
            .operand(&p, |_| Ok(Box::new(Counting(reads.clone()))))
            .err()
            .unwrap();
        assert!(err.to_string().contains("more than 64 distinct"), "{err}");
    }
}
