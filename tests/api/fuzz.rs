//! Property tests: random REST bodies and headers, and random WebSocket handshakes, against a
//! real server. Every case must give a 2xx/4xx JSON envelope or a clean close, never a crash,
//! and the registry's invariants must hold after each one.

use actix_web::web::Bytes;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use serde_json::{json, Map, Value};
use wshub::actors::testing::CheckInvariants;

use crate::helpers::{spawn_app_with, Call, TestApp};

/// Every API method, plus an unknown one and the bare prefix.
fn methods() -> Vec<&'static str> {
    let mut methods = wshub::http::api::METHODS.to_vec();
    methods.extend(["no_such_method", ""]);
    methods
}

const FIELDS: [&str; 11] = [
    "systemId",
    "clientId",
    "clientIds",
    "groupName",
    "userId",
    "extend",
    "sendUserId",
    "code",
    "msg",
    "data",
    "junk",
];

/// Strings that matter here: empty, the fixture's names and ids, unicode, long ones.
fn text(ids: Vec<String>) -> impl Strategy<Value = String> {
    let mut known = vec![
        String::new(),
        "s".into(),
        "g1".into(),
        "g2".into(),
        "x".repeat(200),
        "ünïcödé 🚀".into(),
    ];
    known.extend(ids);
    prop_oneof![
        prop::sample::select(known),
        "[a-z0-9]{1,12}",
        any::<String>(),
    ]
}

fn json_value(ids: Vec<String>) -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        text(ids.clone()).prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        any::<bool>().prop_map(Value::from),
        Just(Value::Null),
    ];
    leaf.prop_recursive(2, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(FIELDS.to_vec()), inner), 0..4).prop_map(
                |pairs| Value::Object(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
            ),
        ]
    })
}

/// A body: mostly objects with protocol fields of random types, sometimes arbitrary bytes.
fn body(ids: Vec<String>) -> impl Strategy<Value = Vec<u8>> {
    let object = prop::collection::vec(
        (
            prop::sample::select(FIELDS.to_vec()),
            json_value(ids.clone()),
        ),
        0..6,
    )
    .prop_map(|pairs| {
        let map: Map<String, Value> = pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        serde_json::to_vec(&Value::Object(map)).unwrap()
    });
    // Fields of the right types, so that many calls succeed and change state.
    let well_typed = (
        text(ids.clone()),
        prop::collection::vec(text(ids.clone()), 1..4),
        prop::sample::select(vec!["g1", "g2", "g3", "g4", ""]),
        text(ids.clone()),
        json_value(ids),
        -5i64..5,
    )
        .prop_map(|(id, list, group, user, data, code)| {
            serde_json::to_vec(&json!({
                "systemId": format!("sys-{user}"), "clientId": id, "clientIds": list,
                "groupName": group, "userId": user, "extend": "e", "data": data, "code": code,
            }))
            .unwrap()
        });
    prop_oneof![
        4 => well_typed,
        3 => object,
        1 => prop::collection::vec(any::<u8>(), 0..64),
    ]
}

#[derive(Debug)]
struct RestCase {
    method: &'static str,
    system: Option<String>,
    token: bool,
    body: Vec<u8>,
}

fn rest_case(ids: Vec<String>) -> impl Strategy<Value = RestCase> {
    (
        prop::sample::select(methods()),
        prop::option::weighted(
            0.9,
            prop_oneof![3 => Just("s".to_owned()), 1 => text(ids.clone())],
        ),
        prop::bool::weighted(0.95),
        body(ids),
    )
        .prop_map(|(method, system, token, body)| RestCase {
            method,
            system: system.filter(|s| !s.contains(['\r', '\n', '\0'])),
            token,
            body,
        })
}

async fn assert_invariants(app: &TestApp, case: &dyn std::fmt::Debug) {
    let violations = app.hub.registry.send(CheckInvariants).await.unwrap();
    assert!(violations.is_empty(), "after {case:?}: {violations:?}");
}

#[actix_web::test]
async fn random_rest_calls_get_an_envelope_and_keep_the_registry_consistent() {
    let app = spawn_app_with(|c| c.limits.max_groups_per_client = 3).await;
    app.register("s").await;
    let mut ids = Vec::new();
    let mut clients = Vec::new();
    for i in 0..4 {
        let client = app.connect("s").await;
        app.api(
            "bind_to_group",
            "s",
            json!({"clientId": client.id, "groupName": format!("g{}", i % 2 + 1)}),
        )
        .await
        .ok();
        ids.push(client.id.clone());
        clients.push(client);
    }
    let strategy = rest_case(ids);
    let mut runner = TestRunner::deterministic();
    let mut statuses = std::collections::BTreeMap::new();
    for _ in 0..1000 {
        let case = strategy.new_tree(&mut runner).unwrap().current();
        let header_ok = case
            .system
            .as_deref()
            .is_none_or(|s| actix_web::http::header::HeaderValue::from_str(s).is_ok());
        let reply = app
            .call(Call {
                method: case.method,
                http_method: awc::http::Method::POST,
                token: case.token.then_some(app.token.as_str()),
                system: if header_ok {
                    case.system.as_deref()
                } else {
                    None
                },
                body: Bytes::from(case.body.clone()),
            })
            .await;
        assert!(
            [200, 400, 401, 403, 404, 409, 413].contains(&reply.status),
            "{case:?} → {reply:?}"
        );
        let code = reply.body["code"].as_i64().expect("envelope code");
        assert_eq!(code == 0, reply.status == 200, "{case:?} → {reply:?}");
        assert!(reply.body["msg"].is_string(), "{case:?} → {reply:?}");
        *statuses.entry(reply.status).or_insert(0) += 1;
        assert_invariants(&app, &case).await;
    }
    eprintln!("REST fuzz statuses: {statuses:?}");
    // The server is still fully usable.
    app.register("after-fuzz").await;
    app.connect("after-fuzz").await;
}

