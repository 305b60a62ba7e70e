//! Rebuild when a migration is added: `embed_migrations!` reads the migration
//! directories at compile time, but cargo only tracks the files it already embedded.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
