//! The manual: `GET /socket.md` (the bundled markdown) and `GET /docs` (rendered once at start).

use std::collections::HashMap;

use actix_web::{web, HttpResponse};
use pulldown_cmark::{html, CowStr, Event, HeadingLevel, Options, Parser, Tag, TagEnd};

/// socket.md as it was when the binary was built.
pub const SOCKET_MD: &str = include_str!("../../socket.md");

/// The manual rendered to a complete HTML page.
pub struct Manual {
    /// Shared by every response without copying.
    page: web::Bytes,
}

impl Manual {
    /// Renders socket.md with ids on every heading and a table of contents of its sections.
    pub fn render() -> Manual {
        let options = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH;
        let mut events: Vec<Event> = Parser::new_ext(SOCKET_MD, options).collect();
        let mut toc = String::new();
        let mut title = String::from("wshub manual");
        let mut used: HashMap<String, usize> = HashMap::new();

        for i in 0..events.len() {
            let Event::Start(Tag::Heading { level, .. }) = &events[i] else {
                continue;
            };
            let level = *level;
            let text = heading_text(&events[i + 1..]);
            let slug = unique_slug(&text, &mut used);
            if let Event::Start(Tag::Heading { id, .. }) = &mut events[i] {
                *id = Some(CowStr::from(slug.clone()));
            }
            match level {
                HeadingLevel::H1 => title = text,
                HeadingLevel::H2 | HeadingLevel::H3 => {
                    let class = if level == HeadingLevel::H2 {
                        "h2"
                    } else {
                        "h3"
                    };
                    toc.push_str(&format!(
                        "<li class=\"{class}\"><a href=\"#{slug}\">{}</a></li>\n",
                        escape(&text)
                    ));
                }
                _ => {}
            }
        }
        let mut body = String::with_capacity(SOCKET_MD.len() * 2);
        html::push_html(&mut body, events.into_iter());
        let page = PAGE
            .replace("{title}", &escape(&title))
            .replace("{toc}", &toc)
            .replace("{body}", &body);
        Manual {
            page: web::Bytes::from(page),
        }
    }

    pub fn html(&self) -> &web::Bytes {
        &self.page
    }
}

/// The plain text of a heading whose start event precedes `events`.
fn heading_text(events: &[Event]) -> String {
    let mut text = String::new();
    for event in events {
        match event {
            Event::End(TagEnd::Heading(_)) => break,
            Event::Text(t) | Event::Code(t) => text.push_str(t),
            _ => {}
        }
    }
    text
}

/// GitHub's anchor rule: lower case, spaces to '-', punctuation other than '-' and '_' dropped;
/// repeats get "-1", "-2", … so links written against GitHub's rendering work here too.
fn unique_slug(text: &str, used: &mut HashMap<String, usize>) -> String {
    let base: String = text
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect();
    let count = used.entry(base.clone()).or_insert(0);
    let slug = if *count == 0 {
        base
    } else {
        format!("{base}-{count}")
    };
    *count += 1;
    slug
}

/// HTML-escapes text by letting pulldown-cmark render it as a text event.
fn escape(text: &str) -> String {
    let mut out = String::new();
    html::push_html(&mut out, std::iter::once(Event::Text(CowStr::from(text))));
    out
}

pub async fn docs(manual: web::Data<Manual>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(manual.html().clone())
}

pub async fn socket_md() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/markdown; charset=utf-8")
        .body(SOCKET_MD)
}

const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
  :root { --ink: #1d2433; --muted: #6b7385; --line: #dde2ec; --accent: #2f6fed; --code: #f4f6fa; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 15px/1.6 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); }
  .top { position: sticky; top: 0; background: #1d2433; color: #fff; padding: 10px 20px; display: flex; gap: 20px; align-items: center; z-index: 1; }
  .top a { color: #cfe0ff; text-decoration: none; }
  .top strong { font-size: 16px; }
  .wrap { display: grid; grid-template-columns: 260px minmax(0, 1fr); max-width: 1180px; margin: 0 auto; }
  nav.toc { position: sticky; top: 46px; align-self: start; max-height: calc(100vh - 46px); overflow: auto; padding: 20px 16px; border-right: 1px solid var(--line); font-size: 13.5px; }
  nav.toc h2 { font-size: 12px; text-transform: uppercase; letter-spacing: .06em; color: var(--muted); margin: 0 0 8px; }
  nav.toc ul { list-style: none; margin: 0; padding: 0; }
  nav.toc li.h3 { padding-left: 14px; font-size: 13px; }
  nav.toc a { color: var(--ink); text-decoration: none; display: block; padding: 2px 0; }
  nav.toc a:hover { color: var(--accent); }
  main { padding: 8px 32px 60px; min-width: 0; }
  h1 { font-size: 30px; margin: 20px 0 8px; }
  h2 { font-size: 22px; margin: 36px 0 8px; padding-bottom: 4px; border-bottom: 1px solid var(--line); }
  h3 { font-size: 17px; margin: 26px 0 6px; }
  a { color: var(--accent); }
  code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 13px; background: var(--code); padding: 1px 5px; border-radius: 4px; }
  pre { background: #1d2433; color: #e8ecf4; padding: 12px 14px; border-radius: 8px; overflow-x: auto; }
  pre code { background: none; color: inherit; padding: 0; font-size: 12.5px; }
  table { border-collapse: collapse; margin: 12px 0; width: 100%; font-size: 14px; display: block; overflow-x: auto; }
  th, td { border: 1px solid var(--line); padding: 6px 10px; text-align: left; vertical-align: top; }
  th { background: var(--code); }
  tr:nth-child(even) td { background: #fafbfd; }
  @media (max-width: 820px) { .wrap { grid-template-columns: minmax(0, 1fr); } nav.toc { position: static; max-height: none; border-right: 0; border-bottom: 1px solid var(--line); } main { padding: 8px 16px 40px; } }
</style>
</head>
<body>
<div class="top"><strong>wshub manual</strong><a href="/">&larr; Console</a><a href="/socket.md">socket.md</a></div>
<div class="wrap">
<nav class="toc" aria-label="Contents"><h2>Contents</h2><ul>
{toc}</ul></nav>
<main>
{body}
</main>
</div>
</body>
</html>
"#;