#[derive(Debug)]
struct HandshakeCase {
    query: String,
    header: Option<String>,
}

#[actix_web::test]
async fn random_handshakes_get_a_welcome_or_a_clean_refusal() {
    let app = spawn_app_with(|_| {}).await;
    app.register("s").await;
    let raw_query = prop_oneof![
        Just("?systemId=s".to_owned()),
        "[?&=%a-zA-Z0-9._~-]{0,40}",
        any::<String>().prop_map(|s| format!(
            "?systemId={}",
            s.bytes().map(|b| format!("%{b:02X}")).collect::<String>()
        )),
    ];
    let strategy = (raw_query, prop::option::of("[ -~]{0,20}"))
        .prop_map(|(query, header)| HandshakeCase { query, header });
    let mut runner = TestRunner::deterministic();
    for _ in 0..300 {
        let case = strategy.new_tree(&mut runner).unwrap().current();
        let mut request = awc::Client::new().ws(app.ws_url(&case.query));
        if let Some(header) = &case.header {
            request = request.set_header("SystemId", header.as_str());
        }
        match request.connect().await {
            Ok((_, mut conn)) => {
                let frame = crate::helpers::next_json(&mut conn).await;
                match frame["code"].as_i64() {
                    Some(0) => assert!(frame["data"]["clientId"].is_string(), "{case:?}"),
                    Some(-1001) => {
                        let reason = crate::helpers::expect_close(&mut conn).await;
                        assert_eq!(u16::from(reason.unwrap().code), 1008, "{case:?}");
                    }
                    _ => panic!("{case:?} → {frame}"),
                }
            }
            // A query the client library itself refuses to send is not a server case.
            Err(awc::error::WsClientError::SendRequest(_)) => {}
            Err(awc::error::WsClientError::InvalidResponseStatus(status)) => {
                assert!(status.is_client_error(), "{case:?} → {status}");
            }
            Err(err) => panic!("{case:?} → {err}"),
        }
        assert_invariants(&app, &case).await;
    }
    app.connect("s").await;
}

/// One frame a client might send: real or lying header fields, any payload.
#[derive(Debug, Clone)]
struct ClientFrameCase {
    fin: bool,
    opcode: u8,
    masked: bool,
    /// The length the header announces; may differ from the payload sent.
    declared: u64,
    payload: Vec<u8>,
}

fn client_frame_case() -> impl Strategy<Value = ClientFrameCase> {
    let declared = prop_oneof![
        Just(None),
        (0u64..20_000).prop_map(Some),
        prop::sample::select(vec![
            126u64,
            127,
            65_535,
            65_536,
            1 << 32,
            1 << 40,
            u64::MAX >> 1
        ])
        .prop_map(Some),
    ];
    (
        any::<bool>(),
        prop_oneof![
            Just(0u8),
            Just(1),
            Just(2),
            Just(8),
            Just(9),
            Just(10),
            0u8..16
        ],
        prop::bool::weighted(0.9),
        declared,
        prop::collection::vec(any::<u8>(), 0..300),
    )
        .prop_map(|(fin, opcode, masked, declared, payload)| ClientFrameCase {
            fin,
            opcode,
            masked,
            declared: declared.unwrap_or(payload.len() as u64),
            payload,
        })
}

fn encode_case(case: &ClientFrameCase) -> Vec<u8> {
    let mut bytes = crate::raw_ws::frame_header(case.fin, case.opcode, case.declared);
    if !case.masked {
        // Drop the mask bit and key: an unmasked client frame is a protocol error.
        bytes[1] &= 0x7f;
        bytes.truncate(bytes.len() - 4);
    }
    bytes.extend_from_slice(&case.payload);
    bytes
}

#[actix_web::test]
async fn random_client_frames_end_in_a_clean_close_or_nothing_and_never_hurt_the_server() {
    let app = spawn_app_with(|_| {}).await;
    app.register("s").await;
    let address = format!("127.0.0.1:{}", app.port);
    let strategy = prop::collection::vec(client_frame_case(), 1..6);
    let mut runner = TestRunner::deterministic();
    let mut codes = std::collections::BTreeMap::new();
    for _ in 0..150 {
        let frames = strategy.new_tree(&mut runner).unwrap().current();
        let mut stream = crate::raw_ws::handshake(&address, "systemId=s", &[]).await;
        let welcome = crate::raw_ws::read_frame(&mut stream)
            .await
            .expect("welcome");
        assert_eq!(welcome.opcode, 1);
        let bytes: Vec<u8> = frames.iter().flat_map(encode_case).collect();
        use tokio::io::AsyncWriteExt;
        let _ = stream.write_all(&bytes).await;
        // Whatever comes back within a moment: pongs, a close frame, or nothing yet.
        let outcome = tokio::time::timeout(std::time::Duration::from_millis(300), async {
            while let Some(frame) = crate::raw_ws::read_frame(&mut stream).await {
                if frame.opcode == 8 {
                    return Some(frame.close_code());
                }
            }
            None
        })
        .await;
        if let Ok(Some(code)) = outcome {
            assert!(
                matches!(code, None | Some(1000..=1003 | 1007..=1009)),
                "{frames:?} → close {code:?}"
            );
            *codes.entry(code).or_insert(0) += 1;
        }
        drop(stream);
        assert_invariants(&app, &frames).await;
    }
    eprintln!("client frame fuzz close codes: {codes:?}");
    app.wait_for_stats(|s| s.clients == 0).await;
    app.connect("s").await;
}
