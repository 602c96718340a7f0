//! What the binary logs and how: `RUST_LOG` chooses what (env_logger's filter), `--log-format`
//! how: env_logger's text lines, or one JSON object per line for a log collector.
//!
//! Structured fields ride on the `log` crate's key-values (`log::info!(k = v; "...")`): the text
//! format prints them as ` k=v` after the message, the JSON format as members of the object. REST
//! calls are logged under their own target, [`ACCESS`].

use std::io::Write;

use log::kv::{Error, Key, Value, VisitSource};
use serde_json::{Map, Value as Json};

/// The target of the access log (one line per REST call), so that
/// `RUST_LOG=info,wshub::access=off` silences it alone.
pub const ACCESS: &str = "wshub::access";

/// What is logged when `RUST_LOG` is unset: info, without actix-server's start-up lines, which
/// repeat what wshub says itself.
pub const DEFAULT_FILTER: &str = "info,actix_server=warn";

/// How each log record is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// env_logger's lines: `[time LEVEL target] message k=v ...`.
    Text,
    /// One JSON object per line: `time`, `level`, `target`, `message` and the record's fields.
    Json,
}

/// Installs the logger for the process; `RUST_LOG` filters, `format` writes.
pub fn init(format: LogFormat) {
    let mut builder =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(DEFAULT_FILTER));
    if format == LogFormat::Json {
        builder.format(|buf, record| {
            let mut object = Map::new();
            object.insert("time".into(), buf.timestamp_micros().to_string().into());
            object.insert("level".into(), record.level().as_str().into());
            object.insert("target".into(), record.target().into());
            object.insert("message".into(), record.args().to_string().into());
            // A field that cannot be written is left out rather than losing the record.
            let _ = record.key_values().visit(&mut Fields(&mut object));
            writeln!(buf, "{}", Json::Object(object))
        });
    }
    builder.init();
}

/// Copies a record's key-values into the JSON object; a field never replaces the four above.
struct Fields<'a>(&'a mut Map<String, Json>);

impl<'kvs> VisitSource<'kvs> for Fields<'_> {
    fn visit_pair(&mut self, key: Key<'kvs>, value: Value<'kvs>) -> Result<(), Error> {
        let json = serde_json::to_value(&value).map_err(Error::boxed)?;
        self.0.entry(key.as_str()).or_insert(json);
        Ok(())
    }
}
