//! Passwords for private keys: from an environment variable (empty allowed), or a prompt when
//! standard input is a terminal.

use std::io::IsTerminal as _;

use anyhow::{Context as _, Result, bail};

/// The variable holding the password of kiln's own private keys.
pub(crate) const KILN_KEY_PASSWORD: &str = "KILN_KEY_PASSWORD";
/// The variable cosign uses for its keys' passwords.
pub(crate) const COSIGN_PASSWORD: &str = "COSIGN_PASSWORD";

/// The password in `var`, or one typed at a prompt. `confirm` asks twice (for new keys).
pub(crate) fn read(var: &str, what: &str, confirm: bool) -> Result<Vec<u8>> {
    if let Some(value) = std::env::var_os(var) {
        return Ok(value.into_encoded_bytes());
    }
    if !std::io::stdin().is_terminal() {
        bail!(
            "{var} is not set and there is no terminal to ask for the password of {what} (set it, empty for no password)"
        );
    }
    let first = rpassword::prompt_password(format!("Password for {what}: "))
        .context("reading the password")?;
    if confirm {
        let second = rpassword::prompt_password("Again: ").context("reading the password")?;
        if first != second {
            bail!("the passwords differ");
        }
    }
    Ok(first.into_bytes())
}
