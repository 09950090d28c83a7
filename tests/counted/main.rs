//! What can only be measured with a counting global allocator, so in a binary of its own:
//! `evaluate` allocates nothing, and the checker's cost stays within counted bounds.

#[path = "../suite/common/mod.rs"]
mod common;
#[path = "../../benches/support/peak.rs"]
mod peak;
#[path = "../../benches/support/shapes.rs"]
mod shapes;

mod check_bounds;
mod no_alloc;

#[global_allocator]
static GLOBAL: peak::Peak = peak::Peak;
