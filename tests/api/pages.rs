//! The console, its assets, the manual and the health route.

use crate::helpers::spawn_app;

async fn get(app: &crate::helpers::TestApp, path: &str) -> (u16, String, String) {
    let mut response = app.http.get(app.url(path)).send().await.unwrap();
    let body = response.body().limit(4 << 20).await.unwrap();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (
        response.status().as_u16(),
        content_type,
        String::from_utf8(body.to_vec()).unwrap(),
    )
}

#[actix_web::test]
async fn console_and_its_assets_are_served() {
    let app = spawn_app().await;
    let (status, content_type, body) = get(&app, "/").await;
    assert_eq!(status, 200);
    assert_eq!(content_type, "text/html; charset=utf-8");
    assert!(body.contains("<title>wshub console</title>"));
    assert!(
        body.contains(r#"href="/docs""#),
        "the console links the manual"
    );
    // No network fetch but this server: every src/href is local.
    assert!(!body.contains("http://") && !body.contains("https://"));

    let (status, content_type, body) = get(&app, "/static/console.js").await;
    assert_eq!(status, 200);
    assert_eq!(content_type, "text/javascript; charset=utf-8");
    assert!(body.contains("send_to_group"));
    let (status, content_type, _) = get(&app, "/static/console.css").await;
    assert_eq!(status, 200);
    assert_eq!(content_type, "text/css; charset=utf-8");
}

#[actix_web::test]
async fn raw_manual_is_the_bundled_socket_md() {
    let app = spawn_app().await;
    let (status, content_type, body) = get(&app, "/socket.md").await;
    assert_eq!(status, 200);
    assert_eq!(content_type, "text/markdown; charset=utf-8");
    assert_eq!(body, include_str!("../../socket.md"));
}

#[actix_web::test]
async fn docs_render_the_manual_with_contents_and_a_way_back() {
    let app = spawn_app().await;
    let (status, content_type, body) = get(&app, "/docs").await;
    assert_eq!(status, 200);
    assert_eq!(content_type, "text/html; charset=utf-8");
    assert!(body.contains("<title>wshub manual</title>"));
    assert!(body.contains(r#"<a href="/">&larr; Console</a>"#));
    // Table of contents pointing at heading ids.
    assert!(body.contains(r##"<a href="#authentication">Authentication</a>"##));
    assert!(body.contains(r#"<h2 id="authentication">Authentication</h2>"#));
    assert!(body.contains(r#"<h3 id="send_to_group"><code>send_to_group</code></h3>"#));
    // The anchor socket.md links to exists.
    assert!(body.contains(r#"id="coming-from-goravel-socket--go-websocket""#));
    // Tables and code blocks are rendered, not left as markdown.
    assert!(body.contains("<table>"));
    assert!(body.contains("<pre><code"));
    assert!(!body.contains("| flag |"));
}

#[actix_web::test]
async fn healthz_reports_counts() {
    let app = spawn_app().await;
    app.register("s").await;
    let (status, content_type, body) = get(&app, "/healthz").await;
    assert_eq!(status, 200);
    assert_eq!(content_type, "application/json");
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"code": 0, "msg": "success", "data": {"systems": 1, "clients": 0, "groups": 0}})
    );
}

#[actix_web::test]
async fn head_answers_like_get_without_a_body_and_unknown_routes_get_the_envelope() {
    let app = spawn_app().await;
    for path in [
        "/",
        "/static/console.js",
        "/static/console.css",
        "/favicon.ico",
        "/docs",
        "/socket.md",
        "/healthz",
        "/metrics",
    ] {
        let (get_status, get_type, _) = get(&app, path).await;
        let mut head = app.http.head(app.url(path)).send().await.unwrap();
        assert_eq!(head.status().as_u16(), get_status, "HEAD {path}");
        assert_eq!(
            head.headers()
                .get("content-type")
                .unwrap()
                .to_str()
                .unwrap(),
            get_type,
            "HEAD {path}"
        );
        assert!(
            head.body().await.unwrap().is_empty(),
            "HEAD {path} has no body"
        );
    }
    let (status, content_type, body) = get(&app, "/favicon.ico").await;
    assert_eq!((status, content_type.as_str()), (200, "image/svg+xml"));
    assert!(body.starts_with("<svg"));
    let (status, content_type, body) = get(&app, "/no/such/page").await;
    assert_eq!((status, content_type.as_str()), (404, "application/json"));
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["code"], -1);
    assert_eq!(body["msg"], "no page at '/no/such/page'");
}

#[actix_web::test]
async fn an_internal_port_takes_health_and_metrics_off_the_public_one() {
    let app = crate::helpers::spawn_app_with(|c| c.internal_port = Some(0)).await;
    let internal = app.internal_port.expect("bound");
    for path in ["/healthz", "/metrics"] {
        let (status, _, body) = get(&app, path).await;
        assert_eq!(status, 404, "{path} on the public port: {body}");
        let reply = app
            .http
            .get(format!("http://127.0.0.1:{internal}{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status().as_u16(), 200, "{path} on the internal port");
    }
    // Everything else stays where it was.
    assert_eq!(get(&app, "/").await.0, 200);
    app.register("s").await;
}

#[actix_web::test]
async fn console_off_leaves_the_api_and_the_manual() {
    let app = crate::helpers::spawn_app_with(|c| c.console = wshub::config::Switch::Off).await;
    for path in ["/", "/static/console.js", "/static/console.css"] {
        assert_eq!(get(&app, path).await.0, 404, "{path}");
    }
    assert_eq!(get(&app, "/docs").await.0, 200);
    assert_eq!(get(&app, "/healthz").await.0, 200);
    app.register("s").await;
}

#[actix_web::test]
async fn the_client_library_and_its_types_are_served_to_any_origin_even_with_the_console_off() {
    let app = crate::helpers::spawn_app_with(|c| c.console = wshub::config::Switch::Off).await;
    for (path, kind, needle) in [
        (
            "/wshub.js",
            "text/javascript",
            "export function connect(options)",
        ),
        (
            "/wshub.d.ts",
            "application/typescript",
            "export function connect(options: ConnectOptions): Connection;",
        ),
    ] {
        let response = app
            .http
            .get(app.url(path))
            .insert_header(("Origin", "https://frontend.example"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200, "{path}");
        let cors = response.headers().get("access-control-allow-origin");
        assert_eq!(cors.map(|v| v.to_str().unwrap()), Some("*"), "{path}");
        let (_, content_type, body) = get(&app, path).await;
        assert!(content_type.starts_with(kind), "{path}: {content_type}");
        assert!(body.contains(needle), "{path}");
    }
}

#[actix_web::test]
async fn openapi_json_describes_every_method_its_body_and_its_replies() {
    let app = crate::helpers::spawn_app().await;
    let (status, content_type, body) = get(&app, "/openapi.json").await;
    assert_eq!(status, 200);
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    for method in wshub::http::api::METHODS {
        let operation = &doc["paths"][format!("/api/{method}")]["post"];
        assert!(operation.is_object(), "{method} is not described");
        for status in ["200", "400", "401", "503"] {
            assert!(
                operation["responses"][status].is_object(),
                "{method}: no {status}"
            );
        }
        assert!(
            operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].is_string(),
            "{method}: no body schema"
        );
    }
    // Bodies are the types the handlers parse into: their fields, as the wire names them.
    let bind = &doc["components"]["schemas"]["BindToGroupRequest"];
    assert_eq!(
        bind["required"],
        serde_json::json!(["clientId", "groupName"])
    );
    let send = &doc["components"]["schemas"]["SendToClientsRequest"]["properties"];
    for field in ["clientIds", "sendUserId", "code", "msg", "data"] {
        assert!(send[field].is_object(), "send_to_clients lacks {field}");
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    // Each method lists the errors it can give, not every error any method can.
    let responses =
        |method: &str| doc["paths"][format!("/api/{method}")]["post"]["responses"].clone();
    assert!(responses("register")["409"].is_object());
    assert!(responses("send_to_group")["409"].is_null());
    assert!(responses("send_to_group")["404"].is_null());
    assert!(responses("send_to_client")["404"].is_object());
    assert!(responses("bind_to_group")["404"].is_object());
    // Tags group the methods; the server is the one serving the document.
    assert_eq!(
        doc["paths"]["/api/send_to_group"]["post"]["tags"],
        serde_json::json!(["messages"])
    );
    assert_eq!(
        doc["paths"]["/api/send_to_user"]["post"]["tags"],
        serde_json::json!(["users"])
    );
    assert!(doc["tags"].as_array().is_some_and(|tags| tags.len() == 6));
    assert_eq!(doc["servers"][0]["url"], "/");
}
