//! Integration tests: each starts a real wshub on a free port and talks to it over real sockets.

mod auth;
mod cleanup;
mod cli;
mod delivery;
mod embed;
mod helpers;
mod isolation;
mod presence;
mod rest;
mod supervision;
mod websocket;
