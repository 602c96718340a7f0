//! Property: whatever the interleaving of sends, cuts, partial reads and resumes, every recovery
//! client's stream, joined across its connections, is exactly what was sent to it: no gap, no
//! duplicate, in order. On one node, and on two (sends and resumes through either, Redis up
//! throughout).

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use serde_json::json;

use super::{connect_recoverable, resume};
use crate::helpers::{next_json, spawn_app, TestApp, WsConn};

/// Three clients: 0 in g1, 1 in g1 and g2, 2 in g2.
const GROUPS: [&[usize]; 2] = [&[0, 1], &[1, 2]];

/// Each step names the node it goes through (modulo the number of nodes).
#[derive(Debug, Clone)]
enum Step {
    ToGroup(usize, usize),
    ToClient(usize, usize),
    ToSystem(usize),
    /// Reads one of the frames waiting for a connected client.
    ReadOne(usize),
    /// Drops the connection, no close frame.
    Cut(usize),
    /// Resumes: after a cut, or over a connection still open (half-open).
    Resume(usize, usize),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0..2usize, 0..2usize).prop_map(|(g, via)| Step::ToGroup(g, via)),
        (0..3usize, 0..2usize).prop_map(|(n, via)| Step::ToClient(n, via)),
        (0..2usize).prop_map(Step::ToSystem),
        (0..3usize).prop_map(Step::ReadOne),
        (0..3usize).prop_map(Step::ReadOne),
        (0..3usize).prop_map(Step::Cut),
        (0..3usize, 0..2usize).prop_map(|(n, via)| Step::Resume(n, via)),
    ]
}

struct Client {
    id: String,
    token: String,
    last: Option<String>,
    conn: Option<WsConn>,
    expected: Vec<String>,
    /// For each expected frame: the node and the method it was sent through.
    sent_via: Vec<(usize, &'static str)>,
    received: Vec<String>,
}

impl Client {
    async fn read_one(&mut self) {
        let frame = next_json(self.conn.as_mut().unwrap()).await;
        let id = frame["messageId"].as_str().unwrap().to_owned();
        self.received.push(id.clone());
        self.last = Some(id);
    }

