//! The configuration readers: environment variables (`NAME=value` lines), a JSON object (the
//! npm package's configuration, and a file's snake_case settings) and a TOML file, each read
//! through the settings table for every surface it serves. Byte 0 picks the reader.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate::settings::{Raw, Settings, Source, Surface};
use tollgate::ErrorCode;
use tollgate_fuzz::{CONFIG_ENV, CONFIG_JSON, CONFIG_TOML};

fn read(source: &Source) {
    for surface in [Surface::Serve, Surface::Worker, Surface::Js] {
        match Settings::read(source, surface) {
            Ok(settings) => {
                if let Err(e) = settings.config() {
                    assert_eq!(e.code(), ErrorCode::ConfigInvalid, "{e}");
                }
            }
            Err(e) => assert_eq!(e.code(), ErrorCode::ConfigInvalid, "{e}"),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&reader, rest)) = data.split_first() else { return };
    let Ok(text) = std::str::from_utf8(rest) else { return };
    match reader % 3 {
        CONFIG_ENV => {
            let vars = text.lines().filter_map(|l| l.split_once('=')).map(|(n, v)| (n.to_owned(), Raw::Text(v.to_owned())));
            read(&Source::env(vars));
        }
        CONFIG_JSON => {
            let Ok(value) = serde_json::from_str::<serde_json::Value>(text) else { return };
            if let serde_json::Value::Object(map) = &value {
                read(&Source::snake(map.clone()));
            }
            if let Ok(source) = Source::js(value) {
                read(&source);
            }
        }
        CONFIG_TOML => {
            let Ok(table) = toml::from_str::<toml::Table>(text) else { return };
            let entries = table.into_iter().map(|(k, v)| (k, serde_json::to_value(v).unwrap_or(serde_json::Value::Null)));
            read(&Source::snake(entries));
        }
        _ => unreachable!(),
    }
});
