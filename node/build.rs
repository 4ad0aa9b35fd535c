//! Rebuild when a migration changes: `embed_migrations!` reads the folders at
//! compile time and cargo would not notice a new or edited SQL file otherwise.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
