//! Integration tests: each starts a real wshub on a free port and talks to it over real sockets
//! (`architecture` alone reads the source instead).

mod architecture;
mod auth;
mod auth_strict;
mod browser;
mod churn;
mod cleanup;
mod cli;
mod client_auth;
mod cluster;
mod delivery;
mod deploy;
mod embed;
mod fuzz;
mod hardening;
mod helpers;
mod import;
mod isolation;
mod limits;
mod logs;
mod metrics;
mod mqtt;
mod pages;
mod presence;
mod processes;
mod raw_ws;
mod recovery;
mod rest;
mod shutdown;
mod slow;
mod soak;
mod supervision;
mod systems;
mod transport;
mod webhooks;
mod websocket;
