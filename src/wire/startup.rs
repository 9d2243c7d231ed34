//! Establishing a connection: address resolution, per-address `connect_timeout`, SSLRequest and
//! the TLS handshake, the StartupMessage with the session settings, authentication (cleartext,
//! MD5, SCRAM-SHA-256[-PLUS]) and target_session_attrs, trying hosts in order as libpq does.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::BytesMut;
use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256};
use postgres_protocol::message::frontend;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};
use tokio_rustls::TlsConnector;

use super::auth;
use super::codec::{self, tag, AuthRequest};
use super::config::{ChannelBindingMode, Config, Host, HostSpec, SslMode, TargetSessionAttrs};
use super::connection::{CancelAddr, Connection, State, Stream, READ_CHUNK};
use super::error::Error;
use super::tls;
use crate::logging::Level;
use crate::wire_log;

enum TlsChoice {
    Off,
    /// Ask for TLS; `required` refuses a server without it.
    On {
        config: Arc<rustls::ClientConfig>,
        required: bool,
    },
}

impl Connection {
    async fn startup(
        cfg: &Config,
        host: &HostSpec,
        stream: Stream,
        cancel_addr: CancelAddr,
        peer: String,
        replication: bool,
    ) -> Result<Connection, Error> {
        let tls = matches!(stream, Stream::Tls(_));
        let mut conn = Connection {
            stream,
            read_buf: BytesMut::with_capacity(READ_CHUNK),
            write_buf: BytesMut::with_capacity(8 * 1024),
            consumed: 0,
            state: State::Idle,
            params: HashMap::new(),
            process_id: 0,
            secret_key: Vec::new(),
            cancel_addr,
            connect_timeout: cfg.connect_timeout,
            auth_mechanism: "none",
            tls,
            peer,
            transaction_status: b'I',
            bulk_reads: false,
        };
        let mut params: Vec<(&str, &str)> = vec![
            ("user", cfg.user.as_str()),
            ("database", cfg.dbname.as_str()),
        ];
        const FIXED: [(&str, &str); 5] = [
            ("client_encoding", "UTF8"),
            ("DateStyle", "ISO"),
            ("TimeZone", "UTC"),
            ("IntervalStyle", "iso_8601"),
            ("extra_float_digits", "3"),
        ];
        params.extend(FIXED);
        if let Some(a) = &cfg.application_name {
            params.push(("application_name", a));
        }
        if let Some(o) = &cfg.options {
            params.push(("options", o));
        }
        if replication {
            params.push(("replication", "database"));
        }
        for (k, v) in &cfg.runtime_params {
            // The session settings are the plugin's contract; the string may not change them.
            if FIXED.iter().any(|(f, _)| f.eq_ignore_ascii_case(k)) {
                wire_log!(
                    Level::Warn,
                    "connection parameter ignored: the client fixes it",
                    name = k
                );
                continue;
            }
            params.push((k, v));
        }
        frontend::startup_message(params.iter().copied(), &mut conn.write_buf)
            .map_err(|e| Error::protocol(format!("encoding StartupMessage: {e}")))?;
        conn.flush().await?;
        wire_log!(
            Level::Debug,
            "startup sent",
            peer = conn.peer.clone(),
            replication = replication
        );
        conn.authenticate(cfg, host).await?;
        // After AuthenticationOk: ParameterStatus, BackendKeyData, then ReadyForQuery.
        loop {
            let f = conn.next_message().await?;
            match f.tag {
                tag::BACKEND_KEY_DATA => {
                    let (pid, key) = codec::parse_backend_key_data(conn.body(&f))
                        .map(|(p, k)| (p, k.to_vec()))
                        .map_err(|e| conn.proto(e))?;
                    conn.process_id = pid;
                    conn.secret_key = key;
                }
                tag::READY_FOR_QUERY => break,
                tag::ERROR_RESPONSE => {
                    let ctx = format!("starting the session as user \"{}\"", cfg.user);
                    return Err(conn.server_error(&f, &ctx));
                }
                tag::NEGOTIATE_PROTOCOL_VERSION => {
                    wire_log!(Level::Debug, "server negotiated the protocol version down");
                }
                other => {
                    return Err(Error::protocol(format!(
                        "unexpected message '{}' during startup",
                        other.escape_ascii()
                    )))
                }
            }
        }
        wire_log!(
            Level::Debug,
            "connected",
            peer = conn.peer.clone(),
            server_version = conn.parameter("server_version").unwrap_or("").to_string(),
            tls = conn.tls,
            auth = conn.auth_mechanism
        );
        Ok(conn)
    }

