//! `embed_migrations!` reads the migrations directory at compile time, but only the
//! files it found are tracked; this makes a new migration file trigger a rebuild too.

fn main() {
    println!("cargo:rerun-if-changed=../../migrations");
}
