//! Integration tests: each starts a real wshub on a free port and talks to it over real sockets.

mod auth;
mod browser;
mod churn;
mod cleanup;
mod cli;
mod client_auth;
mod cluster;
mod delivery;
mod embed;
mod fuzz;
mod helpers;
mod isolation;
mod limits;
mod metrics;
mod pages;
mod presence;
mod rest;
mod shutdown;
mod slow;
mod soak;
mod supervision;
mod websocket;