    async fn authenticate(&mut self, cfg: &Config, host: &HostSpec) -> Result<(), Error> {
        let user = cfg.user.clone();
        let ctx = format!("for user \"{user}\"");
        let mut password: Option<String> = None;
        let mut scram: Option<ScramSha256> = None;
        let mut need_password = |conn: &Connection| -> Result<String, Error> {
            if let Some(p) = &password {
                return Ok(p.clone());
            }
            match cfg.password_for(host) {
                Some(p) => {
                    password = Some(p.clone());
                    Ok(p)
                }
                None => Err(Error::auth(
                    ctx.clone(),
                    format!(
                        "the server at {} requested a password and none was given (password, PGPASSWORD or a passfile)",
                        conn.peer
                    ),
                )),
            }
        };
        loop {
            let f = self.next_message().await?;
            match f.tag {
                tag::AUTHENTICATION => {}
                tag::ERROR_RESPONSE => {
                    let e = self.server_error(&f, format!("authenticating {ctx}").as_str());
                    self.state = State::Broken;
                    return Err(e);
                }
                tag::NEGOTIATE_PROTOCOL_VERSION => continue,
                other => {
                    self.state = State::Broken;
                    return Err(Error::protocol(format!(
                        "unexpected message '{}' during authentication",
                        other.escape_ascii()
                    )));
                }
            }
            let req = codec::parse_authentication(self.body(&f)).map_err(|e| self.proto(e))?;
            let request = match req {
                AuthRequest::Ok => None,
                AuthRequest::Cleartext => Some(Step::Cleartext),
                AuthRequest::Md5 { salt } => Some(Step::Md5(salt)),
                AuthRequest::Sasl(mechs) => {
                    let cert_hash = self.channel_binding_hash();
                    let mech = auth::choose_mechanism(
                        &mechs,
                        cert_hash.is_some(),
                        cfg.channel_binding == ChannelBindingMode::Disable,
                    );
                    let offered = mechs.join(", ");
                    Some(Step::Sasl(mech, cert_hash, offered))
                }
                AuthRequest::SaslContinue(d) => Some(Step::SaslContinue(d.to_vec())),
                AuthRequest::SaslFinal(d) => Some(Step::SaslFinal(d.to_vec())),
                AuthRequest::Unsupported(name) => {
                    self.state = State::Broken;
                    return Err(Error::auth(
                        ctx,
                        format!("the server requested {name} authentication, which this client does not support"),
                    ));
                }
            };
            let Some(step) = request else {
                if cfg.channel_binding == ChannelBindingMode::Require
                    && self.auth_mechanism != auth::SCRAM_SHA_256_PLUS
                {
                    self.state = State::Broken;
                    return Err(Error::auth(
                        ctx,
                        "channel_binding=require, but the server authenticated the client without channel binding",
                    ));
                }
                wire_log!(Level::Debug, "authenticated", method = self.auth_mechanism);
                return Ok(());
            };
            let enc =
                |e: io::Error| Error::protocol(format!("encoding an authentication message: {e}"));
            match step {
                Step::Cleartext => {
                    self.auth_mechanism = "password";
                    let p = need_password(self)?;
                    frontend::password_message(p.as_bytes(), &mut self.write_buf).map_err(enc)?;
                }
                Step::Md5(salt) => {
                    self.auth_mechanism = "md5";
                    let p = need_password(self)?;
                    let hash = postgres_protocol::authentication::md5_hash(
                        user.as_bytes(),
                        p.as_bytes(),
                        salt,
                    );
                    frontend::password_message(hash.as_bytes(), &mut self.write_buf)
                        .map_err(enc)?;
                }
                Step::Sasl(mech, cert_hash, offered) => {
                    let Some(mech) = mech else {
                        self.state = State::Broken;
                        return Err(Error::auth(
                            ctx,
                            format!("the server offered SASL mechanisms this client does not support: {offered}"),
                        ));
                    };
                    if cfg.channel_binding == ChannelBindingMode::Require
                        && mech != auth::SCRAM_SHA_256_PLUS
                    {
                        self.state = State::Broken;
                        return Err(Error::auth(
                            ctx,
                            "channel_binding=require, but the server does not offer SCRAM-SHA-256-PLUS over this connection",
                        ));
                    }
                    self.auth_mechanism = mech;
                    let p = need_password(self)?;
                    let binding = match (mech, cert_hash) {
                        (auth::SCRAM_SHA_256_PLUS, Some(h)) => {
                            ChannelBinding::tls_server_end_point(h)
                        }
                        // Over TLS we could bind but the server did not offer it ("y");
                        // without TLS binding is impossible ("n").
                        (_, Some(_)) if cfg.channel_binding != ChannelBindingMode::Disable => {
                            ChannelBinding::unrequested()
                        }
                        _ => ChannelBinding::unsupported(),
                    };
                    let s = ScramSha256::new(p.as_bytes(), binding);
                    frontend::sasl_initial_response(mech, s.message(), &mut self.write_buf)
                        .map_err(enc)?;
                    scram = Some(s);
                }
                Step::SaslContinue(data) => {
                    let Some(s) = scram.as_mut() else {
                        return Err(Error::protocol("SASLContinue before SASL started"));
                    };
                    s.update(&data).map_err(|e| {
                        Error::auth(ctx.clone(), format!("SCRAM exchange failed: {e}"))
                    })?;
                    frontend::sasl_response(s.message(), &mut self.write_buf).map_err(enc)?;
                }
                Step::SaslFinal(data) => {
                    let Some(s) = scram.as_mut() else {
                        return Err(Error::protocol("SASLFinal before SASL started"));
                    };
                    s.finish(&data).map_err(|e| {
                        Error::auth(
                            ctx.clone(),
                            format!("SCRAM server signature check failed: {e}"),
                        )
                    })?;
                    continue;
                }
            }
            self.flush().await?;
        }
    }

