//! A plan stops when its interrupt hook says so, even inside a reduction
//! over a generated input that never reads an operand.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use cat2_expr::{Error, Expr, Operands};

fn no_operands(name: &str, _: &[usize], _: &[usize]) -> cat2_expr::Result<Vec<u8>> {
    Err(Error::UnknownName(name.into()))
}

#[test]
fn a_reduction_over_a_huge_generator_stops_within_a_piece() {
    let plan = Expr::parse("sum(linspace(0, 1, 10**12))")
        .unwrap()
        .plan(&Operands::new())
        .unwrap();
    let asked = Arc::new(AtomicUsize::new(0));
    let counter = asked.clone();
    plan.interrupt_with(Arc::new(move || {
        if counter.fetch_add(1, Ordering::Relaxed) >= 3 {
            Err("time is up".to_string())
        } else {
            Ok(())
        }
    }));
    let started = std::time::Instant::now();
    let err = plan.eval_box(&[], &[], &mut no_operands).unwrap_err();
    assert_eq!(err, Error::Interrupted("time is up".into()));
    assert_eq!(asked.load(Ordering::Relaxed), 4);
    // Without the hook this runs for hours.
    assert!(started.elapsed().as_secs() < 60);
}

#[test]
fn a_hook_that_agrees_changes_nothing() {
    let plan = Expr::parse("sum(arange(10)) + 1")
        .unwrap()
        .plan(&Operands::new())
        .unwrap();
    plan.interrupt_with(Arc::new(|| Ok(())));
    let bytes = plan.eval_box(&[], &[], &mut no_operands).unwrap();
    assert_eq!(i64::from_ne_bytes(bytes.try_into().unwrap()), 46);
}
