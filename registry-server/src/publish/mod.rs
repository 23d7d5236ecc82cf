//! What a publish (or an import) must satisfy, and submitting it to the quarantine:
//!
//! - [`frame`]: Cargo's framed publish body;
//! - [`metadata`]: the publish metadata, its checks, and the index line built from it;
//! - [`submit`](mod@submit): the name, ownership, `.crate` and uniqueness checks, the `.crate` stored by its
//!   digest, and the version recorded as `submitted` with its audit queued.

pub mod frame;
pub mod metadata;
pub mod submit;

pub use frame::{Frame, FrameError, parse_frame};
pub use metadata::{MetadataError, NewCrate, NewDependency};
pub use submit::submit;
