//! The settings tables of the docs, rendered from [`SETTINGS`]. Tests check
//! that README.md and pkg/README.md contain them verbatim, so the docs cannot
//! drift from the code.

use super::{Scope, SETTINGS};

fn code(name: Option<&str>, wrap: impl Fn(&str) -> String) -> String {
    name.map_or_else(|| "—".to_owned(), wrap)
}

fn help(secret: bool, help: &str) -> String {
    if secret {
        format!("{help}. *Secret*")
    } else {
        format!("{help}.")
    }
}

/// The README's table: every setting with its environment name, JavaScript
/// name, Rust method, default, who reads it and what it does.
pub fn readme_table() -> String {
    let mut out = String::from("| environment | JavaScript | Rust | default | read by | what it does |\n|---|---|---|---|---|---|\n");
    for s in SETTINGS {
        let read_by = match s.scope {
            Scope::Engine => "all",
            Scope::Service => "serve, Worker",
            Scope::Serve => "serve",
            Scope::Worker => "Worker",
            Scope::Adapter => "adapters",
            Scope::ServiceAndAdapter => "serve, Worker, adapters",
        };
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {read_by} | {} |\n",
            s.env,
            code(s.js, |js| format!("`{js}`")),
            code(s.rust, |m| format!("`.{m}()`")),
            s.default.text,
            help(s.secret, s.help.text),
        ));
    }
    out
}

/// The npm package's table: the settings of its configuration object.
pub fn js_table() -> String {
    let mut out = String::from("| field | default | what it does |\n|---|---|---|\n");
    for s in SETTINGS.iter().filter(|s| s.scope == Scope::Engine) {
        let name = s.js.unwrap_or(s.name);
        out.push_str(&format!("| `{name}` | {} | {} |\n", s.default.text, help(s.secret, s.help.text)));
    }
    out
}