    /// The `tls-server-end-point` hash of the server certificate, when on TLS.
    fn channel_binding_hash(&self) -> Option<Vec<u8>> {
        let Stream::Tls(tls) = &self.stream else {
            return None;
        };
        let cert = tls.get_ref().1.peer_certificates()?.first()?;
        auth::tls_server_end_point(cert.as_ref())
    }
}

enum Step {
    Cleartext,
    Md5([u8; 4]),
    Sasl(Option<&'static str>, Option<Vec<u8>>, String),
    SaslContinue(Vec<u8>),
    SaslFinal(Vec<u8>),
}

enum Target {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

async fn resolve(host: &HostSpec) -> Result<Vec<Target>, Error> {
    match (&host.host, host.hostaddr) {
        (Host::Unix(dir), _) => Ok(vec![Target::Unix(
            dir.join(format!(".s.PGSQL.{}", host.port)),
        )]),
        (Host::Tcp(_), Some(addr)) => Ok(vec![Target::Tcp(SocketAddr::new(addr, host.port))]),
        (Host::Tcp(name), None) => {
            let addrs = tokio::net::lookup_host((name.as_str(), host.port))
                .await
                .map_err(|e| Error::io(format!("resolving host \"{name}\""), e))?;
            Ok(addrs.map(Target::Tcp).collect())
        }
    }
}

pub(super) async fn connect_any(cfg: &Config, replication: bool) -> Result<Connection, Error> {
    let tls_config = tls::client_config(cfg)?;
    let passes: &[Option<TargetSessionAttrs>] = match cfg.target_session_attrs {
        TargetSessionAttrs::PreferStandby => &[Some(TargetSessionAttrs::Standby), None],
        TargetSessionAttrs::Any => &[None],
        other => match other {
            TargetSessionAttrs::ReadWrite => &[Some(TargetSessionAttrs::ReadWrite)],
            TargetSessionAttrs::ReadOnly => &[Some(TargetSessionAttrs::ReadOnly)],
            TargetSessionAttrs::Primary => &[Some(TargetSessionAttrs::Primary)],
            _ => &[Some(TargetSessionAttrs::Standby)],
        },
    };
    let mut last: Option<Error> = None;
    for want in passes {
        for host in &cfg.hosts {
            let targets = match resolve(host).await {
                Ok(t) => t,
                Err(e) => {
                    last = Some(e);
                    continue;
                }
            };
            for target in targets {
                let attempt = connect_target(cfg, host, &target, tls_config.clone(), replication);
                let result = match cfg.connect_timeout {
                    Some(t) => match tokio::time::timeout(t, attempt).await {
                        Ok(r) => r,
                        Err(_) => Err(Error::Timeout {
                            context: format!("connecting to {}", target_display(host, &target)),
                            after: t,
                        }),
                    },
                    None => attempt.await,
                };
                match result {
                    Ok(mut conn) => match want {
                        None => return Ok(conn),
                        Some(w) => match session_matches(&mut conn, *w).await {
                            Ok(true) => return Ok(conn),
                            Ok(false) => {
                                last = Some(Error::Closed(format!(
                                    "{} does not satisfy target_session_attrs={}",
                                    conn.peer,
                                    w.as_str()
                                )));
                                conn.close().await;
                            }
                            Err(e) => last = Some(e),
                        },
                    },
                    Err(e) => {
                        wire_log!(
                            Level::Debug,
                            "connection attempt failed",
                            error = e.to_string()
                        );
                        last = Some(e);
                    }
                }
            }
        }
    }
    Err(last.unwrap_or_else(|| Error::Closed("no host to connect to".into())))
}

async fn session_matches(conn: &mut Connection, want: TargetSessionAttrs) -> Result<bool, Error> {
    let r = conn
        .simple_query("SELECT pg_catalog.pg_is_in_recovery(), pg_catalog.current_setting('transaction_read_only')")
        .await?;
    let row = r.first().and_then(|r| r.rows.first());
    let get = |i: usize| row.and_then(|r| r.get(i)).cloned().flatten();
    let in_recovery = get(0).as_deref() == Some("t");
    let read_only = get(1).as_deref() == Some("on");
    Ok(match want {
        TargetSessionAttrs::Any => true,
        TargetSessionAttrs::ReadWrite => !read_only,
        TargetSessionAttrs::ReadOnly => read_only,
        TargetSessionAttrs::Primary => !in_recovery,
        TargetSessionAttrs::Standby | TargetSessionAttrs::PreferStandby => in_recovery,
    })
}

fn target_display(host: &HostSpec, target: &Target) -> String {
    match (target, &host.host) {
        (Target::Unix(p), _) => format!("socket {}", p.display()),
        (Target::Tcp(a), Host::Tcp(name)) if name != &a.ip().to_string() => {
            format!("{name} ({a})")
        }
        (Target::Tcp(a), _) => a.to_string(),
    }
}

/// One attempt at one address; sslmode=allow/prefer fall back as libpq does.
async fn connect_target(
    cfg: &Config,
    host: &HostSpec,
    target: &Target,
    tls_config: Option<Arc<rustls::ClientConfig>>,
    replication: bool,
) -> Result<Connection, Error> {
    let first = match (&tls_config, cfg.ssl_mode, target) {
        // libpq does not use TLS on unix sockets.
        (_, _, Target::Unix(_)) | (None, _, _) | (_, SslMode::Allow, _) => TlsChoice::Off,
        (Some(c), mode, _) => TlsChoice::On {
            config: c.clone(),
            required: mode != SslMode::Prefer,
        },
    };
    let tried_tls = matches!(first, TlsChoice::On { .. });
    match connect_once(cfg, host, target, first, replication).await {
        Ok(c) => Ok(c),
        // allow: plain first; if the server wants encryption (pg_hba hostssl), retry with TLS.
        Err(e)
            if cfg.ssl_mode == SslMode::Allow
                && matches!(target, Target::Tcp(_))
                && e.code() == Some("28000") =>
        {
            let Some(config) = tls_config else {
                return Err(e);
            };
            connect_once(
                cfg,
                host,
                target,
                TlsChoice::On {
                    config,
                    required: true,
                },
                replication,
            )
            .await
        }
        // prefer: if the TLS handshake fails, retry without.
        Err(Error::Tls { .. }) if cfg.ssl_mode == SslMode::Prefer && tried_tls => {
            connect_once(cfg, host, target, TlsChoice::Off, replication).await
        }
        Err(e) => Err(e),
    }
}

async fn connect_once(
    cfg: &Config,
    host: &HostSpec,
    target: &Target,
    tls: TlsChoice,
    replication: bool,
) -> Result<Connection, Error> {
    let display = target_display(host, target);
    match target {
        Target::Unix(path) => {
            let s = UnixStream::connect(path)
                .await
                .map_err(|e| Error::io(format!("connecting to {display}"), e))?;
            Connection::startup(
                cfg,
                host,
                Stream::Unix(s),
                CancelAddr::Unix(path.clone()),
                display,
                replication,
            )
            .await
        }
        Target::Tcp(addr) => {
            let mut s = TcpStream::connect(addr)
                .await
                .map_err(|e| Error::io(format!("connecting to {display}"), e))?;
            let _ = s.set_nodelay(true);
            if let Some(keepalive) = &cfg.keepalive {
                keepalive
                    .apply(&s)
                    .map_err(|e| Error::io(format!("turning on TCP keepalives to {display}"), e))?;
            }
            let stream = match tls {
                TlsChoice::Off => Stream::Tcp(s),
                TlsChoice::On { config, required } => {
                    let mut req = BytesMut::new();
                    frontend::ssl_request(&mut req);
                    s.write_all(&req)
                        .await
                        .map_err(|e| Error::io(format!("sending SSLRequest to {display}"), e))?;
                    // Exactly one byte: anything buffered after 'S' would be unencrypted injection.
                    let answer = s.read_u8().await.map_err(|e| {
                        Error::io(format!("reading the SSLRequest answer from {display}"), e)
                    })?;
                    match answer {
                        b'S' => {
                            let name = match &host.host {
                                Host::Tcp(n) => n.clone(),
                                Host::Unix(_) => addr.ip().to_string(),
                            };
                            let server_name = tls::server_name(&name)?;
                            let tls = TlsConnector::from(config)
                                .connect(server_name, s)
                                .await
                                .map_err(|e| Error::Tls {
                                    context: format!("handshake with {display}"),
                                    message: e.to_string(),
                                })?;
                            wire_log!(Level::Debug, "TLS established", peer = display.clone());
                            Stream::Tls(Box::new(tls))
                        }
                        b'N' if !required => Stream::Tcp(s),
                        b'N' => {
                            return Err(Error::Tls {
                                context: format!("negotiating with {display}"),
                                message: format!(
                                    "the server does not support SSL, but sslmode={} requires it",
                                    cfg.ssl_mode.as_str()
                                ),
                            })
                        }
                        other => {
                            return Err(Error::protocol(format!(
                                "unexpected answer '{}' to SSLRequest from {display}",
                                other.escape_ascii()
                            )))
                        }
                    }
                }
            };
            Connection::startup(
                cfg,
                host,
                stream,
                CancelAddr::Tcp(*addr),
                display,
                replication,
            )
            .await
        }
    }
}
