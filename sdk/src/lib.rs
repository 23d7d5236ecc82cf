//! `kiln-kernel`: the only glue between a kiln notebook kernel and the kiln executor.
//!
//! A kernel is a `cdylib` crate built for `wasm32-wasip1`. It declares its entry points with
//! [`kernel!`], which exports them with the ABI v1 signature, exports the input allocator, and
//! embeds the kernel's metadata (entry points and media types) in a custom section. Each entry
//! point is a plain Rust function:
//!
//! ```
//! use kiln_kernel::{Error, Input, Output};
//!
//! fn shout(input: Input<'_>, out: &mut Output) -> Result<(), Error> {
//!     out.write_str(&input.text()?.to_uppercase())
//! }
//!
//! kiln_kernel::kernel! {
//!     entry shout(input: "text/plain", output: "text/plain") => shout;
//! }
//!
//! // The same function runs natively in tests, with the output collected in memory.
//! assert_eq!(kiln_kernel::testing::run(shout, b"hi").unwrap(), b"HI");
//! ```
//!
//! The contract itself is written down in `docs/kernel-abi.md` in the kiln repository. This
//! crate depends only on `kiln-abi` (the ABI's numbers and names) and uses no proc-macros.

#![warn(missing_docs)]

pub use kiln_abi as abi;
mod error;
mod host;
mod input;
pub mod json;
pub mod log;
#[doc(hidden)]
pub mod meta;
mod output;
pub mod testing;

pub use error::Error;
pub use input::Input;
pub use output::Output;

/// The signature of a kernel entry point.
pub type EntryFn = fn(Input<'_>, &mut Output) -> Result<(), Error>;

/// Declares a kernel's entry points.
///
/// ```text
/// kiln_kernel::kernel! {
///     entry NAME(input: "MEDIA/TYPE", output: "MEDIA/TYPE") => path::to::function;
///     entry NAME(input: "...", output: "...", schema: r#"{ JSON Schema of the input }"#) => f;
/// }
/// ```
///
/// On `wasm32` this exports `memory` (as every module does), `kiln_alloc`, and one
/// `kiln_entry_NAME(ptr, len) -> status` function per entry, and embeds the metadata section
/// `kiln.kernel`. Use it once per crate. Media types must not contain `"` or `\`; a schema is
/// embedded as written and must be valid JSON (the builder checks it).
#[macro_export]
macro_rules! kernel {
    (
        entry $name0:ident ( input: $in0:literal, output: $out0:literal $(, schema: $schema0:literal)? $(,)? ) => $func0:path;
        $( entry $name:ident ( input: $in:literal, output: $out:literal $(, schema: $schema:literal)? $(,)? ) => $func:path; )*
    ) => {
        #[doc(hidden)]
        pub const KILN_KERNEL_METADATA: &str = concat!(
            "{\"abi\":1,\"crate\":\"", env!("CARGO_PKG_NAME"),
            "\",\"version\":\"", env!("CARGO_PKG_VERSION"),
            "\",\"entries\":[",
            "{\"name\":\"", stringify!($name0), "\",\"input\":\"", $in0, "\",\"output\":\"", $out0, "\""
            $(, ",\"schema\":", $schema0)?, "}"
            $(, ",{\"name\":\"", stringify!($name), "\",\"input\":\"", $in, "\",\"output\":\"", $out, "\""
              $(, ",\"schema\":", $schema)?, "}")*,
            "]}"
        );

        const _: () = {
            assert!($crate::meta::is_plain($in0), "media types must not contain quotes, backslashes or control characters");
            assert!($crate::meta::is_plain($out0), "media types must not contain quotes, backslashes or control characters");
            $(
                assert!($crate::meta::is_plain($in), "media types must not contain quotes, backslashes or control characters");
                assert!($crate::meta::is_plain($out), "media types must not contain quotes, backslashes or control characters");
            )*
        };

        #[cfg(target_arch = "wasm32")]
        const _: () = {
            #[unsafe(link_section = "kiln.kernel")]
            #[used]
            static KILN_KERNEL_SECTION: [u8; KILN_KERNEL_METADATA.len()] =
                $crate::meta::to_array(KILN_KERNEL_METADATA);

            #[unsafe(export_name = "kiln_alloc")]
            extern "C" fn kiln_alloc(len: i32) -> i32 {
                $crate::meta::alloc(len)
            }

            #[unsafe(export_name = concat!("kiln_entry_", stringify!($name0)))]
            extern "C" fn entry0(ptr: i32, len: i32) -> i32 {
                $crate::meta::call(ptr, len, $func0)
            }
        };
        $(
            #[cfg(target_arch = "wasm32")]
            const _: () = {
                #[unsafe(export_name = concat!("kiln_entry_", stringify!($name)))]
                extern "C" fn entry(ptr: i32, len: i32) -> i32 {
                    $crate::meta::call(ptr, len, $func)
                }
            };
        )*
    };
}
