//! Integration tests: each starts a real wshub on a free port and talks to it over real sockets.

mod auth;
mod browser;
mod cleanup;
mod cli;
mod delivery;
mod embed;
mod helpers;
mod isolation;
mod limits;
mod pages;
mod presence;
mod rest;
mod slow;
mod supervision;
mod websocket;