    async fn resume(&mut self, app: &TestApp) {
        let (conn, welcome) = resume(app, "s", &self.token, self.last.as_deref()).await;
        assert_eq!(welcome["recovered"], true, "{welcome}");
        assert_eq!(welcome["clientId"], self.id.as_str());
        assert_eq!(
            welcome["missed"],
            self.expected.len() - self.received.len(),
            "{welcome}"
        );
        self.token = welcome["resumeToken"].as_str().unwrap().to_owned();
        // An old connection still open is closed by the server (4009); nothing more is read there.
        self.conn = Some(conn);
    }
}

async fn run(nodes: &[TestApp], steps: &[Step]) {
    let app = &nodes[0];
    let via = |n: &usize| &nodes[n % nodes.len()];
    app.register("s").await;
    let mut clients = Vec::new();
    for n in 0..3 {
        let mut r = connect_recoverable(via(&n), "s").await;
        for (g, members) in GROUPS.iter().enumerate() {
            if members.contains(&n) {
                app.bind("s", &r.client, &format!("g{g}"), "u").await;
                r.next_push().await;
            }
        }
        clients.push(Client {
            id: r.client.id,
            token: r.token,
            last: r.last,
            conn: Some(r.client.conn),
            expected: Vec::new(),
            sent_via: Vec::new(),
            received: Vec::new(),
        });
    }
    // The 1001s about later members reached the earlier ones: read them off first.
    for (g, members) in GROUPS.iter().enumerate() {
        for (position, n) in members.iter().enumerate() {
            for _ in position + 1..members.len() {
                let frame = next_json(clients[*n].conn.as_mut().unwrap()).await;
                assert_eq!(frame["code"], 1001, "g{g}: {frame}");
                clients[*n].last = frame["messageId"].as_str().map(str::to_owned);
            }
        }
    }
    for step in steps {
        let (node, method, body, to): (_, &'static str, _, Vec<usize>) = match step {
            Step::ToGroup(g, n) => (
                via(n),
                "send_to_group",
                json!({"groupName": format!("g{g}")}),
                GROUPS[*g].to_vec(),
            ),
            Step::ToClient(c, n) => (
                via(n),
                "send_to_client",
                json!({"clientId": clients[*c].id}),
                vec![*c],
            ),
            Step::ToSystem(n) => (via(n), "send_to_system", json!({}), vec![0, 1, 2]),
            Step::ReadOne(n) => {
                let client = &mut clients[*n];
                if client.conn.is_some() && client.received.len() < client.expected.len() {
                    client.read_one().await;
                }
                continue;
            }
            Step::Cut(n) => {
                clients[*n].conn = None;
                continue;
            }
            Step::Resume(c, n) => {
                clients[*c].resume(via(n)).await;
                continue;
            }
        };
        let reply = node.api(method, "s", body).await.ok();
        let id = reply["messageId"].as_str().unwrap().to_owned();
        for n in to {
            clients[n].expected.push(id.clone());
            let node_index = match step {
                Step::ToGroup(_, n) | Step::ToClient(_, n) | Step::ToSystem(n) => n % nodes.len(),
                _ => 0,
            };
            clients[n].sent_via.push((node_index, method));
        }
    }
    for client in &mut clients {
        if client.conn.is_none() {
            client.resume(app).await;
        }
        while client.received.len() < client.expected.len() {
            client.read_one().await;
        }
        if nodes.len() == 1 {
            assert_eq!(client.received, client.expected, "client {}", client.id);
        } else {
            client.assert_cluster_order();
        }
    }
}

impl Client {
    /// Across nodes the cluster keeps the order of calls made through one node with one method
    /// (socket.md, cluster mode): every frame once, and that order.
    fn assert_cluster_order(&self) {
        let mut received = self.received.clone();
        let mut expected = self.expected.clone();
        received.sort();
        expected.sort();
        assert_eq!(
            received, expected,
            "client {}: a gap or a duplicate",
            self.id
        );
        let kinds: std::collections::BTreeSet<_> = self.sent_via.iter().copied().collect();
        for kind in kinds {
            let of_kind: Vec<&String> = self
                .expected
                .iter()
                .zip(&self.sent_via)
                .filter(|(_, via)| **via == kind)
                .map(|(id, _)| id)
                .collect();
            let arrived: Vec<&String> = self
                .received
                .iter()
                .filter(|id| of_kind.contains(id))
                .collect();
            assert_eq!(arrived, of_kind, "client {}: order of {kind:?}", self.id);
        }
    }
}

#[actix_web::test]
async fn every_interleaving_of_sends_cuts_and_resumes_delivers_each_frame_once_in_order() {
    let mut runner = TestRunner::deterministic();
    let steps = prop::collection::vec(step(), 1..40);
    for case in 0..24 {
        let steps = steps.new_tree(&mut runner).unwrap().current();
        eprintln!("case {case}: {steps:?}");
        run(&[spawn_app().await], &steps).await;
    }
}

#[actix_web::test]
async fn on_two_nodes_every_interleaving_delivers_each_frame_once_in_order() {
    let Some(redis) = crate::cluster::redis_url() else {
        return;
    };
    let mut runner = TestRunner::deterministic();
    let steps = prop::collection::vec(step(), 1..40);
    for case in 0..12 {
        let steps = steps.new_tree(&mut runner).unwrap().current();
        eprintln!("case {case}: {steps:?}");
        let prefix = crate::cluster::fresh_prefix();
        let nodes = [
            crate::cluster::node(&redis, &prefix).await,
            crate::cluster::node(&redis, &prefix).await,
        ];
        run(&nodes, &steps).await;
    }
}
