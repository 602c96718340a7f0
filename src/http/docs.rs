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

/// The page around the rendered manual: `{title}`, `{toc}` and `{body}` are filled in once, at
/// start.
const PAGE: &str = include_str!("../../static/docs.html");
